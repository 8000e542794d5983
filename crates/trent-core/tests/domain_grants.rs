//! Grants as a source of permission, driven through `Kms` over `MemoryStore`: what a grant
//! allows, encryption-context constraints, RevokeGrant, RetireGrant by the retiring principal,
//! and grant tokens on a node that has not seen the grant yet.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use trent_core::grants::{CreateGrantInput, GrantConstraints, ListGrantsInput};
use trent_core::store::Store;
use trent_core::{Caller, KmsError};

/// A grant on `key_id` for `grantee`, created by the account root. Returns (id, token).
async fn grant(
    env: &Env,
    key_id: &str,
    grantee: &str,
    operations: &[&str],
    constraints: Option<GrantConstraints>,
    retiring_principal: Option<&str>,
) -> (String, String) {
    env.kms
        .create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(key_id.to_string()),
                grantee_principal: Some(grantee.to_string()),
                operations: Some(operations.iter().map(|o| (*o).to_string()).collect()),
                constraints,
                retiring_principal: retiring_principal.map(str::to_string),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

fn subset(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
    Some(GrantConstraints {
        encryption_context_subset: Some(context(pairs)),
        encryption_context_equals: None,
        source_arn: None,
    })
}

fn equals(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
    Some(GrantConstraints {
        encryption_context_equals: Some(context(pairs)),
        encryption_context_subset: None,
        source_arn: None,
    })
}

/// The denial a user without policies gets under the default key policy.
fn denied(name: &str, action: &str, key_arn: &str) -> KmsError {
    access_denied(
        &user_arn(name),
        action,
        key_arn,
        &no_identity_policy_allows(action),
    )
}

async fn can_encrypt(
    env: &Env,
    caller: &Caller,
    key_id: &str,
    ctx: BTreeMap<String, String>,
) -> bool {
    match encrypt(&env.kms, caller, key_id, ctx).await {
        Ok(_) => true,
        Err(KmsError::AccessDenied(_)) => false,
        Err(e) => panic!("unexpected error: {e:?}"),
    }
}

/// Ids of the grants `principal` may retire, as ListRetirableGrants lists them.
async fn retirable(env: &Env, principal: &str) -> Vec<String> {
    env.kms
        .list_retirable_grants(&env.root, Some(principal), None, None, None)
        .await
        .unwrap()
        .grants
        .iter()
        .map(|g| g.grant_id.clone())
        .collect()
}

#[tokio::test]
async fn a_grant_lets_a_user_without_policies_do_what_it_grants_and_nothing_else() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let bob = user(&env, "bob").await;
    let key = create_key(&env, None).await;
    let arn = key.arn();

    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        Some(denied("alice", "kms:Encrypt", &arn))
    );

    grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Encrypt", "Decrypt"],
        None,
        None,
    )
    .await;

    let ciphertext = encrypt(
        &env.kms,
        &alice.caller(&env.kms),
        &key.key_id,
        context(&[("a", "1")]),
    )
    .await
    .expect("the grant allows Encrypt")
    .ciphertext_blob;
    let plain = decrypt(
        &env.kms,
        &alice.caller(&env.kms),
        &ciphertext,
        context(&[("a", "1")]),
    )
    .await
    .expect("the grant allows Decrypt");
    assert_eq!(plain.plaintext.as_slice(), b"attack at dawn");

    // Not an operation of the grant.
    assert_eq!(
        env.kms
            .disable_key(&alice.caller(&env.kms), Some(&key.key_id))
            .await,
        Err(denied("alice", "kms:DisableKey", &arn))
    );
    // Not the grantee.
    assert_eq!(
        encrypt(&env.kms, &bob.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        Some(denied("bob", "kms:Encrypt", &arn))
    );
    // Not the key of the grant.
    let other = create_key(&env, None).await;
    assert_eq!(
        encrypt(
            &env.kms,
            &alice.caller(&env.kms),
            &other.key_id,
            context(&[])
        )
        .await
        .err(),
        Some(denied("alice", "kms:Encrypt", &other.arn()))
    );
}

