//! Operations on symmetric encryption keys: Encrypt, Decrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext, and GenerateRandom (which uses no key).
//!
//! This is the hot path. On a cache hit nothing here touches storage: the key comes from the
//! cache, authorization is in memory, and the work is one AES-GCM operation. Encrypt and
//! Decrypt with an RSAES_OAEP_* algorithm arrive here too and are handed to `rsa.rs`.

use std::collections::BTreeMap;

use trent_crypto::spec::{DataKeySpec, EncryptionAlgorithm, WireEnum};
use trent_crypto::{MaterialId, random};
use zeroize::Zeroizing;

use super::{
    CiphertextUse, RecipientInput, encryption_algorithm, open, refuse_recipient,
    require_symmetric_encryption, seal_for_recipient,
};
use crate::authz::{Access, Resource};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate::{self, Violations};

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
    /// `Recipient`: answer with `ciphertext_for_recipient` instead of the plaintext.
    pub recipient: Option<RecipientInput>,
    pub dry_run: bool,
}

pub struct DecryptOutput {
    pub key_arn: String,
    /// Empty when the request had a `Recipient` (AWS: "null or empty").
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The plaintext enveloped for the `Recipient` (CMS), when the request had one.
    pub ciphertext_for_recipient: Option<Vec<u8>>,
    pub encryption_algorithm: EncryptionAlgorithm,
    pub key_material_id: MaterialId,
}

#[derive(Default)]
pub struct GenerateDataKeyInput {
    pub key_id: Option<String>,
    pub encryption_context: BTreeMap<String, String>,
    pub number_of_bytes: Option<i64>,
    pub key_spec: Option<String>,
    pub grant_tokens: Vec<String>,
    /// `Recipient` (GenerateDataKey only; the edge never sets it for WithoutPlaintext).
    pub recipient: Option<RecipientInput>,
    pub dry_run: bool,
}

pub struct GenerateDataKeyOutput {
    pub ciphertext_blob: Vec<u8>,
    /// `None` for GenerateDataKeyWithoutPlaintext, and with a `Recipient`.
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The data key enveloped for the `Recipient` (CMS), when the request had one.
    pub ciphertext_for_recipient: Option<Vec<u8>>,
    pub key_arn: String,
    pub key_material_id: MaterialId,
}

