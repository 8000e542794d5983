//! AWS KMS's decision order, driven through `Kms` over `MemoryStore`: key policy naming the
//! caller; key policy delegating to the account plus an IAM allow; explicit denies on either
//! side (over grants too); the cross-account gate; encryption-context conditions.

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
use trent_crypto::spec::KeyState;

#[tokio::test]
async fn a_key_policy_naming_the_caller_allows_it_without_any_iam_policy() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let bob = user(&env, "bob").await;
    let key = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "AWS": user_arn("alice") },
            "Action": "kms:Encrypt",
            "Resource": "*"
        })])),
    )
    .await;
    let arn = key.arn();

    let out = encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
        .await
        .expect("the key policy names alice");
    assert_eq!(out.key_arn, arn);

    // Only the action the statement names; and only for alice.
    let ciphertext = out.ciphertext_blob;
    assert_eq!(
        decrypt(&env.kms, &alice.caller(&env.kms), &ciphertext, context(&[]))
            .await
            .err(),
        Some(access_denied(
            &user_arn("alice"),
            "kms:Decrypt",
            &arn,
            &no_identity_policy_allows("kms:Decrypt")
        ))
    );
    assert_eq!(
        encrypt(&env.kms, &bob.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        Some(access_denied(
            &user_arn("bob"),
            "kms:Encrypt",
            &arn,
            &no_identity_policy_allows("kms:Encrypt")
        ))
    );
}

#[tokio::test]
async fn a_key_policy_delegating_to_the_account_needs_an_iam_allow() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(&env, None).await; // the default policy: delegation to the account
    let other_key = create_key(&env, None).await;
    let arn = key.arn();

    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        Some(access_denied(
            &user_arn("alice"),
            "kms:Encrypt",
            &arn,
            &no_identity_policy_allows("kms:Encrypt")
        )),
        "delegation alone allows nothing"
    );

    put_user_policy(
        &env,
        "alice",
        "encrypt-one-key",
        &identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": arn
        })]),
    )
    .await;

    // The caller value is unchanged: policies are looked up per request.
    encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
        .await
        .expect("key policy delegates and IAM allows");
    assert_eq!(
        encrypt(
            &env.kms,
            &alice.caller(&env.kms),
            &other_key.key_id,
            context(&[])
        )
        .await
        .err(),
        Some(access_denied(
            &user_arn("alice"),
            "kms:Encrypt",
            &other_key.arn(),
            &no_identity_policy_allows("kms:Encrypt")
        )),
        "the IAM policy names only the first key"
    );
    assert!(matches!(
        env.kms
            .disable_key(&alice.caller(&env.kms), Some(&key.key_id))
            .await,
        Err(KmsError::AccessDenied(_))
    ));

    // Under a key policy that does not delegate, the same IAM allow counts for nothing.
    let undelegated = create_key(
        &env,
        Some(
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": { "AWS": user_arn("alice") },
                    "Action": "kms:Decrypt",
                    "Resource": "*"
                }, {
                    "Effect": "Allow",
                    "Principal": { "AWS": root_arn(ACCOUNT) },
                    "Action": ["kms:PutKeyPolicy", "kms:DescribeKey"],
                    "Resource": "*"
                }]
            })
            .to_string(),
        ),
    )
    .await;
    put_user_policy(
        &env,
        "alice",
        "encrypt-everything",
        &identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": "kms:Encrypt",
            "Resource": "*"
        })]),
    )
    .await;
    assert_eq!(
        encrypt(
            &env.kms,
            &alice.caller(&env.kms),
            &undelegated.key_id,
            context(&[])
        )
        .await
        .err(),
        Some(access_denied(
            &user_arn("alice"),
            "kms:Encrypt",
            &undelegated.arn(),
            &no_resource_policy_allows("kms:Encrypt")
        ))
    );
}

#[tokio::test]
async fn an_explicit_deny_in_the_key_policy_beats_an_iam_allow_and_grants() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    put_user_policy(
        &env,
        "alice",
        "kms-admin",
        &identity_policy(vec![json!({
            "Effect": "Allow",
            "Action": "kms:*",
            "Resource": "*"
        })]),
    )
    .await;
    let key = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Deny",
            "Principal": { "AWS": user_arn("alice") },
            "Action": "kms:Encrypt",
            "Resource": "*"
        })])),
    )
    .await;
    let denied = Some(access_denied(
        &user_arn("alice"),
        "kms:Encrypt",
        &key.arn(),
        EXPLICIT_DENY_IN_KEY_POLICY,
    ));

    // The IAM allow works for what the key policy does not deny.
    env.kms
        .describe_key(&alice.caller(&env.kms), Some(&key.key_id), &[])
        .await
        .expect("delegation + IAM allow");
    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        denied
    );

    // A grant only allows: it does not lift an explicit deny.
    let (_, token) = env
        .kms
        .create_grant(
            &env.root,
            CreateGrantInput {
                key_id: Some(key.key_id.clone()),
                grantee_principal: Some(user_arn("alice")),
                operations: Some(vec!["Encrypt".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        denied
    );
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
        denied
    );
}

#[tokio::test]
async fn an_explicit_deny_in_iam_beats_a_key_policy_allow() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "AWS": user_arn("alice") },
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*"
        })])),
    )
    .await;
    let ciphertext = encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
        .await
        .expect("the key policy names alice")
        .ciphertext_blob;

    put_user_policy(
        &env,
        "alice",
        "no-encrypt",
        &identity_policy(vec![json!({
            "Effect": "Deny",
            "Action": "kms:Encrypt",
            "Resource": "*"
        })]),
    )
    .await;
    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        Some(access_denied(
            &user_arn("alice"),
            "kms:Encrypt",
            &key.arn(),
            EXPLICIT_DENY_IN_IAM_POLICY
        ))
    );
    // The deny names Encrypt only.
    let plain = decrypt(&env.kms, &alice.caller(&env.kms), &ciphertext, context(&[]))
        .await
        .expect("decrypt is not denied");
    assert_eq!(plain.plaintext.as_slice(), b"attack at dawn");
}

