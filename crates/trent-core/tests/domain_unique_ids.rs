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
use trent_core::model::GrantRow;
use trent_core::{Caller, Kms, KmsError, Store};

/// Deletes user `name`'s access key and the user (AWS refuses to delete a user with keys).
async fn delete_user(env: &Env, user: &TestUser) {
    delete_user_on(&env.kms, &env.root, user).await;
}

/// [`delete_user`] through the service `kms` (another node, or one started later).
async fn delete_user_on(kms: &Kms, root: &Caller, user: &TestUser) {
    kms.iam_change_access_key(root, Some(&user.name), &user.access_key_id, None)
        .await
        .unwrap();
    kms.iam_delete_user(root, &user.name).await.unwrap();
}

/// Creates user `name` with an access key through the service `kms`.
async fn user_on(kms: &Kms, root: &Caller, name: &str) -> TestUser {
    kms.iam_create_user(root, name, None, Vec::new())
        .await
        .unwrap();
    let key = kms.iam_create_access_key(root, Some(name)).await.unwrap();
    TestUser {
        name: name.to_string(),
        access_key_id: key.access_key_id.clone(),
    }
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
    create_role_on(&env.kms, &env.root, name, trust)
        .await
        .unwrap()
}

/// CreateRole through the service `kms`; the new role's unique id.
async fn create_role_on(
    kms: &Kms,
    root: &Caller,
    name: &str,
    trust: &Value,
) -> Result<String, trent_core::iam::IamError> {
    kms.iam_create_role(
        root,
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
    .map(|r| r.id)
}

fn trust(principal: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Sid": "Trust", "Effect": "Allow",
        "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})
}

/// A session of role `name` assumed by `by`, as the edge would authenticate it.
async fn session(env: &Env, by: &Caller, name: &str) -> Result<Caller, trent_core::iam::IamError> {
    session_on(&env.kms, by, name).await
}

/// [`session`] through the service `kms`.
async fn session_on(
    kms: &Kms,
    by: &Caller,
    name: &str,
) -> Result<Caller, trent_core::iam::IamError> {
    let assumed = kms
        .sts_assume_role(
            by,
            &format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            "s1",
            None,
        )
        .await?;
    let credential = kms
        .credentials
        .lookup(&assumed.credentials.access_key_id)
        .unwrap();
    Ok(kms
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

/// The name of the start-up binding pass in the store (`authz/bindings.rs`): forgotten, the
/// store is as one written before bindings existed (schema version 12).
const BINDING_PASS: &str = "principal_bindings";

/// Key `key_id` as stored before bindings: its policy (`policy`, or the one it has) unbound.
async fn unbind_key_policy(env: &Env, key_id: &str, policy: Option<&str>) {
    let (mut record, _) = env.store.key(key_id).await.unwrap().unwrap();
    if let Some(policy) = policy {
        record.policy = policy.to_string();
    }
    record.policy_principals.clear();
    env.store.update_key(&record).await.unwrap();
}

/// Key `key_id`'s grants as stored before bindings: no grantee or retiring principal id.
async fn unbind_grants(env: &Env, key_id: &str) {
    for row in env.store.grants_for_key(key_id).await.unwrap() {
        let mut body: Value = serde_json::from_str(&row.body).unwrap();
        let fields = body.as_object_mut().unwrap();
        assert!(fields.remove("grantee_principal_id").is_some(), "{row:?}");
        fields.remove("retiring_principal_id");
        let legacy = GrantRow {
            body: body.to_string(),
            ..row.clone()
        };
        assert!(env.store.update_grant_if(&row, &legacy).await.unwrap());
    }
}

/// Role `name`'s document as stored before bindings: its trust policy unbound.
async fn unbind_trust_policy(env: &Env, name: &str) {
    let mut doc = env
        .store
        .iam_documents()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.account_id == ACCOUNT && d.kind == "role" && d.name == name)
        .unwrap();
    let mut body: Value = serde_json::from_str(&doc.body).unwrap();
    assert!(
        body.as_object_mut()
            .unwrap()
            .remove("trust_principals")
            .is_some()
    );
    doc.body = body.to_string();
    env.store.put_iam_document(&doc).await.unwrap();
}

/// Role `name`'s stored trust-policy bindings.
async fn stored_trust_principals(env: &Env, name: &str) -> Value {
    let doc = env
        .store
        .iam_documents()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.account_id == ACCOUNT && d.kind == "role" && d.name == name)
        .unwrap();
    serde_json::from_str::<Value>(&doc.body).unwrap()["trust_principals"].clone()
}

async fn user_id(kms: &Kms, root: &Caller, name: &str) -> String {
    kms.iam_get_user(root, Some(name)).await.unwrap().id
}

/// A key policy, grant and trust policy stored before bindings existed are bound at start-up
/// to the users and roles holding their ARNs then (as the legacy access keys are): from then
/// on a user or role deleted and re-created under the same name is refused by all three.
#[tokio::test]
async fn policies_and_grants_stored_before_bindings_are_bound_at_start_up() {
    use trent_core::grants::CreateGrantInput;
    let env = env().await;
    let alice = user(&env, "alice").await;
    let bob = user(&env, "bob").await;
    let alice_id = user_id(&env.kms, &env.root, "alice").await;
    let bob_id = user_id(&env.kms, &env.root, "bob").await;
    let by_policy = create_key(&env, Some(allow_encrypt_to(&alice.arn()))).await;
    let by_grant = create_key(&env, None).await;
    env.kms
        .create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(by_grant.key_id.clone()),
                grantee_principal: Some(alice.arn()),
                retiring_principal: Some(bob.arn()),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let caller_arn = format!("arn:aws:iam::{ACCOUNT}:role/caller");
    let caller_id = create_role(&env, "caller", &trust(&root_arn(ACCOUNT))).await;
    create_role(&env, "target", &trust(&caller_arn)).await;
    unbind_key_policy(&env, &by_policy.key_id, None).await;
    unbind_grants(&env, &by_grant.key_id).await;
    unbind_trust_policy(&env, "target").await;
    env.store.set_pass_done(BINDING_PASS, false).await.unwrap();

    let kms = open(&env.store, &env.clock).await;
    let root = caller_for_access_key(&kms, ROOT_ACCESS_KEY);
    assert!(env.store.pass_done(BINDING_PASS).await.unwrap());
    let (record, _) = env.store.key(&by_policy.key_id).await.unwrap().unwrap();
    assert_eq!(
        record.policy_principals,
        [(alice.arn(), alice_id.clone())].into_iter().collect()
    );
    let grants = env.store.grants_for_key(&by_grant.key_id).await.unwrap();
    let grant: Value = serde_json::from_str(&grants[0].body).unwrap();
    assert_eq!(grant["grantee_principal_id"], alice_id.as_str());
    assert_eq!(grant["retiring_principal_id"], bob_id.as_str());
    assert_eq!(
        stored_trust_principals(&env, "target").await,
        json!({ caller_arn.clone(): caller_id })
    );
    // Bound to whom they named: still usable by them.
    for key in [&by_policy, &by_grant] {
        encrypt(&kms, &alice.caller(&kms), &key.key_id, context(&[]))
            .await
            .expect("the named user may encrypt");
    }
    let s = session_on(&kms, &root, "caller").await.unwrap();
    session_on(&kms, &s, "target")
        .await
        .expect("a session of the trusted role may assume the target");

    // Deleted and re-created under the same names: refused by the policy, grant and trust.
    delete_user_on(&kms, &root, &alice).await;
    let again = user_on(&kms, &root, "alice").await;
    for key in [&by_policy, &by_grant] {
        let denied = failure(encrypt(&kms, &again.caller(&kms), &key.key_id, context(&[])).await);
        assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    }
    assert_eq!(
        principals_of(&get_policy(&kms, &root, &by_policy.key_id).await, "Use"),
        [alice_id]
    );
    kms.iam_delete_role(&root, "caller").await.unwrap();
    create_role_on(&kms, &root, "caller", &trust(&root_arn(ACCOUNT)))
        .await
        .unwrap();
    let s = session_on(&kms, &root, "caller").await.unwrap();
    let refused = session_on(&kms, &s, "target")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(refused, trent_core::iam::IamError::AccessDenied(_)),
        "{refused:?}"
    );
}

