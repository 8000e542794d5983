//! What the domain writes through the `Store` comes back when a new `Kms` opens over the same
//! `MemoryStore` (a restart): credentials, IAM users and policies, keys and their state,
//! rotated material, aliases, grants and their tombstones.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use serde_json::json;
use trent_core::KmsError;
use trent_core::grants::CreateGrantInput;

#[tokio::test]
async fn state_written_through_the_store_comes_back_after_reopening() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let bob = user(&env, "bob").await;
    put_user_policy(
        &env,
        "alice",
        "encrypt",
        &identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": "*"
        })]),
    )
    .await;
    let key = create_key(&env, None).await;
    let disabled = create_key(&env, None).await;
    env.kms
        .create_alias(&env.root, Some("alias/app"), Some(&key.key_id))
        .await
        .unwrap();
    let before_rotation = encrypt(&env.kms, &alice.caller(&env.kms), "alias/app", context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;
    env.kms
        .rotate_key_on_demand(&env.root, Some(&key.key_id))
        .await
        .unwrap();
    let grant = |grantee: &str| CreateGrantInput {
        key_id: Some(key.key_id.clone()),
        grantee_principal: Some(grantee.to_string()),
        operations: Some(vec!["Decrypt".into()]),
        ..Default::default()
    };
    env.kms
        .create_grant(&env.root, grant(&user_arn("bob")))
        .await
        .unwrap();
    let (revoked, _) = env
        .kms
        .create_grant(&env.root, grant(&user_arn("alice")))
        .await
        .unwrap();
    env.kms
        .revoke_grant(&env.root, Some(&key.key_id), Some(&revoked), false)
        .await
        .unwrap();
    env.kms
        .disable_key(&env.root, Some(&disabled.key_id))
        .await
        .unwrap();

    let reopened = open(&env.store, &env.clock).await;
    assert!(reopened.known_account(ACCOUNT));
    assert!(reopened.known_account(OTHER_ACCOUNT));
    assert!(reopened.credentials.lookup(ROOT_ACCESS_KEY).is_some());
    // Users' credentials and IAM policies: alice may still Encrypt, through the alias.
    let after_rotation = encrypt(
        &reopened,
        &alice.caller(&reopened),
        "alias/app",
        context(&[]),
    )
    .await
    .expect("IAM policy, alias and key survive")
    .ciphertext_blob;
    // Bob's grant survives; both materials do.
    let old = decrypt(
        &reopened,
        &bob.caller(&reopened),
        &before_rotation,
        context(&[]),
    )
    .await
    .expect("bob's grant survives");
    let new = decrypt(
        &reopened,
        &bob.caller(&reopened),
        &after_rotation,
        context(&[]),
    )
    .await
    .unwrap();
    assert_ne!(old.key_material_id, new.key_material_id);
    // The revoked grant stays revoked.
    assert!(matches!(
        decrypt(
            &reopened,
            &alice.caller(&reopened),
            &after_rotation,
            context(&[])
        )
        .await,
        Err(KmsError::AccessDenied(_))
    ));
    assert_eq!(
        encrypt(&reopened, &env.root, &disabled.key_id, context(&[]))
            .await
            .err(),
        Some(KmsError::Disabled(format!(
            "{} is disabled.",
            disabled.arn()
        )))
    );
    let mut ids = vec![key.key_id.clone(), disabled.key_id.clone()];
    ids.sort();
    let listed = reopened.list_keys(&env.root, None, None).await.unwrap();
    assert_eq!(
        listed
            .keys
            .iter()
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>(),
        ids
    );
}
