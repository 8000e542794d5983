//! Principals bound to IAM unique ids (issue 11; docs/decisions.md, "Principals are bound to
//! unique ids"): a key policy, grant or trust policy naming a user or role names the entity
//! that held the ARN when it was set. Deleted and re-created under the same name, the new
//! entity is denied, and GetKeyPolicy shows the old unique id where the ARN was, as AWS does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use serde_json::{Value, json};
use trent_core::iam::CreateRoleInput;
use trent_core::{Caller, Kms, KmsError};

/// Deletes user `name`'s access key and the user (AWS refuses to delete a user with keys).
async fn delete_user(env: &Env, user: &TestUser) {
    env.kms
        .iam_change_access_key(&env.root, Some(&user.name), &user.access_key_id, None)
        .await
        .unwrap();
    env.kms
        .iam_delete_user(&env.root, &user.name)
        .await
        .unwrap();
}

fn allow_encrypt_to(arn: &str) -> String {
    key_policy(vec![json!({
        "Sid": "Use",
        "Effect": "Allow",
        "Principal": { "AWS": arn },
        "Action": ["kms:Encrypt", "kms:Decrypt"],
        "Resource": "*"
    })])
}

/// The AWS principal values of statement `sid` of a policy document.
fn principals_of(policy: &str, sid: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(policy).unwrap();
    let st = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
        .unwrap()
        .clone();
    match &st["Principal"]["AWS"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        other => panic!("no AWS principal: {other}"),
    }
}

/// The error of a call expected to fail (its output has no `Debug`).
fn failure<T>(result: Result<T, KmsError>) -> KmsError {
    match result {
        Ok(_) => panic!("expected the call to be refused"),
        Err(e) => e,
    }
}

async fn get_policy(kms: &Kms, caller: &Caller, key_id: &str) -> String {
    kms.get_key_policy(caller, Some(key_id), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_recreated_user_is_denied_and_the_policy_shows_the_old_unique_id() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let old_id = env
        .kms
        .iam_get_user(&env.root, Some("alice"))
        .await
        .unwrap()
        .id;
    assert!(old_id.starts_with("AIDA"), "{old_id}");
    let key = create_key(&env, Some(allow_encrypt_to(&alice.arn()))).await;
    encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
        .await
        .expect("the named user may encrypt");
    // While the user exists, GetKeyPolicy shows the policy exactly as it was set.
    assert_eq!(
        get_policy(&env.kms, &env.root, &key.key_id).await,
        allow_encrypt_to(&alice.arn())
    );

    delete_user(&env, &alice).await;
    // Deleted: AWS shows the unique id in place of the ARN.
    assert_eq!(
        principals_of(&get_policy(&env.kms, &env.root, &key.key_id).await, "Use"),
        std::slice::from_ref(&old_id)
    );

    let again = user(&env, "alice").await;
    let new_id = env
        .kms
        .iam_get_user(&env.root, Some("alice"))
        .await
        .unwrap()
        .id;
    assert_ne!(new_id, old_id);
    let denied =
        failure(encrypt(&env.kms, &again.caller(&env.kms), &key.key_id, context(&[])).await);
    assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    // The re-created user has the ARN but not the id: the policy still shows the old id.
    assert_eq!(
        principals_of(&get_policy(&env.kms, &env.root, &key.key_id).await, "Use"),
        [old_id]
    );

    // Setting the policy again binds the ARN to the new user, who may then encrypt.
    env.kms
        .put_key_policy(
            &env.root,
            Some(&key.key_id),
            None,
            Some(&allow_encrypt_to(&again.arn())),
            None,
        )
        .await
        .unwrap();
    encrypt(&env.kms, &again.caller(&env.kms), &key.key_id, context(&[]))
        .await
        .expect("bound to the new user now");
    assert_eq!(
        principals_of(&get_policy(&env.kms, &env.root, &key.key_id).await, "Use"),
        [again.arn()]
    );
}

#[tokio::test]
async fn the_binding_survives_a_restart() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let old_id = env
        .kms
        .iam_get_user(&env.root, Some("alice"))
        .await
        .unwrap()
        .id;
    let key = create_key(&env, Some(allow_encrypt_to(&alice.arn()))).await;
    delete_user(&env, &alice).await;
    let again = user(&env, "alice").await;
    // A new service over the same store: the key is loaded afresh, bound from the store.
    let kms = open(&env.store, &env.clock).await;
    let root = caller_for_access_key(&kms, ROOT_ACCESS_KEY);
    let denied = failure(
        encrypt(
            &kms,
            &caller_for_access_key(&kms, &again.access_key_id),
            &key.key_id,
            context(&[]),
        )
        .await,
    );
    assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    assert_eq!(
        principals_of(&get_policy(&kms, &root, &key.key_id).await, "Use"),
        [old_id]
    );
}

#[tokio::test]
async fn a_raw_unique_id_in_a_new_policy_is_refused() {
    let env = env().await;
    let _alice = user(&env, "alice").await;
    let id = env
        .kms
        .iam_get_user(&env.root, Some("alice"))
        .await
        .unwrap()
        .id;
    let key = create_key(&env, None).await;
    let refused = env
        .kms
        .put_key_policy(
            &env.root,
            Some(&key.key_id),
            None,
            Some(&allow_encrypt_to(&id)),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, KmsError::MalformedPolicyDocument(_)),
        "{refused:?}"
    );
}

