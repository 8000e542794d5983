//! Regression tests for the "Low" findings of the attacker's review (issue 10), driven through
//! `Kms` over `MemoryStore`: encryption-context limits on every operation that takes one,
//! CreateGrant refusing principals that do not exist, and no cross-account existence oracle
//! for key ARNs and alias ARNs.

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
use serde_json::json;
use trent_core::KmsError;
use trent_core::crypto::{
    DecryptInput, GenerateDataKeyInput, GenerateDataKeyPairInput, ReEncryptInput,
};
use trent_core::grants::{CreateGrantInput, GrantConstraints};
use trent_core::iam::{CreateRoleInput, Entity};

const MAX_CONTEXT_CHARS: usize = 8151;

/// One pair whose key, value and separator come to `chars` characters.
fn context_of(chars: usize) -> BTreeMap<String, String> {
    context(&[("k", &"v".repeat(chars - 2))])
}

fn is_context_error(r: &Result<impl Sized, KmsError>, field: &str) -> bool {
    matches!(r, Err(KmsError::Validation(m)) if m.starts_with("Invalid EncryptionContext: ") && m.contains(&format!("'{field}'")))
}

#[tokio::test]
async fn every_encryption_context_is_limited() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let id = key.key_id.as_str();
    let largest = context_of(MAX_CONTEXT_CHARS);
    let too_large = context_of(MAX_CONTEXT_CHARS + 1);
    let empty_key = context(&[("", "x")]);
    let many_pairs: BTreeMap<String, String> = (0..10_000)
        .map(|i| (format!("k{i}"), String::new()))
        .collect();
    let huge_value = context(&[("k", &"v".repeat(200 * 1024))]);

    // Exactly at the limit works, and round-trips.
    let blob = encrypt(&env.kms, &env.root, id, largest.clone())
        .await
        .unwrap()
        .ciphertext_blob;
    decrypt(&env.kms, &env.root, &blob, largest.clone())
        .await
        .unwrap();
    // An empty value is allowed; an empty key is not.
    encrypt(&env.kms, &env.root, id, context(&[("k", "")]))
        .await
        .unwrap();

    for bad in [&too_large, &empty_key, &many_pairs, &huge_value] {
        let r = encrypt(&env.kms, &env.root, id, bad.clone()).await;
        assert!(is_context_error(&r, "encryptionContext"), "Encrypt");
        let r = decrypt(&env.kms, &env.root, &blob, bad.clone()).await;
        assert!(is_context_error(&r, "encryptionContext"), "Decrypt");
        let r = env
            .kms
            .generate_data_key(
                &env.root,
                GenerateDataKeyInput {
                    key_id: Some(id.into()),
                    key_spec: Some("AES_256".into()),
                    encryption_context: bad.clone(),
                    ..Default::default()
                },
                true,
            )
            .await;
        assert!(is_context_error(&r, "encryptionContext"), "GenerateDataKey");
        let r = env
            .kms
            .generate_data_key_pair(
                &env.root,
                GenerateDataKeyPairInput {
                    key_id: Some(id.into()),
                    key_pair_spec: Some("ECC_NIST_P256".into()),
                    encryption_context: bad.clone(),
                    ..Default::default()
                },
                false,
            )
            .await;
        assert!(
            is_context_error(&r, "encryptionContext"),
            "GenerateDataKeyPair"
        );
        let re_encrypt = |source: BTreeMap<String, String>, destination| ReEncryptInput {
            ciphertext_blob: Some(blob.clone()),
            source_encryption_context: source,
            destination_key_id: Some(id.into()),
            destination_encryption_context: destination,
            ..Default::default()
        };
        let r = env
            .kms
            .re_encrypt(&env.root, re_encrypt(bad.clone(), largest.clone()))
            .await;
        assert!(is_context_error(&r, "sourceEncryptionContext"), "ReEncrypt");
        let r = env
            .kms
            .re_encrypt(&env.root, re_encrypt(largest.clone(), bad.clone()))
            .await;
        assert!(
            is_context_error(&r, "destinationEncryptionContext"),
            "ReEncrypt"
        );
    }
    // A dry run is refused the same way (validation comes first).
    let r = env
        .kms
        .decrypt(
            &env.root,
            DecryptInput {
                ciphertext_blob: Some(blob.clone()),
                encryption_context: empty_key,
                dry_run: true,
                ..Default::default()
            },
        )
        .await;
    assert!(is_context_error(&r, "encryptionContext"));
}

