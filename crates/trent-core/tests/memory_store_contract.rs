//! The store contract (`trent_core::store_contract`, the suite SQLite runs too), run against
//! `MemoryStore`, plus the finer points of SQLite's behaviour `MemoryStore` reproduces: missing
//! parent rows, result order where the SQL has no `ORDER BY`, atomic multi-row changes, session
//! expiry and grant tombstones.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_core::memory_store::MemoryStore;
use trent_core::model::{
    AccessKeyRecord, AccountRecord, AliasRecord, ExpirationModel, GrantRow, IamDocument,
    ImportParams, KeyLifecycle, KeyRecord, SessionRecord, StoredMaterial,
};
use trent_core::store::{Page, Store, StoreError};
use trent_core::store_contract::{
    concurrency_suite, constraints_suite, custom_key_store_suite, feed_suite, grants_suite,
    identity_suite, key, lifecycle_suite, material, suite,
};
use trent_crypto::MaterialId;
use trent_crypto::import::{WrappingAlgorithm, WrappingKeySpec};
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin};

const ACCOUNT: &str = "111122223333";

#[tokio::test]
async fn memory_store_passes_the_conformance_suite() {
    suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn memory_store_passes_the_custom_key_store_suite() {
    custom_key_store_suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn memory_store_passes_the_lifecycle_conformance_suite() {
    lifecycle_suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn memory_store_passes_the_identity_grants_and_constraints_suites() {
    identity_suite(Arc::new(MemoryStore::new())).await;
    grants_suite(Arc::new(MemoryStore::new())).await;
    feed_suite(Arc::new(MemoryStore::new()), None).await;
    constraints_suite(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_concurrency_suite() {
    concurrency_suite(Arc::new(MemoryStore::new())).await;
}

// The finer points: what SQLite's schema and query plans make observable.

async fn with_account() -> MemoryStore {
    let store = MemoryStore::new();
    store
        .put_account(&AccountRecord {
            account_id: ACCOUNT.into(),
            created_ms: 1,
        })
        .await
        .unwrap();
    store
}

fn access_key(id: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key_id: id.into(),
        account_id: ACCOUNT.into(),
        principal_arn: format!("arn:aws:iam::{ACCOUNT}:user/{id}"),
        principal_id: None,
        wrapped_secret: vec![1],
        active: true,
        created_ms: 1,
    }
}

fn material_of(key_id: &str, id: u8, created_ms: i64) -> StoredMaterial {
    StoredMaterial {
        key_id: key_id.into(),
        material_id: MaterialId([id; 32]),
        wrapped: vec![id],
        created_ms,
    }
}

fn alias_of(name: &str, target: &str) -> AliasRecord {
    AliasRecord {
        account_id: ACCOUNT.into(),
        region: "us-east-1".into(),
        alias_name: name.into(),
        target_key_id: target.into(),
        created_ms: 1,
        updated_ms: 1,
    }
}

fn grant_row(id: &str, key_id: &str, retiring: Option<&str>) -> GrantRow {
    GrantRow {
        grant_id: id.into(),
        key_id: key_id.into(),
        retiring_principal: retiring.map(str::to_string),
        body: "{}".into(),
        retired_ms: None,
    }
}

fn session(id: &str, expires_ms: i64) -> SessionRecord {
    SessionRecord {
        access_key_id: id.into(),
        account_id: ACCOUNT.into(),
        identity: "root".into(),
        wrapped_secret: vec![1],
        token_sha256: vec![0; 32],
        expires_ms,
        created_ms: 1,
    }
}

fn import_params_for(token: &str, key_id: &str) -> ImportParams {
    ImportParams {
        token: token.into(),
        key_id: key_id.into(),
        wrapping_algorithm: WrappingAlgorithm::RsaAesKeyWrapSha256,
        wrapping_key_spec: WrappingKeySpec::Rsa4096,
        wrapped_private_key: vec![1],
        created_ms: 1,
        expires_ms: 100,
    }
}

fn page(after: Option<&str>, limit: usize) -> Page<'_> {
    Page { after, limit }
}

#[tokio::test]
async fn update_key_writes_only_what_can_change() {
    let store = with_account().await;
    store
        .insert_key(&key("k", ACCOUNT), &material("k"))
        .await
        .unwrap();
    let mut changed = key("k", ACCOUNT);
    changed.region = "eu-west-1".into();
    changed.created_ms = 99;
    changed.key_spec = KeySpec::Hmac256;
    changed.key_usage = KeyUsage::GenerateVerifyMac;
    changed.origin = Origin::External;
    changed.multi_region = true;
    changed.description = "new".into();
    changed.policy = "{\"new\":1}".into();
    changed.state = KeyState::Disabled;
    changed.current_material = MaterialId([5; 32]);
    store.update_key(&changed).await.unwrap();
    let expected = KeyRecord {
        description: "new".into(),
        policy: "{\"new\":1}".into(),
        state: KeyState::Disabled,
        current_material: MaterialId([5; 32]),
        ..key("k", ACCOUNT)
    };
    assert_eq!(store.key("k").await.unwrap().unwrap().0, expected);
}

#[tokio::test]
async fn materials_come_in_creation_order_then_by_material_id() {
    let store = with_account().await;
    let k = key("k", ACCOUNT);
    store.insert_key(&k, &material_of("k", 9, 5)).await.unwrap();
    for (id, created) in [(3, 5), (1, 7), (5, 2)] {
        store
            .add_material(&k, &material_of("k", id, created), None)
            .await
            .unwrap();
    }
    let ids: Vec<u8> = store
        .key("k")
        .await
        .unwrap()
        .unwrap()
        .1
        .iter()
        .map(|m| m.material_id.0[0])
        .collect();
    assert_eq!(ids, vec![5, 3, 9, 1]);
    // INSERT OR IGNORE: re-adding keeps the stored bytes.
    let mut again = material_of("k", 3, 5);
    again.wrapped = vec![42];
    store.add_material(&k, &again, None).await.unwrap();
    let (_, materials) = store.key("k").await.unwrap().unwrap();
    assert_eq!(materials[1].wrapped, vec![3]);
}

#[tokio::test]
async fn unordered_lists_come_in_insertion_order_and_upserts_keep_their_place() {
    let store = with_account().await;
    for id in ["AKIAB", "AKIAA", "AKIAC"] {
        store.put_access_key(&access_key(id)).await.unwrap();
    }
    store
        .put_access_key(&AccessKeyRecord {
            wrapped_secret: vec![7],
            active: false,
            created_ms: 50,
            ..access_key("AKIAB")
        })
        .await
        .unwrap();
    let keys = store.access_keys().await.unwrap();
    let ids: Vec<&str> = keys.iter().map(|k| k.access_key_id.as_str()).collect();
    assert_eq!(ids, vec!["AKIAB", "AKIAA", "AKIAC"]);
    assert_eq!(keys[0].wrapped_secret, vec![7]);
    assert!(!keys[0].active);
    assert_eq!(
        keys[0].created_ms, 1,
        "the upsert does not touch created_ms"
    );
    store.delete_access_key("AKIAA").await.unwrap();
    assert_eq!(
        store.delete_access_key("AKIAA").await,
        Err(StoreError::NotFound)
    );
    store.put_access_key(&access_key("AKIAA")).await.unwrap();
    let ids: Vec<String> = store
        .access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.access_key_id)
        .collect();
    assert_eq!(ids, vec!["AKIAB", "AKIAC", "AKIAA"]);

    let doc = |name: &str, body: &str| IamDocument {
        account_id: ACCOUNT.into(),
        kind: "user".into(),
        name: name.into(),
        body: body.into(),
    };
    store.put_iam_document(&doc("zed", "1")).await.unwrap();
    store.put_iam_document(&doc("amy", "1")).await.unwrap();
    store.put_iam_document(&doc("zed", "2")).await.unwrap();
    assert_eq!(
        store.iam_documents().await.unwrap(),
        vec![doc("zed", "2"), doc("amy", "1")]
    );
    store
        .delete_iam_document(ACCOUNT, "user", "amy")
        .await
        .unwrap();
    assert_eq!(
        store.delete_iam_document(ACCOUNT, "user", "amy").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete_iam_document(ACCOUNT, "group", "zed").await,
        Err(StoreError::NotFound),
        "the kind is part of the identity"
    );
}

#[tokio::test]
async fn sessions_are_filtered_and_ordered_by_expiry() {
    let store = MemoryStore::new();
    for (id, expires) in [("s1", 300), ("s2", 100), ("s3", 300), ("s4", 200)] {
        store.insert_session(&session(id, expires)).await.unwrap();
    }
    assert_eq!(
        store.insert_session(&session("s1", 900)).await,
        Err(StoreError::AlreadyExists)
    );
    let ids = |v: Vec<SessionRecord>| v.into_iter().map(|s| s.access_key_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.sessions(0).await.unwrap()),
        ["s2", "s4", "s1", "s3"]
    );
    assert_eq!(
        ids(store.sessions(100).await.unwrap()),
        ["s4", "s1", "s3"],
        "a session expiring at now is expired"
    );
    store.delete_expired_sessions(200).await.unwrap();
    assert_eq!(ids(store.sessions(0).await.unwrap()), ["s1", "s3"]);
}

#[tokio::test]
async fn grants_keep_tombstones_and_go_with_their_key() {
    let store = with_account().await;
    store
        .insert_key(&key("k", ACCOUNT), &material("k"))
        .await
        .unwrap();
    let bob = "arn:aws:iam::111122223333:user/bob";
    for (id, retiring) in [
        ("g2", Some(bob)),
        ("g1", Some(bob)),
        ("g3", Some("arn:aws:iam::111122223333:user/carol")),
        ("g0", None),
    ] {
        store
            .insert_grant(&grant_row(id, "k", retiring))
            .await
            .unwrap();
    }
    assert_eq!(
        store.insert_grant(&grant_row("g1", "k", None)).await,
        Err(StoreError::AlreadyExists)
    );
    let ids = |v: Vec<GrantRow>| v.into_iter().map(|g| g.grant_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.grants_for_key("k").await.unwrap()),
        ["g2", "g1", "g3", "g0"]
    );
    assert_eq!(
        ids(store.grants_by_retiring_principal(bob).await.unwrap()),
        ["g1", "g2"]
    );

    store.retire_grant("g1", 5).await.unwrap();
    assert_eq!(store.retire_grant("g1", 6).await, Err(StoreError::NotFound));
    assert_eq!(
        store.retire_grant("unknown", 6).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        ids(store.grants_by_retiring_principal(bob).await.unwrap()),
        ["g2"]
    );
    let all = store.grants_for_key("k").await.unwrap();
    assert_eq!(all.len(), 4, "retired grants stay as tombstones");
    assert_eq!(all[1].retired_ms, Some(5));

    store.delete_key("k").await.unwrap();
    assert!(store.grants_for_key("k").await.unwrap().is_empty());
    assert!(
        store
            .grants_by_retiring_principal(bob)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn due_keys_and_key_pages_are_in_key_id_order() {
    let store = with_account().await;
    let with = |id: &str, state: KeyState, lifecycle: KeyLifecycle| KeyRecord {
        state,
        lifecycle,
        ..key(id, ACCOUNT)
    };
    let keys = [
        with(
            "c",
            KeyState::Enabled,
            KeyLifecycle {
                next_rotation_ms: Some(10),
                ..Default::default()
            },
        ),
        with(
            "a",
            KeyState::PendingDeletion,
            KeyLifecycle {
                deletion_ms: Some(10),
                ..Default::default()
            },
        ),
        with(
            "d",
            KeyState::Disabled,
            KeyLifecycle {
                next_rotation_ms: Some(10),
                ..Default::default()
            },
        ),
        with(
            "b",
            KeyState::Disabled,
            KeyLifecycle {
                valid_to_ms: Some(10),
                expiration_model: Some(ExpirationModel::KeyMaterialExpires),
                ..Default::default()
            },
        ),
    ];
    for k in &keys {
        store.insert_key_without_material(k).await.unwrap();
    }
    assert_eq!(store.key("b").await.unwrap().unwrap().0, keys[3]);
    assert!(store.keys_due(9).await.unwrap().is_empty());
    assert_eq!(store.keys_due(10).await.unwrap(), ["a", "b", "c"]);

    assert!(
        store
            .list_keys(ACCOUNT, "us-east-1", page(None, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_keys(ACCOUNT, "us-east-1", page(Some(""), 3))
            .await
            .unwrap(),
        ["a", "b", "c"]
    );
    assert_eq!(
        store
            .list_keys(ACCOUNT, "us-east-1", page(Some("bb"), 10))
            .await
            .unwrap(),
        ["c", "d"],
        "the marker need not be a key id"
    );
    assert!(
        store
            .list_keys("999999999999", "us-east-1", page(None, 10))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn aliases_list_by_name_and_delete_key_returns_them_in_insertion_order() {
    let store = with_account().await;
    for id in ["k", "k2"] {
        store
            .insert_key(&key(id, ACCOUNT), &material(id))
            .await
            .unwrap();
    }
    for name in ["alias/z", "alias/a", "alias/m"] {
        store.insert_alias(&alias_of(name, "k")).await.unwrap();
    }
    store
        .insert_alias(&alias_of("alias/other", "k2"))
        .await
        .unwrap();
    let names = |v: Vec<AliasRecord>| v.into_iter().map(|a| a.alias_name).collect::<Vec<_>>();
    assert_eq!(
        names(
            store
                .list_aliases(ACCOUNT, "us-east-1", None, page(None, 10))
                .await
                .unwrap()
        ),
        ["alias/a", "alias/m", "alias/other", "alias/z"]
    );
    assert_eq!(
        names(
            store
                .list_aliases(ACCOUNT, "us-east-1", Some("k"), page(Some("alias/a"), 1))
                .await
                .unwrap()
        ),
        ["alias/m"]
    );
    store
        .insert_import_params(&import_params_for("t", "k"))
        .await
        .unwrap();
    assert_eq!(
        names(store.delete_key("k").await.unwrap()),
        ["alias/z", "alias/a", "alias/m"]
    );
    assert!(store.import_params("t").await.unwrap().is_none());
    assert_eq!(
        names(
            store
                .list_aliases(ACCOUNT, "us-east-1", None, page(None, 10))
                .await
                .unwrap()
        ),
        ["alias/other"]
    );
    assert!(store.key("k2").await.unwrap().is_some());
}
