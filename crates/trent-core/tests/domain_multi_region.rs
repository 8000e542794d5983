//! Multi-Region keys over MemoryStore and the test clock: identity, ReplicateKey and its
//! refusals, shared material across Regions (encryption, MACs, signatures, rotation),
//! UpdatePrimaryRegion, deletion order, durability of the Creating transition, condition keys
//! and the service-linked role.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use serde_json::json;
use trent_core::crypto::{MacInput, SignInput, VerifyInput};
use trent_core::keys::CreateKeyInput;
use trent_core::model::KeyRecord;
use trent_core::multi_region::{ReplicateKeyInput, TRANSITION_MS};
use trent_core::{Caller, Clock, Kms, KmsError};
use trent_crypto::spec::KeyState;
use zeroize::Zeroizing;

const EU: &str = "eu-west-1";
const AP: &str = "ap-southeast-2";

fn root_in(region: &str) -> Caller {
    Caller::root(ACCOUNT, ROOT_ACCESS_KEY, region)
}

async fn create_mrk(env: &Env, input: CreateKeyInput) -> KeyRecord {
    env.kms
        .create_key(
            &env.root,
            CreateKeyInput {
                multi_region: true,
                ..input
            },
        )
        .await
        .unwrap()
}

fn replicate_input(key_id: &str, region: &str) -> ReplicateKeyInput {
    ReplicateKeyInput {
        key_id: Some(key_id.to_string()),
        replica_region: Some(region.to_string()),
        ..Default::default()
    }
}

async fn replicate(kms: &Kms, key_id: &str, region: &str) -> KeyRecord {
    kms.replicate_key(&root_in(REGION), replicate_input(key_id, region))
        .await
        .unwrap()
        .replica
}

/// Moves the clock past the transition and runs the due work.
async fn settle(env: &Env) {
    env.clock.advance(TRANSITION_MS);
    env.kms.run_due_work().await.unwrap();
}

async fn describe(kms: &Kms, region: &str, key_id: &str) -> KeyRecord {
    kms.describe_key(&root_in(region), Some(key_id), &[])
        .await
        .unwrap()
}

fn id_of(record: &KeyRecord) -> String {
    record.public_id().to_string()
}

#[tokio::test]
async fn a_primary_has_an_mrk_id_and_describes_itself_as_primary() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    assert!(id.starts_with("mrk-") && id.len() == 36, "{id}");
    assert_eq!(
        key.arn(),
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
    );
    let d = describe(&env.kms, REGION, &id).await;
    assert!(d.multi_region && d.is_primary());
    assert!(d.lifecycle.replica_regions.is_empty());
    // The same id names nothing in another Region until it is replicated there.
    assert!(matches!(
        env.kms.describe_key(&root_in(EU), Some(&id), &[]).await,
        Err(KmsError::NotFound(m)) if m == format!("Key 'arn:aws:kms:{EU}:{ACCOUNT}:key/{id}' does not exist")
    ));
    // Single-Region keys are not multi-Region.
    let plain = create_key(&env, None).await;
    assert!(!plain.multi_region);
}

