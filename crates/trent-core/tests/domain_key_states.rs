//! Key states and time, driven through `Kms` over `MemoryStore` and a test clock: disabling,
//! scheduled deletion and its cancellation, deletion when the waiting period ends, and
//! automatic rotation when it is due.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use trent_core::KmsError;
use trent_core::background::WorkDone;
use trent_core::model::RotationType;
use trent_core::store::Store;
use trent_crypto::spec::KeyState;

#[tokio::test]
async fn a_disabled_key_refuses_encrypt_and_decrypt_until_it_is_enabled_again() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let arn = key.arn();
    let ciphertext = encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;

    env.kms
        .disable_key(&env.root, Some(&key.key_id))
        .await
        .unwrap();
    let disabled = || KmsError::Disabled(format!("{arn} is disabled."));
    assert_eq!(
        encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
            .await
            .err(),
        Some(disabled())
    );
    assert_eq!(
        decrypt(&env.kms, &env.root, &ciphertext, context(&[]))
            .await
            .err(),
        Some(disabled())
    );
    assert_eq!(
        env.store.key(&key.key_id).await.unwrap().unwrap().0.state,
        KeyState::Disabled,
        "the state change is written to the store"
    );

    env.kms
        .enable_key(&env.root, Some(&key.key_id))
        .await
        .unwrap();
    encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .expect("enabled again");
    let plain = decrypt(&env.kms, &env.root, &ciphertext, context(&[]))
        .await
        .expect("old ciphertext decrypts again");
    assert_eq!(plain.plaintext.as_slice(), b"attack at dawn");
}

#[tokio::test]
async fn a_key_pending_deletion_is_unusable_and_cancelling_leaves_it_disabled() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let arn = key.arn();

    let scheduled = env
        .kms
        .schedule_key_deletion(&env.root, Some(&key.key_id), Some(7))
        .await
        .unwrap();
    assert_eq!(scheduled.key_arn, arn);
    assert_eq!(scheduled.key_state, KeyState::PendingDeletion);
    assert_eq!(scheduled.pending_window_days, 7);
    assert_eq!(scheduled.deletion_ms, Some(START_MS + 7 * DAY_MS));

    let pending = || KmsError::InvalidState(format!("{arn} is pending deletion."));
    assert_eq!(
        encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
            .await
            .err(),
        Some(pending())
    );
    assert_eq!(
        env.kms.enable_key(&env.root, Some(&key.key_id)).await,
        Err(pending())
    );
    assert_eq!(
        env.kms
            .schedule_key_deletion(&env.root, Some(&key.key_id), Some(7))
            .await
            .err(),
        Some(pending())
    );

    assert_eq!(
        env.kms
            .cancel_key_deletion(&env.root, Some(&key.key_id))
            .await
            .unwrap(),
        arn
    );
    let record = env
        .kms
        .describe_key(&env.root, Some(&key.key_id), &[])
        .await
        .unwrap();
    assert_eq!(record.state, KeyState::Disabled);
    assert_eq!(record.lifecycle.deletion_ms, None);
    assert_eq!(record.lifecycle.pending_window_days, None);
    assert_eq!(
        encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
            .await
            .err(),
        Some(KmsError::Disabled(format!("{arn} is disabled.")))
    );
    assert_eq!(
        env.kms
            .cancel_key_deletion(&env.root, Some(&key.key_id))
            .await
            .err(),
        Some(KmsError::InvalidState(format!(
            "{arn} is not pending deletion."
        )))
    );

    // Nothing is due any more: the cancelled key survives its old deletion date.
    env.clock.advance(8 * DAY_MS);
    assert_eq!(env.kms.run_due_work().await.unwrap(), WorkDone::default());
    env.kms
        .enable_key(&env.root, Some(&key.key_id))
        .await
        .unwrap();
    encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .expect("enabled after cancellation");
}