#[tokio::test]
async fn a_cross_account_caller_is_refused_actions_kms_never_allows_across_accounts() {
    let env = env().await;
    let key = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "AWS": root_arn(OTHER_ACCOUNT) },
            "Action": "kms:*",
            "Resource": "*"
        })])),
    )
    .await;
    let arn = key.arn();

    // Encrypt is a cross-account action, and the key policy allows the other account.
    let out = encrypt(&env.kms, &env.other_root, &arn, context(&[]))
        .await
        .expect("cross-account Encrypt by key ARN");
    assert_eq!(out.key_arn, arn);

    // DisableKey and ScheduleKeyDeletion never work across accounts, whatever the policy says.
    assert_eq!(
        env.kms.disable_key(&env.other_root, Some(&arn)).await,
        Err(access_denied(
            &root_arn(OTHER_ACCOUNT),
            "kms:DisableKey",
            &arn,
            &no_resource_policy_allows("kms:DisableKey")
        ))
    );
    assert_eq!(
        env.kms
            .schedule_key_deletion(&env.other_root, Some(&arn), Some(7))
            .await
            .err(),
        Some(access_denied(
            &root_arn(OTHER_ACCOUNT),
            "kms:ScheduleKeyDeletion",
            &arn,
            &no_resource_policy_allows("kms:ScheduleKeyDeletion")
        ))
    );
    let now = env
        .kms
        .describe_key(&env.root, Some(&key.key_id), &[])
        .await
        .unwrap();
    assert_eq!(now.state, KeyState::Enabled);
    assert_eq!(now.lifecycle.deletion_ms, None);

    // A bare key id means a key of the caller's own account.
    assert_eq!(
        encrypt(&env.kms, &env.other_root, &key.key_id, context(&[]))
            .await
            .err(),
        Some(KmsError::NotFound(format!(
            "Key 'arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/{}' does not exist",
            key.key_id
        )))
    );

    // Without the key policy's consent, not even Encrypt.
    let private = create_key(&env, None).await;
    assert_eq!(
        encrypt(&env.kms, &env.other_root, &private.arn(), context(&[]))
            .await
            .err(),
        Some(access_denied(
            &root_arn(OTHER_ACCOUNT),
            "kms:Encrypt",
            &private.arn(),
            &no_resource_policy_allows("kms:Encrypt")
        ))
    );
}

#[tokio::test]
async fn a_key_policy_condition_on_the_encryption_context() {
    let env = env().await;
    let alice = user(&env, "alice").await;
    let key = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "AWS": user_arn("alice") },
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {
                "StringEquals": { "kms:EncryptionContext:purpose": "backup" }
            }
        })])),
    )
    .await;
    let denied = |action: &str| {
        Some(access_denied(
            &user_arn("alice"),
            action,
            &key.arn(),
            &no_identity_policy_allows(action),
        ))
    };

    let ciphertext = encrypt(
        &env.kms,
        &alice.caller(&env.kms),
        &key.key_id,
        context(&[("purpose", "backup"), ("host", "db1")]),
    )
    .await
    .expect("the condition holds")
    .ciphertext_blob;
    assert_eq!(
        encrypt(
            &env.kms,
            &alice.caller(&env.kms),
            &key.key_id,
            context(&[("purpose", "audit")])
        )
        .await
        .err(),
        denied("kms:Encrypt")
    );
    assert_eq!(
        encrypt(&env.kms, &alice.caller(&env.kms), &key.key_id, context(&[]))
            .await
            .err(),
        denied("kms:Encrypt"),
        "a missing context key fails StringEquals"
    );

    let plain = decrypt(
        &env.kms,
        &alice.caller(&env.kms),
        &ciphertext,
        context(&[("purpose", "backup"), ("host", "db1")]),
    )
    .await
    .expect("decrypt with the same context");
    assert_eq!(plain.plaintext.as_slice(), b"attack at dawn");
    // Authorization sees the context the request claims, before the blob is opened.
    assert_eq!(
        decrypt(
            &env.kms,
            &alice.caller(&env.kms),
            &ciphertext,
            context(&[("purpose", "audit")])
        )
        .await
        .err(),
        denied("kms:Decrypt")
    );
}