#[tokio::test]
async fn encryption_context_constraints_limit_what_a_grant_allows() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(&env, None).await;
    grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Encrypt"],
        subset(&[("dept", "eng")]),
        None,
    )
    .await;

    assert!(
        can_encrypt(
            &env,
            &alice.caller(&env.kms),
            &key.key_id,
            context(&[("dept", "eng")])
        )
        .await
    );
    assert!(
        can_encrypt(
            &env,
            &alice.caller(&env.kms),
            &key.key_id,
            context(&[("dept", "eng"), ("project", "x")])
        )
        .await,
        "a subset constraint allows extra pairs"
    );
    assert!(
        !can_encrypt(
            &env,
            &alice.caller(&env.kms),
            &key.key_id,
            context(&[("dept", "ops")])
        )
        .await
    );
    assert!(!can_encrypt(&env, &alice.caller(&env.kms), &key.key_id, context(&[])).await);
    assert_eq!(
        encrypt(
            &env.kms,
            &alice.caller(&env.kms),
            &key.key_id,
            context(&[("dept", "ops")])
        )
        .await
        .err(),
        Some(denied("alice", "kms:Encrypt", &key.arn()))
    );

    // EncryptionContextEquals: exactly that context.
    let exact = create_key(&env, None).await;
    grant(
        &env,
        &exact.key_id,
        &user_arn("alice"),
        &["Encrypt"],
        equals(&[("dept", "eng")]),
        None,
    )
    .await;
    assert!(
        can_encrypt(
            &env,
            &alice.caller(&env.kms),
            &exact.key_id,
            context(&[("dept", "eng")])
        )
        .await
    );
    assert!(
        !can_encrypt(
            &env,
            &alice.caller(&env.kms),
            &exact.key_id,
            context(&[("dept", "eng"), ("project", "x")])
        )
        .await,
        "an equals constraint refuses extra pairs"
    );
}

#[tokio::test]
async fn revoke_grant_removes_the_permission() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(&env, None).await;
    let (grant_id, _) = grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Encrypt"],
        None,
        None,
    )
    .await;
    assert!(can_encrypt(&env, &alice.caller(&env.kms), &key.key_id, context(&[])).await);

    env.kms
        .revoke_grant(&env.root, Some(&key.key_id), Some(&grant_id), false)
        .await
        .unwrap();
    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        Some(denied("alice", "kms:Encrypt", &key.arn()))
    );
    assert_eq!(
        env.kms
            .revoke_grant(&env.root, Some(&key.key_id), Some(&grant_id), false)
            .await,
        Err(KmsError::NotFound(format!("Grant ID {grant_id} not found")))
    );
    let listed = env
        .kms
        .list_grants(
            &env.root,
            ListGrantsInput {
                key_id: Some(&key.key_id),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.grants.is_empty());

    // The store keeps the revoked grant as a tombstone, dated by the service clock.
    let rows = env.store.grants_for_key(&key.key_id).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].grant_id, grant_id);
    assert_eq!(rows[0].retired_ms, Some(START_MS));
}

#[tokio::test]
async fn the_retiring_principal_can_retire_a_grant_and_others_cannot() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let bob = user(&env, "bob").await;
    let carol = user(&env, "carol").await;
    let key = create_key(&env, None).await;
    let (grant_id, _) = grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Encrypt"],
        None,
        Some(&user_arn("bob")),
    )
    .await;
    assert_eq!(
        retirable(&env, &user_arn("bob")).await,
        vec![grant_id.clone()]
    );

    assert_eq!(
        env.kms
            .retire_grant(
                &carol.caller(&env.kms),
                None,
                Some(&key.key_id),
                Some(&grant_id),
                false
            )
            .await,
        Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: kms:RetireGrant on resource: {}",
            user_arn("carol"),
            key.arn()
        )))
    );
    assert!(can_encrypt(&env, &alice.caller(&env.kms), &key.key_id, context(&[])).await);

    env.kms
        .retire_grant(
            &bob.caller(&env.kms),
            None,
            Some(&key.key_id),
            Some(&grant_id),
            false,
        )
        .await
        .expect("bob is the retiring principal");
    assert!(!can_encrypt(&env, &alice.caller(&env.kms), &key.key_id, context(&[])).await);
    assert!(retirable(&env, &user_arn("bob")).await.is_empty());
    assert_eq!(
        env.kms
            .retire_grant(
                &bob.caller(&env.kms),
                None,
                Some(&key.key_id),
                Some(&grant_id),
                false
            )
            .await,
        Err(KmsError::NotFound(format!("Grant ID {grant_id} not found")))
    );
}