#[tokio::test]
async fn the_key_is_deleted_when_the_clock_passes_the_end_of_its_waiting_period() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let keeper = create_key(&env, None).await;
    let arn = key.arn();
    env.kms
        .create_alias(&env.root, Some("alias/doomed"), Some(&key.key_id))
        .await
        .unwrap();
    env.kms
        .schedule_key_deletion(&env.root, Some(&key.key_id), Some(7))
        .await
        .unwrap();

    env.clock.advance(7 * DAY_MS - 1);
    assert_eq!(
        env.kms.run_due_work().await.unwrap(),
        WorkDone::default(),
        "not due until the deletion date"
    );
    assert_eq!(
        env.kms
            .describe_key(&env.root, Some(&key.key_id), &[])
            .await
            .unwrap()
            .state,
        KeyState::PendingDeletion
    );

    env.clock.advance(1);
    assert_eq!(
        env.kms.run_due_work().await.unwrap(),
        WorkDone {
            deleted: 1,
            ..WorkDone::default()
        }
    );
    assert_eq!(
        env.kms
            .describe_key(&env.root, Some(&key.key_id), &[])
            .await
            .err(),
        Some(KmsError::NotFound(format!("Key '{arn}' does not exist")))
    );
    assert_eq!(
        encrypt(&env.kms, &env.root, "alias/doomed", context(&[]))
            .await
            .err(),
        Some(KmsError::NotFound(format!(
            "Alias 'arn:aws:kms:{REGION}:{ACCOUNT}:alias/doomed' is not found."
        )))
    );
    assert!(env.store.key(&key.key_id).await.unwrap().is_none());
    assert!(
        env.store
            .alias(ACCOUNT, REGION, "alias/doomed")
            .await
            .unwrap()
            .is_none()
    );
    // Once, and only that key.
    assert_eq!(env.kms.run_due_work().await.unwrap(), WorkDone::default());
    encrypt(&env.kms, &env.root, &keeper.key_id, context(&[]))
        .await
        .expect("the other key is untouched");
}

#[tokio::test]
async fn automatic_rotation_adds_material_when_due_and_old_ciphertexts_still_decrypt() {
    let env = env().await;
    let key = create_key(&env, None).await;
    env.kms
        .enable_key_rotation(&env.root, Some(&key.key_id), Some(90))
        .await
        .unwrap();
    let status = env
        .kms
        .get_key_rotation_status(&env.root, Some(&key.key_id))
        .await
        .unwrap();
    assert!(status.enabled);
    assert_eq!(status.period_days, Some(90));
    assert_eq!(status.next_rotation_ms, Some(START_MS + 90 * DAY_MS));

    let old = encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    let first_material = decrypt(&env.kms, &env.root, &old, context(&[]))
        .await
        .unwrap()
        .key_material_id;

    env.clock.advance(90 * DAY_MS - 1);
    assert_eq!(env.kms.run_due_work().await.unwrap(), WorkDone::default());
    env.clock.advance(1);
    assert_eq!(
        env.kms.run_due_work().await.unwrap(),
        WorkDone {
            rotated: 1,
            ..WorkDone::default()
        }
    );
    assert_eq!(
        env.kms.run_due_work().await.unwrap(),
        WorkDone::default(),
        "one rotation per due date"
    );

    let new = encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    let second_material = decrypt(&env.kms, &env.root, &new, context(&[]))
        .await
        .unwrap()
        .key_material_id;
    assert_ne!(
        second_material, first_material,
        "new ciphertexts use new material"
    );
    let again = decrypt(&env.kms, &env.root, &old, context(&[]))
        .await
        .expect("material from before the rotation is kept");
    assert_eq!(again.key_material_id, first_material);
    assert_eq!(again.plaintext.as_slice(), b"attack at dawn");

    let rotations = env.store.rotations(&key.key_id).await.unwrap();
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].material_id, second_material);
    assert_eq!(rotations[0].rotation_type, RotationType::Automatic);
    assert_eq!(rotations[0].rotation_ms, START_MS + 90 * DAY_MS);
    assert_eq!(
        env.kms
            .get_key_rotation_status(&env.root, Some(&key.key_id))
            .await
            .unwrap()
            .next_rotation_ms,
        Some(START_MS + 180 * DAY_MS)
    );
}

#[tokio::test]
async fn a_disabled_key_does_not_rotate_while_disabled() {
    let env = env().await;
    let key = create_key(&env, None).await;
    env.kms
        .enable_key_rotation(&env.root, Some(&key.key_id), Some(90))
        .await
        .unwrap();
    env.kms
        .disable_key(&env.root, Some(&key.key_id))
        .await
        .unwrap();

    env.clock.advance(91 * DAY_MS);
    assert_eq!(env.kms.run_due_work().await.unwrap(), WorkDone::default());
    assert!(env.store.rotations(&key.key_id).await.unwrap().is_empty());
    assert_eq!(
        env.store.key(&key.key_id).await.unwrap().unwrap().1.len(),
        1,
        "still only the first material"
    );
}
