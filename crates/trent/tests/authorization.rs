//! End to end: KMS authorization with key policies, IAM identity policies, STS sessions and
//! cross-account use (seed documents 002, 003 and 004), through the real IAM/STS/KMS clients.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::primitives::Blob;
use common::*;

/// An IAM user of the account behind `iam`, with access keys; returns (akid, secret).
async fn user(iam: &aws_sdk_iam::Client, name: &str) -> (String, String) {
    let (akid, secret, _) = new_iam_user(iam, name).await;
    (akid, secret)
}

fn allow(actions: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"{resource}"}}]}}"#
    )
}

async fn key(kms: &aws_sdk_kms::Client, policy: Option<String>) -> (String, String) {
    let m = kms.create_key().set_policy(policy).send().await.unwrap();
    let m = m.key_metadata().unwrap();
    (m.key_id().to_string(), m.arn().unwrap().to_string())
}

#[tokio::test]
async fn same_account_users_need_an_identity_policy_and_deny_wins() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let (key_id, key_arn) = key(&server.kms_a(), None).await;
    let (akid, secret) = user(&iam, "alice").await;
    let alice = server.kms(&akid, &secret);

    // No identity policy: the default key policy delegates to IAM, and IAM allows nothing.
    let r = alice
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await;
    let msg = message(r);
    assert!(
        msg.contains(
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Encrypt"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("because no identity-based policy allows the kms:Encrypt action"),
        "{msg}"
    );

    iam.put_user_policy()
        .user_name("alice")
        .policy_name("use-key")
        .policy_document(allow(
            r#"["kms:Encrypt","kms:Decrypt","kms:DescribeKey"]"#,
            &key_arn,
        ))
        .send()
        .await
        .unwrap();
    let enc = alice
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(alice.disable_key().key_id(&key_id).send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code(alice.list_keys().send().await),
        "AccessDeniedException",
        "ListKeys is IAM-only and not allowed"
    );

    // An explicit deny in an attached managed policy overrides the inline allow.
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;
    let policy = iam
        .create_policy()
        .policy_name("no-decrypt")
        .policy_document(deny)
        .send()
        .await
        .unwrap();
    let policy_arn = policy.policy().unwrap().arn().unwrap().to_string();
    iam.attach_user_policy()
        .user_name("alice")
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap();
    let r = alice
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await;
    assert!(message(r).contains("with an explicit deny in an identity-based policy"));
    iam.detach_user_policy()
        .user_name("alice")
        .policy_arn(&policy_arn)
        .send()
        .await
        .unwrap();
    assert!(
        alice
            .decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .is_ok(),
        "detaching is visible at once"
    );
}