#[tokio::test]
async fn grant_constraints_hold_at_most_eight_pairs_of_384_characters() {
    let env = env().await;
    let key = create_key(&env, None).await;
    user(&env, "alice").await;
    let grant = |constraints: GrantConstraints| CreateGrantInput {
        key_id: Some(key.key_id.clone()),
        grantee_principal: Some(user_arn("alice")),
        operations: Some(vec!["Encrypt".into()]),
        constraints: Some(constraints),
        ..Default::default()
    };
    let pairs = |n: usize| -> BTreeMap<String, String> {
        (0..n).map(|i| (format!("k{i}"), "v".into())).collect()
    };
    let equals = |c| GrantConstraints {
        encryption_context_equals: Some(c),
        encryption_context_subset: None,
        source_arn: None,
    };
    let subset = |c| GrantConstraints {
        encryption_context_equals: None,
        encryption_context_subset: Some(c),
        source_arn: None,
    };
    env.kms
        .create_grant(&env.root, grant(equals(pairs(8))))
        .await
        .unwrap();
    env.kms
        .create_grant(&env.root, grant(subset(context_of(384))))
        .await
        .unwrap();
    for (bad, field) in [
        (equals(pairs(9)), "constraints.encryptionContextEquals"),
        (subset(pairs(9)), "constraints.encryptionContextSubset"),
        (
            equals(context_of(385)),
            "constraints.encryptionContextEquals",
        ),
        (
            subset(context(&[("", "v")])),
            "constraints.encryptionContextSubset",
        ),
    ] {
        let r = env.kms.create_grant(&env.root, grant(bad)).await;
        assert!(is_context_error(&r, field), "{field}: {r:?}");
    }
}

#[tokio::test]
async fn create_grant_refuses_principals_that_do_not_exist() {
    let env = env().await;
    let key = create_key(&env, None).await;
    user(&env, "alice").await;
    env.kms
        .iam_create_role(
            &env.root,
            CreateRoleInput {
                name: "worker".into(),
                trust_policy: json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": { "AWS": root_arn(ACCOUNT) },
                        "Action": "sts:AssumeRole"
                    }]
                })
                .to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let grant = |grantee: &str, retiring: Option<&str>| CreateGrantInput {
        key_id: Some(key.key_id.clone()),
        grantee_principal: Some(grantee.to_string()),
        retiring_principal: retiring.map(str::to_string),
        operations: Some(vec!["Encrypt".into()]),
        ..Default::default()
    };
    let role = format!("arn:aws:iam::{ACCOUNT}:role/worker");
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/worker/s1");
    for ok in [
        user_arn("alice"),
        role.clone(),
        session,
        ACCOUNT.to_string(),
        root_arn(ACCOUNT),
        root_arn(OTHER_ACCOUNT),
        OTHER_ACCOUNT.to_string(),
    ] {
        env.kms
            .create_grant(&env.root, grant(&ok, Some(&role)))
            .await
            .unwrap_or_else(|e| panic!("{ok}: {e:?}"));
    }
    let invalid = |p: &str| {
        Err(KmsError::InvalidArn(format!(
            "{p} is not a valid principal"
        )))
    };
    for missing in [
        user_arn("ghost"),
        format!("arn:aws:iam::{ACCOUNT}:role/ghost"),
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/ghost/s1"),
        format!("arn:aws:iam::{ACCOUNT}:group/admins"),
        format!("arn:aws:iam::{OTHER_ACCOUNT}:user/alice"),
        // An account Trent does not host, and a user in one.
        "999988887777".to_string(),
        root_arn("999988887777"),
        "arn:aws:iam::999988887777:user/alice".to_string(),
        // A service principal is not an ARN (GranteePrincipal takes ARNs).
        "sns.amazonaws.com".to_string(),
    ] {
        assert_eq!(
            env.kms
                .create_grant(&env.root, grant(&missing, None))
                .await
                .map(|_| ()),
            invalid(&missing),
            "grantee {missing}"
        );
        assert_eq!(
            env.kms
                .create_grant(&env.root, grant(&user_arn("alice"), Some(&missing)))
                .await
                .map(|_| ()),
            invalid(&missing),
            "retiring principal {missing}"
        );
    }
    // A dry run checks the principal too.
    let mut dry = grant(&user_arn("ghost"), None);
    dry.dry_run = true;
    assert_eq!(
        env.kms.create_grant(&env.root, dry).await.map(|_| ()),
        invalid(&user_arn("ghost"))
    );

    // A caller who may not create grants learns nothing about which principals exist.
    let bob = user(&env, "bob").await.caller(&env.kms);
    for grantee in [user_arn("alice"), user_arn("ghost")] {
        assert_eq!(
            env.kms
                .create_grant(&bob, grant(&grantee, None))
                .await
                .map(|_| ()),
            Err(access_denied(
                &user_arn("bob"),
                "kms:CreateGrant",
                &key.arn(),
                &no_identity_policy_allows("kms:CreateGrant")
            ))
        );
    }
}

