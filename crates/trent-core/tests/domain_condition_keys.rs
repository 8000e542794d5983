//! Which condition keys a request carries, decided from AWS's documentation (issue 17's
//! "fix first" list; docs/decisions.md, "Condition keys present and absent"):
//! `kms:EncryptionAlgorithm` on GenerateDataKeyPair*, `kms:CallerAccount` on the alias half of
//! alias operations, and `kms:BypassPolicyLockoutSafetyCheck` only when the request sends it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;

use common::*;
use serde_json::json;
use trent_core::KmsError;
use trent_core::crypto::GenerateDataKeyPairInput;

/// The developer guide's "allow only the symmetric algorithm" pattern: a Deny of every
/// `kms:EncryptionAlgorithm` other than SYMMETRIC_DEFAULT. GenerateDataKeyPair encrypts the
/// pair's private key with SYMMETRIC_DEFAULT, so the Deny must not catch it.
#[tokio::test]
async fn generate_data_key_pair_carries_the_symmetric_algorithm() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(
        &env,
        Some(key_policy(vec![
            json!({
                "Effect": "Allow",
                "Principal": { "AWS": user_arn("alice") },
                "Action": ["kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext"],
                "Resource": "*"
            }),
            json!({
                "Effect": "Deny",
                "Principal": { "AWS": user_arn("alice") },
                "Action": "kms:*",
                "Resource": "*",
                "Condition": { "StringNotEquals": { "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT" } }
            }),
        ])),
    )
    .await;
    for with_plaintext in [true, false] {
        let out = env
            .kms
            .generate_data_key_pair(
                &alice.caller(&env.kms),
                GenerateDataKeyPairInput {
                    key_id: Some(key.key_id.clone()),
                    key_pair_spec: Some("ECC_NIST_P256".into()),
                    ..Default::default()
                },
                with_plaintext,
            )
            .await;
        assert!(
            out.is_ok(),
            "with_plaintext={with_plaintext}: {:?}",
            out.err()
        );
    }
}

/// An IAM policy allowing CreateAlias only when `kms:CallerAccount` is the caller's account:
/// both halves (the key and the alias) must see the key.
#[tokio::test]
async fn the_alias_half_of_create_alias_sees_the_caller_account() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(&env, None).await;
    let policy = |account: &str| {
        identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": "kms:CreateAlias",
            "Resource": "*",
            "Condition": { "StringEquals": { "kms:CallerAccount": account } }
        })])
    };

    put_user_policy(&env, "alice", "aliases", &policy(OTHER_ACCOUNT)).await;
    let denied = env
        .kms
        .create_alias(
            &alice.caller(&env.kms),
            Some("alias/denied"),
            Some(&key.key_id),
        )
        .await;
    assert!(
        matches!(denied, Err(KmsError::AccessDenied(_))),
        "{denied:?}"
    );

    put_user_policy(&env, "alice", "aliases", &policy(ACCOUNT)).await;
    env.kms
        .create_alias(
            &alice.caller(&env.kms),
            Some("alias/allowed"),
            Some(&key.key_id),
        )
        .await
        .expect("kms:CallerAccount matches on both halves");
}

/// The `Null` test tells a request that sent the parameter from one that did not.
#[tokio::test]
async fn bypass_policy_lockout_safety_check_is_absent_unless_sent() {
    let env = env().await;
    let key = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Deny",
            "Principal": { "AWS": root_arn(ACCOUNT) },
            "Action": "kms:PutKeyPolicy",
            "Resource": "*",
            "Condition": { "Null": { "kms:BypassPolicyLockoutSafetyCheck": "false" } }
        })])),
    )
    .await;
    let policy = key.policy.clone();

    env.kms
        .put_key_policy(&env.root, Some(&key.key_id), None, Some(&policy), None)
        .await
        .expect("not sent: the key is absent, the Deny does not apply");
    for sent in [false, true] {
        let out = env
            .kms
            .put_key_policy(
                &env.root,
                Some(&key.key_id),
                None,
                Some(&policy),
                Some(sent),
            )
            .await;
        assert!(
            matches!(out, Err(KmsError::AccessDenied(_))),
            "sent {sent}: {out:?}"
        );
    }
}
