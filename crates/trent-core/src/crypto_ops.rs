//! Cryptographic operations on symmetric keys: Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext, GenerateRandom.
//!
//! This is the hot path. On a cache hit nothing here touches storage: the key comes from the
//! cache, authorization is in memory, and the work is one AES-GCM operation.

use std::collections::BTreeMap;
use std::sync::Arc;

use trent_crypto::spec::{DataKeySpec, EncryptionAlgorithm, KeyUsage, WireEnum};
use trent_crypto::{CiphertextBlob, EncryptionContext, MaterialId, random};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::GrantTokens;
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate;

/// Largest plaintext Encrypt accepts.
pub const MAX_PLAINTEXT: usize = 4096;
/// Largest ciphertext blob accepted.
pub const MAX_CIPHERTEXT: usize = 6144;

#[derive(Default)]
pub struct EncryptInput {
    pub key_id: Option<String>,
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    pub encryption_context: BTreeMap<String, String>,
    pub grant_tokens: Vec<String>,
    pub encryption_algorithm: Option<String>,
    pub dry_run: bool,
}

pub struct EncryptOutput {
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
    pub encryption_algorithm: EncryptionAlgorithm,
}

#[derive(Default)]
pub struct DecryptInput {
    pub ciphertext_blob: Option<Vec<u8>>,
    pub encryption_context: BTreeMap<String, String>,
    pub grant_tokens: Vec<String>,
    pub key_id: Option<String>,
    pub encryption_algorithm: Option<String>,
    pub dry_run: bool,
}

pub struct DecryptOutput {
    pub key_arn: String,
    pub plaintext: Zeroizing<Vec<u8>>,
    pub encryption_algorithm: EncryptionAlgorithm,
    pub key_material_id: MaterialId,
}

#[derive(Default)]
pub struct ReEncryptInput {
    pub ciphertext_blob: Option<Vec<u8>>,
    pub source_encryption_context: BTreeMap<String, String>,
    pub source_key_id: Option<String>,
    pub destination_key_id: Option<String>,
    pub destination_encryption_context: BTreeMap<String, String>,
    pub source_encryption_algorithm: Option<String>,
    pub destination_encryption_algorithm: Option<String>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct ReEncryptOutput {
    pub ciphertext_blob: Vec<u8>,
    pub source_key_arn: String,
    pub key_arn: String,
    pub source_encryption_algorithm: EncryptionAlgorithm,
    pub destination_encryption_algorithm: EncryptionAlgorithm,
    pub source_key_material_id: MaterialId,
    pub destination_key_material_id: MaterialId,
}

#[derive(Default)]
pub struct GenerateDataKeyInput {
    pub key_id: Option<String>,
    pub encryption_context: BTreeMap<String, String>,
    pub number_of_bytes: Option<i64>,
    pub key_spec: Option<String>,
    pub grant_tokens: Vec<String>,
    pub has_recipient: bool,
    pub dry_run: bool,
}

pub struct GenerateDataKeyOutput {
    pub ciphertext_blob: Vec<u8>,
    /// `None` for GenerateDataKeyWithoutPlaintext.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    pub key_arn: String,
    pub key_material_id: MaterialId,
}

impl Kms {
    pub async fn encrypt(&self, caller: &Caller, input: EncryptInput) -> KmsResult<EncryptOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let plaintext = validate::required("plaintext", input.plaintext.as_ref())?;
        validate::blob_length("plaintext", plaintext, 1, MAX_PLAINTEXT)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let algorithm =
            encryption_algorithm("encryptionAlgorithm", input.encryption_algorithm.as_deref())?;
        if algorithm != EncryptionAlgorithm::SymmetricDefault {
            return self
                .encrypt_asymmetric(caller, &tokens, key_id, plaintext, algorithm, input.dry_run)
                .await;
        }
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new("kms:Encrypt", Resource::Key(&key))
                .encryption_context(&input.encryption_context)
                .algorithm(algorithm.as_str())
                .named_as(key_id)
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_symmetric_encryption(&key, algorithm)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let ciphertext_blob = seal(&key, &input.encryption_context, plaintext)?;
        Ok(EncryptOutput {
            ciphertext_blob,
            key_arn: key.arn().to_string(),
            encryption_algorithm: algorithm,
        })
    }