/// The error `caller` gets for `op` on `key_id`, with `arn` (the ARN it names) blanked out,
/// so the errors for two different keys can be compared.
fn shape(r: Result<(), KmsError>, arn: &str) -> Result<(), KmsError> {
    r.map_err(|e| match e {
        KmsError::AccessDenied(m) => KmsError::AccessDenied(m.replace(arn, "<resource>")),
        KmsError::NotFound(m) => KmsError::NotFound(m.replace(arn, "<resource>")),
        other => other,
    })
}

#[tokio::test]
async fn another_accounts_missing_and_existing_keys_look_alike_to_a_caller_without_permission() {
    let env = env().await;
    let existing = create_key(&env, None).await.arn();
    let missing =
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/0b7c6a3e-58e4-4a55-9d1c-61c0d4f3a2b9");
    // Users of the other account: one whose IAM policy allows everything, one with none.
    let mut users = Vec::new();
    for name in ["carol", "dave"] {
        env.kms
            .iam_create_user(&env.other_root, name, None, Vec::new())
            .await
            .unwrap();
        if name == "carol" {
            env.kms
                .iam_put_inline_policy(
                    &env.other_root,
                    Entity::User,
                    name,
                    "everything",
                    &identity_policy(vec![
                        json!({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}),
                    ])
                    .to_string(),
                )
                .await
                .unwrap();
        }
        let access_key = env
            .kms
            .iam_create_access_key(&env.other_root, Some(name))
            .await
            .unwrap();
        users.push(caller_for_access_key(&env.kms, &access_key.access_key_id));
    }

    for caller in [&env.other_root, &users[0], &users[1]] {
        let ops = |arn: String| {
            let kms = &env.kms;
            async move {
                let blob = vec![1u8; 64];
                vec![
                    shape(
                        encrypt(kms, caller, &arn, context(&[])).await.map(|_| ()),
                        &arn,
                    ),
                    shape(
                        kms.describe_key(caller, Some(&arn), &[]).await.map(|_| ()),
                        &arn,
                    ),
                    shape(kms.disable_key(caller, Some(&arn)).await.map(|_| ()), &arn),
                    shape(
                        kms.schedule_key_deletion(caller, Some(&arn), Some(7))
                            .await
                            .map(|_| ()),
                        &arn,
                    ),
                    shape(
                        kms.create_grant(
                            caller,
                            CreateGrantInput {
                                key_id: Some(arn.clone()),
                                grantee_principal: Some(root_arn(OTHER_ACCOUNT)),
                                // Sign does not fit a symmetric key: still AccessDenied.
                                operations: Some(vec!["Sign".into()]),
                                ..Default::default()
                            },
                        )
                        .await
                        .map(|_| ()),
                        &arn,
                    ),
                    shape(
                        kms.decrypt(
                            caller,
                            DecryptInput {
                                ciphertext_blob: Some(blob),
                                key_id: Some(arn.clone()),
                                ..Default::default()
                            },
                        )
                        .await
                        .map(|_| ()),
                        &arn,
                    ),
                ]
            }
        };
        let for_existing = ops(existing.clone()).await;
        let for_missing = ops(missing.clone()).await;
        assert_eq!(for_existing, for_missing, "{}", caller.principal_arn);
        assert!(
            for_missing
                .iter()
                .take(5)
                .all(|r| matches!(r, Err(KmsError::AccessDenied(_)))),
            "{for_missing:?}"
        );
    }

    // Its own account's missing key is still NotFound, as in AWS.
    let own_missing =
        format!("arn:aws:kms:{REGION}:{OTHER_ACCOUNT}:key/0b7c6a3e-58e4-4a55-9d1c-61c0d4f3a2b9");
    assert_eq!(
        encrypt(&env.kms, &env.other_root, &own_missing, context(&[]))
            .await
            .err(),
        Some(KmsError::NotFound(format!(
            "Key '{own_missing}' does not exist"
        )))
    );
}

