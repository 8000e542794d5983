//! The `Store` contract: one suite every backend must pass, called by each backend's tests
//! (`trent-store-sqlite`'s `tests/conformance.rs`, `tests/memory_store_contract.rs` here) with a
//! fresh, empty store. Failures are assertions, as in any test.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a test suite kept in the library so that every backend runs the same checks: a failed check panics"
)]

use std::sync::Arc;

use trent_crypto::MaterialId;
use trent_crypto::import::{WrappingAlgorithm, WrappingKeySpec};
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin};

use crate::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, ExpirationModel, ImportParams, KeyLifecycle,
    KeyRecord, RotationRecord, RotationType, StoredMaterial, Tag,
};
use crate::store::{Page, Store, StoreError};

/// A symmetric key record of `account` (for contract checks).
pub fn key(id: &str, account: &str) -> KeyRecord {
    KeyRecord {
        key_id: id.into(),
        account_id: account.into(),
        region: "us-east-1".into(),
        created_ms: 1,
        description: "d".into(),
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        origin: Origin::AwsKms,
        state: KeyState::Enabled,
        policy: "{}".into(),
        tags: vec![Tag {
            key: "a".into(),
            value: "1".into(),
        }],
        current_material: MaterialId([1; 32]),
        multi_region: false,
        lifecycle: Default::default(),
    }
}

/// One material version of key `id`.
pub fn material(id: &str) -> StoredMaterial {
    StoredMaterial {
        key_id: id.into(),
        material_id: MaterialId([1; 32]),
        wrapped: vec![9, 9, 9],
        created_ms: 1,
    }
}

