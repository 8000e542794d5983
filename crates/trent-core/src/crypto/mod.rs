//! The cryptographic operations on KMS keys, one family per file: symmetric Encrypt, Decrypt,
//! GenerateDataKey and GenerateRandom (`symmetric.rs`); Encrypt/Decrypt with RSA keys
//! (`rsa.rs`); ReEncrypt from and to either kind (`re_encrypt.rs`); Sign, Verify and
//! GetPublicKey (`signing.rs`); GenerateMac and VerifyMac (`mac.rs`); GenerateDataKeyPair
//! (`data_key_pairs.rs`); DeriveSharedSecret (`key_agreement.rs`); Encapsulate and Decapsulate
//! with ML-KEM keys (`encapsulation.rs`).
//!
//! Every operation has the same shape: validate → resolve → authorize → require usable → act.
//! Keys come from the cache with their material already parsed, so on a cache hit nothing here
//! touches storage and the work is one AES-GCM or AWS-LC operation.
//!
//! This file holds what several families share: the checks that a key's usage and spec fit the
//! requested algorithm, sealing and opening ciphertext blobs, and finding and authorizing the
//! key a ciphertext blob names ([`Kms::key_for_ciphertext`]).

mod data_key_pairs;
mod encapsulation;
mod key_agreement;
mod mac;
mod re_encrypt;
mod recipient;
mod rsa;
mod signing;
mod symmetric;

use std::collections::BTreeMap;
use std::sync::Arc;

use trent_crypto::asymmetric::AsymmetricKey;
use trent_crypto::custody::xks::external_blob_key_id;
use trent_crypto::spec::{EncryptionAlgorithm, KeySpec, KeyUsage, WireEnum};
use trent_crypto::{CiphertextBlob, EncryptionContext};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use data_key_pairs::{GenerateDataKeyPairInput, GenerateDataKeyPairOutput};
pub use encapsulation::{
    DecapsulateInput, DecapsulateOutput, EncapsulateInput, EncapsulateOutput,
    MAX_SHARED_SECRET_CIPHERTEXT,
};
pub use key_agreement::{DeriveSharedSecretInput, DeriveSharedSecretOutput, MAX_PUBLIC_KEY};
pub use mac::{MacInput, MacOutput};
pub use re_encrypt::{ReEncryptInput, ReEncryptOutput};
pub use recipient::RecipientInput;
pub(crate) use recipient::seal_for_recipient;
pub use signing::{
    MAX_MESSAGE, MAX_SIGNATURE, PublicKeyOutput, SignInput, SignOutput, VerifyInput, VerifyOutput,
};
pub use symmetric::{
    DecryptInput, DecryptOutput, EncryptInput, EncryptOutput, GenerateDataKeyInput,
    GenerateDataKeyOutput, MAX_CIPHERTEXT, MAX_PLAINTEXT,
};

use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::GrantTokens;
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate;

impl Kms {
    /// Parses a ciphertext blob, finds the key it names and checks the caller may use it for
    /// `action`. `key_hint` is the optional `KeyId` the caller gave.
    pub(crate) async fn key_for_ciphertext(
        &self,
        caller: &Caller,
        blob: &[u8],
        key_hint: Option<&str>,
        usage: CiphertextUse<'_>,
    ) -> KmsResult<(Arc<LoadedKey>, CiphertextBlob)> {
        let CiphertextUse {
            action,
            algorithm,
            context,
            same_key_as,
            grant_tokens,
            recipient,
        } = usage;
        // An external key store key's blob is the outer layer of double encryption: its
        // header names the key; the inner blob comes out of the proxy once the caller may use
        // the key.
        let (parsed, blob_key, blob_multi_region) = match external_blob_key_id(blob) {
            Some(id) => (None, id, false),
            None => {
                let parsed =
                    CiphertextBlob::parse(blob).map_err(|_| KmsError::InvalidCiphertext)?;
                let (id, mr) = (parsed.key_id, parsed.multi_region);
                (Some(parsed), id, mr)
            }
        };
        let external = parsed.is_none();
        let key = match key_hint {
            Some(hint) => {
                let named = self.resolve(caller, hint, KeyIdForms::KeyOrAlias).await?;
                if named.uuid != blob_key || named.record.multi_region != blob_multi_region {
                    return Err(KmsError::IncorrectKey(
                        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                    ));
                }
                named
            }
            None => {
                let mut id_buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
                let regional;
                // A multi-Region key id names a family: the related key in the request's
                // Region decrypts (they share their material).
                let blob_key_id: &str = if blob_multi_region {
                    regional = crate::ids::regional_key_id(
                        &crate::ids::multi_region_key_id(&blob_key),
                        &caller.region,
                    );
                    &regional
                } else {
                    Uuid::from_bytes(blob_key)
                        .hyphenated()
                        .encode_lower(&mut id_buffer)
                };
                let key = self
                    .load_key(blob_key_id)
                    .await?
                    .ok_or(KmsError::InvalidCiphertext)?;
                // Keys are regional: a blob made in another region cannot be decrypted here.
                if key.record.region != *caller.region {
                    return Err(KmsError::InvalidCiphertext);
                }
                caller.note_key(key.shared_arn());
                key
            }
        };
        let mut access = Access::new(action, Resource::Key(&key))
            .encryption_context(context)
            .algorithm(algorithm.as_str())
            .grant_tokens(grant_tokens)
            .recipient(recipient);
        if let Some(hint) = key_hint {
            access = access.named_as(hint);
        }
        if let Some(same) = same_key_as {
            let same = same == key.record.key_id;
            access = access.condition(
                "kms:ReEncryptOnSameKey",
                if same { "true" } else { "false" },
            );
        }
        if let Err(denied) = self.check(caller, access) {
            // A blob is not authenticated until it is opened, and anyone can write a blob
            // naming any key id. Found by the blob alone, another account's key the caller may
            // not use is reported as denied only for a genuine ciphertext; a forged one is
            // InvalidCiphertext, as for a key id that names nothing — so a forged blob does
            // not reveal whether a key exists or which account owns it. Only denied
            // cross-account calls pay for this, and the plaintext is dropped (zeroized) unseen.
            if key_hint.is_none() && key.record.account_id != caller.account {
                let genuine = match &parsed {
                    Some(parsed) => open(&key, parsed, context).is_ok(),
                    None => match self.open_outer(caller, &key, blob, context).await {
                        Ok(inner) => open(&key, &inner, context).is_ok(),
                        Err(_) => false,
                    },
                };
                if !genuine {
                    return Err(KmsError::InvalidCiphertext);
                }
            }
            return Err(denied);
        }
        require_usable(&key.record)?;
        require_symmetric_encryption(&key, algorithm, action)?;
        let parsed = match parsed {
            // An external key store key decrypts only through its proxy: an inner blob
            // presented alone is not its ciphertext.
            Some(_) if is_external(&key) => return Err(KmsError::InvalidCiphertext),
            Some(parsed) => parsed,
            None if external => self.open_outer(caller, &key, blob, context).await?,
            None => return Err(KmsError::Internal("blob neither inner nor outer".into())),
        };
        Ok((key, parsed))
    }

