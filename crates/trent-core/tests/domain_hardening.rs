//! Regression tests for findings of the attacker's review (issue "Hardening and operations"),
//! driven through `Kms` over `MemoryStore`: a DryRun that would have failed says so, a deleted
//! key's grant cannot be retired forever, and reserved or malformed alias names are refused by
//! every alias operation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use trent_core::KmsError;
use trent_core::crypto::DecryptInput;
use trent_core::grants::CreateGrantInput;

#[tokio::test]
async fn dry_run_decrypt_of_a_tampered_ciphertext_is_invalid_ciphertext() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let blob = encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    let dry_run = |ciphertext: Vec<u8>| DecryptInput {
        ciphertext_blob: Some(ciphertext),
        dry_run: true,
        ..Default::default()
    };
    assert_eq!(
        env.kms
            .decrypt(&env.root, dry_run(blob.clone()))
            .await
            .err(),
        Some(KmsError::DryRunOperation),
        "an intact ciphertext: the dry run would have succeeded"
    );
    let mut tampered = blob;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        env.kms.decrypt(&env.root, dry_run(tampered)).await.err(),
        Some(KmsError::InvalidCiphertext)
    );
}

#[tokio::test]
async fn a_deleted_keys_grant_token_retires_nothing() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let (grant_id, token) = env
        .kms
        .create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(key.key_id.clone()),
                grantee_principal: Some(user_arn("alice")),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.kms
        .schedule_key_deletion(&env.root, Some(&key.key_id), Some(7))
        .await
        .unwrap();
    env.clock.advance(7 * DAY_MS);
    env.kms.run_due_work().await.unwrap();
    let not_found = Some(KmsError::NotFound(format!("Grant {grant_id} not found")));
    for _ in 0..2 {
        assert_eq!(
            env.kms
                .retire_grant(&env.root, Some(&token), None, None, false)
                .await
                .err(),
            not_found
        );
    }
}

#[tokio::test]
async fn reserved_and_malformed_alias_names_are_refused_by_every_alias_operation() {
    let env = env().await;
    let key = create_key(&env, None).await;
    for reserved in ["alias/aws/x", "alias/AWS/x", "alias/Aws/s3"] {
        assert_eq!(
            env.kms
                .create_alias(&env.root, Some(reserved), Some(&key.key_id))
                .await
                .err(),
            Some(KmsError::NotAuthorized(format!(
                "{reserved} is reserved for AWS managed keys."
            ))),
            "CreateAlias {reserved}"
        );
        assert_eq!(
            env.kms.delete_alias(&env.root, Some(reserved)).await.err(),
            Some(KmsError::NotAuthorized(format!(
                "{reserved} is reserved for AWS managed keys."
            ))),
            "DeleteAlias {reserved}"
        );
    }
    // Not reserved: "aws" must be the whole first segment.
    env.kms
        .create_alias(&env.root, Some("alias/awsome"), Some(&key.key_id))
        .await
        .unwrap();
    for malformed in ["no-prefix", "alias/", "alias/bad name"] {
        assert!(
            matches!(
                env.kms.delete_alias(&env.root, Some(malformed)).await,
                Err(KmsError::Validation(_))
            ),
            "DeleteAlias {malformed}"
        );
    }
}
