//! Several key materials per imported symmetric key (issue 11): ImportKeyMaterial with
//! `ImportType` NEW_KEY_MATERIAL / EXISTING_KEY_MATERIAL, `KeyMaterialId` and
//! `KeyMaterialDescription`; RotateKeyOnDemand to the material PENDING_ROTATION; ListKeyRotations
//! with `KeyMaterialState`/`ImportState`; DeleteImportedKeyMaterial of one material; expiry of
//! one material; old ciphertexts decrypting under the material they name. Driven through `Kms`
//! over `MemoryStore`; the material is wrapped client-side with AWS-LC as a caller would.
//! Expected messages are AWS's recorded ones (`test_import_key_material_raises_if_there_is_
//! already_key_material_pending`, `test_rotate_key_on_demand_raises_for_no_pending_key_material`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use common::*;
use trent_core::import::ImportKeyMaterialInput;
use trent_core::keys::CreateKeyInput;
use trent_core::lifecycle::MaterialState;
use trent_core::model::KeyRecord;
use trent_core::multi_region::ReplicateKeyInput;
use trent_core::rotation::RotationEntry;
use trent_core::{Caller, KmsError};
use trent_crypto::MaterialId;
use trent_crypto::spec::{KeyState, WireEnum};

async fn external_key(env: &Env) -> KeyRecord {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                origin: Some("EXTERNAL".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// The import members beyond the token and the wrapped material.
#[derive(Default)]
struct Import<'a> {
    import_type: Option<&'a str>,
    key_material_id: Option<String>,
    description: Option<&'a str>,
    valid_to_ms: Option<i64>,
}

/// GetParametersForImport, wrap `material` under its public key (RSAES_OAEP_SHA_256), and
/// ImportKeyMaterial.
async fn import(
    env: &Env,
    key_id: &str,
    material: &[u8; 32],
    extra: Import<'_>,
) -> Result<MaterialId, KmsError> {
    import_as(env, &env.root, key_id, material, extra).await
}

async fn import_as(
    env: &Env,
    caller: &Caller,
    key_id: &str,
    material: &[u8; 32],
    extra: Import<'_>,
) -> Result<MaterialId, KmsError> {
    let params = env
        .kms
        .get_parameters_for_import(
            caller,
            Some(key_id),
            Some("RSAES_OAEP_SHA_256"),
            Some("RSA_2048"),
        )
        .await
        .unwrap();
    let public =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&params.public_key).unwrap())
            .unwrap();
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let n = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, material, &mut wrapped, None)
        .unwrap()
        .len();
    wrapped.truncate(n);
    let expires = extra.valid_to_ms.is_some();
    env.kms
        .import_key_material(
            caller,
            ImportKeyMaterialInput {
                key_id: Some(key_id.into()),
                import_token: Some(params.import_token),
                encrypted_key_material: Some(wrapped),
                valid_to_ms: extra.valid_to_ms,
                expiration_model: Some(
                    if expires {
                        "KEY_MATERIAL_EXPIRES"
                    } else {
                        "KEY_MATERIAL_DOES_NOT_EXPIRE"
                    }
                    .into(),
                ),
                import_type: extra.import_type.map(Into::into),
                key_material_id: extra.key_material_id,
                key_material_description: extra.description.map(Into::into),
            },
        )
        .await
        .map(|(_, id)| id)
}

async fn all_materials(env: &Env, key_id: &str) -> Vec<RotationEntry> {
    env.kms
        .list_key_rotations(
            &env.root,
            Some(key_id),
            Some("ALL_KEY_MATERIAL"),
            None,
            None,
        )
        .await
        .unwrap()
        .entries
}

async fn describe(env: &Env, key_id: &str) -> KeyRecord {
    env.kms
        .describe_key(&env.root, Some(key_id), &[])
        .await
        .unwrap()
}

fn states(entries: &[RotationEntry]) -> Vec<(MaterialId, MaterialState, bool)> {
    entries
        .iter()
        .map(|e| (e.material_id, e.state, e.import.as_ref().unwrap().imported))
        .collect()
}