    /// The inner blob of an external key store key's outer blob, through the proxy; it must
    /// name the same key.
    async fn open_outer(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        outer: &[u8],
        context: &BTreeMap<String, String>,
    ) -> KmsResult<CiphertextBlob> {
        if !is_external(key) {
            return Err(KmsError::InvalidCiphertext);
        }
        let inner = self.external_open(caller, key, context, outer).await?;
        let parsed = CiphertextBlob::parse(&inner).map_err(|_| KmsError::InvalidCiphertext)?;
        if parsed.key_id != key.uuid || parsed.multi_region {
            return Err(KmsError::InvalidCiphertext);
        }
        Ok(parsed)
    }

    /// A ciphertext blob of `plaintext` under `key`: [`seal`], and for an external key store
    /// key the proxy's outer layer around it (double encryption).
    pub(crate) async fn seal_for_key(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        context: &BTreeMap<String, String>,
        plaintext: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let inner = seal(key, context, plaintext)?;
        if is_external(key) {
            return self.external_seal(caller, key, context, &inner).await;
        }
        Ok(inner)
    }
}

/// Whether `key` is held in an external key store (double encryption).
fn is_external(key: &LoadedKey) -> bool {
    matches!(
        key.record.custody,
        crate::model::KeyCustody::External { .. }
    )
}

/// How a ciphertext is about to be used, for authorization.
pub(crate) struct CiphertextUse<'a> {
    pub(crate) action: &'a str,
    pub(crate) algorithm: EncryptionAlgorithm,
    pub(crate) context: &'a BTreeMap<String, String>,
    /// For ReEncryptFrom: the destination key id (`kms:ReEncryptOnSameKey`).
    pub(crate) same_key_as: Option<&'a str>,
    pub(crate) grant_tokens: &'a GrantTokens,
    /// A verified `Recipient` document (`kms:RecipientAttestation:*`).
    pub(crate) recipient: Option<&'a trent_crypto::nitro::Attestation>,
}

/// `Recipient` (a Nitro Enclaves attestation document) is not supported: refused, not ignored.
pub(crate) fn refuse_recipient(has_recipient: bool) -> KmsResult<()> {
    if has_recipient {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by this Trent server".into(),
        ));
    }
    Ok(())
}

/// The `EncryptionAlgorithm`-typed member `field`; absent means SYMMETRIC_DEFAULT, as in AWS.
fn encryption_algorithm(field: &str, value: Option<&str>) -> KmsResult<EncryptionAlgorithm> {
    value.map_or(Ok(EncryptionAlgorithm::SymmetricDefault), |v| {
        validate::enum_value(field, v)
    })
}

/// Refuses a key whose usage is not `usage`, with AWS's message naming the operation that
/// `action` (`kms:Sign`, `kms:ReEncryptFrom`, …) belongs to.
fn require_usage(key: &LoadedKey, usage: KeyUsage, action: &str) -> KmsResult<()> {
    if key.record.key_usage != usage {
        return Err(wrong_usage(key, action));
    }
    Ok(())
}