impl Kms {
    pub async fn encrypt(&self, caller: &Caller, input: EncryptInput) -> KmsResult<EncryptOutput> {
        let mut v = Violations::default();
        let key_id = v.take(validate::required("keyId", input.key_id.as_deref()));
        let plaintext = v.take(
            validate::required("plaintext", input.plaintext.as_ref()).and_then(|plaintext| {
                validate::blob_length("plaintext", plaintext, 1, MAX_PLAINTEXT).map(|()| plaintext)
            }),
        );
        let algorithm = v.take(encryption_algorithm(
            "encryptionAlgorithm",
            input.encryption_algorithm.as_deref(),
        ));
        v.finish()?;
        let (Some(key_id), Some(plaintext), Some(algorithm)) = (key_id, plaintext, algorithm)
        else {
            return Err(Violations::checked());
        };
        validate::encryption_context("encryptionContext", &input.encryption_context)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        if algorithm != EncryptionAlgorithm::SymmetricDefault {
            return self
                .encrypt_asymmetric(caller, &tokens, key_id, plaintext, algorithm, input.dry_run)
                .await;
        }
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        self.check(
            caller,
            Access::new("kms:Encrypt", Resource::Key(&key))
                .encryption_context(&input.encryption_context)
                .algorithm(algorithm.as_str())
                .named_as(key_id)
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_symmetric_encryption(&key, algorithm, "kms:Encrypt")?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let ciphertext_blob = self
            .seal_for_key(caller, &key, &input.encryption_context, plaintext)
            .await?;
        Ok(EncryptOutput {
            ciphertext_blob,
            key_arn: key.arn().to_string(),
            encryption_algorithm: algorithm,
        })
    }

    pub async fn decrypt(&self, caller: &Caller, input: DecryptInput) -> KmsResult<DecryptOutput> {
        let mut v = Violations::default();
        let blob = v.take(
            validate::required("ciphertextBlob", input.ciphertext_blob.as_deref()).and_then(
                |blob| {
                    validate::blob_length("ciphertextBlob", blob, 1, MAX_CIPHERTEXT).map(|()| blob)
                },
            ),
        );
        let algorithm = v.take(encryption_algorithm(
            "encryptionAlgorithm",
            input.encryption_algorithm.as_deref(),
        ));
        v.finish()?;
        let (Some(blob), Some(algorithm)) = (blob, algorithm) else {
            return Err(Violations::checked());
        };
        validate::encryption_context("encryptionContext", &input.encryption_context)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        if algorithm != EncryptionAlgorithm::SymmetricDefault {
            // The Recipient is verified (and enveloped) there, once the request is counted.
            return self
                .decrypt_asymmetric(
                    caller,
                    &tokens,
                    input.key_id.as_deref(),
                    blob,
                    algorithm,
                    input.dry_run,
                    input.recipient.as_ref(),
                )
                .await;
        }
        // Verified before the key is used: its PCRs are condition keys of the authorization
        // that finds the key. So a request with a Recipient is counted first, against the
        // symmetric quota (the only one a SYMMETRIC_DEFAULT key has), and verification — CBOR
        // parsing and several ECDSA checks — never runs for a throttled request.
        let counted_early = input.recipient.is_some();
        if counted_early {
            self.admit(caller, crate::quotas::RateQuota::Symmetric)?;
        }
        let attestation = self.attest(caller, input.recipient.as_ref())?;
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
                    recipient: attestation.as_ref(),
                },
            )
            .await?;
        if !counted_early {
            self.admit_key(caller, key.record.key_spec)?;
        }
        // Authenticated before a dry run answers: a tampered ciphertext would not have
        // succeeded, so DryRun must not say it would.
        let plaintext = open(&key, &parsed, &input.encryption_context)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let (plaintext, ciphertext_for_recipient) = match &attestation {
            Some(attestation) => (
                Zeroizing::new(Vec::new()),
                Some(seal_for_recipient(attestation, &plaintext)?),
            ),
            None => (plaintext, None),
        };
        Ok(DecryptOutput {
            key_arn: key.arn().to_string(),
            plaintext,
            ciphertext_for_recipient,
            encryption_algorithm: algorithm,
            key_material_id: parsed.material_id,
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
        validate::encryption_context("encryptionContext", &input.encryption_context)?;
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
        let action = if with_plaintext {
            "kms:GenerateDataKey"
        } else {
            "kms:GenerateDataKeyWithoutPlaintext"
        };
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        // Verified once the request is counted (it costs CBOR parsing and several ECDSA
        // checks), before the authorization that reads its PCRs.
        let attestation = self.attest(caller, input.recipient.as_ref())?;
        self.check(
            caller,
            Access::new(action, Resource::Key(&key))
                .encryption_context(&input.encryption_context)
                .algorithm(EncryptionAlgorithm::SymmetricDefault.as_str())
                .named_as(key_id)
                .grant_tokens(&tokens)
                .recipient(attestation.as_ref()),
        )?;
        require_usable(&key.record)?;
        require_symmetric_encryption(&key, EncryptionAlgorithm::SymmetricDefault, action)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let data_key = random::secret_bytes(len)?;
        let ciphertext_blob = self
            .seal_for_key(caller, &key, &input.encryption_context, &data_key)
            .await?;
        let ciphertext_for_recipient = match &attestation {
            Some(attestation) => Some(seal_for_recipient(attestation, &data_key)?),
            None => None,
        };
        Ok(GenerateDataKeyOutput {
            ciphertext_blob,
            plaintext: (with_plaintext && ciphertext_for_recipient.is_none()).then_some(data_key),
            ciphertext_for_recipient,
            key_arn: key.arn().to_string(),
            key_material_id: key.record.current_material,
        })
    }

    /// GenerateRandom with its `Recipient`: the bytes, or (with a recipient) their
    /// `CiphertextForRecipient` and no plaintext.
    pub async fn generate_random_for(
        &self,
        caller: &Caller,
        number_of_bytes: Option<i64>,
        custom_key_store_id: Option<&str>,
        recipient: Option<&RecipientInput>,
    ) -> KmsResult<(Option<Zeroizing<Vec<u8>>>, Option<Vec<u8>>)> {
        let Some(recipient) = recipient else {
            return self
                .generate_random(caller, number_of_bytes, custom_key_store_id, false)
                .await
                .map(|bytes| (Some(bytes), None));
        };
        let n = number_of_bytes
            .ok_or_else(|| KmsError::Validation("NumberOfBytes is required.".into()))?;
        validate::range("numberOfBytes", n, 1, 1024)?;
        if let Some(id) = custom_key_store_id {
            validate::length("customKeyStoreId", id, 1, 64)?;
        }
        self.admit(caller, crate::quotas::RateQuota::Symmetric)?;
        let attestation = self.attest(caller, Some(recipient))?;
        self.check(
            caller,
            Access::new("kms:GenerateRandom", Resource::Any).recipient(attestation.as_ref()),
        )?;
        let n =
            usize::try_from(n).map_err(|_| KmsError::Internal("range-checked length".into()))?;
        let bytes = match custom_key_store_id {
            Some(id) => self.custom_key_store_random(caller, id, n).await?,
            None => random::secret_bytes(n)?,
        };
        match &attestation {
            Some(attestation) => Ok((None, Some(seal_for_recipient(attestation, &bytes)?))),
            None => Err(KmsError::Internal("recipient verified".into())),
        }
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
        }
        refuse_recipient(has_recipient)?;
        self.admit(caller, crate::quotas::RateQuota::Symmetric)?;
        self.authorize(caller, "kms:GenerateRandom", Resource::Any)?;
        let n =
            usize::try_from(n).map_err(|_| KmsError::Internal("range-checked length".into()))?;
        if let Some(id) = custom_key_store_id {
            // Drawn from the store's token (the store must be connected).
            return self.custom_key_store_random(caller, id, n).await;
        }
        Ok(random::secret_bytes(n)?)
    }
}
