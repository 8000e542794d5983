//! ReEncrypt: decrypts under the source key and encrypts under the destination key without
//! the plaintext leaving Trent. Each side is either a symmetric key (a ciphertext blob) or an
//! RSA key (raw OAEP output, RSAES_OAEP_*), chosen by the source and destination encryption
//! algorithms.
//!
//! The caller needs `kms:ReEncryptFrom` on the source and `kms:ReEncryptTo` on the
//! destination. An RSA source needs `SourceKeyId`, as in AWS, since raw OAEP output names no
//! key.

use std::collections::BTreeMap;
use std::sync::Arc;

use trent_crypto::MaterialId;
use trent_crypto::spec::{EncryptionAlgorithm, WireEnum};

use super::rsa::require_rsa_plaintext_fits;
use super::{
    CiphertextUse, MAX_CIPHERTEXT, encryption_algorithm, open, require_symmetric_encryption,
    rsa_key,
};
use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::GrantTokens;
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::quotas::RateQuota;
use crate::service::Kms;
use crate::validate;

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

impl Kms {
    pub async fn re_encrypt(
        &self,
        caller: &Caller,
        input: ReEncryptInput,
    ) -> KmsResult<ReEncryptOutput> {
        let blob = validate::required("ciphertextBlob", input.ciphertext_blob.as_deref())?;
        validate::blob_length("ciphertextBlob", blob, 1, MAX_CIPHERTEXT)?;
        let destination =
            validate::required("destinationKeyId", input.destination_key_id.as_deref())?;
        validate::encryption_context("sourceEncryptionContext", &input.source_encryption_context)?;
        validate::encryption_context(
            "destinationEncryptionContext",
            &input.destination_encryption_context,
        )?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let source_algorithm = encryption_algorithm(
            "sourceEncryptionAlgorithm",
            input.source_encryption_algorithm.as_deref(),
        )?;
        let destination_algorithm = encryption_algorithm(
            "destinationEncryptionAlgorithm",
            input.destination_encryption_algorithm.as_deref(),
        )?;
        let symmetric_source = source_algorithm == EncryptionAlgorithm::SymmetricDefault;
        let symmetric_destination = destination_algorithm == EncryptionAlgorithm::SymmetricDefault;

        // Symmetric to symmetric resolves the destination before the source, so the source's
        // ReEncryptFrom check can carry kms:ReEncryptOnSameKey. When either side is RSA the
        // source comes first, and a symmetric source's ReEncryptFrom then carries no
        // kms:ReEncryptOnSameKey at all. Both orders are kept: they decide which error a request
        // with several faults gets, and what a policy's condition sees.
        let destination_resolved_first = if symmetric_source && symmetric_destination {
            Some(
                self.resolve(caller, destination, KeyIdForms::KeyOrAlias)
                    .await?,
            )
        } else {
            None
        };
        let (source, parsed) = if symmetric_source {
            let (key, parsed) = self
                .key_for_ciphertext(
                    caller,
                    blob,
                    input.source_key_id.as_deref(),
                    CiphertextUse {
                        recipient: None,
                        action: "kms:ReEncryptFrom",
                        algorithm: source_algorithm,
                        context: &input.source_encryption_context,
                        same_key_as: destination_resolved_first
                            .as_ref()
                            .map(|dest| dest.record.key_id.as_str()),
                        grant_tokens: &tokens,
                    },
                )
                .await?;
            (key, Some(parsed))
        } else {
            let key = self
                .rsa_source(
                    caller,
                    &tokens,
                    input.source_key_id.as_deref(),
                    destination,
                    source_algorithm,
                )
                .await?;
            (key, None)
        };
        let dest = match destination_resolved_first {
            Some(dest) => dest,
            None => {
                self.resolve(caller, destination, KeyIdForms::KeyOrAlias)
                    .await?
            }
        };

        // One request, counted once against each key type it uses (docs/decisions.md).
        self.admit_key(caller, source.record.key_spec)?;
        if RateQuota::for_key(dest.record.key_spec) != RateQuota::for_key(source.record.key_spec) {
            self.admit_key(caller, dest.record.key_spec)?;
        }
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
        if symmetric_destination {
            require_symmetric_encryption(&dest, destination_algorithm, "kms:ReEncryptTo")?;
        } else {
            rsa_key(&dest, destination_algorithm, "kms:ReEncryptTo")?;
        }
        // Decrypted before a dry run answers, as in Decrypt: a bad ciphertext would not have
        // succeeded, so DryRun must not say it would.
        let plaintext = match &parsed {
            Some(parsed) => open(&source, parsed, &input.source_encryption_context)?,
            None => rsa_key(&source, source_algorithm, "kms:ReEncryptFrom")?
                .decrypt(source_algorithm, blob)
                .map_err(|_| KmsError::InvalidCiphertext)?,
        };
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let ciphertext_blob = if symmetric_destination {
            self.seal_for_key(
                caller,
                &dest,
                &input.destination_encryption_context,
                &plaintext,
            )
            .await?
        } else {
            // The plaintext's length is known only once it is decrypted, so unlike Encrypt this
            // check comes after the dry run.
            require_rsa_plaintext_fits(&dest, destination_algorithm, &plaintext)?;
            rsa_key(&dest, destination_algorithm, "kms:ReEncryptTo")?
                .encrypt(destination_algorithm, &plaintext)?
        };
        Ok(ReEncryptOutput {
            ciphertext_blob,
            source_key_arn: source.arn().to_string(),
            key_arn: dest.arn().to_string(),
            source_encryption_algorithm: source_algorithm,
            destination_encryption_algorithm: destination_algorithm,
            source_key_material_id: parsed
                .as_ref()
                .map_or(source.record.current_material, |p| p.material_id),
            destination_key_material_id: dest.record.current_material,
        })
    }

    /// Resolves and authorizes the RSA source key of a ReEncrypt (`kms:ReEncryptFrom`).
    ///
    /// `kms:ReEncryptOnSameKey` here compares the key identifiers as the request spelled them
    /// (`SourceKeyId` and `DestinationKeyId`), before either is resolved: an alias and the key
    /// id it names count as different keys. The source encryption context is not part of the
    /// check, since none is bound to OAEP output.
    async fn rsa_source(
        &self,
        caller: &Caller,
        tokens: &GrantTokens,
        source_key_id: Option<&str>,
        destination_key_id: &str,
        algorithm: EncryptionAlgorithm,
    ) -> KmsResult<Arc<LoadedKey>> {
        let source_id = source_key_id.ok_or_else(|| {
            KmsError::Validation(
                "SourceKeyId is required when the source is an asymmetric KMS key (SourceEncryptionAlgorithm other than SYMMETRIC_DEFAULT).".into(),
            )
        })?;
        let key = self
            .resolve(caller, source_id, KeyIdForms::KeyOrAlias)
            .await?;
        let same = destination_key_id == source_id;
        self.check(
            caller,
            Access::new("kms:ReEncryptFrom", Resource::Key(&key))
                .algorithm(algorithm.as_str())
                .named_as(source_id)
                .condition(
                    "kms:ReEncryptOnSameKey",
                    if same { "true" } else { "false" },
                )
                .grant_tokens(tokens),
        )?;
        require_usable(&key.record)?;
        rsa_key(&key, algorithm, "kms:ReEncryptFrom")?;
        Ok(key)
    }
}