/// `test_rotate_key_on_demand_updates_current_key_material_for_external_keys` and
/// `..._decrypts_with_previous_material`: new material waits PENDING_ROTATION (the current
/// material unchanged) until RotateKeyOnDemand makes it current; ciphertexts of the first
/// material still decrypt.
#[tokio::test]
async fn new_material_is_pending_until_rotated_on_demand() {
    let env = env().await;
    let key = external_key(&env).await;
    let id = key.key_id.as_str();
    let first = import(&env, id, &[1; 32], Import::default()).await.unwrap();
    assert_eq!(describe(&env, id).await.current_material, first);
    let before = encrypt(&env.kms, &env.root, id, context(&[]))
        .await
        .unwrap();

    let second = import(
        &env,
        id,
        &[2; 32],
        Import {
            import_type: Some("NEW_KEY_MATERIAL"),
            description: Some("second material"),
            ..Import::default()
        },
    )
    .await
    .unwrap();
    assert_ne!(first, second);
    let described = describe(&env, id).await;
    assert_eq!(
        described.current_material, first,
        "not current before rotation"
    );
    assert_eq!(described.state, KeyState::Enabled);
    let listed = all_materials(&env, id).await;
    assert_eq!(
        states(&listed),
        vec![
            (first, MaterialState::Current, true),
            (second, MaterialState::PendingRotation, true)
        ]
    );
    assert!(listed.iter().all(|e| e.rotation.is_none()));
    assert_eq!(
        listed[1].import.as_ref().unwrap().description.as_deref(),
        Some("second material")
    );
    // ROTATIONS_ONLY lists completed rotations only.
    let rotations = env
        .kms
        .list_key_rotations(&env.root, Some(id), None, None, None)
        .await
        .unwrap();
    assert!(rotations.entries.is_empty());

    let arn = env
        .kms
        .rotate_key_on_demand(&env.root, Some(id))
        .await
        .unwrap();
    assert_eq!(arn, key.arn());
    assert_eq!(describe(&env, id).await.current_material, second);
    let listed = all_materials(&env, id).await;
    assert_eq!(
        states(&listed),
        vec![
            (first, MaterialState::NonCurrent, true),
            (second, MaterialState::Current, true)
        ]
    );
    assert!(listed[0].rotation.is_none());
    assert_eq!(
        listed[1].rotation.map(|(kind, at)| (kind.as_str(), at)),
        Some(("ON_DEMAND", START_MS))
    );

    let after = encrypt(&env.kms, &env.root, id, context(&[]))
        .await
        .unwrap();
    let old = decrypt(&env.kms, &env.root, &before.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(old.key_material_id, first);
    let new = decrypt(&env.kms, &env.root, &after.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(new.key_material_id, second);

    // A restarted process reads the same materials, states and history.
    let reopened = open(&env.store, &env.clock).await;
    let again = reopened
        .list_key_rotations(&env.root, Some(id), Some("ALL_KEY_MATERIAL"), None, None)
        .await
        .unwrap();
    assert_eq!(states(&again.entries), states(&listed));
    let old = decrypt(&reopened, &env.root, &before.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(old.key_material_id, first);
}

/// `test_import_key_material_raises_if_there_is_already_key_material_pending` and
/// `test_rotate_key_on_demand_raises_for_no_pending_key_material`.
#[tokio::test]
async fn one_pending_material_at_a_time_and_rotation_needs_one() {
    let env = env().await;
    let key = external_key(&env).await;
    let id = key.key_id.as_str();
    import(&env, id, &[1; 32], Import::default()).await.unwrap();
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(id))
            .await
            .err(),
        Some(KmsError::InvalidState(format!(
            "No available key material pending rotation for the key: {}.",
            key.arn()
        )))
    );
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    let pending = import(&env, id, &[2; 32], new).await.unwrap();
    let third = trent_crypto::import::imported_material_id(id, &[3; 32]);
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    assert_eq!(
        import(&env, id, &[3; 32], new).await.err(),
        Some(KmsError::InvalidState(format!(
            "New key material (id: {}) cannot be imported into KMS key {id}, because another key material (id: {}) is pending rotation.",
            third.to_hex(),
            pending.to_hex()
        )))
    );
    // Without ImportType, material the key does not have is refused (the default is
    // EXISTING_KEY_MATERIAL once the key has material).
    assert!(matches!(
        import(&env, id, &[3; 32], Import::default()).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    // A KeyMaterialId with NEW_KEY_MATERIAL is refused before anything else.
    let both = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        key_material_id: Some(pending.to_hex()),
        ..Import::default()
    };
    assert!(matches!(
        import(&env, id, &[2; 32], both).await,
        Err(KmsError::Validation(_))
    ));
}

/// Deleting a non-current material makes the key unusable until it is imported again
/// (EXISTING_KEY_MATERIAL with its KeyMaterialId); deleting material pending rotation forgets
/// it and leaves the key usable.
#[tokio::test]
async fn delete_and_reimport_one_material() {
    let env = env().await;
    let key = external_key(&env).await;
    let id = key.key_id.as_str();
    let first = import(
        &env,
        id,
        &[1; 32],
        Import {
            description: Some("first"),
            ..Import::default()
        },
    )
    .await
    .unwrap();
    let before = encrypt(&env.kms, &env.root, id, context(&[]))
        .await
        .unwrap();
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    let second = import(&env, id, &[2; 32], new).await.unwrap();
    env.kms
        .rotate_key_on_demand(&env.root, Some(id))
        .await
        .unwrap();

    let (_, deleted) = env
        .kms
        .delete_imported_key_material(&env.root, Some(id), Some(&first.to_hex()))
        .await
        .unwrap();
    assert_eq!(deleted, Some(first));
    let described = describe(&env, id).await;
    assert_eq!(described.state, KeyState::PendingImport);
    assert_eq!(described.current_material, second);
    assert_eq!(
        states(&all_materials(&env, id).await),
        vec![
            (first, MaterialState::NonCurrent, false),
            (second, MaterialState::Current, true)
        ]
    );
    assert!(matches!(
        decrypt(&env.kms, &env.root, &before.ciphertext_blob, context(&[])).await,
        Err(KmsError::InvalidState(_))
    ));
    // An unknown material id is AWS's NotFoundException.
    let unknown = "ab".repeat(32);
    assert_eq!(
        env.kms
            .delete_imported_key_material(&env.root, Some(id), Some(&unknown))
            .await
            .err(),
        Some(KmsError::NotFound(format!(
            "Key material '{unknown}' does not exist for {}",
            key.arn()
        )))
    );

    // Re-import with the wrong id is refused; with the right one the key is usable again and
    // keeps the description given at the first import.
    let wrong = Import {
        import_type: Some("EXISTING_KEY_MATERIAL"),
        key_material_id: Some(second.to_hex()),
        ..Import::default()
    };
    assert!(matches!(
        import(&env, id, &[1; 32], wrong).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let right = Import {
        import_type: Some("EXISTING_KEY_MATERIAL"),
        key_material_id: Some(first.to_hex()),
        ..Import::default()
    };
    assert_eq!(import(&env, id, &[1; 32], right).await.unwrap(), first);
    assert_eq!(describe(&env, id).await.state, KeyState::Enabled);
    let listed = all_materials(&env, id).await;
    assert_eq!(
        listed[0].import.as_ref().unwrap().description.as_deref(),
        Some("first")
    );
    let old = decrypt(&env.kms, &env.root, &before.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(old.key_material_id, first);

    // Material pending rotation: deleted and forgotten, the key stays Enabled, and different
    // material may take its place.
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    let third = import(&env, id, &[3; 32], new).await.unwrap();
    env.kms
        .delete_imported_key_material(&env.root, Some(id), Some(&third.to_hex()))
        .await
        .unwrap();
    assert_eq!(describe(&env, id).await.state, KeyState::Enabled);
    assert_eq!(all_materials(&env, id).await.len(), 2);
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    import(&env, id, &[4; 32], new).await.unwrap();
    assert_eq!(all_materials(&env, id).await.len(), 3);

    // Without a KeyMaterialId, the current material is deleted.
    let (_, deleted) = env
        .kms
        .delete_imported_key_material(&env.root, Some(id), None)
        .await
        .unwrap();
    assert_eq!(deleted, Some(second));
    assert_eq!(describe(&env, id).await.state, KeyState::PendingImport);
}

/// Each material expires on its own ValidTo; the expiry of a non-current material makes the
/// key PendingImport like its deletion, and DescribeKey's ValidTo is the earliest expiry.
#[tokio::test]
async fn each_material_expires_on_its_own_date() {
    let env = env().await;
    let key = external_key(&env).await;
    let id = key.key_id.as_str();
    let first = import(
        &env,
        id,
        &[1; 32],
        Import {
            valid_to_ms: Some(START_MS + 10 * DAY_MS),
            ..Import::default()
        },
    )
    .await
    .unwrap();
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    let second = import(&env, id, &[2; 32], new).await.unwrap();
    env.kms
        .rotate_key_on_demand(&env.root, Some(id))
        .await
        .unwrap();
    let described = describe(&env, id).await;
    assert_eq!(
        described.lifecycle.valid_to_ms,
        Some(START_MS + 10 * DAY_MS)
    );
    // The current material does not expire: DescribeKey's ExpirationModel is its.
    assert_eq!(
        described.lifecycle.expiration_model.map(WireEnum::as_str),
        Some("KEY_MATERIAL_DOES_NOT_EXPIRE")
    );

    env.clock.advance(10 * DAY_MS);
    let done = env.kms.run_due_work().await.unwrap();
    assert_eq!(done.expired, 1);
    let described = describe(&env, id).await;
    assert_eq!(described.state, KeyState::PendingImport);
    assert_eq!(described.lifecycle.valid_to_ms, None);
    assert_eq!(
        states(&all_materials(&env, id).await),
        vec![
            (first, MaterialState::NonCurrent, false),
            (second, MaterialState::Current, true)
        ]
    );
    // Nothing more is due.
    assert_eq!(env.kms.run_due_work().await.unwrap().expired, 0);
}

/// Multi-Region keys keep one imported material, shared by the related keys: a replica
/// imports the primary's material (its id proves it is the same); new material for the family
/// is refused (docs/decisions.md), and so is their on-demand rotation.
#[tokio::test]
async fn multi_region_keys_share_their_one_imported_material() {
    let env = env().await;
    let key = env
        .kms
        .create_key(
            &env.root,
            CreateKeyInput {
                origin: Some("EXTERNAL".into()),
                multi_region: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = key.public_id().to_string();
    let first = import(&env, &id, &[1; 32], Import::default())
        .await
        .unwrap();
    let new = Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    };
    assert!(matches!(
        import(&env, &id, &[2; 32], new).await,
        Err(KmsError::UnsupportedOperation(_))
    ));
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&id))
            .await
            .err(),
        Some(KmsError::UnsupportedOperation(format!(
            "{} origin is EXTERNAL which is not valid for this operation.",
            key.arn()
        )))
    );
    let sealed = encrypt(&env.kms, &env.root, &id, context(&[]))
        .await
        .unwrap();
    env.kms
        .replicate_key(
            &env.root,
            ReplicateKeyInput {
                key_id: Some(id.clone()),
                replica_region: Some("eu-west-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.clock.advance(60_000);
    env.kms.run_due_work().await.unwrap();
    let eu = Caller::root(ACCOUNT, ROOT_ACCESS_KEY, "eu-west-1");
    assert!(matches!(
        import_as(&env, &eu, &id, &[2; 32], Import::default()).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    assert_eq!(
        import_as(&env, &eu, &id, &[1; 32], Import::default())
            .await
            .unwrap(),
        first
    );
    let replica = env.kms.describe_key(&eu, Some(&id), &[]).await.unwrap();
    assert_eq!(replica.state, KeyState::Enabled);
    assert_eq!(replica.current_material, first);
    let opened = decrypt(&env.kms, &eu, &sealed.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(opened.key_material_id, first);
}
