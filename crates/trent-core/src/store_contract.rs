//! The `Store` contract: one suite every backend must pass, called by each backend's tests
//! (`trent-store-sqlite`'s `tests/conformance.rs`, `trent-store-postgres`'s `tests/contract.rs`,
//! `tests/memory_store_contract.rs` here) with a fresh, empty store for each part. Failures are
//! assertions, as in any test.
//!
//! Together the parts call every `Store` method: [`suite`] (accounts, access keys, keys,
//! aliases), [`lifecycle_suite`] (materials, rotations, due work, deletion, import parameters,
//! the clock offset), [`identity_suite`] (access-key deletion, IAM documents, sessions),
//! [`grants_suite`], [`constraints_suite`] (missing parent rows, all-or-nothing multi-row
//! changes, what `update_key` may change), [`concurrency_suite`] (racing writers) and
//! [`custom_key_store_suite`].
//!
//! Where the trait names no order, results are compared as sets: each backend may return its
//! own order (SQLite's is its query plan's, PostgreSQL's an `ORDER BY` of its choosing).

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
    AccessKeyRecord, AccountRecord, AliasRecord, CustomKeyStoreRecord, ExpirationModel, GrantRow,
    IamDocument, ImportParams, KeyLifecycle, KeyRecord, RotationRecord, RotationType,
    SessionRecord, StoredMaterial, Tag,
};
use crate::store::{IamWrite, Page, Store, StoreError};

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
        policy_principals: Default::default(),
        tags: vec![Tag {
            key: "a".into(),
            value: "1".into(),
        }],
        current_material: MaterialId([1; 32]),
        multi_region: false,
        lifecycle: Default::default(),
        custody: Default::default(),
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
        principal_id: None,
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
    // A user's key keeps its user's unique id (bound later, as at start-up for old keys).
    let bound = AccessKeyRecord {
        principal_id: Some("AIDAEXAMPLE0000000001".into()),
        ..ak.clone()
    };
    store.put_access_key(&bound).await.unwrap();
    assert_eq!(
        store
            .access_key("AKIA1")
            .await
            .unwrap()
            .unwrap()
            .principal_id,
        bound.principal_id
    );
    store.put_access_key(&ak).await.unwrap();

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
        ..KeyLifecycle::default()
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

    // One material deleted, with the record (its imported materials round-trip).
    k.lifecycle.imported_materials = vec![
        crate::lifecycle::ImportedMaterial {
            material_id: MaterialId([2; 32]),
            state: crate::lifecycle::MaterialState::Current,
            imported: true,
            expiration_model: Some(ExpirationModel::KeyMaterialExpires),
            valid_to_ms: Some(7_000),
            description: Some("a b:c/d_e.f-g".into()),
        },
        crate::lifecycle::ImportedMaterial {
            material_id: MaterialId([3; 32]),
            state: crate::lifecycle::MaterialState::PendingRotation,
            imported: false,
            expiration_model: None,
            valid_to_ms: None,
            description: None,
        },
    ];
    store
        .delete_material(&k, &MaterialId([2; 32]))
        .await
        .unwrap();
    let (record, materials) = store.key("k1").await.unwrap().unwrap();
    assert_eq!(record, k);
    assert_eq!(materials.len(), 1);
    assert_ne!(materials[0].material_id, MaterialId([2; 32]));
    // Deleting an absent material changes only the record.
    k.lifecycle.imported_materials.clear();
    store
        .delete_material(&k, &MaterialId([9; 32]))
        .await
        .unwrap();
    let (record, materials) = store.key("k1").await.unwrap().unwrap();
    assert_eq!(record, k);
    assert_eq!(materials.len(), 1);
    assert_eq!(
        store
            .delete_material(&key("zz", account), &MaterialId([2; 32]))
            .await,
        Err(StoreError::NotFound)
    );

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

    // One-time start-up passes: recorded, recorded again, forgotten; apart from the clock.
    assert!(!store.pass_done("p").await.unwrap());
    store.set_pass_done("p", true).await.unwrap();
    store.set_pass_done("p", true).await.unwrap();
    assert!(store.pass_done("p").await.unwrap());
    assert!(!store.pass_done("q").await.unwrap());
    assert_eq!(store.clock_offset_ms().await.unwrap(), 2 * 86_400_000);
    store.set_pass_done("p", false).await.unwrap();
    assert!(!store.pass_done("p").await.unwrap());

    multi_region_part(store.as_ref(), account).await;
}

/// A multi-Region key of `region` in the family `mrk-…11` whose primary is in `primary`.
fn related(region: &str, primary: &str, account: &str) -> KeyRecord {
    let family = "mrk-11111111111111111111111111111111";
    let mut k = key(&crate::ids::regional_key_id(family, region), account);
    k.region = region.into();
    k.multi_region = true;
    k.lifecycle.primary_region = Some(primary.into());
    k
}

