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
        .await
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
        .await
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
    let err = env
        .kms
        .simulate_custom_policy(&caller, &sim)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, IamError::AccessDenied(m) if m.contains("iam:SimulateCustomPolicy")),
        "{err:?}"
    );
    let err = env
        .kms
        .simulate_principal_policy(&env.root, &user_arn("nobody"), &sim)
        .await
        .unwrap_err();
    assert!(matches!(err, IamError::NoSuchEntity(_)), "{err:?}");
    // Another account's user is not visible.
    let err = env
        .kms
        .simulate_principal_policy(&env.other_root, &alice.arn(), &sim)
        .await
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

/// Seed 004's role for EC2 Auto Scaling, created in `account`'s IAM by its root.
async fn auto_scaling_role(env: &Env, root: &trent_core::Caller, account: &str) -> String {
    env.kms
        .iam_create_service_linked_role(root, "autoscaling.amazonaws.com", None, None)
        .await
        .unwrap();
    format!(
        "arn:aws:iam::{account}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )
}

/// Seed 004, example 1: the two statements that let Auto Scaling's service-linked role use a
/// customer managed key and attach it to persistent resources.
fn seed_004_same_account(role: &str) -> Vec<serde_json::Value> {
    vec![
        json!({"Sid": "Allow service-linked role use of the customer managed key",
               "Effect": "Allow", "Principal": {"AWS": [role]},
               "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
               "Resource": "*"}),
        json!({"Sid": "Allow attachment of persistent resources",
               "Effect": "Allow", "Principal": {"AWS": [role]},
               "Action": ["kms:CreateGrant"], "Resource": "*",
               "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}),
    ]
}

/// Seed 004, example 2: the key owner lets the other account use the key and create grants.
fn seed_004_cross_account() -> Vec<serde_json::Value> {
    vec![
        json!({"Sid": format!("Allow external account {OTHER_ACCOUNT} use of the customer managed key"),
               "Effect": "Allow", "Principal": {"AWS": [root_arn(OTHER_ACCOUNT)]},
               "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
               "Resource": "*"}),
        json!({"Sid": format!("Allow attachment of persistent resources in external account {OTHER_ACCOUNT}"),
               "Effect": "Allow", "Principal": {"AWS": [root_arn(OTHER_ACCOUNT)]},
               "Action": ["kms:CreateGrant"], "Resource": "*"}),
    ]
}

const SEED_004_USE: [&str; 7] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
];

#[tokio::test]
async fn seed_004_access_analysis_and_dry_run() {
    let env = env().await;
    let role = auto_scaling_role(&env, &env.root, ACCOUNT).await;
    let key = create_key(&env, None).await;

    // Dry run of example 1 on a key with the default policy: the role gains direct use, and
    // CreateGrant only under kms:GrantIsForAWSResource; nobody loses anything.
    let mut statements = Vec::new();
    statements.extend(seed_004_same_account(&role));
    let proposed = key_policy(statements);
    let change = env
        .kms
        .operator_policy_change(&key.arn(), &proposed)
        .await
        .unwrap();
    let [role_change] = change.changes.as_slice() else {
        panic!("only the role changes: {:?}", change.changes)
    };
    assert_eq!(role_change.principal, role);
    assert_eq!(role_change.kind, "role");
    for op in SEED_004_USE.iter().chain(&["kms:DescribeKey"]) {
        assert!(role_change.gained.contains(op), "{op}: {role_change:?}");
    }
    assert!(role_change.lost.is_empty());
    assert!(!role_change.gained.contains(&"kms:CreateGrant"));
    assert_eq!(
        role_change.gained_conditional,
        vec![(
            "kms:CreateGrant",
            vec!["kms:grantisforawsresource".to_string()]
        )]
    );
    // Nothing was changed by the dry run.
    let before = env.kms.operator_key_access(&key.arn()).await.unwrap();
    assert!(!before.principals.iter().any(|p| p.principal == role));

    // Set it for real: the analysis now says what the dry run said.
    env.kms
        .put_key_policy(&env.root, Some(&key.key_id), None, Some(&proposed), None)
        .await
        .unwrap();
    let access = env.kms.operator_key_access(&key.arn()).await.unwrap();
    let listed = access
        .principals
        .iter()
        .find(|p| p.principal == role)
        .expect("the role is listed");
    assert_eq!(
        listed,
        change
            .after
            .principals
            .iter()
            .find(|p| p.principal == role)
            .unwrap()
    );
    assert!(
        !access.findings.iter().any(|f| f.severity == "warning"),
        "{:?}",
        access.findings
    );

    // Example 2 added: the other account gains use and unconditioned CreateGrant, which is
    // flagged (it can give its permissions to any principal).
    let mut statements = Vec::new();
    statements.extend(seed_004_same_account(&role));
    statements.extend(seed_004_cross_account());
    let change = env
        .kms
        .operator_policy_change(&key.arn(), &key_policy(statements))
        .await
        .unwrap();
    let external = change
        .changes
        .iter()
        .find(|c| c.principal == root_arn(OTHER_ACCOUNT))
        .unwrap_or_else(|| panic!("{:?}", change.changes));
    assert_eq!(external.kind, "external account");
    assert!(external.gained.contains(&"kms:CreateGrant"));
    assert!(external.gained.contains(&"kms:Decrypt"));
    assert!(
        change
            .new_findings
            .iter()
            .any(|f| f.severity == "warning"
                && f.message
                    == format!(
                        "{} (external account) may create grants on the key: it can give its permissions to any principal",
                        root_arn(OTHER_ACCOUNT)
                    )),
        "{:?}",
        change.new_findings
    );
    // Removing example 1 again: the role loses what it gained.
    let change = env
        .kms
        .operator_policy_change(&key.arn(), &key_policy(Vec::new()))
        .await
        .unwrap();
    let role_change = change.changes.iter().find(|c| c.principal == role).unwrap();
    assert!(role_change.lost.contains(&"kms:Encrypt"));
    assert_eq!(role_change.lost_conditional, vec!["kms:CreateGrant"]);
    // A proposed policy that does not parse is refused as PutKeyPolicy refuses it.
    assert!(matches!(
        env.kms.operator_policy_change(&key.arn(), "{").await,
        Err(trent_core::KmsError::MalformedPolicyDocument(_))
    ));
}

#[tokio::test]
async fn seed_004_cross_account_grant_in_the_simulator() {
    let env = env().await;
    // The Auto Scaling role of the account that uses the key (example 2).
    let role = auto_scaling_role(&env, &env.other_root, OTHER_ACCOUNT).await;
    let mut statements = Vec::new();
    statements.extend(seed_004_cross_account());
    let key = create_key(&env, Some(key_policy(statements))).await;
    // The other account's administrator creates the grant of the seed's create-grant command.
    let (grant_id, _) = env
        .kms
        .create_grant(
            &env.other_root,
            trent_core::grants::CreateGrantInput {
                key_id: Some(key.arn()),
                grantee_principal: Some(role.clone()),
                operations: Some(
                    [
                        "Encrypt",
                        "Decrypt",
                        "ReEncryptFrom",
                        "ReEncryptTo",
                        "GenerateDataKey",
                        "GenerateDataKeyWithoutPlaintext",
                        "DescribeKey",
                        "CreateGrant",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let access = env.kms.operator_key_access(&key.arn()).await.unwrap();
    let [grant] = access.grants.as_slice() else {
        panic!("{:?}", access.grants)
    };
    assert_eq!(
        (grant.grant_id.as_str(), grant.grantee.as_str()),
        (grant_id.as_str(), role.as_str())
    );

    let sim = |grants: bool| SimulationInput {
        actions: vec![
            "kms:Encrypt".into(),
            "kms:Sign".into(),
            "kms:CreateGrant".into(),
        ],
        resources: vec![key.arn()],
        context: if grants {
            vec![ContextEntry {
                name: trent_core::simulate::SIMULATE_GRANTS_KEY.into(),
                values: vec!["true".into()],
                kind: Some("boolean".into()),
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    };
    // The role has no identity policies: without grants nothing allows it.
    let plain = env
        .kms
        .simulate_principal_policy(&env.other_root, &role, &sim(false))
        .await
        .unwrap();
    assert!(
        plain
            .iter()
            .all(|r| r.eval_decision == EvalDecision::ImplicitDeny)
    );
    // Grants asked for, but the requester may not list the key's grants (the seed's policy
    // gives the other account no kms:ListGrants): they take part no more than for a key that
    // does not exist.
    let hidden = env
        .kms
        .simulate_principal_policy(&env.other_root, &role, &sim(true))
        .await
        .unwrap();
    assert!(
        hidden
            .iter()
            .all(|r| r.eval_decision == EvalDecision::ImplicitDeny)
    );

    // With kms:ListGrants for the other account, the grant takes part and says so: Encrypt is
    // allowed by it; Sign is not one of its operations; CreateGrant through a grant is
    // delegation, which the simulator does not decide.
    let mut statements = Vec::new();
    statements.extend(seed_004_cross_account());
    statements.push(json!({"Sid": "Grants are visible", "Effect": "Allow",
        "Principal": {"AWS": root_arn(OTHER_ACCOUNT)}, "Action": "kms:ListGrants", "Resource": "*"}));
    env.kms
        .put_key_policy(
            &env.root,
            Some(&key.key_id),
            None,
            Some(&key_policy(statements)),
            None,
        )
        .await
        .unwrap();
    let results = env
        .kms
        .simulate_principal_policy(&env.other_root, &role, &sim(true))
        .await
        .unwrap();
    let decisions: Vec<_> = results.iter().map(|r| r.eval_decision).collect();
    assert_eq!(
        decisions,
        [
            EvalDecision::Allowed,
            EvalDecision::ImplicitDeny,
            EvalDecision::ImplicitDeny
        ]
    );
    match &results[0].decision {
        Decision::AllowedByGrant(g) => assert_eq!(g.grant_id, grant_id),
        other => panic!("{other:?}"),
    }
    assert_eq!(results[0].matched.len(), 1);
    assert_eq!(
        results[0].matched[0].source_policy_id,
        format!("grant/{grant_id}")
    );
    assert!(results[0].matched[0].span.is_none());
}

#[tokio::test]
async fn a_caller_asks_why_its_own_call_was_denied() {
    let env = env().await;
    let (alice, key_arn, _) = scenario(&env).await;
    let bob = user(&env, "bob").await;
    let explain = json!({"Sid": "Explain", "Effect": "Allow", "Action": "trent:ExplainDecision", "Resource": "*"});
    put_user_policy(
        &env,
        "alice",
        "explain",
        &identity_policy(vec![explain.clone()]),
    )
    .await;
    put_user_policy(&env, "bob", "explain", &identity_policy(vec![explain])).await;

    // Alice's DescribeKey is denied by her own policy's Deny statement "NoDescribe".
    let caller = alice.caller(&env.kms);
    assert!(
        env.kms
            .describe_key(&caller, Some(&key_arn), &[])
            .await
            .is_err()
    );
    env.kms.keep_denial("req-describe", &caller);
    // An allowed request is not kept.
    let caller = alice.caller(&env.kms);
    encrypt(&env.kms, &caller, &key_arn, context(&[("app", "billing")]))
        .await
        .unwrap();
    env.kms.keep_denial("req-encrypt", &caller);

    // She may not read her identity policies (no iam:SimulatePrincipalPolicy on herself): the
    // deciding statement is withheld; the kind of denial is what AWS's message says anyway.
    let e = env
        .kms
        .explain_denial(&alice.caller(&env.kms), Some("req-describe"))
        .await
        .unwrap();
    assert_eq!(e.action, "kms:DescribeKey");
    assert_eq!(e.key_arn.as_deref(), Some(key_arn.as_str()));
    assert_eq!(
        (e.decision, e.decided_by),
        ("ExplicitDeny", "IdentityPolicy")
    );
    assert!(e.statements.is_empty());
    assert_eq!(e.withheld_statements, 1);
    assert!(
        e.reason.starts_with(
            "An explicit Deny in an identity-based policy of yours denied kms:DescribeKey"
        ),
        "{}",
        e.reason
    );

    // Allowed to simulate her own policies, she sees which statement denied it.
    put_user_policy(
        &env,
        "alice",
        "simulate",
        &identity_policy(vec![json!({"Effect": "Allow", "Action": "iam:SimulatePrincipalPolicy", "Resource": alice.arn()})]),
    )
    .await;
    let e = env
        .kms
        .explain_denial(&alice.caller(&env.kms), Some("req-describe"))
        .await
        .unwrap();
    assert_eq!(e.withheld_statements, 0);
    let [statement] = e.statements.as_slice() else {
        panic!("{:?}", e.statements)
    };
    assert_eq!(statement.policy_type, "IdentityPolicy");
    assert_eq!(statement.statement, 2);
    assert_eq!(statement.sid.as_deref(), Some("NoDescribe"));

    // Nobody else learns of her requests, and allowed or unknown ids are alike.
    let not_found = |r: Result<_, trent_core::KmsError>| matches!(r, Err(trent_core::KmsError::NotFound(m)) if m.contains("of yours was denied"));
    assert!(not_found(
        env.kms
            .explain_denial(&bob.caller(&env.kms), Some("req-describe"))
            .await
    ));
    assert!(not_found(
        env.kms
            .explain_denial(&env.root, Some("req-describe"))
            .await
    ));
    assert!(not_found(
        env.kms
            .explain_denial(&alice.caller(&env.kms), Some("req-encrypt"))
            .await
    ));
    assert!(not_found(
        env.kms
            .explain_denial(&alice.caller(&env.kms), Some("nope"))
            .await
    ));
    assert!(matches!(
        env.kms.explain_denial(&alice.caller(&env.kms), None).await,
        Err(trent_core::KmsError::Validation(_))
    ));
    // Its own action authorizes it: kms:* does not.
    let carol = user(&env, "carol").await;
    put_user_policy(
        &env,
        "carol",
        "kms",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}),
        ]),
    )
    .await;
    assert!(matches!(
        env.kms.explain_denial(&carol.caller(&env.kms), Some("req-describe")).await,
        Err(trent_core::KmsError::AccessDenied(m)) if m.contains("trent:ExplainDecision")
    ));

    // An hour later the denial is forgotten.
    env.clock.advance(3_600_001);
    assert!(not_found(
        env.kms
            .explain_denial(&alice.caller(&env.kms), Some("req-describe"))
            .await
    ));
}

#[tokio::test]
async fn a_key_policy_deny_is_shown_only_to_who_may_read_the_key_policy() {
    let env = env().await;
    let dave = user(&env, "dave").await;
    put_user_policy(
        &env,
        "dave",
        "use",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": ["kms:Encrypt", "trent:ExplainDecision"], "Resource": "*"}),
        ]),
    )
    .await;
    let key = create_key(
        &env,
        Some(key_policy(vec![
            json!({"Sid": "NoDaveEncrypt", "Effect": "Deny",
            "Principal": {"AWS": user_arn("dave")}, "Action": "kms:Encrypt", "Resource": "*"}),
        ])),
    )
    .await;
    let caller = dave.caller(&env.kms);
    assert!(
        encrypt(&env.kms, &caller, &key.arn(), context(&[]))
            .await
            .is_err()
    );
    env.kms.keep_denial("req-1", &caller);
    let e = env
        .kms
        .explain_denial(&dave.caller(&env.kms), Some("req-1"))
        .await
        .unwrap();
    assert_eq!((e.decision, e.decided_by), ("ExplicitDeny", "KeyPolicy"));
    assert_eq!((e.statements.len(), e.withheld_statements), (0, 1));

    // With kms:GetKeyPolicy (the key policy delegates to the account), the statement is shown.
    put_user_policy(
        &env,
        "dave",
        "read",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:GetKeyPolicy", "Resource": key.arn()}),
        ]),
    )
    .await;
    let e = env
        .kms
        .explain_denial(&dave.caller(&env.kms), Some("req-1"))
        .await
        .unwrap();
    assert_eq!(e.withheld_statements, 0);
    assert_eq!(e.statements[0].policy_type, "KeyPolicy");
    assert_eq!(e.statements[0].statement, 2);
    assert_eq!(e.statements[0].sid.as_deref(), Some("NoDaveEncrypt"));

    // A denial by the cross-account rule names no key and says what was needed.
    let other_key = {
        let record = env
            .kms
            .create_key(&env.other_root, trent_core::keys::CreateKeyInput::default())
            .await
            .unwrap();
        record.arn()
    };
    let caller = dave.caller(&env.kms);
    assert!(
        env.kms
            .schedule_key_deletion(&caller, Some(&other_key), None)
            .await
            .is_err()
    );
    env.kms.keep_denial("req-2", &caller);
    let e = env
        .kms
        .explain_denial(&dave.caller(&env.kms), Some("req-2"))
        .await
        .unwrap();
    assert_eq!(e.key_arn, None);
    assert_eq!(
        (e.decision, e.decided_by),
        ("ImplicitDeny", "CrossAccountRule")
    );
    assert!(e.needed.is_some());
}

#[tokio::test]
async fn a_caller_analyses_a_key_it_may_read_everything_of() {
    let env = env().await;
    // Carol of the other account may only Decrypt, by her own account's IAM.
    env.kms
        .iam_create_user(&env.other_root, "carol", None, Vec::new())
        .await
        .unwrap();
    let carol = format!("arn:aws:iam::{OTHER_ACCOUNT}:user/carol");
    env.kms
        .iam_put_inline_policy(
            &env.other_root,
            trent_core::iam::Entity::User,
            "carol",
            "use",
            &identity_policy(vec![
                json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}),
            ])
            .to_string(),
        )
        .await
        .unwrap();
    let key = create_key(
        &env,
        Some(key_policy(vec![
            json!({"Sid": "Carol uses", "Effect": "Allow",
            "Principal": {"AWS": carol.clone()},
            "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}),
        ])),
    )
    .await;
    let auditor = user(&env, "auditor").await;
    put_user_policy(
        &env,
        "auditor",
        "read",
        &identity_policy(vec![json!({"Effect": "Allow",
            "Action": ["kms:GetKeyPolicy", "kms:ListGrants"], "Resource": "*"})]),
    )
    .await;
    // Without iam:GetAccountAuthorizationDetails the account's IAM policies are not its to read.
    let denied = env
        .kms
        .analyze_key_access(&auditor.caller(&env.kms), Some(&key.key_id), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, trent_core::KmsError::AccessDenied(m) if m.contains("iam:GetAccountAuthorizationDetails")),
        "{denied:?}"
    );
    put_user_policy(
        &env,
        "auditor",
        "iam",
        &identity_policy(vec![json!({"Effect": "Allow",
            "Action": "iam:GetAccountAuthorizationDetails", "Resource": "*"})]),
    )
    .await;
    let trent_core::access::CallerKeyAccess::Access(access) = env
        .kms
        .analyze_key_access(&auditor.caller(&env.kms), Some(&key.key_id), None)
        .await
        .unwrap()
    else {
        panic!("an analysis")
    };
    // Carol's own account's IAM is not read for a caller: she is listed with what the key
    // policy lets her have at most; the operator, who sees every account, gets the truth.
    let listed = |a: &trent_core::access::KeyAccess| {
        a.principals
            .iter()
            .find(|p| p.principal == carol)
            .map(|p| p.allowed.clone())
    };
    assert_eq!(listed(&access), Some(vec!["kms:Encrypt", "kms:Decrypt"]));
    let operator = env.kms.operator_key_access(&key.arn()).await.unwrap();
    assert_eq!(listed(&operator), Some(vec!["kms:Decrypt"]));
    assert!(
        access
            .principals
            .iter()
            .any(|p| p.principal == user_arn("auditor"))
    );

    // The dry run, for the same caller.
    let trent_core::access::CallerKeyAccess::Change(change) = env
        .kms
        .analyze_key_access(
            &auditor.caller(&env.kms),
            Some(&key.key_id),
            Some(&key_policy(Vec::new())),
        )
        .await
        .unwrap()
    else {
        panic!("a dry run")
    };
    let lost = change
        .changes
        .iter()
        .find(|c| c.principal == carol)
        .unwrap();
    assert_eq!(lost.lost, vec!["kms:Encrypt", "kms:Decrypt"]);

    // A role of the other account is named as the policy names it: its real path (and so
    // whether it exists) is never read from that account for a caller.
    env.kms
        .iam_create_role(
            &env.other_root,
            trent_core::iam::CreateRoleInput {
                name: "deploy".into(),
                path: Some("/hidden/".into()),
                trust_policy: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"AWS": format!("arn:aws:iam::{OTHER_ACCOUNT}:root")},
                    "Action": "sts:AssumeRole"}]})
                .to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let named = format!("arn:aws:iam::{OTHER_ACCOUNT}:role/deploy");
    let trent_core::access::CallerKeyAccess::Change(change) = env
        .kms
        .analyze_key_access(
            &auditor.caller(&env.kms),
            Some(&key.key_id),
            Some(&key_policy(vec![json!({"Effect": "Allow",
                "Principal": {"AWS": named.clone()}, "Action": "kms:Decrypt", "Resource": "*"})])),
        )
        .await
        .unwrap()
    else {
        panic!("a dry run")
    };
    assert!(
        change.changes.iter().any(|c| c.principal == named)
            && !change
                .changes
                .iter()
                .any(|c| c.principal.contains("/hidden/")),
        "{:?}",
        change
            .changes
            .iter()
            .map(|c| &c.principal)
            .collect::<Vec<_>>()
    );

    // Another account never analyses this key (GetKeyPolicy is never cross-account).
    assert!(matches!(
        env.kms
            .analyze_key_access(&env.other_root, Some(&key.arn()), None)
            .await,
        Err(trent_core::KmsError::AccessDenied(_))
    ));
}