#[tokio::test]
async fn a_replica_is_creating_then_enabled_and_decrypts_what_the_primary_encrypted() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    let out = env
        .kms
        .replicate_key(
            &env.root,
            ReplicateKeyInput {
                description: Some("replica".into()),
                tags: vec![trent_core::model::Tag {
                    key: "team".into(),
                    value: "eu".into(),
                }],
                ..replicate_input(&id, EU)
            },
        )
        .await
        .unwrap();
    assert_eq!(out.replica.state, KeyState::Creating);
    assert_eq!(out.replica.public_id(), id);
    assert_eq!(out.replica.region, EU);
    assert!(out.replica.is_replica());
    assert_eq!(out.replica.description, "replica");
    assert_eq!(out.tags.len(), 1);
    assert!(
        out.policy.contains(&root_arn(ACCOUNT)),
        "the default policy"
    );

    // Creating: not usable yet, with AWS's message.
    let eu = root_in(EU);
    assert!(matches!(
        encrypt(&env.kms, &eu, &id, context(&[])).await,
        Err(KmsError::InvalidState(m)) if m.ends_with("is creating.")
    ));
    settle(&env).await;
    let replica = describe(&env.kms, EU, &id).await;
    assert_eq!(replica.state, KeyState::Enabled);
    assert_eq!(replica.lifecycle.primary_region.as_deref(), Some(REGION));
    let primary = describe(&env.kms, REGION, &id).await;
    assert_eq!(primary.lifecycle.replica_regions, vec![EU.to_string()]);

    // A ciphertext of either decrypts with the other, with or without KeyId.
    let sealed = encrypt(&env.kms, &env.root, &id, context(&[("a", "b")]))
        .await
        .unwrap();
    let opened = decrypt(
        &env.kms,
        &eu,
        &sealed.ciphertext_blob,
        context(&[("a", "b")]),
    )
    .await
    .unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"attack at dawn");
    assert_eq!(opened.key_arn, replica.arn());
    let back = encrypt(&env.kms, &eu, &replica.arn(), context(&[]))
        .await
        .unwrap();
    let opened = env
        .kms
        .decrypt(
            &env.root,
            trent_core::crypto::DecryptInput {
                ciphertext_blob: Some(back.ciphertext_blob.clone()),
                key_id: Some(id.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"attack at dawn");
    // A Region with no related key cannot decrypt it.
    assert!(matches!(
        decrypt(&env.kms, &root_in(AP), &back.ciphertext_blob, context(&[])).await,
        Err(KmsError::InvalidCiphertext)
    ));
}

#[tokio::test]
async fn replicate_key_refusals_carry_aws_codes() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    let replica = replicate(&env.kms, &id, EU).await;
    let eu = root_in(EU);

    // A replica is not a primary.
    let err = env
        .kms
        .replicate_key(&eu, replicate_input(&id, AP))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        KmsError::UnsupportedOperation(format!(
            "{} is not a multi-region primary key.",
            replica.arn()
        ))
    );
    // A Region that already has a related key.
    assert!(matches!(
        env.kms
            .replicate_key(&env.root, replicate_input(&id, EU))
            .await,
        Err(KmsError::AlreadyExists(_))
    ));
    // The primary's own Region.
    assert!(matches!(
        env.kms
            .replicate_key(&env.root, replicate_input(&id, REGION))
            .await,
        Err(KmsError::UnsupportedOperation(_))
    ));
    // A single-Region key.
    let plain = create_key(&env, None).await;
    assert_eq!(
        env.kms
            .replicate_key(&env.root, replicate_input(&plain.key_id, EU))
            .await
            .unwrap_err(),
        KmsError::UnsupportedOperation(format!(
            "{} is not a multi-region primary key.",
            plain.arn()
        ))
    );
    // A malformed Region name.
    assert!(matches!(
        env.kms.replicate_key(&env.root, replicate_input(&id, "Mars")).await,
        Err(KmsError::Validation(m)) if m.contains("replicaRegion")
    ));
    // Another account cannot replicate this account's key (the default key policy names only
    // this account).
    let other = Caller::root(OTHER_ACCOUNT, OTHER_ROOT_ACCESS_KEY, REGION);
    assert!(matches!(
        env.kms
            .replicate_key(&other, replicate_input(&key.arn(), AP))
            .await,
        Err(KmsError::AccessDenied(_))
    ));
    // A disabled primary.
    env.kms.disable_key(&env.root, Some(&id)).await.unwrap();
    assert!(matches!(
        env.kms
            .replicate_key(&env.root, replicate_input(&id, AP))
            .await,
        Err(KmsError::Disabled(_))
    ));
}