/// `write_keys` (all or nothing), the replica Regions a family's records report, and the
/// transition due date.
async fn multi_region_part(store: &dyn Store, account: &str) {
    use crate::store::KeysWrite;
    let primary = related("us-east-1", "us-east-1", account);
    store
        .insert_key(&primary, &material(&primary.key_id))
        .await
        .unwrap();
    let read = |id: String| async move { store.key(&id).await.unwrap().unwrap() };
    assert!(
        read(primary.key_id.clone())
            .await
            .0
            .lifecycle
            .replica_regions
            .is_empty()
    );

    // A replica with the primary's material history, in one transaction.
    let mut replica = related("eu-west-1", "us-east-1", account);
    replica.state = KeyState::Creating;
    replica.lifecycle.transition_ms = Some(50_000);
    let copied = StoredMaterial {
        key_id: replica.key_id.clone(),
        ..material(&primary.key_id)
    };
    let rotation = RotationRecord {
        key_id: replica.key_id.clone(),
        material_id: MaterialId([1; 32]),
        rotation_type: RotationType::OnDemand,
        rotation_ms: 7,
    };
    store
        .write_keys(&KeysWrite {
            insert: Some(&replica),
            update: &[],
            materials: std::slice::from_ref(&copied),
            rotations: std::slice::from_ref(&rotation),
        })
        .await
        .unwrap();
    let (got, materials) = read(replica.key_id.clone()).await;
    assert_eq!(got.state, KeyState::Creating);
    assert_eq!(got.lifecycle.replica_regions, vec!["eu-west-1".to_string()]);
    assert_eq!(materials, vec![copied.clone()]);
    assert_eq!(
        store.rotations(&replica.key_id).await.unwrap(),
        vec![rotation]
    );
    assert_eq!(
        read(primary.key_id.clone())
            .await
            .0
            .lifecycle
            .replica_regions,
        vec!["eu-west-1".to_string()],
        "the primary lists the new replica"
    );
    assert!(
        store
            .keys_due(50_000)
            .await
            .unwrap()
            .contains(&replica.key_id),
        "a transition is due work"
    );
    assert!(
        !store
            .keys_due(49_999)
            .await
            .unwrap()
            .contains(&replica.key_id)
    );
    // Inserting the same related key again fails.
    assert_eq!(
        store
            .write_keys(&KeysWrite {
                insert: Some(&replica),
                ..KeysWrite::default()
            })
            .await,
        Err(StoreError::AlreadyExists)
    );

    // A change of primary, written to every member at once; an update of a missing key
    // writes nothing.
    let mut new_primary = got.clone();
    new_primary.lifecycle.primary_region = Some("eu-west-1".into());
    new_primary.state = KeyState::Updating;
    let mut old_primary = read(primary.key_id.clone()).await.0;
    old_primary.lifecycle.primary_region = Some("eu-west-1".into());
    let missing = related("ap-south-1", "eu-west-1", account);
    assert_eq!(
        store
            .write_keys(&KeysWrite {
                update: &[old_primary.clone(), missing],
                ..KeysWrite::default()
            })
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        read(primary.key_id.clone())
            .await
            .0
            .lifecycle
            .primary_region
            .as_deref(),
        Some("us-east-1"),
        "a failed write changes nothing"
    );
    store
        .write_keys(&KeysWrite {
            update: &[old_primary, new_primary],
            ..KeysWrite::default()
        })
        .await
        .unwrap();
    let (old, _) = read(primary.key_id.clone()).await;
    assert_eq!(old.lifecycle.replica_regions, vec!["us-east-1".to_string()]);
    let (new, _) = read(replica.key_id.clone()).await;
    assert_eq!(new.state, KeyState::Updating);
    assert_eq!(new.lifecycle.replica_regions, vec!["us-east-1".to_string()]);

    // Deleting a related key removes it from the family.
    store.delete_key(&primary.key_id).await.unwrap();
    assert!(
        read(replica.key_id.clone())
            .await
            .0
            .lifecycle
            .replica_regions
            .is_empty()
    );
    store.delete_key(&replica.key_id).await.unwrap();
}

const ACCOUNT: &str = "111122223333";

async fn with_account(store: &dyn Store) {
    store
        .put_account(&AccountRecord {
            account_id: ACCOUNT.into(),
            created_ms: 1,
        })
        .await
        .unwrap();
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
        body: format!("{{\"id\":\"{id}\"}}"),
        retired_ms: None,
    }
}