#[tokio::test]
async fn another_accounts_alias_names_neither_its_key_nor_whether_it_exists() {
    let env = env().await;
    let key = create_key(&env, None).await;
    env.kms
        .create_alias(&env.root, Some("alias/payroll"), Some(&key.key_id))
        .await
        .unwrap();
    let existing = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/payroll");
    let missing = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/nothing-here");

    let denied = |alias: &str, action: &str| {
        Some(access_denied(
            &root_arn(OTHER_ACCOUNT),
            action,
            alias,
            &no_resource_policy_allows(action),
        ))
    };
    for alias in [&existing, &missing] {
        let r = encrypt(&env.kms, &env.other_root, alias, context(&[])).await;
        assert_eq!(r.err(), denied(alias, "kms:Encrypt"));
        let r = env
            .kms
            .describe_key(&env.other_root, Some(alias), &[])
            .await;
        let err = r.err();
        assert_eq!(err, denied(alias, "kms:DescribeKey"));
        assert!(!format!("{err:?}").contains(&key.key_id));
    }

    // The account's own callers still see which key an alias names, and a missing alias of
    // their own account is NotFound.
    let r = encrypt(&env.kms, &env.root, &existing, context(&[])).await;
    assert_eq!(r.unwrap().key_arn, key.arn());
    assert_eq!(
        encrypt(&env.kms, &env.root, &missing, context(&[]))
            .await
            .err(),
        Some(KmsError::NotFound(format!(
            "Alias '{missing}' is not found."
        )))
    );

    // Allowed by the key policy, the other account uses the alias as before.
    let shared = create_key(
        &env,
        Some(key_policy(vec![json!({
            "Effect": "Allow",
            "Principal": { "AWS": root_arn(OTHER_ACCOUNT) },
            "Action": ["kms:Encrypt", "kms:DescribeKey"],
            "Resource": "*"
        })])),
    )
    .await;
    env.kms
        .create_alias(&env.root, Some("alias/shared"), Some(&shared.key_id))
        .await
        .unwrap();
    let shared_alias = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/shared");
    let out = encrypt(&env.kms, &env.other_root, &shared_alias, context(&[]))
        .await
        .unwrap();
    assert_eq!(out.key_arn, shared.arn());
}

/// Decrypt without `KeyId` finds the key from the blob, and anyone can write a blob naming
/// any key id: a forged blob naming another account's key must answer like one naming no
/// key (InvalidCiphertext), not AccessDenied with the key's ARN (which would reveal that the
/// key exists and which account owns it). A genuine ciphertext the caller may not decrypt is
/// AccessDenied, as in AWS.
#[tokio::test]
async fn a_forged_blob_does_not_reveal_another_accounts_key() {
    let env = env().await;
    let key = create_key(&env, None).await;
    let genuine = encrypt(&env.kms, &env.root, &key.key_id, context(&[]))
        .await
        .unwrap()
        .ciphertext_blob;

    let denied = decrypt(&env.kms, &env.other_root, &genuine, context(&[]))
        .await
        .err();
    assert!(
        matches!(&denied, Some(KmsError::AccessDenied(m)) if m.contains(&key.arn())),
        "{denied:?}"
    );

    let mut forged_tag = genuine.clone();
    let last = forged_tag.len() - 1;
    forged_tag[last] ^= 1;
    let mut forged_key_id = genuine.clone();
    forged_key_id[2] ^= 1; // names a key id that exists nowhere
    for forged in [forged_tag, forged_key_id] {
        assert_eq!(
            decrypt(&env.kms, &env.other_root, &forged, context(&[]))
                .await
                .err(),
            Some(KmsError::InvalidCiphertext)
        );
    }
    // The owner still decrypts the genuine one.
    assert!(
        decrypt(&env.kms, &env.root, &genuine, context(&[]))
            .await
            .is_ok()
    );
}