/// The core of the contract: accounts, access keys, keys, aliases, IAM documents, sessions and
/// grants. `store` must be empty.
pub async fn suite(store: Arc<dyn Store>) {
    store
        .put_account(&AccountRecord {
            account_id: "111122223333".into(),
            created_ms: 1,
        })
        .await
        .unwrap();
    store
        .put_account(&AccountRecord {
            account_id: "111122223333".into(),
            created_ms: 2,
        })
        .await
        .unwrap();
    assert_eq!(
        store.accounts().await.unwrap().len(),
        1,
        "put_account is idempotent"
    );

    let ak = AccessKeyRecord {
        access_key_id: "AKIA1".into(),
        account_id: "111122223333".into(),
        principal_arn: "arn:aws:iam::111122223333:root".into(),
        wrapped_secret: vec![1, 2],
        active: true,
        created_ms: 1,
    };
    store.put_access_key(&ak).await.unwrap();
    store
        .put_access_key(&AccessKeyRecord {
            wrapped_secret: vec![3],
            ..ak.clone()
        })
        .await
        .unwrap();
    let keys = store.access_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].wrapped_secret, vec![3], "put_access_key replaces");

    for id in ["b", "a", "c"] {
        store
            .insert_key(&key(id, "111122223333"), &material(id))
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .insert_key(&key("a", "111122223333"), &material("a"))
            .await,
        Err(StoreError::AlreadyExists)
    );
    let (k, m) = store.key("a").await.unwrap().unwrap();
    assert_eq!(k, key("a", "111122223333"));
    assert_eq!(m, vec![material("a")]);
    assert!(store.key("zz").await.unwrap().is_none());

    let mut changed = key("a", "111122223333");
    changed.state = KeyState::Disabled;
    changed.description = "new".into();
    changed.tags.push(Tag {
        key: "b".into(),
        value: "".into(),
    });
    store.update_key(&changed).await.unwrap();
    assert_eq!(store.key("a").await.unwrap().unwrap().0, changed);
    assert_eq!(
        store.update_key(&key("nope", "111122223333")).await,
        Err(StoreError::NotFound)
    );

    let page1 = store
        .list_keys(
            "111122223333",
            "us-east-1",
            Page {
                after: None,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(page1, vec!["a", "b"]);
    let page2 = store
        .list_keys(
            "111122223333",
            "us-east-1",
            Page {
                after: Some("b"),
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(page2, vec!["c"]);
    assert!(
        store
            .list_keys(
                "111122223333",
                "eu-west-1",
                Page {
                    after: None,
                    limit: 10
                }
            )
            .await
            .unwrap()
            .is_empty()
    );

    let alias = |name: &str, target: &str| AliasRecord {
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        alias_name: name.into(),
        target_key_id: target.into(),
        created_ms: 1,
        updated_ms: 1,
    };
    store.insert_alias(&alias("alias/x", "a")).await.unwrap();
    store.insert_alias(&alias("alias/y", "b")).await.unwrap();
    assert_eq!(
        store.insert_alias(&alias("alias/x", "b")).await,
        Err(StoreError::AlreadyExists)
    );
    store.update_alias(&alias("alias/x", "c")).await.unwrap();
    assert_eq!(
        store
            .alias("111122223333", "us-east-1", "alias/x")
            .await
            .unwrap()
            .unwrap()
            .target_key_id,
        "c"
    );
    let only_b = store
        .list_aliases(
            "111122223333",
            "us-east-1",
            Some("b"),
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(only_b, vec![alias("alias/y", "b")]);
    let after_x = store
        .list_aliases(
            "111122223333",
            "us-east-1",
            None,
            Page {
                after: Some("alias/x"),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(after_x.len(), 1);
    store
        .delete_alias("111122223333", "us-east-1", "alias/x")
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_alias("111122223333", "us-east-1", "alias/x")
            .await,
        Err(StoreError::NotFound)
    );
    assert!(
        store
            .alias("111122223333", "us-east-1", "alias/x")
            .await
            .unwrap()
            .is_none()
    );
}

/// The lifecycle part of the suite: materials added and removed with the key's metadata in one
/// transaction, rotation history, due-work queries, whole-key deletion, import parameters and
/// the clock offset.
pub async fn lifecycle_suite(store: Arc<dyn Store>) {
    let account = "111122223333";
    store
        .put_account(&AccountRecord {
            account_id: account.into(),
            created_ms: 1,
        })
        .await
        .unwrap();
    let mut k = key("k1", account);
    store.insert_key(&k, &material("k1")).await.unwrap();
    assert_eq!(
        store.key("k1").await.unwrap().unwrap().0.lifecycle,
        KeyLifecycle::default()
    );

    // Lifecycle fields round-trip through update_key.
    k.lifecycle = KeyLifecycle {
        rotation_period_days: Some(90),
        next_rotation_ms: Some(1_000),
        deletion_ms: None,
        pending_window_days: None,
        expiration_model: Some(ExpirationModel::KeyMaterialExpires),
        valid_to_ms: Some(5_000),
    };
    store.update_key(&k).await.unwrap();
    assert_eq!(store.key("k1").await.unwrap().unwrap().0, k);

    // Due work: rotation (Enabled keys only), expiry, deletion.
    assert!(store.keys_due(999).await.unwrap().is_empty());
    assert_eq!(store.keys_due(1_000).await.unwrap(), vec!["k1".to_string()]);
    k.state = KeyState::Disabled;
    store.update_key(&k).await.unwrap();
    assert!(
        store.keys_due(1_000).await.unwrap().is_empty(),
        "disabled keys do not rotate"
    );
    assert_eq!(store.keys_due(5_000).await.unwrap(), vec!["k1".to_string()]);

    // Adding material moves the current id and records the rotation, atomically.
    k.state = KeyState::Enabled;
    k.current_material = MaterialId([2; 32]);
    k.lifecycle.next_rotation_ms = Some(2_000);
    let rotation = RotationRecord {
        key_id: "k1".into(),
        material_id: MaterialId([2; 32]),
        rotation_type: RotationType::OnDemand,
        rotation_ms: 10,
    };
    let m2 = StoredMaterial {
        key_id: "k1".into(),
        material_id: MaterialId([2; 32]),
        wrapped: vec![8],
        created_ms: 10,
    };
    store.add_material(&k, &m2, Some(&rotation)).await.unwrap();
    let (record, materials) = store.key("k1").await.unwrap().unwrap();
    assert_eq!(record, k);
    assert_eq!(materials.len(), 2);
    assert_eq!(store.rotations("k1").await.unwrap(), vec![rotation]);
    // Re-adding an existing material id keeps the stored material.
    store.add_material(&k, &m2, None).await.unwrap();
    assert_eq!(store.key("k1").await.unwrap().unwrap().1.len(), 2);

    // Deleting materials empties the key but keeps it.
    k.state = KeyState::PendingImport;
    store.delete_materials(&k).await.unwrap();
    let (record, materials) = store.key("k1").await.unwrap().unwrap();
    assert_eq!(record.state, KeyState::PendingImport);
    assert!(materials.is_empty());

    // A key without material, import parameters, then deleting the whole key.
    let mut external = key("k2", account);
    external.origin = Origin::External;
    external.state = KeyState::PendingImport;
    store.insert_key_without_material(&external).await.unwrap();
    assert!(store.key("k2").await.unwrap().unwrap().1.is_empty());
    let params = ImportParams {
        token: "aa".into(),
        key_id: "k2".into(),
        wrapping_algorithm: WrappingAlgorithm::RsaAesKeyWrapSha256,
        wrapping_key_spec: WrappingKeySpec::Rsa4096,
        wrapped_private_key: vec![1, 2, 3],
        created_ms: 1,
        expires_ms: 100,
    };
    store.insert_import_params(&params).await.unwrap();
    assert_eq!(
        store.import_params("aa").await.unwrap(),
        Some(params.clone())
    );
    assert!(store.import_params("bb").await.unwrap().is_none());
    assert_eq!(store.delete_expired_import_params(99).await.unwrap(), 0);
    assert_eq!(store.delete_expired_import_params(100).await.unwrap(), 1);
    store.insert_import_params(&params).await.unwrap();

    let alias = AliasRecord {
        account_id: account.into(),
        region: "us-east-1".into(),
        alias_name: "alias/doomed".into(),
        target_key_id: "k2".into(),
        created_ms: 1,
        updated_ms: 1,
    };
    store.insert_alias(&alias).await.unwrap();
    external.state = KeyState::PendingDeletion;
    external.lifecycle.deletion_ms = Some(7_000);
    store.update_key(&external).await.unwrap();
    assert!(
        store
            .keys_due(6_999)
            .await
            .unwrap()
            .iter()
            .all(|id| id != "k2")
    );
    assert!(
        store
            .keys_due(7_000)
            .await
            .unwrap()
            .contains(&"k2".to_string())
    );
    assert_eq!(store.delete_key("k2").await.unwrap(), vec![alias]);
    assert!(store.key("k2").await.unwrap().is_none());
    assert!(store.import_params("aa").await.unwrap().is_none());
    assert!(
        store
            .alias(account, "us-east-1", "alias/doomed")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.delete_key("k2").await, Err(StoreError::NotFound));

    // The clock offset.
    assert_eq!(store.clock_offset_ms().await.unwrap(), 0);
    store.set_clock_offset_ms(86_400_000).await.unwrap();
    store.set_clock_offset_ms(2 * 86_400_000).await.unwrap();
    assert_eq!(store.clock_offset_ms().await.unwrap(), 2 * 86_400_000);
}
