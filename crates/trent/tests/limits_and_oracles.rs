//! End to end through the Rust SDK: encryption-context limits, CreateGrant refusing grantees
//! that do not exist, and another account's missing keys and aliases answering exactly as
//! existing ones the caller may not use.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::GrantOperation;
use common::*;

#[tokio::test]
async fn encryption_contexts_beyond_aws_limits_are_validation_errors() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let encrypt = |k: &str, v: String| {
        kms.encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_context(k, v)
            .send()
    };
    // 8151 characters in all (key, separator, value) is the largest that works.
    assert!(encrypt("k", "v".repeat(8149)).await.is_ok());
    assert_eq!(
        code(encrypt("k", "v".repeat(8150)).await),
        "ValidationException"
    );
    assert_eq!(
        code(encrypt("k", "v".repeat(200 * 1024)).await),
        "ValidationException"
    );
    let r = encrypt("", "v".into()).await;
    assert!(message(r).contains("empty key"));
}

#[tokio::test]
async fn a_grant_to_a_principal_that_does_not_exist_is_invalid_arn() {
    let server = Server::start();
    let kms = server.kms_a();
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let grant = |grantee: String| {
        kms.create_grant()
            .key_id(&key_id)
            .grantee_principal(grantee)
            .operations(GrantOperation::Encrypt)
            .send()
    };
    assert_eq!(
        code(grant(format!("arn:aws:iam::{ACCOUNT_A}:user/nobody")).await),
        "InvalidArnException"
    );
    assert_eq!(
        code(grant("arn:aws:iam::999988887777:root".into()).await),
        "InvalidArnException"
    );
    assert!(
        grant(format!("arn:aws:iam::{ACCOUNT_B}:root"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn another_accounts_missing_keys_and_aliases_look_like_existing_ones() {
    let server = Server::start();
    let a = server.kms_a();
    let key = a.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap();
    let key_arn = key.arn().unwrap().to_string();
    a.create_alias()
        .alias_name("alias/payroll")
        .target_key_id(key.key_id())
        .send()
        .await
        .unwrap();
    let missing_arn =
        format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:key/0b7c6a3e-58e4-4a55-9d1c-61c0d4f3a2b9");

    let b = server.kms_b();
    let describe = |id: String| b.describe_key().key_id(id).send();
    let existing = message(describe(key_arn.clone()).await);
    let missing = message(describe(missing_arn.clone()).await);
    assert_eq!(
        code(describe(missing_arn.clone()).await),
        "AccessDeniedException"
    );
    assert_eq!(
        existing.replace(&key_arn, "<key>"),
        missing.replace(&missing_arn, "<key>")
    );

    let alias = format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:alias/payroll");
    let no_alias = format!("arn:aws:kms:us-east-1:{ACCOUNT_A}:alias/no-such-alias");
    let existing = message(describe(alias.clone()).await);
    let missing = message(describe(no_alias.clone()).await);
    assert!(existing.contains(&alias), "{existing}");
    assert!(
        !existing.contains(key.key_id()),
        "the key behind the alias leaked: {existing}"
    );
    assert_eq!(
        existing.replace(&alias, "<alias>"),
        missing.replace(&no_alias, "<alias>")
    );
}