#[tokio::test]
async fn group_policies_and_encryption_context_conditions() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let (akid, secret) = user(&iam, "bob").await;
    let bob_arn = "arn:aws:iam::111122223333:user/bob";
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"bob with app context","Effect":"Allow","Principal":{{"AWS":"{bob_arn}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
              "Condition":{{"StringEquals":{{"kms:EncryptionContext:app":"billing"}}}}}}]}}"#
    );
    let (key_id, _) = key(&server.kms_a(), Some(policy)).await;
    let bob = server.kms(&akid, &secret);
    let ok = bob
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"1".to_vec()))
        .encryption_context("app", "billing")
        .send()
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let r = bob
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"1".to_vec()))
        .encryption_context("app", "other")
        .send()
        .await;
    assert_eq!(code(r), "AccessDeniedException");
    let r = bob
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"1".to_vec()))
        .send()
        .await;
    assert_eq!(code(r), "AccessDeniedException");

    // A group's policy reaches its members through the root delegation statement.
    assert_eq!(
        code(bob.describe_key().key_id(&key_id).send().await),
        "AccessDeniedException"
    );
    iam.create_group()
        .group_name("readers")
        .send()
        .await
        .unwrap();
    iam.put_group_policy()
        .group_name("readers")
        .policy_name("describe")
        .policy_document(allow(r#""kms:DescribeKey""#, "*"))
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("readers")
        .user_name("bob")
        .send()
        .await
        .unwrap();
    assert!(bob.describe_key().key_id(&key_id).send().await.is_ok());
    iam.remove_user_from_group()
        .group_name("readers")
        .user_name("bob")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(bob.describe_key().key_id(&key_id).send().await),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn cross_account_needs_key_policy_and_external_iam_policy() {
    let server = Server::start();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"Allow use of the key","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:root"}},
              "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey","kms:DisableKey","kms:TagResource"],"Resource":"*"}}]}}"#
    );
    let (key_id, key_arn) = key(&server.kms_a(), Some(policy)).await;

    // Account B's root: the key policy names the account; the root needs no IAM policy.
    let b_root = server.kms_b();
    assert!(
        b_root
            .encrypt()
            .key_id(&key_arn)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .is_ok()
    );
    // A bare key id or an alias resolves in the caller's own account.
    assert_eq!(
        code(b_root.describe_key().key_id(&key_id).send().await),
        "NotFoundException"
    );
    // Operations outside the cross-account list fail even though the key policy allows them.
    assert_eq!(
        code(b_root.disable_key().key_id(&key_arn).send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code(
            b_root
                .tag_resource()
                .key_id(&key_arn)
                .tags(
                    aws_sdk_kms::types::Tag::builder()
                        .tag_key("a")
                        .tag_value("b")
                        .build()
                        .unwrap()
                )
                .send()
                .await
        ),
        "AccessDeniedException"
    );

    // A user of account B needs B's IAM policy as well.
    let iam_b = server.iam(AKID_B, SECRET_B);
    let (akid, secret) = user(&iam_b, "carol").await;
    let carol = server.kms(&akid, &secret);
    assert_eq!(
        code(
            carol
                .encrypt()
                .key_id(&key_arn)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    iam_b
        .put_user_policy()
        .user_name("carol")
        .policy_name("use-a-key")
        .policy_document(allow(r#"["kms:Encrypt","kms:Decrypt"]"#, &key_arn))
        .send()
        .await
        .unwrap();
    let enc = carol
        .encrypt()
        .key_id(&key_arn)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(
        carol
            .decrypt()
            .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .is_ok()
    );
    // The IAM policy can only narrow the key policy: GenerateDataKey is not in carol's policy.
    assert_eq!(
        code(
            carol
                .generate_data_key()
                .key_id(&key_arn)
                .number_of_bytes(8)
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    // And an IAM allow for an action the key policy lacks has no effect.
    iam_b
        .put_user_policy()
        .user_name("carol")
        .policy_name("too-much")
        .policy_document(allow(r#""kms:*""#, &key_arn))
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(carol.get_key_policy().key_id(&key_arn).send().await),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn assumed_role_sessions_use_keys_and_tokens_are_checked() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam.create_role()
        .role_name("app")
        .path("/service/")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .unwrap();
    let (key_id, key_arn) = key(&server.kms_a(), None).await;
    iam.put_role_policy()
        .role_name("app")
        .policy_name("crypto")
        .policy_document(allow(r#"["kms:Encrypt","kms:Decrypt"]"#, &key_arn))
        .send()
        .await
        .unwrap();

    let sts = server.sts(AKID_A, SECRET_A, None);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT_A}:role/service/app"))
        .role_session_name("s1")
        .send()
        .await
        .unwrap();
    let user = assumed.assumed_role_user().unwrap();
    assert_eq!(
        user.arn(),
        format!("arn:aws:sts::{ACCOUNT_A}:assumed-role/app/s1")
    );
    let c = assumed.credentials().unwrap();
    assert!(c.access_key_id().starts_with("ASIA"));

    let session = server.kms_session(c.access_key_id(), c.secret_access_key(), c.session_token());
    let enc = session
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"s".to_vec()))
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
    let msg = message(session.describe_key().key_id(&key_id).send().await);
    assert!(
        msg.contains("assumed-role/app/s1 is not authorized to perform: kms:DescribeKey"),
        "{msg}"
    );

    let who = server
        .sts(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:sts::{ACCOUNT_A}:assumed-role/app/s1").as_str())
    );
    assert!(who.user_id().unwrap().starts_with("AROA") && who.user_id().unwrap().ends_with(":s1"));

    // A tampered or missing session token is refused.
    let mut bad = c.session_token().to_string();
    bad.replace_range(10..11, if &bad[10..11] == "A" { "B" } else { "A" });
    let tampered = server.kms_session(c.access_key_id(), c.secret_access_key(), &bad);
    assert_eq!(
        code(tampered.list_keys().send().await),
        "UnrecognizedClientException"
    );
    let no_token = server.kms(c.access_key_id(), c.secret_access_key());
    assert_eq!(
        code(no_token.list_keys().send().await),
        "UnrecognizedClientException"
    );

    // A role whose trust policy does not name the caller cannot be assumed.
    let other_trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam.create_role()
        .role_name("locked")
        .assume_role_policy_document(other_trust)
        .send()
        .await
        .unwrap();
    let r = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT_A}:role/locked"))
        .role_session_name("s2")
        .send()
        .await;
    assert_eq!(
        r.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("AccessDenied")
    );

    // Cross-account: B's root may assume it (trust names B, and B's root has implicit IAM allow).
    let sts_b = server.sts(AKID_B, SECRET_B, None);
    let b = sts_b
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT_A}:role/locked"))
        .role_session_name("from-b")
        .send()
        .await;
    assert!(b.is_ok(), "{b:?}");
}

#[tokio::test]
async fn key_policy_naming_a_specific_external_role() {
    let server = Server::start();
    let iam_b = server.iam(AKID_B, SECRET_B);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam_b
        .create_role()
        .role_name("reader")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .unwrap();
    iam_b
        .create_role()
        .role_name("other")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .unwrap();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"External role","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_B}:role/reader"}},"Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"*"}}]}}"#
    );
    let (_, key_arn) = key(&server.kms_a(), Some(policy)).await;
    for role in ["reader", "other"] {
        iam_b
            .put_role_policy()
            .role_name(role)
            .policy_name("p")
            .policy_document(allow(r#""kms:*""#, &key_arn))
            .send()
            .await
            .unwrap();
    }
    let sts_b = server.sts(AKID_B, SECRET_B, None);
    let session = |role: &'static str| {
        let sts_b = sts_b.clone();
        async move {
            let a = sts_b
                .assume_role()
                .role_arn(format!("arn:aws:iam::{ACCOUNT_B}:role/{role}"))
                .role_session_name("sx")
                .send()
                .await
                .unwrap();
            let c = a.credentials().unwrap().clone();
            (
                c.access_key_id().to_string(),
                c.secret_access_key().to_string(),
                c.session_token().to_string(),
            )
        }
    };
    let (a, s, t) = session("reader").await;
    assert!(
        server
            .kms_session(&a, &s, &t)
            .describe_key()
            .key_id(&key_arn)
            .send()
            .await
            .is_ok()
    );
    let (a, s, t) = session("other").await;
    assert_eq!(
        code(
            server
                .kms_session(&a, &s, &t)
                .describe_key()
                .key_id(&key_arn)
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    // B's root is not named by this key policy.
    assert_eq!(
        code(server.kms_b().describe_key().key_id(&key_arn).send().await),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn service_linked_role_key_policy_from_seed_004_and_principal_validation() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let slr = iam
        .create_service_linked_role()
        .aws_service_name("autoscaling.amazonaws.com")
        .send()
        .await
        .unwrap();
    let slr_arn = slr.role().unwrap().arn().to_string();
    assert_eq!(
        slr_arn,
        format!(
            "arn:aws:iam::{ACCOUNT_A}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
        )
    );
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"Allow service-linked role use of the customer managed key","Effect":"Allow","Principal":{{"AWS":["{slr_arn}"]}},
              "Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}},
            {{"Sid":"Allow attachment of persistent resources","Effect":"Allow","Principal":{{"AWS":["{slr_arn}"]}},
              "Action":["kms:CreateGrant"],"Resource":"*","Condition":{{"Bool":{{"kms:GrantIsForAWSResource":true}}}}}}]}}"#
    );
    let (key_id, _) = key(&server.kms_a(), Some(policy.clone())).await;
    let stored = server
        .kms_a()
        .get_key_policy()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert!(
        stored
            .policy()
            .unwrap()
            .contains("AWSServiceRoleForAutoScaling")
    );
    // The service-linked role is protected.
    let r = iam
        .delete_role()
        .role_name("AWSServiceRoleForAutoScaling")
        .send()
        .await;
    assert_eq!(
        r.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("UnmodifiableEntity")
    );
    // A key policy naming a principal that does not exist is refused.
    let missing = policy.replace("AWSServiceRoleForAutoScaling", "NoSuchRole");
    let r = server
        .kms_a()
        .put_key_policy()
        .key_id(&key_id)
        .policy(missing)
        .send()
        .await;
    let m = message(r);
    assert_eq!(
        m,
        "Policy contains a statement with one or more invalid principals."
    );
}

#[tokio::test]
async fn policy_lockout_safety_check() {
    let server = Server::start();
    let kms = server.kms_a();
    let (key_id, _) = key(&kms, None).await;
    let lockout = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
    let r = kms
        .put_key_policy()
        .key_id(&key_id)
        .policy(lockout)
        .send()
        .await;
    assert_eq!(
        message(r),
        "The new key policy will not allow you to update the key policy in the future."
    );
    let r = kms.create_key().policy(lockout).send().await;
    assert_eq!(code(r), "MalformedPolicyDocumentException");
    kms.put_key_policy()
        .key_id(&key_id)
        .policy(lockout)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    // Now even the root is locked out of managing the key, as in AWS.
    assert_eq!(
        code(kms.get_key_policy().key_id(&key_id).send().await),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn iam_and_sts_basics() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let created = iam
        .create_user()
        .user_name("dave")
        .path("/eng/")
        .send()
        .await
        .unwrap();
    let u = created.user().unwrap();
    assert_eq!(u.arn(), format!("arn:aws:iam::{ACCOUNT_A}:user/eng/dave"));
    assert!(u.user_id().starts_with("AIDA"));
    let dup = iam.create_user().user_name("dave").send().await;
    assert_eq!(
        dup.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("EntityAlreadyExists")
    );
    let missing = iam.get_user().user_name("nobody").send().await;
    assert_eq!(
        missing
            .unwrap_err()
            .as_service_error()
            .unwrap()
            .meta()
            .code(),
        Some("NoSuchEntity")
    );
    let bad = iam
        .put_user_policy()
        .user_name("dave")
        .policy_name("p")
        .policy_document("{}")
        .send()
        .await;
    assert_eq!(
        bad.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("MalformedPolicyDocument")
    );

    let doc = allow(r#""kms:*""#, "*");
    iam.put_user_policy()
        .user_name("dave")
        .policy_name("p")
        .policy_document(&doc)
        .send()
        .await
        .unwrap();
    let got = iam
        .get_user_policy()
        .user_name("dave")
        .policy_name("p")
        .send()
        .await
        .unwrap();
    // IAM returns policy documents URL-encoded (the Rust SDK hands them over as they are).
    assert_eq!(percent_decode(got.policy_document()), doc);
    let names = iam
        .list_user_policies()
        .user_name("dave")
        .send()
        .await
        .unwrap();
    assert_eq!(names.policy_names(), ["p"]);

    let v1 = iam
        .create_policy()
        .policy_name("mp")
        .policy_document(&doc)
        .send()
        .await
        .unwrap();
    let arn = v1.policy().unwrap().arn().unwrap().to_string();
    iam.create_policy_version()
        .policy_arn(&arn)
        .policy_document(allow(r#""kms:Decrypt""#, "*"))
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    let p = iam.get_policy().policy_arn(&arn).send().await.unwrap();
    assert_eq!(p.policy().unwrap().default_version_id(), Some("v2"));
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);

    let (akid, secret) = {
        let k = iam
            .create_access_key()
            .user_name("dave")
            .send()
            .await
            .unwrap();
        let k = k.access_key().unwrap();
        (
            k.access_key_id().to_string(),
            k.secret_access_key().to_string(),
        )
    };
    let who = server
        .sts(&akid, &secret, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{ACCOUNT_A}:user/eng/dave").as_str())
    );
    assert_eq!(who.account(), Some(ACCOUNT_A));
    // dave may not manage IAM: his policy allows kms:* only.
    let r = server
        .iam(&akid, &secret)
        .create_user()
        .user_name("eve")
        .send()
        .await;
    assert_eq!(
        r.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("AccessDenied")
    );
    // Deactivating the key stops it at once.
    iam.update_access_key()
        .user_name("dave")
        .access_key_id(&akid)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(server.kms(&akid, &secret).list_keys().send().await),
        "UnrecognizedClientException"
    );
    let root = server
        .sts(AKID_A, SECRET_A, None)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        root.arn(),
        Some(format!("arn:aws:iam::{ACCOUNT_A}:root").as_str())
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn request_alias_condition() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let (akid, secret) = user(&iam, "frank").await;
    let (key_id, key_arn) = key(&server.kms_a(), None).await;
    server
        .kms_a()
        .create_alias()
        .alias_name("alias/frank")
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kms:DescribeKey","kms:Encrypt"],"Resource":"{key_arn}","Condition":{{"StringEquals":{{"kms:RequestAlias":"alias/frank"}}}}}}]}}"#
    );
    iam.put_user_policy()
        .user_name("frank")
        .policy_name("via-alias")
        .policy_document(doc)
        .send()
        .await
        .unwrap();
    let frank = server.kms(&akid, &secret);
    assert!(
        frank
            .describe_key()
            .key_id("alias/frank")
            .send()
            .await
            .is_ok()
    );
    assert!(
        frank
            .encrypt()
            .key_id("alias/frank")
            .plaintext(Blob::new(b"a".to_vec()))
            .send()
            .await
            .is_ok()
    );
    assert_eq!(
        code(frank.describe_key().key_id(&key_id).send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code(
            frank
                .encrypt()
                .key_id(&key_arn)
                .plaintext(Blob::new(b"a".to_vec()))
                .send()
                .await
        ),
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn session_credentials_survive_restart_and_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut server = Server::start_in(&data_dir, true);
    let iam = server.iam(AKID_A, SECRET_A);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam.create_role()
        .role_name("short")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("short")
        .policy_name("list")
        .policy_document(allow(r#""kms:ListKeys""#, "*"))
        .send()
        .await
        .unwrap();
    let assumed = server
        .sts(AKID_A, SECRET_A, None)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT_A}:role/short"))
        .role_session_name("brief")
        .duration_seconds(900)
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap().clone();
    let r = server
        .sts(AKID_A, SECRET_A, None)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT_A}:role/short"))
        .role_session_name("long")
        .duration_seconds(3601)
        .send()
        .await;
    assert_eq!(
        r.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("ValidationError"),
        "beyond MaxSessionDuration"
    );

    // Temporary credentials are durable: they work after a kill -9 and restart.
    server.kill_9();
    let server = Server::start_in(&data_dir, true);
    let session = server.kms_session(c.access_key_id(), c.secret_access_key(), c.session_token());
    assert!(session.list_keys().send().await.is_ok());

    // Past their expiry they are refused, by KMS and by STS.
    server.advance_clock(901);
    assert_eq!(
        code(session.list_keys().send().await),
        "ExpiredTokenException"
    );
    let who = server
        .sts(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
        .get_caller_identity()
        .send()
        .await;
    assert_eq!(
        who.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("ExpiredToken")
    );
}

#[tokio::test]
async fn operation_condition_keys_of_lifecycle_signing_and_grants() {
    let server = Server::start();
    let kms = server.kms_a();
    let root = format!(
        r#"{{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"kms:*","Resource":"*"}}"#
    );
    let deny = |action: &str, condition: &str| {
        format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":"{action}","Resource":"*","Condition":{condition}}}"#
        )
    };
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{root},{},{},{},{}]}}"#,
        deny(
            "kms:ScheduleKeyDeletion",
            r#"{"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":"30"}}"#
        ),
        deny(
            "kms:EnableKeyRotation",
            r#"{"NumericGreaterThan":{"kms:RotationPeriodInDays":"180"}}"#
        ),
        deny(
            "kms:Sign",
            r#"{"StringNotEquals":{"kms:SigningAlgorithm":"ECDSA_SHA_256"}}"#
        ),
        deny(
            "kms:CreateGrant",
            r#"{"Null":{"kms:GrantConstraintType":"true"}}"#
        ),
    );
    let sym = kms
        .create_key()
        .policy(&policy)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    assert_eq!(
        code(
            kms.enable_key_rotation()
                .key_id(&sym)
                .rotation_period_in_days(365)
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    kms.enable_key_rotation()
        .key_id(&sym)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let bob = format!("arn:aws:iam::{ACCOUNT_A}:root");
    let r = kms
        .create_grant()
        .key_id(&sym)
        .grantee_principal(&bob)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await;
    assert_eq!(
        code(r),
        "AccessDeniedException",
        "a grant without constraints is denied"
    );
    let constrained = aws_sdk_kms::types::GrantConstraints::builder()
        .encryption_context_subset("a", "b")
        .build();
    kms.create_grant()
        .key_id(&sym)
        .grantee_principal(&bob)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .constraints(constrained)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(
            kms.schedule_key_deletion()
                .key_id(&sym)
                .pending_window_in_days(7)
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    kms.schedule_key_deletion()
        .key_id(&sym)
        .pending_window_in_days(30)
        .send()
        .await
        .unwrap();

    let ecc = kms
        .create_key()
        .policy(&policy)
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let ecc = ecc.key_metadata().unwrap().key_id().to_string();
    let sign = |message_type: aws_sdk_kms::types::MessageType| {
        kms.sign()
            .key_id(&ecc)
            .message(Blob::new([7u8; 32].to_vec()))
            .message_type(message_type)
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
            .send()
    };
    assert!(sign(aws_sdk_kms::types::MessageType::Digest).await.is_ok());
    let r = kms
        .sign()
        .key_id(&ecc)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha384)
        .send()
        .await;
    assert_eq!(
        code(r),
        "AccessDeniedException",
        "the policy denies other signing algorithms before the key refuses them"
    );
}

#[tokio::test]
async fn resource_aliases_condition_follows_alias_changes() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let (akid, secret) = user(&iam, "gina").await;
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/finance-*"}}}]}"#;
    iam.put_user_policy()
        .user_name("gina")
        .policy_name("finance")
        .policy_document(doc)
        .send()
        .await
        .unwrap();
    let kms = server.kms_a();
    let (k1, _) = key(&kms, None).await;
    let (k2, _) = key(&kms, None).await;
    kms.create_alias()
        .alias_name("alias/finance-1")
        .target_key_id(&k1)
        .send()
        .await
        .unwrap();
    let gina = server.kms(&akid, &secret);
    let enc = |k: String| {
        gina.encrypt()
            .key_id(k)
            .plaintext(Blob::new(b"$".to_vec()))
            .send()
    };
    assert!(enc(k1.clone()).await.is_ok());
    assert_eq!(code(enc(k2.clone()).await), "AccessDeniedException");
    // Moving the alias moves the permission, at once.
    kms.update_alias()
        .alias_name("alias/finance-1")
        .target_key_id(&k2)
        .send()
        .await
        .unwrap();
    assert_eq!(code(enc(k1.clone()).await), "AccessDeniedException");
    assert!(enc(k2.clone()).await.is_ok());
    kms.delete_alias()
        .alias_name("alias/finance-1")
        .send()
        .await
        .unwrap();
    assert_eq!(code(enc(k2.clone()).await), "AccessDeniedException");
}

#[tokio::test]
async fn a_session_does_not_survive_its_role_being_recreated() {
    let server = Server::start();
    let iam = server.iam(AKID_A, SECRET_A);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT_A}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam.create_role()
        .role_name("phoenix")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .unwrap();
    let assumed = server
        .sts(AKID_A, SECRET_A, None)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{ACCOUNT_A}:role/phoenix"))
        .role_session_name("old")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap().clone();
    let sts_session = || {
        server.sts(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
    };
    assert!(sts_session().get_caller_identity().send().await.is_ok());
    iam.delete_role().role_name("phoenix").send().await.unwrap();
    iam.create_role()
        .role_name("phoenix")
        .assume_role_policy_document(&trust)
        .send()
        .await
        .unwrap();
    let r = sts_session().get_caller_identity().send().await;
    assert_eq!(
        r.unwrap_err().as_service_error().unwrap().meta().code(),
        Some("InvalidClientTokenId")
    );
}