#[tokio::test]
async fn replicate_key_needs_create_key_in_the_replica_region_through_iam() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    let alice = user(&env, "alice").await;
    // ReplicateKey on the primary, and CreateKey only in us-east-1.
    put_user_policy(
        &env,
        "alice",
        "mrk",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": ["kms:ReplicateKey", "kms:DescribeKey"], "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:RequestedRegion": REGION}}}),
        ]),
    )
    .await;
    let err = env
        .kms
        .replicate_key(&alice.caller(&env.kms), replicate_input(&id, EU))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KmsError::AccessDenied(m) if m.contains("kms:CreateKey")),
        "{err:?}"
    );
    // Allowed in eu-west-1 but only to replicate there (kms:ReplicaRegion).
    put_user_policy(
        &env,
        "alice",
        "mrk",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:ReplicateKey", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:ReplicaRegion": EU}}}),
            json!({"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
                   "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "REPLICA"}}}),
        ]),
    )
    .await;
    let alice_caller = alice.caller(&env.kms);
    env.kms
        .replicate_key(&alice_caller, replicate_input(&id, EU))
        .await
        .unwrap();
    assert!(matches!(
        env.kms.replicate_key(&alice_caller, replicate_input(&id, AP)).await,
        Err(KmsError::AccessDenied(m)) if m.contains("kms:ReplicateKey")
    ));
    // Tags on the new replica need kms:TagResource in its Region too.
    let other = create_mrk(&env, CreateKeyInput::default()).await;
    let tagged = ReplicateKeyInput {
        tags: vec![trent_core::model::Tag {
            key: "k".into(),
            value: "v".into(),
        }],
        ..replicate_input(other.public_id(), EU)
    };
    assert!(matches!(
        env.kms.replicate_key(&alice_caller, tagged.clone()).await,
        Err(KmsError::AccessDenied(m)) if m.contains("kms:TagResource")
    ));
    put_user_policy(
        &env,
        "alice",
        "tags",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:TagResource", "Resource": "*"}),
        ]),
    )
    .await;
    let out = env
        .kms
        .replicate_key(&alice.caller(&env.kms), tagged)
        .await
        .unwrap();
    assert_eq!(out.replica.tags.len(), 1);
}

#[tokio::test]
async fn policies_are_independent_per_region() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let allow_alice = key_policy(vec![json!({
        "Effect": "Allow", "Principal": {"AWS": alice.arn()},
        "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"
    })]);
    let key = create_mrk(
        &env,
        CreateKeyInput {
            policy: Some(allow_alice),
            ..Default::default()
        },
    )
    .await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;
    let at_home = alice.caller(&env.kms);
    let sealed = encrypt(&env.kms, &at_home, &id, context(&[]))
        .await
        .unwrap();
    decrypt(&env.kms, &at_home, &sealed.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    // The replica has the default policy: alice (no IAM policy) is denied there.
    let credential = env.kms.credentials.lookup(&alice.access_key_id).unwrap();
    let abroad = env.kms.caller_for(&credential, None, EU).unwrap();
    assert!(matches!(
        decrypt(&env.kms, &abroad, &sealed.ciphertext_blob, context(&[])).await,
        Err(KmsError::AccessDenied(_))
    ));
}

#[tokio::test]
async fn rotation_is_shared_and_old_ciphertexts_decrypt_everywhere() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;
    let eu = root_in(EU);
    let before = encrypt(&env.kms, &env.root, &id, context(&[]))
        .await
        .unwrap();
    let old_material = describe(&env.kms, EU, &id).await.current_material;

    env.kms
        .rotate_key_on_demand(&env.root, Some(&id))
        .await
        .unwrap();
    let primary = describe(&env.kms, REGION, &id).await;
    let replica = describe(&env.kms, EU, &id).await;
    assert_ne!(primary.current_material, old_material);
    assert_eq!(replica.current_material, primary.current_material);
    // New material is used in the replica's Region, and the primary decrypts it.
    let after = encrypt(&env.kms, &eu, &id, context(&[])).await.unwrap();
    let opened = decrypt(&env.kms, &env.root, &after.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(opened.key_material_id, primary.current_material);
    let opened = decrypt(&env.kms, &eu, &before.ciphertext_blob, context(&[]))
        .await
        .unwrap();
    assert_eq!(opened.key_material_id, old_material);
    assert_eq!(
        env.kms
            .list_key_rotations(&eu, Some(&id), None, None, None)
            .await
            .unwrap()
            .entries
            .len(),
        1
    );
    // Only the primary rotates or sets rotation.
    assert!(matches!(
        env.kms.rotate_key_on_demand(&eu, Some(&id)).await,
        Err(KmsError::UnsupportedOperation(m)) if m.contains("not a multi-region primary key")
    ));
    assert!(matches!(
        env.kms.enable_key_rotation(&eu, Some(&id), None).await,
        Err(KmsError::UnsupportedOperation(_))
    ));
    env.kms
        .enable_key_rotation(&env.root, Some(&id), Some(90))
        .await
        .unwrap();
    let status = env
        .kms
        .get_key_rotation_status(&eu, Some(&id))
        .await
        .unwrap();
    assert!(status.enabled);
    assert_eq!(status.period_days, Some(90));
    let primary_status = env
        .kms
        .get_key_rotation_status(&env.root, Some(&id))
        .await
        .unwrap();
    assert!(status.next_rotation_ms.is_some());
    assert_eq!(
        status.next_rotation_ms, primary_status.next_rotation_ms,
        "the replica shows its primary's schedule"
    );

    // Automatic rotation of the primary reaches the replica.
    env.clock.advance(91 * DAY_MS);
    env.kms.run_due_work().await.unwrap();
    let replica = describe(&env.kms, EU, &id).await;
    assert_eq!(
        replica.current_material,
        describe(&env.kms, REGION, &id).await.current_material
    );
    assert_ne!(replica.current_material, primary.current_material);
}

