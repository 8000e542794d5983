//! End to end: grants and grant tokens (seed 001, and seed 004's cross-account grant flow).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation as Op};
use common::*;

async fn user(
    server: &Server,
    akid: &str,
    secret: &str,
    name: &str,
) -> (aws_sdk_kms::Client, String) {
    let (user_akid, user_secret, arn) = new_iam_user(&server.iam(akid, secret), name).await;
    (server.kms(&user_akid, &user_secret), arn)
}

async fn new_key(kms: &aws_sdk_kms::Client) -> (String, String) {
    let m = kms.create_key().send().await.unwrap();
    let m = m.key_metadata().unwrap();
    (m.key_id().to_string(), m.arn().unwrap().to_string())
}

fn pt() -> Blob {
    Blob::new(b"granted".to_vec())
}

#[tokio::test]
async fn a_grant_allows_exactly_its_operations_without_any_iam_policy() {
    let server = Server::start();
    let kms = server.kms_a();
    let (key_id, _) = new_key(&kms).await;
    let (alice, alice_arn) = user(&server, AKID_A, SECRET_A, "alice").await;
    assert_eq!(
        code(alice.encrypt().key_id(&key_id).plaintext(pt()).send().await),
        "AccessDeniedException"
    );

    let g = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&alice_arn)
        .operations(Op::Encrypt)
        .operations(Op::Decrypt)
        .send()
        .await
        .unwrap();
    assert_eq!(g.grant_id().unwrap().len(), 64);
    assert!(!g.grant_token().unwrap().is_empty());
    let enc = alice
        .encrypt()
        .key_id(&key_id)
        .plaintext(pt())
        .send()
        .await
        .unwrap();
    assert!(
        alice
            .decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(
            alice
                .generate_data_key()
                .key_id(&key_id)
                .number_of_bytes(8)
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    assert_eq!(
        code(alice.describe_key().key_id(&key_id).send().await),
        "AccessDeniedException"
    );

    // Revoking takes effect for the very next request.
    kms.revoke_grant()
        .key_id(&key_id)
        .grant_id(g.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(alice.encrypt().key_id(&key_id).plaintext(pt()).send().await),
        "AccessDeniedException"
    );
    // ... also when the revoked grant's token is presented.
    let r = alice
        .encrypt()
        .key_id(&key_id)
        .plaintext(pt())
        .grant_tokens(g.grant_token().unwrap())
        .send()
        .await;
    assert_eq!(code(r), "AccessDeniedException");
}

#[tokio::test]
async fn constraints_validation_idempotency_and_explicit_deny() {
    let server = Server::start();
    let kms = server.kms_a();
    let (key_id, key_arn) = new_key(&kms).await;
    let (bob, bob_arn) = user(&server, AKID_A, SECRET_A, "bob").await;
    let subset = GrantConstraints::builder()
        .encryption_context_subset("dept", "eng")
        .build();
    kms.create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(Op::Encrypt)
        .constraints(subset)
        .send()
        .await
        .unwrap();
    assert!(
        bob.encrypt()
            .key_id(&key_id)
            .plaintext(pt())
            .encryption_context("dept", "eng")
            .encryption_context("x", "y")
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(
            bob.encrypt()
                .key_id(&key_id)
                .plaintext(pt())
                .encryption_context("dept", "ops")
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    assert_eq!(
        code(bob.encrypt().key_id(&key_id).plaintext(pt()).send().await),
        "AccessDeniedException"
    );

    let equals = GrantConstraints::builder()
        .encryption_context_equals("k", "v")
        .build();
    kms.create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(Op::Decrypt)
        .constraints(equals)
        .send()
        .await
        .unwrap();
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(pt())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert!(
        bob.decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .encryption_context("k", "v")
            .send()
            .await
            .is_ok()
    );
    let enc2 = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(pt())
        .encryption_context("k", "v")
        .encryption_context("extra", "1")
        .send()
        .await
        .unwrap();
    let r = bob
        .decrypt()
        .ciphertext_blob(enc2.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .encryption_context("extra", "1")
        .send()
        .await;
    assert_eq!(code(r), "AccessDeniedException");

    // Operations the key cannot do.
    let r = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(Op::Sign)
        .send()
        .await;
    assert_eq!(code(r), "ValidationException");
    let r = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal("not-a-principal")
        .operations(Op::Encrypt)
        .send()
        .await;
    assert_eq!(code(r), "InvalidArnException");

    // Name makes CreateGrant idempotent.
    let first = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(Op::DescribeKey)
        .name("app-1")
        .send()
        .await
        .unwrap();
    let again = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .operations(Op::DescribeKey)
        .name("app-1")
        .send()
        .await
        .unwrap();
    assert_eq!(first.grant_id(), again.grant_id());
    let listed = kms
        .list_grants()
        .key_id(&key_id)
        .grantee_principal(&bob_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.grants().len(), 3);
    assert!(
        listed
            .grants()
            .iter()
            .all(|g| g.key_id() == Some(key_arn.as_str()))
    );
    assert_eq!(
        listed
            .grants()
            .iter()
            .filter(|g| g.name() == Some("app-1"))
            .count(),
        1
    );
    let mut ids = Vec::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_grants()
            .key_id(&key_id)
            .limit(2)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        assert!(page.grants().len() <= 2);
        ids.extend(
            page.grants()
                .iter()
                .map(|g| g.grant_id().unwrap().to_string()),
        );
        if !page.truncated() {
            break;
        }
        marker = page.next_marker().map(str::to_string);
    }
    assert_eq!(ids.len(), 3, "paging visits every grant once: {ids:?}");
    let one = kms
        .list_grants()
        .key_id(&key_id)
        .grant_id(&ids[1])
        .send()
        .await
        .unwrap();
    assert_eq!(one.grants().len(), 1);

    // An explicit deny in the caller's IAM policy beats the grant.
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:DescribeKey","Resource":"*"}]}"#;
    server
        .iam(AKID_A, SECRET_A)
        .put_user_policy()
        .user_name("bob")
        .policy_name("deny")
        .policy_document(deny)
        .send()
        .await
        .unwrap();
    let msg = message(bob.describe_key().key_id(&key_id).send().await);
    assert!(msg.contains("explicit deny"), "{msg}");
}

#[tokio::test]
async fn grant_tokens_retire_and_list_retirable() {
    let server = Server::start();
    let kms = server.kms_a();
    let (key_id, key_arn) = new_key(&kms).await;
    let (carol, carol_arn) = user(&server, AKID_A, SECRET_A, "carol").await;
    let (dave, dave_arn) = user(&server, AKID_A, SECRET_A, "dave").await;
    let g = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&carol_arn)
        .retiring_principal(&dave_arn)
        .operations(Op::GenerateDataKey)
        .send()
        .await
        .unwrap();
    let token = g.grant_token().unwrap().to_string();
    assert!(
        carol
            .generate_data_key()
            .key_id(&key_id)
            .number_of_bytes(16)
            .grant_tokens(&token)
            .send()
            .await
            .is_ok()
    );
    let r = carol
        .generate_data_key()
        .key_id(&key_id)
        .number_of_bytes(16)
        .grant_tokens("bm90IGEgdG9rZW4=")
        .send()
        .await;
    assert_eq!(code(r), "InvalidGrantTokenException");

    let retirable = kms
        .list_retirable_grants()
        .retiring_principal(&dave_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);
    assert_eq!(retirable.grants()[0].key_id(), Some(key_arn.as_str()));

    // carol may not retire it (no RetireGrant in its operations), dave (retiring principal) may.
    assert_eq!(
        code(carol.retire_grant().grant_token(&token).send().await),
        "AccessDeniedException"
    );
    dave.retire_grant()
        .grant_token(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(
            carol
                .generate_data_key()
                .key_id(&key_id)
                .number_of_bytes(16)
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    assert!(
        kms.list_grants()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .grants()
            .is_empty()
    );
}

#[tokio::test]
async fn grants_work_across_accounts_without_iam_policies() {
    let server = Server::start();
    let kms = server.kms_a();
    let (key_id, key_arn) = new_key(&kms).await;
    let (erin, erin_arn) = user(&server, AKID_B, SECRET_B, "erin").await;
    kms.create_grant()
        .key_id(&key_id)
        .grantee_principal(&erin_arn)
        .operations(Op::Encrypt)
        .send()
        .await
        .unwrap();
    assert!(
        erin.encrypt()
            .key_id(&key_arn)
            .plaintext(pt())
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(erin.encrypt().key_id(&key_id).plaintext(pt()).send().await),
        "NotFoundException",
        "bare ids resolve in erin's account"
    );
}

#[tokio::test]
async fn seed_004_cross_account_grant_for_a_role_and_narrower_delegation() {
    let server = Server::start();
    // Account A's key policy allows account B to use the key and create grants.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"Allow external account","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:root"}},
              "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey","kms:CreateGrant"],"Resource":"*"}}]}}"#
    );
    let created = server
        .kms_a()
        .create_key()
        .policy(policy)
        .send()
        .await
        .unwrap();
    let key_arn = created.key_metadata().unwrap().arn().unwrap().to_string();

    // In account B: an admin allowed kms:CreateGrant on the key ARN, and a role for the workload.
    let iam_b = server.iam(AKID_B, SECRET_B);
    let (admin, _) = user(&server, AKID_B, SECRET_B, "admin").await;
    let (worker, worker_arn) = user(&server, AKID_B, SECRET_B, "worker").await;
    let admin_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"kms:CreateGrant","Resource":"{key_arn}"}}]}}"#
    );
    iam_b
        .put_user_policy()
        .user_name("admin")
        .policy_name("grants")
        .policy_document(admin_policy)
        .send()
        .await
        .unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let role = iam_b
        .create_role()
        .role_name("asg")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let role_arn = role.role().unwrap().arn().to_string();
    // The role needs sts:AssumeRole by B's root only (root is implicitly allowed).

    let ops = [
        Op::Encrypt,
        Op::Decrypt,
        Op::ReEncryptFrom,
        Op::ReEncryptTo,
        Op::GenerateDataKey,
        Op::GenerateDataKeyWithoutPlaintext,
        Op::DescribeKey,
        Op::CreateGrant,
    ];
    let mut req = admin
        .create_grant()
        .key_id(&key_arn)
        .grantee_principal(&role_arn);
    for op in ops.iter().cloned() {
        req = req.operations(op);
    }
    req.send().await.unwrap();

    // The role (a session of it) uses the key with no IAM policy of its own.
    let sts_b = server.sts(AKID_B, SECRET_B, None);
    let assumed = sts_b
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("launch")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    let session = server.kms_session(c.access_key_id(), c.secret_access_key(), c.session_token());
    let enc = session
        .encrypt()
        .key_id(&key_arn)
        .plaintext(pt())
        .send()
        .await
        .unwrap();
    assert!(
        session
            .decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .is_ok()
    );
    assert!(session.describe_key().key_id(&key_arn).send().await.is_ok());

    // It delegates a narrower grant to another principal ...
    let narrow = session
        .create_grant()
        .key_id(&key_arn)
        .grantee_principal(&worker_arn)
        .operations(Op::Decrypt)
        .send()
        .await;
    assert!(narrow.is_ok(), "{narrow:?}");
    assert!(
        worker
            .decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(
            worker
                .encrypt()
                .key_id(&key_arn)
                .plaintext(pt())
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    // ... but cannot give away more than it has.
    let wider = session
        .create_grant()
        .key_id(&key_arn)
        .grantee_principal(&worker_arn)
        .operations(Op::RetireGrant)
        .send()
        .await;
    assert_eq!(code(wider), "AccessDeniedException");
}

#[tokio::test]
async fn a_revoked_grant_token_cannot_delegate_and_retirable_grants_stay_in_their_account() {
    let server = Server::start();
    let kms = server.kms_a();
    let (key_id, _) = new_key(&kms).await;
    let (hal, hal_arn) = user(&server, AKID_A, SECRET_A, "hal").await;
    let g = kms
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&hal_arn)
        .retiring_principal(&hal_arn)
        .operations(Op::Decrypt)
        .operations(Op::CreateGrant)
        .send()
        .await
        .unwrap();
    let token = g.grant_token().unwrap().to_string();
    // While the grant lives, its grantee may delegate a subset of it.
    assert!(
        hal.create_grant()
            .key_id(&key_id)
            .grantee_principal(&hal_arn)
            .operations(Op::Decrypt)
            .name("child")
            .grant_tokens(&token)
            .send()
            .await
            .is_ok()
    );
    kms.revoke_grant()
        .key_id(&key_id)
        .grant_id(g.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let r = hal
        .create_grant()
        .key_id(&key_id)
        .grantee_principal(&hal_arn)
        .operations(Op::Decrypt)
        .name("after")
        .grant_tokens(&token)
        .send()
        .await;
    assert_eq!(
        code(r),
        "AccessDeniedException",
        "a revoked grant's token must not create grants"
    );

    // Account B may not list account A's retirable grants.
    let r = server
        .kms_b()
        .list_retirable_grants()
        .retiring_principal(&hal_arn)
        .send()
        .await;
    assert_eq!(code(r), "AccessDeniedException");
    assert_eq!(
        kms.list_retirable_grants()
            .retiring_principal(&hal_arn)
            .send()
            .await
            .unwrap()
            .grants()
            .len(),
        0,
        "the revoked grant is gone"
    );
}