fn session(id: &str, expires_ms: i64) -> SessionRecord {
    SessionRecord {
        access_key_id: id.into(),
        account_id: ACCOUNT.into(),
        identity: "root".into(),
        wrapped_secret: vec![1, 2],
        token_sha256: vec![7; 32],
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

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Access-key deletion, IAM documents and STS sessions.
pub async fn identity_suite(store: Arc<dyn Store>) {
    with_account(&*store).await;
    for id in ["AKIAB", "AKIAA", "AKIAC"] {
        store.put_access_key(&access_key(id)).await.unwrap();
    }
    // The upsert replaces everything but the creation date.
    store
        .put_access_key(&AccessKeyRecord {
            wrapped_secret: vec![7],
            active: false,
            created_ms: 50,
            principal_arn: "arn:aws:iam::111122223333:user/other".into(),
            ..access_key("AKIAB")
        })
        .await
        .unwrap();
    let keys = store.access_keys().await.unwrap();
    let b = keys.iter().find(|k| k.access_key_id == "AKIAB").unwrap();
    assert_eq!(b.wrapped_secret, vec![7]);
    assert!(!b.active);
    assert_eq!(b.principal_arn, "arn:aws:iam::111122223333:user/other");
    assert_eq!(b.created_ms, 1, "the upsert does not touch created_ms");
    store.delete_access_key("AKIAA").await.unwrap();
    assert_eq!(
        store.delete_access_key("AKIAA").await,
        Err(StoreError::NotFound)
    );
    let ids = |v: Vec<AccessKeyRecord>| sorted(v.into_iter().map(|k| k.access_key_id).collect());
    assert_eq!(ids(store.access_keys().await.unwrap()), ["AKIAB", "AKIAC"]);
    // The point lookup (read-through): the stored row, inactive ones included; none once deleted.
    assert_eq!(
        store.access_key("AKIAB").await.unwrap().as_ref(),
        Some(b),
        "access_key returns the whole row, inactive keys too"
    );
    assert_eq!(
        store.access_key("AKIAC").await.unwrap(),
        Some(access_key("AKIAC"))
    );
    assert_eq!(store.access_key("AKIAA").await.unwrap(), None, "deleted");
    assert_eq!(store.access_key("AKIAZ").await.unwrap(), None, "never made");

    let doc = |kind: &str, name: &str, body: &str| IamDocument {
        account_id: ACCOUNT.into(),
        kind: kind.into(),
        name: name.into(),
        body: body.into(),
    };
    assert!(store.iam_documents().await.unwrap().is_empty());
    store
        .put_iam_document(&doc("user", "zed", "1"))
        .await
        .unwrap();
    store
        .put_iam_document(&doc("user", "amy", "1"))
        .await
        .unwrap();
    store
        .put_iam_document(&doc("group", "zed", "g"))
        .await
        .unwrap();
    store
        .put_iam_document(&doc("user", "zed", "2"))
        .await
        .unwrap();
    let docs = |v: Vec<IamDocument>| {
        sorted(
            v.into_iter()
                .map(|d| (d.account_id, d.kind, d.name, d.body))
                .collect(),
        )
    };
    assert_eq!(
        docs(store.iam_documents().await.unwrap()),
        docs(vec![
            doc("user", "zed", "2"),
            doc("user", "amy", "1"),
            doc("group", "zed", "g")
        ]),
        "put_iam_document replaces; the kind is part of the identity"
    );
    store
        .delete_iam_document(ACCOUNT, "user", "amy")
        .await
        .unwrap();
    assert_eq!(
        store.delete_iam_document(ACCOUNT, "user", "amy").await,
        Err(StoreError::NotFound)
    );
    store
        .delete_iam_document(ACCOUNT, "group", "zed")
        .await
        .unwrap();
    assert_eq!(
        store.iam_documents().await.unwrap(),
        vec![doc("user", "zed", "2")]
    );
    assert_eq!(
        store
            .delete_iam_document("999999999999", "user", "zed")
            .await,
        Err(StoreError::NotFound),
        "the account is part of the identity"
    );
    // Every store applies conditional IAM writes made from what it holds, in order.
    let write = |name: &str, expected: Option<&str>, body: Option<&str>| IamWrite {
        account_id: ACCOUNT.into(),
        kind: "role".into(),
        name: name.into(),
        expected: expected.map(Into::into),
        body: body.map(Into::into),
    };
    assert!(
        store
            .write_iam_if(&[write("r1", None, Some("1")), write("r2", None, Some("2"))])
            .await
            .unwrap()
    );
    assert!(
        store
            .write_iam_if(&[
                write("r1", Some("1"), Some("1b")),
                write("r2", Some("2"), None)
            ])
            .await
            .unwrap()
    );
    assert_eq!(
        docs(store.iam_documents().await.unwrap()),
        docs(vec![doc("role", "r1", "1b"), doc("user", "zed", "2")])
    );
    store
        .delete_iam_document(ACCOUNT, "role", "r1")
        .await
        .unwrap();

    for (id, expires) in [("s1", 300), ("s2", 100), ("s3", 300), ("s4", 200)] {
        store.insert_session(&session(id, expires)).await.unwrap();
    }
    assert_eq!(
        store.insert_session(&session("s1", 900)).await,
        Err(StoreError::AlreadyExists)
    );
    let ids = |v: Vec<SessionRecord>| sorted(v.into_iter().map(|s| s.access_key_id).collect());
    let all = store.sessions(0).await.unwrap();
    assert_eq!(
        all.iter().find(|s| s.access_key_id == "s2"),
        Some(&session("s2", 100)),
        "a session round-trips"
    );
    assert_eq!(ids(all), ["s1", "s2", "s3", "s4"]);
    assert_eq!(
        ids(store.sessions(100).await.unwrap()),
        ["s1", "s3", "s4"],
        "a session expiring at now is expired"
    );
    assert_eq!(
        store.session("s2", 0).await.unwrap(),
        Some(session("s2", 100)),
        "session returns the whole row"
    );
    assert_eq!(
        store.session("s2", 100).await.unwrap(),
        None,
        "a session expiring at now is not returned"
    );
    assert_eq!(
        store.session("s4", 199).await.unwrap(),
        Some(session("s4", 200))
    );
    assert_eq!(store.session("nope", 0).await.unwrap(), None);
    store.delete_expired_sessions(200).await.unwrap();
    assert_eq!(store.session("s2", 0).await.unwrap(), None, "deleted");
    assert_eq!(ids(store.sessions(0).await.unwrap()), ["s1", "s3"]);
    store.delete_expired_sessions(200).await.unwrap();
    assert_eq!(ids(store.sessions(0).await.unwrap()), ["s1", "s3"]);
}

/// Grants: insertion, tombstones, lookups by key and by retiring principal, deletion with
/// their key.
pub async fn grants_suite(store: Arc<dyn Store>) {
    with_account(&*store).await;
    for id in ["k", "other"] {
        store
            .insert_key(&key(id, ACCOUNT), &material(id))
            .await
            .unwrap();
    }
    let bob = "arn:aws:iam::111122223333:user/bob";
    for (id, key_id, retiring) in [
        ("g2", "k", Some(bob)),
        ("g1", "k", Some(bob)),
        ("g3", "k", Some("arn:aws:iam::111122223333:user/carol")),
        ("g0", "k", None),
        ("g9", "other", Some(bob)),
    ] {
        store
            .insert_grant(&grant_row(id, key_id, retiring))
            .await
            .unwrap();
    }
    assert_eq!(
        store.insert_grant(&grant_row("g1", "other", None)).await,
        Err(StoreError::AlreadyExists),
        "grant ids are unique across keys"
    );
    let ids = |v: Vec<GrantRow>| sorted(v.into_iter().map(|g| g.grant_id).collect::<Vec<_>>());
    let of_k = store.grants_for_key("k").await.unwrap();
    assert!(
        of_k.contains(&grant_row("g2", "k", Some(bob))),
        "a grant round-trips"
    );
    assert!(of_k.contains(&grant_row("g0", "k", None)));
    assert_eq!(ids(of_k), ["g0", "g1", "g2", "g3"]);
    assert!(store.grants_for_key("none").await.unwrap().is_empty());
    assert_eq!(
        ids(store.grants_by_retiring_principal(bob).await.unwrap()),
        ["g1", "g2", "g9"]
    );

    // A body replaced only over the one expected (the start-up binding of grants).
    let g2 = grant_row("g2", "k", Some(bob));
    let bound = GrantRow {
        body: "{\"id\":\"g2\",\"bound\":true}".into(),
        ..g2.clone()
    };
    assert!(store.update_grant_if(&g2, &bound).await.unwrap());
    assert!(
        !store.update_grant_if(&g2, &bound).await.unwrap(),
        "the body is no longer the one expected"
    );
    assert!(
        !store
            .update_grant_if(
                &grant_row("unknown", "k", None),
                &grant_row("unknown", "k", None)
            )
            .await
            .unwrap()
    );
    let of_k = store.grants_for_key("k").await.unwrap();
    assert!(of_k.contains(&bound), "{of_k:?}");

    store.retire_grant("g1", 5).await.unwrap();
    assert_eq!(store.retire_grant("g1", 6).await, Err(StoreError::NotFound));
    let g1 = grant_row("g1", "k", Some(bob));
    assert!(
        !store
            .update_grant_if(
                &g1,
                &GrantRow {
                    body: "{}".into(),
                    ..g1.clone()
                }
            )
            .await
            .unwrap(),
        "a retired grant is not changed"
    );
    assert_eq!(
        store.retire_grant("unknown", 6).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        ids(store.grants_by_retiring_principal(bob).await.unwrap()),
        ["g2", "g9"],
        "retired grants are not retirable"
    );
    let all = store.grants_for_key("k").await.unwrap();
    assert_eq!(all.len(), 4, "retired grants stay as tombstones");
    let g1 = all.iter().find(|g| g.grant_id == "g1").unwrap();
    assert_eq!(
        g1.retired_ms,
        Some(5),
        "the first retirement's time is kept"
    );
    assert_eq!(g1.body, grant_row("g1", "k", None).body);

    store.delete_key("k").await.unwrap();
    assert!(store.grants_for_key("k").await.unwrap().is_empty());
    assert_eq!(
        ids(store.grants_by_retiring_principal(bob).await.unwrap()),
        ["g9"]
    );
    // The id of a grant deleted with its key is free again.
    store
        .insert_grant(&grant_row("g1", "other", None))
        .await
        .unwrap();
}

/// The schema's constraints as a caller sees them: a reference to a missing parent row is
/// `AlreadyExists` (a constraint violation, as SQLite's foreign keys report it), a change to a
/// missing row `NotFound`; multi-row changes happen whole or not at all; `update_key` changes
/// only what can change.
pub async fn constraints_suite(store: Arc<dyn Store>) {
    // No account yet.
    assert_eq!(
        store.insert_key(&key("k", ACCOUNT), &material("k")).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.insert_key_without_material(&key("k", ACCOUNT)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.put_access_key(&access_key("AKIA1")).await,
        Err(StoreError::AlreadyExists)
    );
    assert!(store.access_keys().await.unwrap().is_empty());
    assert!(store.key("k").await.unwrap().is_none());

    with_account(&*store).await;
    store
        .insert_key(&key("k", ACCOUNT), &material("k"))
        .await
        .unwrap();
    assert_eq!(
        store.insert_key_without_material(&key("k", ACCOUNT)).await,
        Err(StoreError::AlreadyExists)
    );
    // A material of a key that does not exist: the key insert is undone with it.
    assert_eq!(
        store
            .insert_key(&key("k2", ACCOUNT), &material_of("nope", 2, 1))
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert!(store.key("k2").await.unwrap().is_none());
    assert_eq!(
        store.insert_alias(&alias_of("alias/x", "nope")).await,
        Err(StoreError::AlreadyExists)
    );
    store.insert_alias(&alias_of("alias/x", "k")).await.unwrap();
    assert_eq!(
        store.update_alias(&alias_of("alias/x", "nope")).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .alias(ACCOUNT, "us-east-1", "alias/x")
            .await
            .unwrap()
            .unwrap()
            .target_key_id,
        "k"
    );
    assert_eq!(
        store.update_alias(&alias_of("alias/none", "k")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.insert_grant(&grant_row("g", "nope", None)).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .insert_import_params(&import_params_for("t", "nope"))
            .await,
        Err(StoreError::AlreadyExists)
    );
    store
        .insert_import_params(&import_params_for("t", "k"))
        .await
        .unwrap();
    assert_eq!(
        store
            .insert_import_params(&import_params_for("t", "k"))
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store
            .add_material(&key("k", ACCOUNT), &material_of("nope", 2, 1), None)
            .await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(store.rotations("nope").await.unwrap(), vec![]);

    // add_material: the same rotation twice violates its primary key, and neither the new
    // material nor the new metadata is kept.
    let k = key("k", ACCOUNT);
    let rotation = RotationRecord {
        key_id: "k".into(),
        material_id: MaterialId([2; 32]),
        rotation_type: RotationType::Automatic,
        rotation_ms: 5,
    };
    store
        .add_material(&k, &material_of("k", 2, 5), Some(&rotation))
        .await
        .unwrap();
    let mut changed = k.clone();
    changed.description = "changed".into();
    changed.current_material = MaterialId([3; 32]);
    assert_eq!(
        store
            .add_material(&changed, &material_of("k", 3, 9), Some(&rotation))
            .await,
        Err(StoreError::AlreadyExists)
    );
    let (record, materials) = store.key("k").await.unwrap().unwrap();
    assert_eq!(record, k);
    assert_eq!(materials.len(), 2);
    assert_eq!(store.rotations("k").await.unwrap(), vec![rotation]);
    // Metadata of a key that does not exist: NotFound, and the material is not added either.
    assert_eq!(
        store
            .add_material(&key("zz", ACCOUNT), &material_of("k", 4, 9), None)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.key("k").await.unwrap().unwrap().1.len(), 2);
    assert_eq!(
        store.delete_materials(&key("zz", ACCOUNT)).await,
        Err(StoreError::NotFound)
    );
    // Re-adding a material id keeps the stored bytes.
    let mut again = material_of("k", 2, 5);
    again.wrapped = vec![42];
    store.add_material(&k, &again, None).await.unwrap();
    let stored = store.key("k").await.unwrap().unwrap().1;
    assert_eq!(
        stored
            .iter()
            .find(|m| m.material_id == MaterialId([2; 32]))
            .unwrap()
            .wrapped,
        vec![2]
    );
    // Materials come oldest first.
    let created: Vec<i64> = stored.iter().map(|m| m.created_ms).collect();
    assert_eq!(created, sorted(created.clone()));

    // update_key changes the description, state, policy, tags, current material and
    // lifecycle, nothing else.
    let mut changed = key("k", ACCOUNT);
    changed.region = "eu-west-1".into();
    changed.created_ms = 99;
    changed.key_spec = KeySpec::Hmac256;
    changed.key_usage = KeyUsage::GenerateVerifyMac;
    changed.origin = Origin::External;
    changed.multi_region = true;
    changed.description = "new".into();
    changed.policy = "{\"new\":1}".into();
    changed.policy_principals = [(
        "arn:aws:iam::111122223333:user/alice".to_string(),
        "AIDAEXAMPLEALICE".to_string(),
    )]
    .into();
    changed.state = KeyState::Disabled;
    changed.current_material = MaterialId([5; 32]);
    changed.tags = vec![];
    store.update_key(&changed).await.unwrap();
    let expected = KeyRecord {
        description: "new".into(),
        policy: "{\"new\":1}".into(),
        policy_principals: changed.policy_principals.clone(),
        state: KeyState::Disabled,
        current_material: MaterialId([5; 32]),
        tags: vec![],
        ..key("k", ACCOUNT)
    };
    assert_eq!(store.key("k").await.unwrap().unwrap().0, expected);

    // delete_key takes the import parameters along and leaves other keys alone.
    store
        .insert_key(&key("k3", ACCOUNT), &material("k3"))
        .await
        .unwrap();
    store
        .insert_alias(&alias_of("alias/y", "k3"))
        .await
        .unwrap();
    assert_eq!(
        store.delete_key("k").await.unwrap(),
        vec![alias_of("alias/x", "k")]
    );
    assert!(store.import_params("t").await.unwrap().is_none());
    assert!(store.rotations("k").await.unwrap().is_empty());
    assert!(store.key("k3").await.unwrap().is_some());
    assert!(
        store
            .alias(ACCOUNT, "us-east-1", "alias/y")
            .await
            .unwrap()
            .is_some()
    );
    // A deleted key's id can be used again, and starts with no history.
    store
        .insert_key(&key("k", ACCOUNT), &material("k"))
        .await
        .unwrap();
    assert_eq!(
        store.key("k").await.unwrap().unwrap().1,
        vec![material("k")]
    );
}

/// How many writers race in each [`concurrency_suite`] check.
const RACERS: usize = 8;

/// Runs `f(0..RACERS)` at once, each on its own task, released together; results in racer
/// order.
async fn race<T, F, Fut>(f: F) -> Vec<crate::store::StoreResult<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = crate::store::StoreResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let gate = Arc::new(tokio::sync::Barrier::new(RACERS));
    let handles: Vec<_> = (0..RACERS)
        .map(|i| {
            let gate = gate.clone();
            let op = f(i);
            tokio::spawn(async move {
                gate.wait().await;
                op.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The one racer that succeeded; every other got `loser`.
fn one_winner<T: std::fmt::Debug>(
    results: &[crate::store::StoreResult<T>],
    loser: StoreError,
    what: &str,
) -> usize {
    let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(
        winners.len(),
        1,
        "{what}: exactly one writer wins: {results:?}"
    );
    for (i, r) in results.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(r.as_ref().err(), Some(&loser), "{what}: the losers' error");
        }
    }
    winners[0]
}

/// Concurrent writers, with the outcome AWS gives one of them: of several creating one key,
/// alias, grant or session, exactly one succeeds and the rest get `AlreadyExists`; of several
/// retiring one grant or deleting one key, one succeeds and the rest get `NotFound`; racing
/// upserts and updates all succeed and leave one writer's whole record; a key deleted while
/// aliases and grants are created on it leaves none of them behind. Backends with a pool run
/// these on several connections at once (use a multi-threaded runtime).
pub async fn concurrency_suite(store: Arc<dyn Store>) {
    // Upserts of one account, access key, IAM document and clock offset.
    let results = race(|i| {
        let store = store.clone();
        async move {
            store
                .put_account(&AccountRecord {
                    account_id: ACCOUNT.into(),
                    created_ms: i64::try_from(i).unwrap(),
                })
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.accounts().await.unwrap().len(), 1);
    let results = race(|i| {
        let store = store.clone();
        async move {
            store
                .put_access_key(&AccessKeyRecord {
                    wrapped_secret: vec![u8::try_from(i).unwrap()],
                    ..access_key("AKIARACE")
                })
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.access_keys().await.unwrap().len(), 1);
    let results = race(|i| {
        let store = store.clone();
        async move {
            store
                .put_iam_document(&IamDocument {
                    account_id: ACCOUNT.into(),
                    kind: "user".into(),
                    name: "racer".into(),
                    body: i.to_string(),
                })
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(store.iam_documents().await.unwrap().len(), 1);
    let results = race(|i| {
        let store = store.clone();
        async move {
            store
                .set_clock_offset_ms(i64::try_from(i).unwrap() * 1000)
                .await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let offset = store.clock_offset_ms().await.unwrap();
    assert!(offset % 1000 == 0 && (0..8000).contains(&offset));

    // Creating one key.
    let results = race(|i| {
        let store = store.clone();
        async move {
            let mut k = key("race", ACCOUNT);
            k.description = format!("writer {i}");
            let mut m = material("race");
            m.wrapped = vec![u8::try_from(i).unwrap()];
            store.insert_key(&k, &m).await
        }
    })
    .await;
    let winner = one_winner(&results, StoreError::AlreadyExists, "CreateKey");
    let (record, materials) = store.key("race").await.unwrap().unwrap();
    assert_eq!(record.description, format!("writer {winner}"));
    assert_eq!(materials.len(), 1);
    assert_eq!(materials[0].wrapped, vec![u8::try_from(winner).unwrap()]);
    store
        .insert_key(&key("race2", ACCOUNT), &material("race2"))
        .await
        .unwrap();

    // Creating one alias, on different keys.
    let results = race(|i| {
        let store = store.clone();
        async move {
            let target = if i % 2 == 0 { "race" } else { "race2" };
            let mut a = alias_of("alias/race", target);
            a.created_ms = i64::try_from(i).unwrap();
            store.insert_alias(&a).await
        }
    })
    .await;
    let winner = one_winner(&results, StoreError::AlreadyExists, "CreateAlias");
    let stored = store
        .alias(ACCOUNT, "us-east-1", "alias/race")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.created_ms, i64::try_from(winner).unwrap());
    assert_eq!(
        stored.target_key_id,
        if winner % 2 == 0 { "race" } else { "race2" }
    );

    // Creating one grant (a grant id is unique), then retiring it.
    let results = race(|i| {
        let store = store.clone();
        async move {
            let mut g = grant_row("g-race", "race", None);
            g.body = i.to_string();
            store.insert_grant(&g).await
        }
    })
    .await;
    let winner = one_winner(&results, StoreError::AlreadyExists, "CreateGrant");
    let grants = store.grants_for_key("race").await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].body, winner.to_string());
    let results = race(|i| {
        let store = store.clone();
        async move {
            store
                .retire_grant("g-race", 100 + i64::try_from(i).unwrap())
                .await
        }
    })
    .await;
    let winner = one_winner(&results, StoreError::NotFound, "RetireGrant");
    assert_eq!(
        store.grants_for_key("race").await.unwrap()[0].retired_ms,
        Some(100 + i64::try_from(winner).unwrap())
    );

    // Creating one session (an access key id is unique).
    let results = race(|i| {
        let store = store.clone();
        async move {
            store
                .insert_session(&session("ASIARACE", 1_000 + i64::try_from(i).unwrap()))
                .await
        }
    })
    .await;
    let winner = one_winner(&results, StoreError::AlreadyExists, "AssumeRole");
    assert_eq!(
        store.sessions(0).await.unwrap(),
        vec![session("ASIARACE", 1_000 + i64::try_from(winner).unwrap())]
    );

    // Updates of one key: every writer succeeds and one writer's whole record is left.
    let results = race(|i| {
        let store = store.clone();
        async move {
            let mut k = key("race", ACCOUNT);
            k.description = format!("update {i}");
            k.policy = format!("{{\"writer\":{i}}}");
            k.lifecycle.next_rotation_ms = Some(i64::try_from(i).unwrap());
            store.update_key(&k).await
        }
    })
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let record = store.key("race").await.unwrap().unwrap().0;
    let writer = record.description.trim_start_matches("update ").to_string();
    assert_eq!(record.policy, format!("{{\"writer\":{writer}}}"));
    assert_eq!(
        record.lifecycle.next_rotation_ms.map(|n| n.to_string()),
        Some(writer)
    );

    // Rotating one key: the same rotation (material id) is recorded once.
    let results = race(|i| {
        let store = store.clone();
        async move {
            let mut k = key("race", ACCOUNT);
            k.current_material = MaterialId([2; 32]);
            k.description = format!("rotated by {i}");
            let rotation = RotationRecord {
                key_id: "race".into(),
                material_id: MaterialId([2; 32]),
                rotation_type: RotationType::Automatic,
                rotation_ms: i64::try_from(i).unwrap(),
            };
            store
                .add_material(&k, &material_of("race", 2, 10), Some(&rotation))
                .await
        }
    })
    .await;
    let winner = one_winner(&results, StoreError::AlreadyExists, "RotateKeyOnDemand");
    let (record, materials) = store.key("race").await.unwrap().unwrap();
    assert_eq!(record.description, format!("rotated by {winner}"));
    assert_eq!(materials.len(), 2);
    assert_eq!(store.rotations("race").await.unwrap().len(), 1);

    // Deleting one key while aliases and grants are created on it: one deletion succeeds, and
    // whatever was created before it went with it; whatever came after failed.
    let results = race(|i| {
        let store = store.clone();
        async move {
            match i {
                0 | 1 => store.delete_key("race").await.map(|a| Some(a.len())),
                i if i % 2 == 0 => store
                    .insert_alias(&alias_of(&format!("alias/late-{i}"), "race"))
                    .await
                    .map(|()| None),
                i => store
                    .insert_grant(&grant_row(&format!("g-late-{i}"), "race", None))
                    .await
                    .map(|()| None),
            }
        }
    })
    .await;
    let deletions = &results[..2];
    let winner = one_winner(deletions, StoreError::NotFound, "DeleteKey");
    for r in &results[2..] {
        assert!(
            matches!(r, Ok(None) | Err(StoreError::AlreadyExists)),
            "a creation on a key being deleted succeeds (before) or fails (after): {r:?}"
        );
    }
    let aliases_created = (2..RACERS)
        .filter(|i| i % 2 == 0 && results[*i].is_ok())
        .count();
    let removed = deletions[winner].as_ref().unwrap().unwrap();
    // The alias/race alias may point at this key too.
    assert!(removed == aliases_created || removed == aliases_created + 1);
    assert!(store.key("race").await.unwrap().is_none());
    assert!(store.grants_for_key("race").await.unwrap().is_empty());
    assert!(
        store
            .list_aliases(
                ACCOUNT,
                "us-east-1",
                Some("race"),
                Page {
                    after: None,
                    limit: 100
                }
            )
            .await
            .unwrap()
            .is_empty(),
        "no alias is left pointing at a deleted key"
    );
}

/// The change feed and step claims (`feed.rs`, `background.rs`). `other` is a second handle on
/// the same database (another node) for a store that is [`Store::shared`]; a store one process
/// uses has no feed and grants every claim.
pub async fn feed_suite(store: Arc<dyn Store>, other: Option<Arc<dyn Store>>) {
    let Some(other) = other.filter(|_| store.shared()) else {
        assert!(
            !store.shared(),
            "a shared store's feed needs a second handle to check"
        );
        with_account(&*store).await;
        store
            .insert_key(&key("k", ACCOUNT), &material("k"))
            .await
            .unwrap();
        assert_eq!(store.last_change().await.unwrap(), 0);
        assert!(store.changes_after(0, 100).await.unwrap().is_empty());
        assert_eq!(store.oldest_change().await.unwrap(), None);
        assert!(!store.take_late_outcomes());
        assert!(store.claim_step("k", 5).await.unwrap());
        assert!(store.claim_step("k", 5).await.unwrap());
        return;
    };
    let start = store.last_change().await.unwrap();
    with_account(&*store).await;
    store
        .insert_key(&key("k", ACCOUNT), &material("k"))
        .await
        .unwrap();
    let mut changed = key("k", ACCOUNT);
    changed.description = "changed".into();
    other.update_key(&changed).await.unwrap();
    // The write wakes a waiting node long before the wait's bound (PostgreSQL: NOTIFY).
    let waited = std::time::Instant::now();
    store
        .wait_for_changes(std::time::Duration::from_secs(10))
        .await;
    assert!(waited.elapsed() < std::time::Duration::from_secs(5));

    // Every written row is in the feed, in id order, each marked own by the handle that wrote it.
    let mine = store.changes_after(start, 100).await.unwrap();
    let theirs = other.changes_after(start, 100).await.unwrap();
    assert_eq!(mine.len(), theirs.len());
    assert!(mine.windows(2).all(|w| w[0].id < w[1].id));
    let of = |changes: &[crate::model::Change], source: &str, own: bool| {
        changes
            .iter()
            .filter(|c| c.source == source && c.own == own)
            .map(|c| (c.account_id.clone(), c.key_id.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&mine, "accounts", true), [(Some(ACCOUNT.into()), None)]);
    assert_eq!(
        of(&mine, "key_materials", true),
        [(None, Some("k".to_string()))]
    );
    let k = (Some(ACCOUNT.to_string()), Some("k".to_string()));
    assert_eq!(
        of(&mine, "keys", true),
        vec![k.clone()],
        "the insert, by this handle"
    );
    assert_eq!(
        of(&mine, "keys", false),
        [k.clone(), k.clone()],
        "the update, by the other handle: the old row and the new"
    );
    assert_eq!(of(&theirs, "keys", true).len(), 2);
    let last = store.last_change().await.unwrap();
    assert_eq!(Some(last), mine.last().map(|c| c.id));
    assert!(store.changes_after(last, 100).await.unwrap().is_empty());
    assert_eq!(
        store.changes_after(start, 2).await.unwrap().len(),
        2,
        "limit"
    );
    store.prune_changes(0).await.unwrap();
    assert_eq!(
        store.changes_after(start, 100).await.unwrap().len(),
        mine.len()
    );
    let first = mine.first().map(|c| c.id);
    assert!(
        store
            .oldest_change()
            .await
            .unwrap()
            .is_some_and(|o| Some(o) <= first)
    );
    // Pruning everything keeps the newest change: the oldest kept one tells a node that was
    // away whether it missed changes (`feed.rs`).
    store.prune_changes(i64::MAX).await.unwrap();
    let kept = store.changes_after(start, 100).await.unwrap();
    assert_eq!(kept.iter().map(|c| c.id).collect::<Vec<_>>(), [last]);
    assert_eq!(store.oldest_change().await.unwrap(), Some(last));
    // Every call above was answered in time: no write's outcome is left for the feed.
    assert!(!store.take_late_outcomes() && !other.take_late_outcomes());

    // A conditional update writes only over the record it was computed from: of two nodes
    // changing one key from the same read, the second is told to read again.
    let (stored, _) = store.key("k").await.unwrap().unwrap();
    let mut mine = stored.clone();
    mine.description = "mine".into();
    let mut theirs = stored.clone();
    theirs.description = "theirs".into();
    assert!(store.update_key_if(&stored, &mine).await.unwrap());
    assert!(!other.update_key_if(&stored, &theirs).await.unwrap());
    assert_eq!(store.key("k").await.unwrap().unwrap().0.description, "mine");
    assert!(other.update_key_if(&mine, &theirs).await.unwrap());
    assert_eq!(
        other
            .update_key_if(&key("nope", ACCOUNT), &key("nope", ACCOUNT))
            .await,
        Err(StoreError::NotFound)
    );

    // Conditional IAM writes likewise: of two nodes changing one entity from the same read,
    // the second is told to read again and nothing of its change is written; nor may two
    // nodes both create one entity.
    let write = |name: &str, expected: Option<&str>, body: Option<&str>| IamWrite {
        account_id: ACCOUNT.into(),
        kind: "user".into(),
        name: name.into(),
        expected: expected.map(Into::into),
        body: body.map(Into::into),
    };
    let body_of = |docs: Vec<IamDocument>, name: &str| {
        docs.into_iter()
            .find(|d| d.kind == "user" && d.name == name)
            .map(|d| d.body)
    };
    assert!(
        store
            .write_iam_if(&[write("u", None, Some("0"))])
            .await
            .unwrap()
    );
    assert!(
        !other
            .write_iam_if(&[write("u", None, Some("x"))])
            .await
            .unwrap()
    );
    assert!(
        store
            .write_iam_if(&[write("u", Some("0"), Some("mine"))])
            .await
            .unwrap()
    );
    assert!(
        !other
            .write_iam_if(&[
                write("v", None, Some("v")),
                write("u", Some("0"), Some("theirs"))
            ])
            .await
            .unwrap()
    );
    let docs = other.iam_documents().await.unwrap();
    assert_eq!(body_of(docs.clone(), "u").as_deref(), Some("mine"));
    assert_eq!(body_of(docs, "v"), None, "a refused write writes nothing");
    assert!(
        !other
            .write_iam_if(&[write("u", Some("0"), None)])
            .await
            .unwrap()
    );
    assert!(
        other
            .write_iam_if(&[write("u", Some("mine"), None)])
            .await
            .unwrap()
    );
    assert_eq!(body_of(store.iam_documents().await.unwrap(), "u"), None);

    // Of nodes claiming one step at once, exactly one gets it; its holder may claim it again.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let s = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move { (i % 2, s.claim_step("k", 100).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    for r in racers {
        let (handle, won) = r.await.unwrap();
        if won {
            winners.push(handle);
        }
    }
    assert!(!winners.is_empty(), "someone claims the step");
    assert!(
        winners.iter().all(|w| *w == winners[0]),
        "only one node (handle) wins: {winners:?}"
    );
    let (holder, rival) = if winners[0] == 0 {
        (&store, &other)
    } else {
        (&other, &store)
    };
    assert!(
        holder.claim_step("k", 100).await.unwrap(),
        "the holder retries"
    );
    assert!(
        !rival.claim_step("k", 100).await.unwrap(),
        "within the lease"
    );
    assert!(
        rival.claim_step("k", 200).await.unwrap(),
        "the next due date is a new step"
    );
    assert!(!holder.claim_step("k", 200).await.unwrap());
}

/// A custom key store record (for contract checks).
pub fn custom_key_store(id: &str, account: &str, region: &str, name: &str) -> CustomKeyStoreRecord {
    CustomKeyStoreRecord {
        account_id: account.into(),
        region: region.into(),
        id: id.into(),
        name: name.into(),
        store_type: "AWS_CLOUDHSM".into(),
        cluster_id: format!("cluster-{}", &id[4..]),
        trust_anchor_certificate: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
            .into(),
        wrapped_password: vec![1, 2, 3, 0, 255],
        connection_state: "DISCONNECTED".into(),
        connection_error_code: None,
        created_ms: 1_700_000_000_123,
    }
}

/// Custom key stores: insert, list per account and Region, update (state, error code,
/// password, name), the unique id and (account, Region, name), delete.
pub async fn custom_key_store_suite(store: Arc<dyn Store>) {
    let a = custom_key_store(
        "cks-0000000000000000a",
        "111122223333",
        "us-east-1",
        "alpha",
    );
    let b = custom_key_store("cks-0000000000000000b", "111122223333", "us-east-1", "beta");
    let other_region = custom_key_store(
        "cks-0000000000000000c",
        "111122223333",
        "eu-west-1",
        "alpha",
    );
    let other_account = custom_key_store(
        "cks-0000000000000000d",
        "444455556666",
        "us-east-1",
        "alpha",
    );
    for r in [&a, &b, &other_region, &other_account] {
        store.insert_custom_key_store(r).await.unwrap();
    }
    // Every Region an account holds something in (service-linked role deletion looks there).
    assert_eq!(
        store.regions_in_use("111122223333").await.unwrap(),
        ["eu-west-1", "us-east-1"]
    );
    assert!(
        store
            .regions_in_use("999999999999")
            .await
            .unwrap()
            .is_empty()
    );
    let mut listed = store
        .custom_key_stores("111122223333", "us-east-1")
        .await
        .unwrap();
    listed.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(listed, vec![a.clone(), b.clone()]);
    assert_eq!(
        store
            .custom_key_stores("111122223333", "eu-west-1")
            .await
            .unwrap(),
        vec![other_region.clone()]
    );
    assert!(
        store
            .custom_key_stores("999999999999", "us-east-1")
            .await
            .unwrap()
            .is_empty()
    );

    // By cluster: every account and Region (the one-store-per-cluster rule is service-wide).
    let mut shared = custom_key_store(
        "cks-0000000000000000e",
        "444455556666",
        "eu-west-1",
        "epsilon",
    );
    shared.cluster_id = a.cluster_id.clone();
    store.insert_custom_key_store(&shared).await.unwrap();
    let mut by_cluster = store
        .custom_key_stores_by_cluster(&a.cluster_id)
        .await
        .unwrap();
    by_cluster.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(by_cluster, vec![a.clone(), shared.clone()]);
    assert!(
        store
            .custom_key_stores_by_cluster("cluster-none0000000")
            .await
            .unwrap()
            .is_empty()
    );
    store.delete_custom_key_store(&shared.id).await.unwrap();

    // The id and the name within an account and Region are unique.
    let same_id = custom_key_store(
        "cks-0000000000000000a",
        "111122223333",
        "us-east-1",
        "gamma",
    );
    assert_eq!(
        store.insert_custom_key_store(&same_id).await,
        Err(StoreError::AlreadyExists)
    );
    let same_name = custom_key_store("cks-0000000000000000e", "111122223333", "us-east-1", "beta");
    assert_eq!(
        store.insert_custom_key_store(&same_name).await,
        Err(StoreError::AlreadyExists)
    );

    // Every field an update may change round-trips, the error code's absence too.
    let mut changed = a.clone();
    changed.name = "alpha-2".into();
    changed.connection_state = "FAILED".into();
    changed.connection_error_code = Some("INVALID_CREDENTIALS".into());
    changed.wrapped_password = vec![9; 40];
    changed.cluster_id = "cluster-234567abcdefg".into();
    store.update_custom_key_store(&changed).await.unwrap();
    let now = store
        .custom_key_stores("111122223333", "us-east-1")
        .await
        .unwrap();
    assert!(now.contains(&changed));
    changed.connection_state = "CONNECTED".into();
    changed.connection_error_code = None;
    store.update_custom_key_store(&changed).await.unwrap();
    assert!(
        store
            .custom_key_stores("111122223333", "us-east-1")
            .await
            .unwrap()
            .contains(&changed)
    );
    let mut clash = changed.clone();
    clash.name = "beta".into();
    assert_eq!(
        store.update_custom_key_store(&clash).await,
        Err(StoreError::AlreadyExists)
    );
    let missing = custom_key_store("cks-0000000000000000f", "111122223333", "us-east-1", "x");
    assert_eq!(
        store.update_custom_key_store(&missing).await,
        Err(StoreError::NotFound)
    );

    store.delete_custom_key_store(&a.id).await.unwrap();
    assert_eq!(
        store.delete_custom_key_store(&a.id).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store
            .custom_key_stores("111122223333", "us-east-1")
            .await
            .unwrap(),
        vec![b.clone()]
    );
    // A deleted store's name is free again.
    let reused = custom_key_store(
        "cks-00000000000000010",
        "111122223333",
        "us-east-1",
        "alpha-2",
    );
    store.insert_custom_key_store(&reused).await.unwrap();

    // Keys held in a store: the store id persists (the node-local part of the custody does
    // not), and the store's keys are listed in key id order until deleted.
    store
        .put_account(&AccountRecord {
            account_id: "111122223333".into(),
            created_ms: 1,
        })
        .await
        .unwrap();
    let held = |id: &str| KeyRecord {
        origin: Origin::AwsCloudHsm,
        custody: crate::model::KeyCustody::CloudHsm(crate::model::StoreHeld {
            custom_key_store_id: b.id.clone(),
            ..Default::default()
        }),
        ..key(id, "111122223333")
    };
    for k in [
        held("held-2"),
        held("held-1"),
        key("built-in", "111122223333"),
    ] {
        store.insert_key(&k, &material(&k.key_id)).await.unwrap();
    }
    assert_eq!(
        store.custom_key_store_keys(&b.id).await.unwrap(),
        ["held-1", "held-2"]
    );
    assert!(store.custom_key_store_keys(&a.id).await.unwrap().is_empty());
    assert_eq!(
        store.key("held-1").await.unwrap().unwrap().0,
        held("held-1")
    );
    assert_eq!(
        store.key("built-in").await.unwrap().unwrap().0.custody,
        crate::model::KeyCustody::BuiltIn
    );
    store.delete_key("held-2").await.unwrap();
    assert_eq!(
        store.custom_key_store_keys(&b.id).await.unwrap(),
        ["held-1"]
    );

    // Token keys to destroy at a store's next connect: per store, in label order, recorded
    // once however often they are added, removed idempotently, durable like any row.
    assert!(
        store
            .pending_token_destructions(&b.id)
            .await
            .unwrap()
            .is_empty()
    );
    for label in ["held-2", "held-0", "held-2"] {
        store
            .add_pending_token_destruction(&b.id, label, 1_000)
            .await
            .unwrap();
    }
    store
        .add_pending_token_destruction(&a.id, "held-9", 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.pending_token_destructions(&b.id).await.unwrap(),
        ["held-0", "held-2"]
    );
    assert_eq!(
        store.pending_token_destructions(&a.id).await.unwrap(),
        ["held-9"]
    );
    store
        .remove_pending_token_destruction(&b.id, "held-0")
        .await
        .unwrap();
    store
        .remove_pending_token_destruction(&b.id, "held-0")
        .await
        .unwrap();
    assert_eq!(
        store.pending_token_destructions(&b.id).await.unwrap(),
        ["held-2"]
    );
}
