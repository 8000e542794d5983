//! Issue 17: the policy simulator decides as real requests are decided (same evaluator, same
//! KMS order, same typed `Decision`), and a real request's decision is explained on its caller
//! for the request log.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use serde_json::json;
use trent_core::Decision;
use trent_core::iam::IamError;
use trent_core::simulate::{ContextEntry, EvalDecision, PolicySourceType, SimulationInput};

/// Alice may encrypt under `app=billing` by the key policy; her IAM policy allows Decrypt,
/// denies DescribeKey; the key policy delegates to the account.
async fn scenario(env: &Env) -> (TestUser, String, String) {
    let alice = user(env, "alice").await;
    put_user_policy(
        env,
        "alice",
        "use",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}),
            json!({"Sid": "NoDescribe", "Effect": "Deny", "Action": "kms:DescribeKey", "Resource": "*"}),
        ]),
    )
    .await;
    let policy = key_policy(vec![json!({
        "Sid": "AliceEncrypts",
        "Effect": "Allow",
        "Principal": {"AWS": user_arn("alice")},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:app": "billing"}}
    })]);
    let key = create_key(env, Some(policy.clone())).await;
    (alice, key.arn(), policy)
}

fn input(actions: &[&str], key_arn: &str, key_policy: &str) -> SimulationInput {
    SimulationInput {
        actions: actions.iter().map(|a| a.to_string()).collect(),
        resources: vec![key_arn.to_string()],
        resource_policy: Some(key_policy.to_string()),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_simulator_agrees_with_real_requests() {
    let env = env().await;
    let (alice, key_arn, policy) = scenario(&env).await;

    // Real: Encrypt with the right context is allowed by the key policy statement naming her.
    let caller = alice.caller(&env.kms);
    encrypt(&env.kms, &caller, &key_arn, context(&[("app", "billing")]))
        .await
        .expect("allowed by AliceEncrypts");
    let real = caller.explanation().expect("decided").to_string();
    assert_eq!(
        real,
        "allowed by key policy statement 2 (Sid \"AliceEncrypts\")"
    );

    // Simulated: the same question gives the same typed decision and statement.
    let mut sim = input(&["kms:Encrypt"], &key_arn, &policy);
    sim.context = vec![ContextEntry {
        name: "kms:EncryptionContext:app".into(),
        values: vec!["billing".into()],
        kind: Some("string".into()),
    }];
    let results = env
        .kms
        .simulate_principal_policy(&env.root, &alice.arn(), &sim)
        .unwrap();
    let [encrypt_result] = results.as_slice() else {
        panic!("one result: {results:?}")
    };
    assert_eq!(encrypt_result.eval_decision, EvalDecision::Allowed);
    match &encrypt_result.decision {
        Decision::AllowedByPolicy(reasons) => {
            assert_eq!(reasons.len(), 1);
            assert_eq!(reasons[0].statement, 1);
            assert_eq!(reasons[0].sid.as_deref(), Some("AliceEncrypts"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(encrypt_result.matched.len(), 1);
    assert_eq!(
        encrypt_result.matched[0].source_policy_type,
        PolicySourceType::Resource
    );
    assert!(encrypt_result.missing_context.is_empty());

    // Without the context: denied for real and in simulation, the key reported missing.
    let caller = alice.caller(&env.kms);
    assert!(
        encrypt(&env.kms, &caller, &key_arn, context(&[]))
            .await
            .is_err()
    );
    // The key policy delegates to the account, so the cause is the IAM side.
    assert_eq!(
        caller.explanation().unwrap().to_string(),
        "implicit deny: no identity-based policy allows kms:Encrypt"
    );
    let results = env
        .kms
        .simulate_principal_policy(
            &env.root,
            &alice.arn(),
            &input(
                &["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
                &key_arn,
                &policy,
            ),
        )
        .unwrap();
    let decisions: Vec<_> = results.iter().map(|r| r.eval_decision).collect();
    assert_eq!(
        decisions,
        [
            EvalDecision::ImplicitDeny,
            EvalDecision::Allowed,
            EvalDecision::ExplicitDeny
        ]
    );
    assert_eq!(results[0].missing_context, ["kms:EncryptionContext:app"]);
    assert!(matches!(
        results[0].decision,
        Decision::ImplicitDeny(trent_policy::DenyCause::NoIdentityPolicyAllows)
    ));
    // Decrypt: root delegation plus her inline policy, named by its name.
    let sources: Vec<_> = results[1]
        .matched
        .iter()
        .map(|m| (m.source_policy_id.as_str(), m.source_policy_type))
        .collect();
    assert_eq!(
        sources,
        [
            ("ResourcePolicy", PolicySourceType::Resource),
            ("use", PolicySourceType::User)
        ]
    );
    // DescribeKey: only the Deny is reported.
    assert_eq!(results[2].matched.len(), 1);
    assert_eq!(results[2].matched[0].source_policy_id, "use");
}

#[tokio::test]
async fn a_real_explicit_deny_names_its_statement() {
    let env = env().await;
    let (alice, key_arn, _) = scenario(&env).await;
    let caller = alice.caller(&env.kms);
    // A key-less IAM action nothing allows.
    assert!(
        env.kms
            .iam_list_users(&caller, None)
            .await
            .is_err_and(|e| matches!(e, IamError::AccessDenied(_)))
    );
    assert_eq!(
        caller.explanation().unwrap().to_string(),
        "implicit deny: no identity-based policy allows iam:ListUsers"
    );
    let caller = alice.caller(&env.kms);
    assert!(
        env.kms
            .describe_key(&caller, Some(&key_arn), &[])
            .await
            .is_err()
    );
    assert_eq!(
        caller.explanation().unwrap().to_string(),
        "explicit deny by identity policy 1 statement 2 (Sid \"NoDescribe\")"
    );

    // Another account, on an operation no other account may ever perform.
    let shared = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow", "Principal": {"AWS": root_arn(OTHER_ACCOUNT)},
            "Action": "kms:*", "Resource": "*"
        })])),
    )
    .await;
    let other = caller_for_access_key(&env.kms, OTHER_ROOT_ACCESS_KEY);
    assert!(
        env.kms
            .disable_key(&other, Some(&shared.arn()))
            .await
            .is_err()
    );
    assert_eq!(
        other.explanation().unwrap().to_string(),
        "implicit deny: kms:DisableKey is never allowed on a key of another account"
    );
    let other = caller_for_access_key(&env.kms, OTHER_ROOT_ACCESS_KEY);
    env.kms
        .describe_key(&other, Some(&shared.arn()), &[])
        .await
        .expect("cross-account DescribeKey is allowed by the key policy");
    assert_eq!(
        other.explanation().unwrap().to_string(),
        "allowed by key policy statement 2"
    );
}

#[tokio::test]
async fn simulating_needs_its_own_permission_and_an_existing_entity() {
    let env = env().await;
    let (alice, key_arn, policy) = scenario(&env).await;
    let sim = input(&["kms:Encrypt"], &key_arn, &policy);
    let caller = alice.caller(&env.kms);
    let err = env.kms.simulate_custom_policy(&caller, &sim).unwrap_err();
    assert!(
        matches!(&err, IamError::AccessDenied(m) if m.contains("iam:SimulateCustomPolicy")),
        "{err:?}"
    );
    let err = env
        .kms
        .simulate_principal_policy(&env.root, &user_arn("nobody"), &sim)
        .unwrap_err();
    assert!(matches!(err, IamError::NoSuchEntity(_)), "{err:?}");
    // Another account's user is not visible.
    let err = env
        .kms
        .simulate_principal_policy(&env.other_root, &alice.arn(), &sim)
        .unwrap_err();
    assert!(matches!(err, IamError::NoSuchEntity(_)), "{err:?}");
}

#[tokio::test]
async fn who_can_use_a_key_seed_002_with_findings() {
    let env = env().await;
    let admin = user(&env, "admin").await;
    put_user_policy(
        &env,
        &admin.name,
        "all",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}),
        ]),
    )
    .await;
    let _nobody = user(&env, "nobody").await;
    let key = create_key(
        &env,
        Some(key_policy(vec![
            json!({"Sid": "Allow use of the key", "Effect": "Allow",
                   "Principal": {"AWS": root_arn(OTHER_ACCOUNT)},
                   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:ScheduleKeyDeletion"],
                   "Resource": "*"}),
            json!({"Sid": "Allow attachment of persistent resources", "Effect": "Allow",
                   "Principal": {"AWS": root_arn(OTHER_ACCOUNT)},
                   "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                   "Resource": "*",
                   "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}),
            json!({"Sid": "Anyone describes", "Effect": "Allow", "Principal": "*",
                   "Action": "kms:DescribeKey", "Resource": "*"}),
        ])),
    )
    .await;
    let access = env.kms.operator_key_access(&key.arn()).await.unwrap();
    assert_eq!(access.key_arn, key.arn());
    let find = |p: &str| {
        access
            .principals
            .iter()
            .find(|a| a.principal == p)
            .unwrap_or_else(|| panic!("{p} not listed: {:?}", access.principals))
    };
    let root = find(&root_arn(ACCOUNT));
    assert_eq!(root.kind, "account");
    assert!(root.allowed.contains(&"kms:PutKeyPolicy"));
    let admin_access = find(&user_arn("admin"));
    assert!(admin_access.allowed.contains(&"kms:ScheduleKeyDeletion"));
    // Without IAM permissions, only what `Principal: "*"` gives everyone directly.
    assert_eq!(find(&user_arn("nobody")).allowed, vec!["kms:DescribeKey"]);
    let external = find(&root_arn(OTHER_ACCOUNT));
    assert_eq!(external.kind, "external account");
    assert!(external.allowed.contains(&"kms:Encrypt"));
    assert!(external.allowed.contains(&"kms:ReEncryptTo"));
    assert!(
        !external.allowed.contains(&"kms:ScheduleKeyDeletion"),
        "never across accounts"
    );
    assert_eq!(
        external.conditional,
        vec![
            (
                "kms:CreateGrant",
                vec!["kms:grantisforawsresource".to_string()]
            ),
            (
                "kms:ListGrants",
                vec!["kms:grantisforawsresource".to_string()]
            ),
            (
                "kms:RevokeGrant",
                vec!["kms:grantisforawsresource".to_string()]
            ),
        ]
    );
    let anyone = find("*");
    assert_eq!(anyone.allowed, vec!["kms:DescribeKey"]);

    let messages: Vec<&str> = access.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m
                .starts_with("key policy statement 4 (Sid \"Anyone describes\") allows everyone")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with(&format!("{} is a key administrator", user_arn("admin")))),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("may create grants")),
        "CreateGrant is only for AWS resources: {messages:?}"
    );
    assert!(matches!(
        env.kms.operator_key_access("no-such-key").await,
        Err(trent_core::KmsError::NotFound(_))
    ));
}
