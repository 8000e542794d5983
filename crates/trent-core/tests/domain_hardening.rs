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
use trent_core::iam::IamError;
use trent_core::store::Store;

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
    // A grantee must exist.
    user(&env, "alice").await;
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

/// DeleteUser racing CreateAccessKey must never leave an active key whose user is gone (such a
/// key would authenticate as a re-created user of the same name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_and_create_access_key_cannot_race_into_an_orphan_key() {
    let env = std::sync::Arc::new(env().await);
    for attempt in 0..40 {
        let name = format!("racer-{attempt}");
        env.kms
            .iam_create_user(&env.root, &name, None, Vec::new())
            .await
            .unwrap();
        let (a, b) = (env.clone(), env.clone());
        let (n1, n2) = (name.clone(), name.clone());
        let create = tokio::spawn(async move {
            a.kms
                .iam_create_access_key(&a.root, Some(&n1))
                .await
                .is_ok()
        });
        let delete = tokio::spawn(async move { b.kms.iam_delete_user(&b.root, &n2).await.is_ok() });
        let (created, deleted) = (create.await.unwrap(), delete.await.unwrap());
        assert!(
            !(created && deleted),
            "attempt {attempt}: both the key and the deletion succeeded"
        );
        let user_exists = env.kms.iam_get_user(&env.root, Some(&name)).await.is_ok();
        let has_key = env
            .store
            .access_keys()
            .await
            .unwrap()
            .iter()
            .any(|k| k.principal_arn == user_arn(&name));
        assert!(
            user_exists || !has_key,
            "attempt {attempt}: an access key outlived its user"
        );
    }
}

/// GetUser and DeleteUser answer a caller without the permission the same way whether the
/// user exists or not: no user-name oracle.
#[tokio::test]
async fn get_user_and_delete_user_reveal_no_names_to_callers_without_permission() {
    let env = env().await;
    let nosy = user(&env, "nosy").await;
    user(&env, "alice").await;
    let nosy = nosy.caller(&env.kms);
    for name in ["alice", "ghost"] {
        assert!(
            matches!(
                env.kms.iam_get_user(&nosy, Some(name)).await,
                Err(IamError::AccessDenied(_))
            ),
            "GetUser {name}"
        );
        assert!(
            matches!(
                env.kms.iam_delete_user(&nosy, name).await,
                Err(IamError::AccessDenied(_))
            ),
            "DeleteUser {name}"
        );
    }
    // A caller who may ask learns that the user is missing.
    assert!(matches!(
        env.kms.iam_get_user(&env.root, Some("ghost")).await,
        Err(IamError::NoSuchEntity(_))
    ));
    assert!(env.kms.iam_get_user(&env.root, Some("alice")).await.is_ok());
}

#[tokio::test]
async fn dry_run_re_encrypt_of_a_tampered_ciphertext_is_invalid_ciphertext() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let mut blob = encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    let dry_run = |ciphertext: Vec<u8>| trent_core::crypto::ReEncryptInput {
        ciphertext_blob: Some(ciphertext),
        destination_key_id: Some(key.key_id.clone()),
        dry_run: true,
        ..Default::default()
    };
    assert_eq!(
        env.kms
            .re_encrypt(&env.root, dry_run(blob.clone()))
            .await
            .err(),
        Some(KmsError::DryRunOperation)
    );
    let last = blob.len() - 1;
    blob[last] ^= 1;
    assert_eq!(
        env.kms.re_encrypt(&env.root, dry_run(blob)).await.err(),
        Some(KmsError::InvalidCiphertext)
    );
}
