//! The Store conformance suite, run against SQLite. Every backend must pass the same checks.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_core::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, KeyRecord, StoredMaterial, Tag,
};
use trent_core::store::{Page, Store, StoreError};
use trent_crypto::MaterialId;
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin};
use trent_store_sqlite::SqliteStore;

fn key(id: &str, account: &str) -> KeyRecord {
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
    }
}

fn material(id: &str) -> StoredMaterial {
    StoredMaterial {
        key_id: id.into(),
        material_id: MaterialId([1; 32]),
        wrapped: vec![9, 9, 9],
        created_ms: 1,
    }
}

async fn suite(store: Arc<dyn Store>) {
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

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("trent.db")).unwrap();
    suite(Arc::new(store)).await;
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trent.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .put_account(&AccountRecord {
                account_id: "111122223333".into(),
                created_ms: 1,
            })
            .await
            .unwrap();
        store
            .insert_key(&key("k", "111122223333"), &material("k"))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.key("k").await.unwrap().is_some());
}
