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

/// An access key belongs to its user's unique id, not to the name: a key that outlived its
/// user (another node deleted the user; here its document is removed from the store and the
/// process restarted) never authenticates a re-created user of the same name, is not listed
/// as theirs, and does not count against their quota.
#[tokio::test]
async fn an_orphan_access_key_does_not_authenticate_a_re_created_user_of_the_same_name() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    assert!(
        env.kms
            .caller_for(
                &env.kms.credentials.lookup(&alice.access_key_id).unwrap(),
                None,
                REGION
            )
            .is_ok()
    );
    env.store
        .delete_iam_document(ACCOUNT, "user", "alice")
        .await
        .unwrap();
    let kms = open(&env.store, &env.clock).await;
    kms.iam_create_user(&env.root, "alice", None, Vec::new())
        .await
        .unwrap();
    let orphan = kms.credentials.lookup(&alice.access_key_id);
    assert!(
        orphan.is_none_or(|c| kms.caller_for(&c, None, REGION).is_err()),
        "the old key authenticated the new alice"
    );
    assert!(
        kms.iam_list_access_keys(&env.root, Some("alice"))
            .await
            .unwrap()
            .is_empty()
    );
    for _ in 0..2 {
        kms.iam_create_access_key(&env.root, Some("alice"))
            .await
            .unwrap();
    }
}

/// A key stored before keys carried their user's id is bound at start-up to the user then of
/// that name, and from then on to that user only.
#[tokio::test]
async fn a_legacy_access_key_is_bound_to_its_user_at_start_up() {
    let env = env().await;
    let bob = user(&env, "bob").await;
    let mut record = env
        .store
        .access_key(&bob.access_key_id)
        .await
        .unwrap()
        .unwrap();
    record.principal_id = None;
    env.store.put_access_key(&record).await.unwrap();
    let kms = open(&env.store, &env.clock).await;
    let bob_id = kms.iam_get_user(&env.root, Some("bob")).await.unwrap().id;
    assert_eq!(
        env.store
            .access_key(&bob.access_key_id)
            .await
            .unwrap()
            .unwrap()
            .principal_id,
        Some(bob_id)
    );
    assert!(
        kms.caller_for(
            &kms.credentials.lookup(&bob.access_key_id).unwrap(),
            None,
            REGION
        )
        .is_ok()
    );
    env.store
        .delete_iam_document(ACCOUNT, "user", "bob")
        .await
        .unwrap();
    let kms = open(&env.store, &env.clock).await;
    kms.iam_create_user(&env.root, "bob", None, Vec::new())
        .await
        .unwrap();
    assert!(
        kms.credentials
            .lookup(&bob.access_key_id)
            .is_none_or(|c| kms.caller_for(&c, None, REGION).is_err())
    );
}

/// IAM entities are bounded per account as in AWS (and so is the memory of an account's IAM
/// snapshot): past the quota, CreateGroup and CreateRole are `LimitExceeded`.
#[tokio::test]
async fn iam_entity_quotas_bound_an_account() {
    let env = env().await;
    for i in 0..trent_core::iam::GROUPS_PER_ACCOUNT {
        env.kms
            .iam_create_group(&env.root, &format!("g{i}"), None)
            .await
            .unwrap();
    }
    assert!(matches!(
        env.kms.iam_create_group(&env.root, "one-more", None).await,
        Err(IamError::LimitExceeded(m)) if m == "Cannot exceed quota for GroupsPerAccount: 300"
    ));
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
    let role = |name: String| trent_core::iam::CreateRoleInput {
        name,
        path: None,
        trust_policy: trust.into(),
        description: None,
        max_session_duration: None,
        tags: Vec::new(),
    };
    for i in 0..trent_core::iam::ROLES_PER_ACCOUNT {
        env.kms
            .iam_create_role(&env.root, role(format!("r{i}")))
            .await
            .unwrap();
    }
    assert!(matches!(
        env.kms.iam_create_role(&env.root, role("one-more".into())).await,
        Err(IamError::LimitExceeded(m)) if m == "Cannot exceed quota for RolesPerAccount: 1000"
    ));
    // Another account has its own.
    env.kms
        .iam_create_group(&env.other_root, "g0", None)
        .await
        .unwrap();
}