/// AWS's InvalidKeyUsageException for a key whose usage does not fit the operation:
/// `<key ARN> key usage is GENERATE_VERIFY_MAC which is not valid for Sign.`
pub(crate) fn wrong_usage(key: &LoadedKey, action: &str) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "{} key usage is {} which is not valid for {}.",
        key.arn(),
        key.record.key_usage.as_str(),
        operation_of(action)
    ))
}

/// The API operation an IAM action belongs to: `kms:Sign` → `Sign`; both halves of ReEncrypt
/// (`kms:ReEncryptFrom`, `kms:ReEncryptTo`) → `ReEncrypt`.
pub(crate) fn operation_of(action: &str) -> &str {
    let name = action.strip_prefix("kms:").unwrap_or(action);
    if name.starts_with("ReEncrypt") {
        "ReEncrypt"
    } else {
        name
    }
}

/// The error for an algorithm (of any kind) that the key's spec does not support.
fn incompatible(algorithm: &str, spec: KeySpec) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {}.",
        spec.as_str()
    ))
}

/// Refuses a key that cannot encrypt with `algorithm` (for symmetric keys: SYMMETRIC_DEFAULT).
pub(crate) fn require_symmetric_encryption(
    key: &LoadedKey,
    algorithm: EncryptionAlgorithm,
    action: &str,
) -> KmsResult<()> {
    require_usage(key, KeyUsage::EncryptDecrypt, action)?;
    if !key
        .record
        .key_spec
        .encryption_algorithms()
        .contains(&algorithm)
    {
        return Err(KmsError::InvalidKeyUsage(format!(
            "Algorithm {} is incompatible with key spec {}.",
            algorithm.as_str(),
            key.record.key_spec.as_str()
        )));
    }
    Ok(())
}

/// The private key of an RSA ENCRYPT_DECRYPT key, after checking `algorithm` fits it.
fn rsa_key<'k>(
    key: &'k LoadedKey,
    algorithm: EncryptionAlgorithm,
    action: &str,
) -> KmsResult<&'k AsymmetricKey> {
    require_usage(key, KeyUsage::EncryptDecrypt, action)?;
    if !key
        .record
        .key_spec
        .encryption_algorithms()
        .contains(&algorithm)
    {
        return Err(incompatible(algorithm.as_str(), key.record.key_spec));
    }
    key.asymmetric()
        .ok_or_else(|| KmsError::Internal("RSA key without asymmetric material".into()))
}

/// Encrypts `plaintext` under the key's current material into a ciphertext blob whose AAD is
/// the encryption context.
pub(crate) fn seal(
    key: &LoadedKey,
    context: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> KmsResult<Vec<u8>> {
    let material = key
        .material(&key.record.current_material)
        .ok_or_else(|| missing_material(key))?;
    let context = EncryptionContext::borrowed(context);
    CiphertextBlob::seal_for(
        key.uuid,
        key.record.multi_region,
        key.record.current_material,
        material,
        &context,
        plaintext,
    )
    .map_err(|e| custody_failure(key, e))
}

/// The current material is not there: for a key held in a custom key store, its token no
/// longer holds it or could not be asked (AWS: `KMSInvalidStateException`); for any other
/// key an internal error.
fn missing_material(key: &LoadedKey) -> KmsError {
    if key.record.custody.held().is_some() {
        KmsError::InvalidState(format!(
            "{} is unavailable because its key material cannot be found in its custom key store",
            key.arn()
        ))
    } else {
        KmsError::Internal("current key material missing".into())
    }
}

/// A sealing or opening failure that is not the ciphertext's fault: the key's custodian (an
/// HSM) is unreachable, which AWS reports as the key's state; anything else is internal.
fn custody_failure(key: &LoadedKey, e: trent_crypto::BlobError) -> KmsError {
    match e {
        trent_crypto::BlobError::Unavailable => KmsError::InvalidState(format!(
            "{} is unavailable because its custom key store is not connected",
            key.arn()
        )),
        e => KmsError::Internal(e.to_string()),
    }
}

/// Decrypts a parsed blob with the material version it names; every failure is
/// `InvalidCiphertextException`, which never says which check failed.
pub(crate) fn open(
    key: &LoadedKey,
    blob: &CiphertextBlob,
    context: &BTreeMap<String, String>,
) -> KmsResult<Zeroizing<Vec<u8>>> {
    let material = match key.material(&blob.material_id) {
        Some(m) => m,
        // A store-held key's own material missing from its token: the key's trouble, not the
        // ciphertext's.
        None if key.record.custody.held().is_some()
            && blob.material_id == key.record.current_material =>
        {
            return Err(missing_material(key));
        }
        None => return Err(KmsError::InvalidCiphertext),
    };
    blob.open(material, &EncryptionContext::borrowed(context))
        .map_err(|e| match e {
            trent_crypto::BlobError::Unavailable | trent_crypto::BlobError::Custody(_) => {
                custody_failure(key, e)
            }
            _ => KmsError::InvalidCiphertext,
        })
}