/// The start-up binding binds only what exists and only once: a principal that does not
/// exist at the pass stays unbound (compared and shown by ARN, as it was), one already bound
/// keeps its entity though another of the same name exists now, and two nodes starting over
/// the same store at once both start, with the same bindings.
#[tokio::test]
async fn the_start_up_binding_binds_what_exists_once() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let old_id = user_id(&env.kms, &env.root, "alice").await;
    let ghost_arn = user_arn("ghost");
    let bound = create_key(&env, Some(allow_encrypt_to(&alice.arn()))).await;
    let unbound = create_key(&env, None).await;
    // A policy stored before bindings, naming a user who does not exist.
    unbind_key_policy(&env, &unbound.key_id, Some(&allow_encrypt_to(&ghost_arn))).await;
    delete_user(&env, &alice).await;
    let again = user(&env, "alice").await;
    env.store.set_pass_done(BINDING_PASS, false).await.unwrap();

    let (a, b) = tokio::join!(open(&env.store, &env.clock), open(&env.store, &env.clock));
    let stored = |key_id: String| {
        let store = env.store.clone();
        async move {
            store
                .key(&key_id)
                .await
                .unwrap()
                .unwrap()
                .0
                .policy_principals
        }
    };
    assert_eq!(
        stored(bound.key_id.clone()).await,
        [(alice.arn(), old_id)].into_iter().collect(),
        "already bound: not bound again to the user of that name now"
    );
    assert!(stored(unbound.key_id.clone()).await.is_empty());
    for kms in [&a, &b] {
        let denied = failure(encrypt(kms, &again.caller(kms), &bound.key_id, context(&[])).await);
        assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    }
    // The unbound principal is compared by ARN: a user created with it now may use the key,
    // and the policy shows the ARN as written.
    let root = caller_for_access_key(&a, ROOT_ACCESS_KEY);
    let ghost = user_on(&a, &root, "ghost").await;
    encrypt(&a, &ghost.caller(&a), &unbound.key_id, context(&[]))
        .await
        .expect("an unbound principal is compared by ARN");
    assert_eq!(
        principals_of(&get_policy(&a, &root, &unbound.key_id).await, "Use"),
        [ghost_arn]
    );
    // The pass is done: a later start-up binds nothing more.
    let _later = open(&env.store, &env.clock).await;
    assert!(stored(unbound.key_id.clone()).await.is_empty());
}

