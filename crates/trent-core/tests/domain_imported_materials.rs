//! Several key materials per imported symmetric key (issue 11): ImportKeyMaterial with
//! `ImportType` NEW_KEY_MATERIAL / EXISTING_KEY_MATERIAL, `KeyMaterialId` and
//! `KeyMaterialDescription`; RotateKeyOnDemand to the material PENDING_ROTATION; ListKeyRotations
//! with `KeyMaterialState`/`ImportState`; DeleteImportedKeyMaterial of one material; expiry of
//! one material; old ciphertexts decrypting under the material they name; the multi-Region
//! flow (new material imported into the primary and every replica, PENDING_MULTI_REGION_IMPORT_
//! AND_ROTATION, rotation from the primary in every Region). Driven through `Kms`
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
use trent_core::{Caller, Clock, KmsError};
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

const EU: &str = "eu-west-1";
const AP: &str = "ap-southeast-2";

fn root_in(region: &str) -> Caller {
    Caller::root(ACCOUNT, ROOT_ACCESS_KEY, region)
}

fn new_material() -> Import<'static> {
    Import {
        import_type: Some("NEW_KEY_MATERIAL"),
        ..Import::default()
    }
}

/// ListKeyRotations ALL_KEY_MATERIAL of the related key in `region`.
async fn materials_in(env: &Env, region: &str, id: &str) -> Vec<RotationEntry> {
    env.kms
        .list_key_rotations(
            &root_in(region),
            Some(id),
            Some("ALL_KEY_MATERIAL"),
            None,
            None,
        )
        .await
        .unwrap()
        .entries
}