#[tokio::test]
async fn macs_and_signatures_verify_in_every_region() {
    let env = env().await;
    let eu = root_in(EU);
    let hmac = create_mrk(
        &env,
        CreateKeyInput {
            key_spec: Some("HMAC_256".into()),
            key_usage: Some("GENERATE_VERIFY_MAC".into()),
            ..Default::default()
        },
    )
    .await;
    let id = id_of(&hmac);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;
    let mac_input = |mac: Option<Vec<u8>>| MacInput {
        key_id: Some(id.clone()),
        message: Some(Zeroizing::new(b"hello".to_vec())),
        mac_algorithm: Some("HMAC_SHA_256".into()),
        mac,
        grant_tokens: vec![],
        dry_run: false,
    };
    let mac = env
        .kms
        .mac(&env.root, mac_input(None), false)
        .await
        .unwrap();
    env.kms
        .mac(&eu, mac_input(Some(mac.mac.clone())), true)
        .await
        .unwrap();

    let signing = create_mrk(
        &env,
        CreateKeyInput {
            key_spec: Some("ECC_NIST_P256".into()),
            key_usage: Some("SIGN_VERIFY".into()),
            ..Default::default()
        },
    )
    .await;
    let sid = id_of(&signing);
    replicate(&env.kms, &sid, EU).await;
    settle(&env).await;
    let signature = env
        .kms
        .sign(
            &eu,
            SignInput {
                key_id: Some(sid.clone()),
                message: Some(Zeroizing::new(b"hello".to_vec())),
                message_type: None,
                signing_algorithm: Some("ECDSA_SHA_256".into()),
                grant_tokens: vec![],
                dry_run: false,
            },
        )
        .await
        .unwrap()
        .signature;
    env.kms
        .verify(
            &env.root,
            VerifyInput {
                key_id: Some(sid.clone()),
                message: Some(Zeroizing::new(b"hello".to_vec())),
                message_type: None,
                signature: Some(signature),
                signing_algorithm: Some("ECDSA_SHA_256".into()),
                grant_tokens: vec![],
                dry_run: false,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn update_primary_region_swaps_roles_through_updating() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    replicate(&env.kms, &id, AP).await;
    settle(&env).await;
    // Only from the primary, to a Region with a related key.
    let eu = root_in(EU);
    assert!(matches!(
        env.kms
            .update_primary_region(&eu, Some(&id), Some(AP))
            .await,
        Err(KmsError::UnsupportedOperation(_))
    ));
    assert!(matches!(
        env.kms
            .update_primary_region(&env.root, Some(&id), Some("us-west-2"))
            .await,
        Err(KmsError::NotFound(_))
    ));
    env.kms
        .update_primary_region(&env.root, Some(&id), Some(EU))
        .await
        .unwrap();
    let old = describe(&env.kms, REGION, &id).await;
    let new = describe(&env.kms, EU, &id).await;
    assert_eq!(old.state, KeyState::Updating);
    assert_eq!(new.state, KeyState::Updating);
    assert!(new.is_primary() && old.is_replica());
    // Updating still works for cryptography but not for EnableKey/DisableKey.
    encrypt(&env.kms, &eu, &id, context(&[])).await.unwrap();
    assert!(matches!(
        env.kms.disable_key(&eu, Some(&id)).await,
        Err(KmsError::InvalidState(m)) if m.ends_with("is updating.")
    ));
    settle(&env).await;
    let new = describe(&env.kms, EU, &id).await;
    assert_eq!(new.state, KeyState::Enabled);
    assert_eq!(
        new.lifecycle.replica_regions,
        vec![AP.to_string(), REGION.to_string()]
    );
    let ap = describe(&env.kms, AP, &id).await;
    assert_eq!(ap.lifecycle.primary_region.as_deref(), Some(EU));
    // The old primary is a replica now.
    assert!(matches!(
        env.kms
            .replicate_key(&env.root, replicate_input(&id, "us-west-2"))
            .await,
        Err(KmsError::UnsupportedOperation(_))
    ));
    env.kms
        .replicate_key(&eu, replicate_input(&id, "us-west-2"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_primary_waits_for_its_replicas_to_be_deleted() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;
    let scheduled = env
        .kms
        .schedule_key_deletion(&env.root, Some(&id), Some(7))
        .await
        .unwrap();
    assert_eq!(scheduled.key_state, KeyState::PendingReplicaDeletion);
    assert_eq!(scheduled.deletion_ms, None);
    assert!(matches!(
        encrypt(&env.kms, &env.root, &id, context(&[])).await,
        Err(KmsError::InvalidState(m)) if m.ends_with("is pending replica deletion.")
    ));
    // The replica is unaffected, and is deleted on its own schedule.
    let eu = root_in(EU);
    encrypt(&env.kms, &eu, &id, context(&[])).await.unwrap();
    env.kms
        .schedule_key_deletion(&eu, Some(&id), Some(10))
        .await
        .unwrap();
    env.clock.advance(9 * DAY_MS);
    env.kms.run_due_work().await.unwrap();
    let primary = describe(&env.kms, REGION, &id).await;
    assert_eq!(
        primary.state,
        KeyState::PendingReplicaDeletion,
        "the primary outlasts the window it asked for"
    );
    env.clock.advance(DAY_MS);
    env.kms.run_due_work().await.unwrap();
    assert!(env.kms.describe_key(&eu, Some(&id), &[]).await.is_err());
    let primary = describe(&env.kms, REGION, &id).await;
    assert_eq!(primary.state, KeyState::PendingDeletion);
    assert_eq!(
        primary.lifecycle.deletion_ms,
        Some(env.clock.now_ms() + 7 * DAY_MS)
    );
    env.clock.advance(7 * DAY_MS);
    env.kms.run_due_work().await.unwrap();
    assert!(matches!(
        env.kms.describe_key(&env.root, Some(&id), &[]).await,
        Err(KmsError::NotFound(_))
    ));
}

#[tokio::test]
async fn cancelling_a_pending_replica_deletion_disables_the_primary() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;
    env.kms
        .schedule_key_deletion(&env.root, Some(&id), None)
        .await
        .unwrap();
    env.kms
        .cancel_key_deletion(&env.root, Some(&id))
        .await
        .unwrap();
    let primary = describe(&env.kms, REGION, &id).await;
    assert_eq!(primary.state, KeyState::Disabled);
    assert_eq!(primary.lifecycle.transition_ms, None);
}

#[tokio::test]
async fn a_replica_stuck_in_creating_finishes_after_a_restart() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    // The process stops before the transition is due; a new one starts later.
    env.clock.advance(TRANSITION_MS);
    let restarted = open(&env.store, &env.clock).await;
    assert_eq!(
        describe(&restarted, EU, &id).await.state,
        KeyState::Creating
    );
    restarted.run_due_work().await.unwrap();
    let replica = describe(&restarted, EU, &id).await;
    assert_eq!(replica.state, KeyState::Enabled);
    // Its material survived the restart too.
    let sealed = encrypt(&restarted, &env.root, &id, context(&[]))
        .await
        .unwrap();
    decrypt(
        &restarted,
        &root_in(EU),
        &sealed.ciphertext_blob,
        context(&[]),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn condition_keys_name_the_multi_region_facts() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;
    let alice = user(&env, "alice").await;
    put_user_policy(
        &env,
        "alice",
        "primary-only",
        &identity_policy(vec![json!({
            "Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
            "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "PRIMARY"}, "Bool": {"kms:MultiRegion": "true"}}
        })]),
    )
    .await;
    encrypt(&env.kms, &alice.caller(&env.kms), &id, context(&[]))
        .await
        .unwrap();
    let credential = env.kms.credentials.lookup(&alice.access_key_id).unwrap();
    let abroad = env.kms.caller_for(&credential, None, EU).unwrap();
    assert!(matches!(
        encrypt(&env.kms, &abroad, &id, context(&[])).await,
        Err(KmsError::AccessDenied(_))
    ));
    // kms:PrimaryRegion on UpdatePrimaryRegion.
    put_user_policy(
        &env,
        "alice",
        "primary-only",
        &identity_policy(vec![json!({
            "Effect": "Allow", "Action": "kms:UpdatePrimaryRegion", "Resource": "*",
            "Condition": {"StringEquals": {"kms:PrimaryRegion": AP}}
        })]),
    )
    .await;
    assert!(matches!(
        env.kms
            .update_primary_region(&alice.caller(&env.kms), Some(&id), Some(EU))
            .await,
        Err(KmsError::AccessDenied(_))
    ));
}

#[tokio::test]
async fn the_first_primary_creates_the_service_linked_role() {
    let env = env().await;
    assert!(
        env.kms
            .iam_get_role(&env.root, trent_core::iam::aws_managed::MRK_ROLE_NAME)
            .await
            .is_err()
    );
    create_mrk(&env, CreateKeyInput::default()).await;
    let role = env
        .kms
        .iam_get_role(&env.root, trent_core::iam::aws_managed::MRK_ROLE_NAME)
        .await
        .unwrap();
    assert_eq!(role.path, "/aws-service-role/mrk.kms.amazonaws.com/");
    assert!(role.trust_policy.contains("mrk.kms.amazonaws.com"));
    assert!(
        role.attached
            .contains(trent_core::iam::aws_managed::MRK_POLICY_ARN)
    );
    // A second primary leaves it as it is.
    create_mrk(&env, CreateKeyInput::default()).await;
    assert_eq!(
        env.kms
            .iam_get_role(&env.root, trent_core::iam::aws_managed::MRK_ROLE_NAME)
            .await
            .unwrap(),
        role
    );
    // It cannot be deleted or edited, and its policy has its version history.
    assert!(matches!(
        env.kms
            .iam_delete_role(&env.root, trent_core::iam::aws_managed::MRK_ROLE_NAME)
            .await,
        Err(trent_core::iam::IamError::UnmodifiableEntity(_))
    ));
    let policy = env
        .kms
        .iam_list_policy_versions(&env.root, trent_core::iam::aws_managed::MRK_POLICY_ARN)
        .await
        .unwrap();
    assert_eq!(policy.default_version, "v2");
    assert_eq!(policy.versions.len(), 2);
    assert!(
        policy
            .default_document()
            .unwrap()
            .contains("KMSSynchronizeMultiRegionKey")
    );
    // Once the role exists, a primary needs no IAM permission beyond kms:CreateKey.
    let bob = user(&env, "bob").await;
    put_user_policy(
        &env,
        "bob",
        "kms",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}),
        ]),
    )
    .await;
    env.kms
        .create_key(
            &bob.caller(&env.kms),
            CreateKeyInput {
                multi_region: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn creating_the_role_needs_iam_create_service_linked_role() {
    let env = env().await;
    let bob = user(&env, "bob").await;
    put_user_policy(
        &env,
        "bob",
        "kms",
        &identity_policy(vec![
            json!({"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}),
        ]),
    )
    .await;
    let multi_region = CreateKeyInput {
        multi_region: true,
        ..Default::default()
    };
    let err = env
        .kms
        .create_key(&bob.caller(&env.kms), multi_region.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KmsError::AccessDenied(m) if m.contains("iam:CreateServiceLinkedRole")),
        "{err:?}"
    );
    // Nothing was created; single-Region keys need no such permission.
    assert!(
        env.kms
            .list_keys(&env.root, None, None)
            .await
            .unwrap()
            .keys
            .is_empty()
    );
    env.kms
        .create_key(&bob.caller(&env.kms), CreateKeyInput::default())
        .await
        .unwrap();
    put_user_policy(
        &env,
        "bob",
        "kms",
        &identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": ["kms:CreateKey", "iam:CreateServiceLinkedRole"],
            "Resource": "*"
        })]),
    )
    .await;
    env.kms
        .create_key(&bob.caller(&env.kms), multi_region)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_imported_material_primary_is_replicated_only_once_it_has_material() {
    let env = env().await;
    let key = create_mrk(
        &env,
        CreateKeyInput {
            origin: Some("EXTERNAL".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(key.state, KeyState::PendingImport);
    assert!(key.is_primary());
    let id = id_of(&key);
    assert_eq!(
        env.kms
            .replicate_key(&env.root, replicate_input(&id, EU))
            .await
            .unwrap_err(),
        KmsError::InvalidState(format!("{} is pending import.", key.arn()))
    );
}

#[tokio::test]
async fn a_replica_catches_up_with_material_it_missed_before_it_is_enabled() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    let sealed = encrypt(&env.kms, &env.root, &id, context(&[]))
        .await
        .unwrap();
    let replica = replicate(&env.kms, &id, EU).await;
    // As if the replica had been inserted without the primary's material (a rotation on
    // another node read the family before the replica existed).
    use trent_core::Store;
    env.store.delete_materials(&replica).await.unwrap();
    assert!(
        env.store
            .key(&replica.key_id)
            .await
            .unwrap()
            .unwrap()
            .1
            .is_empty()
    );
    settle(&env).await;
    assert_eq!(describe(&env.kms, EU, &id).await.state, KeyState::Enabled);
    let opened = decrypt(
        &env.kms,
        &root_in(EU),
        &sealed.ciphertext_blob,
        context(&[]),
    )
    .await
    .unwrap();
    assert_eq!(opened.plaintext.as_slice(), b"attack at dawn");
}

#[tokio::test]
async fn kms_multi_region_restricts_create_key() {
    let env = env().await;
    let carol = user(&env, "carol").await;
    put_user_policy(
        &env,
        "carol",
        "single-region-only",
        &identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": ["kms:CreateKey", "iam:CreateServiceLinkedRole"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:MultiRegion": "false"}}
        })]),
    )
    .await;
    let caller = carol.caller(&env.kms);
    env.kms
        .create_key(&caller, CreateKeyInput::default())
        .await
        .unwrap();
    let err = env
        .kms
        .create_key(
            &caller,
            CreateKeyInput {
                multi_region: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, KmsError::AccessDenied(m) if m.contains("kms:CreateKey")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_operator_asks_about_a_related_key_by_its_arn() {
    let env = env().await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    let replica = replicate(&env.kms, &id, EU).await;
    let access = env.kms.operator_key_access(&replica.arn()).await.unwrap();
    assert_eq!(access.key_arn, replica.arn());
    // A bare multi-Region id names no single key.
    assert!(matches!(
        env.kms.operator_key_access(&id).await,
        Err(KmsError::NotFound(_))
    ));
}

/// Every member of `id`'s family in REGION, EU and AP is Enabled and names EU as primary, as
/// each of `nodes` describes it.
async fn assert_eu_is_primary_everywhere(nodes: [&Kms; 2], id: &str) {
    for node in nodes {
        for region in [REGION, EU, AP] {
            let k = describe(node, region, id).await;
            assert_eq!(k.state, KeyState::Enabled, "{region}");
            assert_eq!(k.lifecycle.primary_region.as_deref(), Some(EU), "{region}");
            assert_eq!(
                k.lifecycle.replica_regions,
                vec![AP.to_string(), REGION.to_string()],
                "{region}"
            );
            assert_eq!(k.is_primary(), region == EU, "{region}");
        }
    }
}

/// Takes `key_id`'s rows out of the store, to put them back later exactly as they were: a
/// write another node made, committed later than it was.
async fn take_out(store: &trent_core::memory_store::MemoryStore, key_id: &str) -> TakenOut {
    use trent_core::Store;
    let (record, materials) = store.key(key_id).await.unwrap().unwrap();
    let rotations = store.rotations(key_id).await.unwrap();
    store.delete_key(key_id).await.unwrap();
    TakenOut {
        record,
        materials,
        rotations,
    }
}

struct TakenOut {
    record: KeyRecord,
    materials: Vec<trent_core::model::StoredMaterial>,
    rotations: Vec<trent_core::model::RotationRecord>,
}

impl TakenOut {
    async fn put_back(&self, store: &trent_core::memory_store::MemoryStore) {
        use trent_core::Store;
        store
            .write_keys(&trent_core::store::KeysWrite {
                insert: Some(&self.record),
                materials: &self.materials,
                rotations: &self.rotations,
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_replica_inserted_across_an_update_primary_region_follows_the_new_primary() {
    use trent_core::Store;
    let env = env().await;
    let node_b = open(&env.store, &env.clock).await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;

    // Node A's ReplicateKey into AP reads the primary (still primary in REGION) and builds the
    // replica's rows; node B's UpdatePrimaryRegion to EU reads the family before those rows
    // land. Reproduced by taking A's write back out of the store, letting B's update run on
    // the family without it, then writing A's rows again exactly as A wrote them.
    let replica = replicate(&env.kms, &id, AP).await;
    assert_eq!(replica.lifecycle.primary_region.as_deref(), Some(REGION));
    let taken = take_out(&env.store, &replica.key_id).await;
    // B's update a little later, so the replica's transition is due first.
    env.clock.advance(TRANSITION_MS / 2);
    node_b
        .update_primary_region(&env.root, Some(&id), Some(EU))
        .await
        .unwrap();
    taken.put_back(&env.store).await;
    let stale = env.store.key(&replica.key_id).await.unwrap().unwrap().0;
    assert_eq!(stale.lifecycle.primary_region.as_deref(), Some(REGION));

    // The replica leaves Creating (on node A) while both other keys are still Updating: it
    // takes the primary Region the store has now.
    env.clock.advance(TRANSITION_MS / 2);
    env.kms.run_due_work().await.unwrap();
    let ap = describe(&env.kms, AP, &id).await;
    assert_eq!(ap.state, KeyState::Enabled);
    assert_eq!(ap.lifecycle.primary_region.as_deref(), Some(EU));
    assert_eq!(describe(&env.kms, EU, &id).await.state, KeyState::Updating);

    // The others finish; every member then agrees EU is the primary, as both nodes describe
    // it.
    settle(&env).await;
    assert_eu_is_primary_everywhere([&env.kms, &node_b], &id).await;
    // The new primary can replicate; the late replica cannot.
    assert!(matches!(
        env.kms
            .replicate_key(&root_in(AP), replicate_input(&id, "us-west-2"))
            .await,
        Err(KmsError::UnsupportedOperation(_))
    ));
    node_b
        .replicate_key(&root_in(EU), replicate_input(&id, "us-west-2"))
        .await
        .unwrap();
    // The late replica has the family's material.
    let sealed = encrypt(&node_b, &root_in(EU), &id, context(&[]))
        .await
        .unwrap();
    decrypt(
        &env.kms,
        &root_in(AP),
        &sealed.ciphertext_blob,
        context(&[]),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_replica_enabled_before_a_late_update_primary_region_lands_follows_it() {
    let env = env().await;
    let node_b = open(&env.store, &env.clock).await;
    let key = create_mrk(&env, CreateKeyInput::default()).await;
    let id = id_of(&key);
    replicate(&env.kms, &id, EU).await;
    settle(&env).await;

    // Node B's UpdatePrimaryRegion to EU reads the family; node A's replica in AP is inserted
    // and leaves Creating (still naming REGION, rightly then); only then is B's write, which
    // misses the replica, committed. Reproduced as above, with the replica's rows taken out
    // once it is Enabled.
    let replica = replicate(&env.kms, &id, AP).await;
    settle(&env).await;
    assert_eq!(describe(&env.kms, AP, &id).await.state, KeyState::Enabled);
    let taken = take_out(&env.store, &replica.key_id).await;
    node_b
        .update_primary_region(&env.root, Some(&id), Some(EU))
        .await
        .unwrap();
    taken.put_back(&env.store).await;

    // When the new primary leaves Updating (on node A, whose cache still holds the replica as
    // it was: MemoryStore has no change feed to tell it), it brings the replica along.
    settle(&env).await;
    assert_eu_is_primary_everywhere([&env.kms, &node_b], &id).await;
}