/// CreateRole and UpdateAssumeRolePolicy refuse a trust policy naming a user or role that
/// does not exist (or a session of one), as IAM does, with the principal as written; accounts,
/// service principals, existing principals of another account and principals of accounts
/// Trent does not host are accepted.
#[tokio::test]
async fn a_trust_policy_naming_a_principal_that_does_not_exist_is_refused() {
    use trent_core::iam::IamError;
    let env = env().await;
    let invalid = |principal: &str| format!("Invalid principal in policy: \"AWS\":\"{principal}\"");
    env.kms
        .iam_create_user(&env.other_root, "olga", None, Vec::new())
        .await
        .unwrap();
    let missing = [
        user_arn("nobody"),
        format!("arn:aws:iam::{ACCOUNT}:role/nobody"),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/nobody/s1"),
        format!("arn:aws:iam::{OTHER_ACCOUNT}:user/nobody"),
    ];
    for (i, principal) in missing.iter().enumerate() {
        let refused = create_role_on(&env.kms, &env.root, &format!("r{i}"), &trust(principal))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, IamError::MalformedPolicyDocument(m) if *m == invalid(principal)),
            "{principal}: {refused:?}"
        );
        assert!(
            env.kms
                .iam_get_role(&env.root, &format!("r{i}"))
                .await
                .is_err()
        );
    }
    let accepted = [
        trust(&root_arn(ACCOUNT)),
        trust(&root_arn(OTHER_ACCOUNT)),
        trust(OTHER_ACCOUNT),
        trust(&format!("arn:aws:iam::{OTHER_ACCOUNT}:user/olga")),
        trust("arn:aws:iam::999988887777:role/elsewhere"),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    ];
    for (i, document) in accepted.iter().enumerate() {
        create_role_on(&env.kms, &env.root, &format!("ok{i}"), document)
            .await
            .unwrap_or_else(|e| panic!("{document}: {e:?}"));
    }

    let ghost_role = format!("arn:aws:iam::{ACCOUNT}:role/ghost");
    let refused = env
        .kms
        .iam_update_assume_role_policy(&env.root, "ok0", &trust(&ghost_role).to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, IamError::MalformedPolicyDocument(m) if *m == invalid(&ghost_role)),
        "{refused:?}"
    );
    let kept = env.kms.iam_get_role(&env.root, "ok0").await.unwrap();
    assert_eq!(kept.trust_policy, trust(&root_arn(ACCOUNT)).to_string());
}

/// CreateKey and PutKeyPolicy refuse a key policy naming a user or role that does not exist,
/// with KMS's message.
#[tokio::test]
async fn a_key_policy_naming_a_principal_that_does_not_exist_is_refused() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let message = "Policy contains a statement with one or more invalid principals.";
    for principal in [
        user_arn("nobody"),
        format!("arn:aws:iam::{ACCOUNT}:role/nobody"),
    ] {
        let created = env
            .kms
            .create_key(
                &env.root,
                trent_core::keys::CreateKeyInput {
                    policy: Some(allow_encrypt_to(&principal)),
                    ..Default::default()
                },
            )
            .await;
        let refused = failure(created);
        assert_eq!(refused, KmsError::MalformedPolicyDocument(message.into()));
        let refused = env
            .kms
            .put_key_policy(
                &env.root,
                Some(&key.key_id),
                None,
                Some(&allow_encrypt_to(&principal)),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(refused, KmsError::MalformedPolicyDocument(message.into()));
    }
}