/// An EXTERNAL multi-Region primary with material `[1; 32]`, replicated into `replicas`, each
/// replica past `Creating` with the same material imported. Returns the public id, the
/// primary's record and the first material's id.
async fn imported_family(env: &Env, replicas: &[&str]) -> (String, KeyRecord, MaterialId) {
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
    let first = import(env, &id, &[1; 32], Import::default()).await.unwrap();
    for region in replicas {
        env.kms
            .replicate_key(
                &env.root,
                ReplicateKeyInput {
                    key_id: Some(id.clone()),
                    replica_region: Some((*region).to_string()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    env.clock.advance(60_000);
    env.kms.run_due_work().await.unwrap();
    for region in replicas {
        let there = root_in(region);
        assert_eq!(
            import_as(env, &there, &id, &[1; 32], Import::default())
                .await
                .unwrap(),
            first
        );
    }
    (id, key, first)
}

/// AWS's multi-Region flow (ImportKeyMaterial, RotateKeyOnDemand, RotationsListEntry): new
/// material goes into the primary (NEW_KEY_MATERIAL) and then into every replica
/// (EXISTING_KEY_MATERIAL, the default); it is PENDING_MULTI_REGION_IMPORT_AND_ROTATION on every
/// related key until the last replica has it, then PENDING_ROTATION; RotateKeyOnDemand of the
/// primary makes it current in every Region, and ciphertexts of either material decrypt in
/// every Region.
#[tokio::test]
async fn multi_region_new_material_is_imported_everywhere_then_rotated_from_the_primary() {
    let env = env().await;
    let (id, key, first) = imported_family(&env, &[EU, AP]).await;
    let before = encrypt(&env.kms, &env.root, &id, context(&[]))
        .await
        .unwrap();
    let no_pending = || {
        KmsError::InvalidState(format!(
            "No available key material pending rotation for the key: {}.",
            key.arn()
        ))
    };

    let second = import(&env, &id, &[2; 32], new_material()).await.unwrap();
    let pmr = MaterialState::PendingMultiRegionImportAndRotation;
    assert_eq!(pmr.as_str(), "PENDING_MULTI_REGION_IMPORT_AND_ROTATION");
    assert_eq!(
        states(&materials_in(&env, REGION, &id).await),
        vec![(first, MaterialState::Current, true), (second, pmr, true)]
    );
    // Each replica knows of it, not yet imported there.
    for region in [EU, AP] {
        assert_eq!(
            states(&materials_in(&env, region, &id).await),
            vec![(first, MaterialState::Current, true), (second, pmr, false)],
            "{region}"
        );
    }
    assert_eq!(describe(&env, &id).await.current_material, first);
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&id))
            .await
            .err(),
        Some(no_pending()),
        "not yet in every replica"
    );

    // The first replica imports it (ImportType defaults to EXISTING_KEY_MATERIAL): still
    // pending the other replica, on every related key.
    assert_eq!(
        import_as(&env, &root_in(EU), &id, &[2; 32], Import::default())
            .await
            .unwrap(),
        second
    );
    for (region, imported) in [(REGION, true), (EU, true), (AP, false)] {
        assert_eq!(
            states(&materials_in(&env, region, &id).await)[1],
            (second, pmr, imported),
            "{region}"
        );
    }
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&id))
            .await
            .err(),
        Some(no_pending())
    );
    let existing = Import {
        import_type: Some("EXISTING_KEY_MATERIAL"),
        ..Import::default()
    };
    import_as(&env, &root_in(AP), &id, &[2; 32], existing)
        .await
        .unwrap();
    for region in [REGION, EU, AP] {
        assert_eq!(
            states(&materials_in(&env, region, &id).await),
            vec![
                (first, MaterialState::Current, true),
                (second, MaterialState::PendingRotation, true)
            ],
            "{region}"
        );
    }

    // Only the primary rotates the family.
    let eu_arn = format!("arn:aws:kms:{EU}:{ACCOUNT}:key/{id}");
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&root_in(EU), Some(&id))
            .await
            .err(),
        Some(KmsError::UnsupportedOperation(format!(
            "{eu_arn} is not a multi-region primary key."
        )))
    );
    let now = env.clock.now_ms();
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&id))
            .await
            .unwrap(),
        key.arn()
    );
    for region in [REGION, EU, AP] {
        let listed = materials_in(&env, region, &id).await;
        assert_eq!(
            states(&listed),
            vec![
                (first, MaterialState::NonCurrent, true),
                (second, MaterialState::Current, true)
            ],
            "{region}"
        );
        assert_eq!(
            listed[1].rotation.map(|(kind, at)| (kind.as_str(), at)),
            Some(("ON_DEMAND", now)),
            "{region}"
        );
        let described = env
            .kms
            .describe_key(&root_in(region), Some(&id), &[])
            .await
            .unwrap();
        assert_eq!(described.current_material, second, "{region}");
        assert_eq!(described.state, KeyState::Enabled, "{region}");
    }
    let after = encrypt(&env.kms, &root_in(EU), &id, context(&[]))
        .await
        .unwrap();
    for region in [REGION, EU, AP] {
        let there = root_in(region);
        let old = decrypt(&env.kms, &there, &before.ciphertext_blob, context(&[]))
            .await
            .unwrap();
        assert_eq!(
            (old.key_material_id, old.plaintext.as_slice()),
            (first, b"attack at dawn".as_slice()),
            "{region}"
        );
        let new = decrypt(&env.kms, &there, &after.ciphertext_blob, context(&[]))
            .await
            .unwrap();
        assert_eq!(new.key_material_id, second, "{region}");
    }

    // A replica made after the rotation knows both materials and is usable only once both are
    // imported into it.
    const SA: &str = "sa-east-1";
    env.kms
        .replicate_key(
            &env.root,
            ReplicateKeyInput {
                key_id: Some(id.clone()),
                replica_region: Some(SA.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.clock.advance(60_000);
    env.kms.run_due_work().await.unwrap();
    assert_eq!(
        states(&materials_in(&env, SA, &id).await),
        vec![
            (first, MaterialState::NonCurrent, false),
            (second, MaterialState::Current, false)
        ]
    );
    let sa = root_in(SA);
    import_as(&env, &sa, &id, &[2; 32], Import::default())
        .await
        .unwrap();
    let state_in_sa = || async {
        env.kms
            .describe_key(&sa, Some(&id), &[])
            .await
            .unwrap()
            .state
    };
    assert_eq!(state_in_sa().await, KeyState::PendingImport);
    import_as(&env, &sa, &id, &[1; 32], Import::default())
        .await
        .unwrap();
    assert_eq!(state_in_sa().await, KeyState::Enabled);
    let old = decrypt(&env.kms, &sa, &before.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(old.key_material_id, first);

    // A restarted process reads the same family state.
    let reopened = open(&env.store, &env.clock).await;
    let again = reopened
        .list_key_rotations(
            &root_in(AP),
            Some(&id),
            Some("ALL_KEY_MATERIAL"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        states(&again.entries),
        vec![
            (first, MaterialState::NonCurrent, true),
            (second, MaterialState::Current, true)
        ]
    );
}

/// What AWS refuses in the multi-Region flow, and DeleteImportedKeyMaterial of material pending
/// rotation: on the primary it goes from every related key, on a replica only that replica
/// awaits it again.
#[tokio::test]
async fn multi_region_new_material_refusals_and_deletion() {
    let env = env().await;
    let (id, key, first) = imported_family(&env, &[EU]).await;
    let eu = root_in(EU);
    let eu_arn = format!("arn:aws:kms:{EU}:{ACCOUNT}:key/{id}");
    // New material goes into the primary first (AWS: "You cannot directly import new key
    // material into the replica Region keys").
    assert_eq!(
        import_as(&env, &eu, &id, &[2; 32], new_material())
            .await
            .err(),
        Some(KmsError::UnsupportedOperation(format!(
            "{eu_arn} is not a multi-region primary key."
        )))
    );
    assert!(matches!(
        import_as(&env, &eu, &id, &[2; 32], Import::default()).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let second = import(&env, &id, &[2; 32], new_material()).await.unwrap();
    // One pending material at a time, for the family too.
    let third = trent_crypto::import::imported_material_id(&id, &[3; 32]);
    assert_eq!(
        import(&env, &id, &[3; 32], new_material()).await.err(),
        Some(KmsError::InvalidState(format!(
            "New key material (id: {}) cannot be imported into KMS key {id}, because another key material (id: {}) is pending rotation.",
            third.to_hex(),
            second.to_hex()
        )))
    );
    // The replica must import the primary's pending material, not another.
    assert!(matches!(
        import_as(&env, &eu, &id, &[3; 32], Import::default()).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    import_as(&env, &eu, &id, &[2; 32], Import::default())
        .await
        .unwrap();
    assert_eq!(
        states(&materials_in(&env, REGION, &id).await)[1],
        (second, MaterialState::PendingRotation, true)
    );

    // Deleted from the replica: the replica awaits it again, the primary keeps it, and the
    // family cannot rotate until the replica has it back.
    let (_, deleted) = env
        .kms
        .delete_imported_key_material(&eu, Some(&id), Some(&second.to_hex()))
        .await
        .unwrap();
    assert_eq!(deleted, Some(second));
    let pmr = MaterialState::PendingMultiRegionImportAndRotation;
    assert_eq!(
        states(&materials_in(&env, EU, &id).await),
        vec![(first, MaterialState::Current, true), (second, pmr, false)]
    );
    assert_eq!(
        states(&materials_in(&env, REGION, &id).await),
        vec![(first, MaterialState::Current, true), (second, pmr, true)]
    );
    assert_eq!(
        env.kms
            .describe_key(&eu, Some(&id), &[])
            .await
            .unwrap()
            .state,
        KeyState::Enabled,
        "material pending rotation is not part of the key"
    );
    assert_eq!(
        env.kms
            .rotate_key_on_demand(&env.root, Some(&id))
            .await
            .err(),
        Some(KmsError::InvalidState(format!(
            "No available key material pending rotation for the key: {}.",
            key.arn()
        )))
    );
    import_as(&env, &eu, &id, &[2; 32], Import::default())
        .await
        .unwrap();

    // Deleted from the primary: gone from every related key (AWS), material included.
    env.kms
        .delete_imported_key_material(&env.root, Some(&id), Some(&second.to_hex()))
        .await
        .unwrap();
    for region in [REGION, EU] {
        assert_eq!(
            states(&materials_in(&env, region, &id).await),
            vec![(first, MaterialState::Current, true)],
            "{region}"
        );
    }
    let replica_id = format!("{id}@{EU}");
    let (_, stored) = trent_core::Store::key(env.store.as_ref(), &replica_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.iter().map(|m| m.material_id).collect::<Vec<_>>(),
        vec![first],
        "the replica's copy of the pending material is deleted"
    );
    // The replica can no longer import it; the primary may import other new material.
    assert!(matches!(
        import_as(&env, &eu, &id, &[2; 32], Import::default()).await,
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    assert_eq!(
        import(&env, &id, &[3; 32], new_material()).await.unwrap(),
        third
    );
}