    pub async fn decrypt(&self, caller: &Caller, input: DecryptInput) -> KmsResult<DecryptOutput> {
        let blob = validate::required("ciphertextBlob", input.ciphertext_blob.as_deref())?;
        validate::blob_length("ciphertextBlob", blob, 1, MAX_CIPHERTEXT)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let algorithm =
            encryption_algorithm("encryptionAlgorithm", input.encryption_algorithm.as_deref())?;
        if algorithm != EncryptionAlgorithm::SymmetricDefault {
            return self
                .decrypt_asymmetric(
                    caller,
                    &tokens,
                    input.key_id.as_deref(),
                    blob,
                    algorithm,
                    input.dry_run,
                )
                .await;
        }
        let (key, parsed) = self
            .key_for_ciphertext(
                caller,
                blob,
                input.key_id.as_deref(),
                CiphertextUse {
                    action: "kms:Decrypt",
                    algorithm,
                    context: &input.encryption_context,
                    same_key_as: None,
                    grant_tokens: &tokens,
                },
            )
            .await?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let plaintext = open(&key, &parsed, &input.encryption_context)?;
        Ok(DecryptOutput {
            key_arn: key.arn().to_string(),
            plaintext,
            encryption_algorithm: algorithm,
            key_material_id: parsed.material_id,
        })
    }

    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        input: ReEncryptInput,
    ) -> KmsResult<ReEncryptOutput> {
        let blob = validate::required("ciphertextBlob", input.ciphertext_blob.as_deref())?;
        validate::blob_length("ciphertextBlob", blob, 1, MAX_CIPHERTEXT)?;
        let destination =
            validate::required("destinationKeyId", input.destination_key_id.as_deref())?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let source_algorithm = encryption_algorithm(
            "sourceEncryptionAlgorithm",
            input.source_encryption_algorithm.as_deref(),
        )?;
        let destination_algorithm = encryption_algorithm(
            "destinationEncryptionAlgorithm",
            input.destination_encryption_algorithm.as_deref(),
        )?;
        if source_algorithm != EncryptionAlgorithm::SymmetricDefault
            || destination_algorithm != EncryptionAlgorithm::SymmetricDefault
        {
            return self
                .re_encrypt_asymmetric(
                    caller,
                    &tokens,
                    input,
                    source_algorithm,
                    destination_algorithm,
                )
                .await;
        }
        let dest = self
            .resolve(caller, destination, KeyIdForms::KeyOrAlias)
            .await?;
        let (source, parsed) = self
            .key_for_ciphertext(
                caller,
                blob,
                input.source_key_id.as_deref(),
                CiphertextUse {
                    action: "kms:ReEncryptFrom",
                    algorithm: source_algorithm,
                    context: &input.source_encryption_context,
                    same_key_as: Some(&dest.record.key_id),
                    grant_tokens: &tokens,
                },
            )
            .await?;
        let same_key = source.record.key_id == dest.record.key_id;
        self.check(
            caller,
            Access::new("kms:ReEncryptTo", Resource::Key(&dest))
                .encryption_context(&input.destination_encryption_context)
                .algorithm(destination_algorithm.as_str())
                .named_as(destination)
                .condition(
                    "kms:ReEncryptOnSameKey",
                    if same_key { "true" } else { "false" },
                )
                .grant_tokens(&tokens),
        )?;
        require_usable(&dest.record)?;
        require_symmetric_encryption(&dest, destination_algorithm)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let plaintext = open(&source, &parsed, &input.source_encryption_context)?;
        let ciphertext_blob = seal(&dest, &input.destination_encryption_context, &plaintext)?;
        Ok(ReEncryptOutput {
            ciphertext_blob,
            source_key_arn: source.arn().to_string(),
            key_arn: dest.arn().to_string(),
            source_encryption_algorithm: source_algorithm,
            destination_encryption_algorithm: destination_algorithm,
            source_key_material_id: parsed.material_id,
            destination_key_material_id: dest.record.current_material,
        })
    }

    /// GenerateDataKey (`with_plaintext`) or GenerateDataKeyWithoutPlaintext.
    pub async fn generate_data_key(
        &self,
        caller: &Caller,
        input: GenerateDataKeyInput,
        with_plaintext: bool,
    ) -> KmsResult<GenerateDataKeyOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let len = match (input.key_spec.as_deref(), input.number_of_bytes) {
            (Some(spec), None) => validate::enum_value::<DataKeySpec>("keySpec", spec)?.byte_len(),
            (None, Some(n)) => {
                validate::range("numberOfBytes", n, 1, 1024)?;
                usize::try_from(n).map_err(|_| KmsError::Internal("range-checked length".into()))?
            }
            _ => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ));
            }
        };
        refuse_recipient(input.has_recipient)?;
        let action = if with_plaintext {
            "kms:GenerateDataKey"
        } else {
            "kms:GenerateDataKeyWithoutPlaintext"
        };
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new(action, Resource::Key(&key))
                .encryption_context(&input.encryption_context)
                .algorithm(EncryptionAlgorithm::SymmetricDefault.as_str())
                .named_as(key_id)
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_symmetric_encryption(&key, EncryptionAlgorithm::SymmetricDefault)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let data_key = random::secret_bytes(len)?;
        let ciphertext_blob = seal(&key, &input.encryption_context, &data_key)?;
        Ok(GenerateDataKeyOutput {
            ciphertext_blob,
            plaintext: with_plaintext.then_some(data_key),
            key_arn: key.arn().to_string(),
            key_material_id: key.record.current_material,
        })
    }

    pub async fn generate_random(
        &self,
        caller: &Caller,
        number_of_bytes: Option<i64>,
        custom_key_store_id: Option<&str>,
        has_recipient: bool,
    ) -> KmsResult<Zeroizing<Vec<u8>>> {
        let n = number_of_bytes
            .ok_or_else(|| KmsError::Validation("NumberOfBytes is required.".into()))?;
        validate::range("numberOfBytes", n, 1, 1024)?;
        if let Some(id) = custom_key_store_id {
            validate::length("customKeyStoreId", id, 1, 64)?;
            return Err(KmsError::CustomKeyStoreNotFound(format!(
                "Custom key store '{id}' does not exist"
            )));
        }
        refuse_recipient(has_recipient)?;
        self.authorize(caller, "kms:GenerateRandom", Resource::Any)?;
        let n =
            usize::try_from(n).map_err(|_| KmsError::Internal("range-checked length".into()))?;
        Ok(random::secret_bytes(n)?)
    }

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
        } = usage;
        let parsed = CiphertextBlob::parse(blob).map_err(|_| KmsError::InvalidCiphertext)?;
        let blob_key_id = Uuid::from_bytes(parsed.key_id).hyphenated().to_string();
        let key = match key_hint {
            Some(hint) => {
                let named = self.resolve(caller, hint, KeyIdForms::KeyOrAlias).await?;
                if named.record.key_id != blob_key_id {
                    return Err(KmsError::IncorrectKey(
                        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                    ));
                }
                named
            }
            None => {
                let key = self
                    .load_key(&blob_key_id)
                    .await?
                    .ok_or(KmsError::InvalidCiphertext)?;
                // Keys are regional: a blob made in another region cannot be decrypted here.
                if key.record.region != caller.region {
                    return Err(KmsError::InvalidCiphertext);
                }
                key
            }
        };
        let mut access = Access::new(action, Resource::Key(&key))
            .encryption_context(context)
            .algorithm(algorithm.as_str())
            .grant_tokens(grant_tokens);
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
        self.check(caller, access)?;
        require_usable(&key.record)?;
        require_symmetric_encryption(&key, algorithm)?;
        Ok((key, parsed))
    }
}