#[tokio::test]
async fn a_grant_token_works_on_a_node_that_has_not_seen_the_grant() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(&env, None).await;
    let arn = key.arn();

    // A second node over the same store loads the key (and its grants: none) first.
    let node_b = open(&env.store, &env.clock).await;
    node_b
        .describe_key(&env.root, Some(&key.key_id), &[])
        .await
        .unwrap();

    let (grant_id, token) = grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Encrypt"],
        None,
        None,
    )
    .await;

    // Node B's cache predates the grant: without the token it does not know it ...
    assert_eq!(
        encrypt(&node_b, &alice.caller(&node_b), &key.key_id, context(&[]))
            .await
            .err(),
        Some(denied("alice", "kms:Encrypt", &arn))
    );
    // ... with it, the grant is usable at once.
    encrypt_with_tokens(
        &node_b,
        &alice.caller(&node_b),
        &key.key_id,
        context(&[]),
        vec![token.clone()],
    )
    .await
    .expect("the grant token carries the grant");

    // A token that was not issued by this service is refused as such.
    assert_eq!(
        encrypt_with_tokens(
            &node_b,
            &alice.caller(&node_b),
            &key.key_id,
            context(&[]),
            vec!["AXRoaXMgaXMgbm90IGEgZ3JhbnQgdG9rZW4gYXQgYWxs".into()]
        )
        .await
        .err(),
        Some(KmsError::InvalidGrantToken("Invalid grant token".into()))
    );

    // A node that knows the grant was revoked refuses its token.
    env.kms
        .revoke_grant(&env.root, Some(&key.key_id), Some(&grant_id), false)
        .await
        .unwrap();
    assert_eq!(
        encrypt_with_tokens(
            &env.kms,
            &alice.caller(&env.kms),
            &key.key_id,
            context(&[]),
            vec![token]
        )
        .await
        .err(),
        Some(denied("alice", "kms:Encrypt", &arn))
    );
}

/// An ML-KEM key: a grant for Encapsulate allows only Encapsulate; Decapsulate (a secret out of
/// the private key) needs its own grant. The key's stored material, parsed again by a restarted
/// `Kms`, decapsulates what the first one encapsulated.
#[tokio::test]
async fn ml_kem_grants_separate_encapsulate_from_decapsulate() {
    use trent_core::crypto::{DecapsulateInput, EncapsulateInput};
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = env
        .kms
        .create_key(
            &env.root,
            trent_core::keys::CreateKeyInput {
                key_spec: Some("ML_KEM_768".into()),
                key_usage: Some("ENCAPSULATE_DECAPSULATE".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let arn = key.arn();
    let encapsulate = |caller: Caller| {
        let kms = &env.kms;
        let key_id = key.key_id.clone();
        async move {
            kms.encapsulate(
                &caller,
                EncapsulateInput {
                    key_id: Some(key_id),
                    encapsulation_algorithm: Some("ML_KEM".into()),
                    ..Default::default()
                },
            )
            .await
        }
    };
    let decapsulate_input = |ciphertext: &[u8], tokens: Vec<String>| DecapsulateInput {
        key_id: Some(key.key_id.clone()),
        shared_secret_ciphertext_blob: Some(ciphertext.to_vec()),
        encapsulation_algorithm: Some("ML_KEM".into()),
        grant_tokens: tokens,
        ..Default::default()
    };
    assert_eq!(
        encapsulate(alice.caller(&env.kms)).await.err(),
        Some(denied("alice", "kms:Encapsulate", &arn))
    );
    grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Encapsulate"],
        None,
        None,
    )
    .await;
    let out = encapsulate(alice.caller(&env.kms))
        .await
        .expect("the grant allows Encapsulate");
    let ciphertext = out.shared_secret_ciphertext_blob.clone();
    assert_eq!(ciphertext.len(), 1088);
    assert_eq!(
        env.kms
            .decapsulate(
                &alice.caller(&env.kms),
                decapsulate_input(&ciphertext, Vec::new())
            )
            .await
            .err(),
        Some(denied("alice", "kms:Decapsulate", &arn))
    );
    let (_, token) = grant(
        &env,
        &key.key_id,
        &user_arn("alice"),
        &["Decapsulate"],
        None,
        None,
    )
    .await;
    let back = env
        .kms
        .decapsulate(
            &alice.caller(&env.kms),
            decapsulate_input(&ciphertext, vec![token]),
        )
        .await
        .expect("the grant allows Decapsulate");
    assert_eq!(back.shared_secret.as_slice(), out.shared_secret.as_slice());

    // A restarted process parses the stored material and gets the same secret.
    let restarted = open(&env.store, &env.clock).await;
    let again = restarted
        .decapsulate(&env.root, decapsulate_input(&ciphertext, Vec::new()))
        .await
        .unwrap();
    assert_eq!(again.shared_secret.as_slice(), out.shared_secret.as_slice());
}