async fn create_role(env: &Env, name: &str, trust: &Value) -> String {
    env.kms
        .iam_create_role(
            &env.root,
            CreateRoleInput {
                name: name.to_string(),
                path: None,
                trust_policy: trust.to_string(),
                description: None,
                max_session_duration: None,
                tags: Vec::new(),
            },
        )
        .await
        .unwrap()
        .id
}

fn trust(principal: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "Trust", "Effect": "Allow",
        "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})
}

/// A session of role `name` assumed by `by`, as the edge would authenticate it.
async fn session(env: &Env, by: &Caller, name: &str) -> Result<Caller, trent_core::iam::IamError> {
    let assumed = env
        .kms
        .sts_assume_role(
            by,
            &format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            "s1",
            None,
        )
        .await?;
    let credential = env
        .kms
        .credentials
        .lookup(&assumed.credentials.access_key_id)
        .unwrap();
    Ok(env
        .kms
        .caller_for(
            &credential,
            Some(&assumed.credentials.session_token),
            REGION,
        )
        .unwrap())
}

#[tokio::test]
async fn a_recreated_role_is_denied_and_the_policy_shows_the_old_unique_id() {
    let env = env().await;
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/app");
    let old_id = create_role(&env, "app", &trust(&root_arn(ACCOUNT))).await;
    assert!(old_id.starts_with("AROA"), "{old_id}");
    let key = create_key(&env, Some(allow_encrypt_to(&role_arn))).await;
    let s = session(&env, &env.root, "app").await.unwrap();
    encrypt(&env.kms, &s, &key.key_id, context(&[]))
        .await
        .expect("a session of the named role may encrypt");

    env.kms.iam_delete_role(&env.root, "app").await.unwrap();
    create_role(&env, "app", &trust(&root_arn(ACCOUNT))).await;
    let s = session(&env, &env.root, "app").await.unwrap();
    let denied = failure(encrypt(&env.kms, &s, &key.key_id, context(&[])).await);
    assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    assert_eq!(
        principals_of(&get_policy(&env.kms, &env.root, &key.key_id).await, "Use"),
        [old_id]
    );
}

#[tokio::test]
async fn a_grant_to_a_deleted_and_recreated_user_is_not_usable() {
    use trent_core::grants::{CreateGrantInput, ListGrantsInput};
    let env = env().await;
    let alice = user(&env, "alice").await;
    let bob = user(&env, "bob").await;
    // The default key policy: alice and bob (no IAM policies) can use the key only by grant.
    let key = create_key(&env, None).await;
    let (grant_id, _token) = env
        .kms
        .create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(key.key_id.clone()),
                grantee_principal: Some(alice.arn()),
                retiring_principal: Some(bob.arn()),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
        .await
        .expect("the grantee may encrypt");

    delete_user(&env, &alice).await;
    let again = user(&env, "alice").await;
    let denied =
        failure(encrypt(&env.kms, &again.caller(&env.kms), &key.key_id, context(&[])).await);
    assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    // ListGrants keeps the grantee as CreateGrant was given it (docs/decisions.md).
    let listed = env
        .kms
        .list_grants(
            &env.root,
            ListGrantsInput {
                key_id: Some(&key.key_id),
                limit: None,
                marker: None,
                grant_id: None,
                grantee_principal: None,
                grantee_service_principal: None,
                grant_tokens: &[],
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.grants.len(), 1);
    assert_eq!(listed.grants[0].grantee_principal, alice.arn());

    // The retiring principal is bound too: a re-created bob cannot retire the grant.
    delete_user(&env, &bob).await;
    let bob_again = user(&env, "bob").await;
    let refused = env
        .kms
        .retire_grant(
            &bob_again.caller(&env.kms),
            None,
            Some(&key.key_id),
            Some(&grant_id),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, KmsError::AccessDenied(_)), "{refused:?}");
}

#[tokio::test]
async fn a_trust_policy_naming_a_deleted_and_recreated_role_refuses_its_sessions() {
    let env = env().await;
    let caller_arn = format!("arn:aws:iam::{ACCOUNT}:role/caller");
    let old_id = create_role(&env, "caller", &trust(&root_arn(ACCOUNT))).await;
    // `target` trusts the role `caller` by ARN.
    create_role(&env, "target", &trust(&caller_arn)).await;
    let s = session(&env, &env.root, "caller").await.unwrap();
    session(&env, &s, "target")
        .await
        .expect("a session of the trusted role may assume the target");

    env.kms.iam_delete_role(&env.root, "caller").await.unwrap();
    create_role(&env, "caller", &trust(&root_arn(ACCOUNT))).await;
    let s = session(&env, &env.root, "caller").await.unwrap();
    let refused = session(&env, &s, "target").await.map(|_| ()).unwrap_err();
    assert!(
        matches!(refused, trent_core::iam::IamError::AccessDenied(_)),
        "{refused:?}"
    );
    // GetRole shows the old role's unique id in the trust policy, as AWS does.
    let target = env.kms.iam_get_role(&env.root, "target").await.unwrap();
    let doc: Value = serde_json::from_str(&target.trust_policy).unwrap();
    assert_eq!(doc["Statement"][0]["Principal"]["AWS"], old_id.as_str());
}