/// How a ciphertext is about to be used, for authorization.
pub(crate) struct CiphertextUse<'a> {
    pub(crate) action: &'a str,
    pub(crate) algorithm: EncryptionAlgorithm,
    pub(crate) context: &'a BTreeMap<String, String>,
    /// For ReEncryptFrom: the destination key id (`kms:ReEncryptOnSameKey`).
    pub(crate) same_key_as: Option<&'a str>,
    pub(crate) grant_tokens: &'a GrantTokens,
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

fn encryption_algorithm(field: &str, value: Option<&str>) -> KmsResult<EncryptionAlgorithm> {
    value.map_or(Ok(EncryptionAlgorithm::SymmetricDefault), |v| {
        validate::enum_value(field, v)
    })
}

pub(crate) fn require_symmetric_encryption(
    key: &LoadedKey,
    algorithm: EncryptionAlgorithm,
) -> KmsResult<()> {
    if key.record.key_usage != KeyUsage::EncryptDecrypt {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for this operation.",
            key.arn().to_string(),
            key.record.key_usage.as_str()
        )));
    }
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

pub(crate) fn seal(
    key: &LoadedKey,
    context: &BTreeMap<String, String>,
    plaintext: &[u8],
) -> KmsResult<Vec<u8>> {
    let material = key
        .material(&key.record.current_material)
        .ok_or_else(|| KmsError::Internal("current key material missing".into()))?;
    let context = EncryptionContext::borrowed(context);
    CiphertextBlob::seal(
        key.uuid,
        key.record.current_material,
        material,
        &context,
        plaintext,
    )
    .map_err(|e| KmsError::Internal(e.to_string()))
}

pub(crate) fn open(
    key: &LoadedKey,
    blob: &CiphertextBlob,
    context: &BTreeMap<String, String>,
) -> KmsResult<Zeroizing<Vec<u8>>> {
    let material = key
        .material(&blob.material_id)
        .ok_or(KmsError::InvalidCiphertext)?;
    blob.open(material, &EncryptionContext::borrowed(context))
        .map_err(|_| KmsError::InvalidCiphertext)
}
