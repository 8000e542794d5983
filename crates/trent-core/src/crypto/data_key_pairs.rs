//! GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh asymmetric key pair
//! for the caller to use outside KMS, its private key sealed under a symmetric KMS key.
//!
//! The pair is generated per request and never stored; the KMS key only seals the private
//! key, exactly as GenerateDataKey seals a data key.

use std::collections::BTreeMap;

use trent_crypto::MaterialId;
use trent_crypto::asymmetric::{self, AsymmetricKey};
use trent_crypto::spec::{DataKeyPairSpec, EncryptionAlgorithm, KeySpec, KeyUsage, WireEnum};
use zeroize::Zeroizing;

use super::{RecipientInput, seal, seal_for_recipient};
use crate::authz::{Access, Resource};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate::{self, Violations};

#[derive(Default)]
pub struct GenerateDataKeyPairInput {
    pub key_id: Option<String>,
    pub key_pair_spec: Option<String>,
    pub encryption_context: BTreeMap<String, String>,
    pub grant_tokens: Vec<String>,
    /// `Recipient` (GenerateDataKeyPair only).
    pub recipient: Option<RecipientInput>,
    pub dry_run: bool,
}

pub struct GenerateDataKeyPairOutput {
    pub private_key_ciphertext_blob: Vec<u8>,
    /// `None` for GenerateDataKeyPairWithoutPlaintext, and with a `Recipient`.
    pub private_key_plaintext: Option<Zeroizing<Vec<u8>>>,
    /// The private key (PKCS#8) enveloped for the `Recipient` (CMS), when the request had one.
    pub ciphertext_for_recipient: Option<Vec<u8>>,
    pub public_key: Vec<u8>,
    pub key_arn: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: MaterialId,
}

impl Kms {
    /// GenerateDataKeyPair (`with_plaintext`) or GenerateDataKeyPairWithoutPlaintext.
    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        input: GenerateDataKeyPairInput,
        with_plaintext: bool,
    ) -> KmsResult<GenerateDataKeyPairOutput> {
        let mut v = Violations::default();
        let key_id = v.take(validate::required("keyId", input.key_id.as_deref()));
        let pair_spec = v.take(
            validate::required("keyPairSpec", input.key_pair_spec.as_deref())
                .and_then(|name| validate::enum_value::<DataKeyPairSpec>("keyPairSpec", name)),
        );
        v.finish()?;
        let (Some(key_id), Some(pair_spec)) = (key_id, pair_spec) else {
            return Err(Violations::checked());
        };
        validate::encryption_context("encryptionContext", &input.encryption_context)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        // Its own quota per pair spec, not the symmetric key's (AWS's request quotas table).
        self.admit(
            caller,
            crate::quotas::RateQuota::for_data_key_pair(pair_spec),
        )?;
        // Verified once the request is counted: it costs CBOR parsing and ECDSA checks.
        let attestation = self.attest(caller, input.recipient.as_ref())?;
        let action = if with_plaintext {
            "kms:GenerateDataKeyPair"
        } else {
            "kms:GenerateDataKeyPairWithoutPlaintext"
        };
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new(action, Resource::Key(&key))
                .encryption_context(&input.encryption_context)
                // The pair's private key is encrypted under the symmetric key, and the KMS
                // developer guide lists `kms:EncryptionAlgorithm` (SYMMETRIC_DEFAULT) for both
                // GenerateDataKeyPair operations.
                .algorithm(EncryptionAlgorithm::SymmetricDefault.as_str())
                .named_as(key_id)
                .condition("kms:DataKeyPairSpec", pair_spec.as_str())
                .grant_tokens(&tokens)
                .recipient(attestation.as_ref()),
        )?;
        require_usable(&key.record)?;
        if key.record.key_usage != KeyUsage::EncryptDecrypt {
            return Err(super::wrong_usage(&key, action));
        }
        if key.record.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::InvalidKeyUsage(format!(
                "{} key usage is {} and key spec is {}, which is not valid for this operation.",
                key.arn(),
                key.record.key_usage.as_str(),
                key.record.key_spec.as_str()
            )));
        }
        // AWS: keys in a custom key store do not generate data key pairs.
        if key.record.custody.held().is_some() {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} origin is {} which is not valid for this operation.",
                key.arn(),
                key.record.origin.as_str()
            )));
        }
        let spec = pair_spec.key_spec();
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        // Generation of RSA-4096 takes up to a second: keep it off the async workers.
        let (der, public_key) = tokio::task::spawn_blocking(move || -> KmsResult<_> {
            if matches!(
                pair_spec,
                DataKeyPairSpec::MlKem512 | DataKeyPairSpec::MlKem768 | DataKeyPairSpec::MlKem1024
            ) {
                // RFC 9935 PKCS#8 (expandedKey form) and SPKI (docs/decisions.md, "ML-KEM keys").
                return Ok(trent_crypto::kem::generate_pair(spec)?);
            }
            let der = asymmetric::generate_pkcs8(spec)?;
            let public = AsymmetricKey::from_pkcs8(spec, KeyUsage::SignVerify, &der)?
                .public_key_der()
                .to_vec();
            Ok((der, public))
        })
        .await
        .map_err(|e| KmsError::Internal(e.to_string()))??;
        let private_key_ciphertext_blob = seal(&key, &input.encryption_context, &der)?;
        let ciphertext_for_recipient = match &attestation {
            Some(attestation) => Some(seal_for_recipient(attestation, &der)?),
            None => None,
        };
        Ok(GenerateDataKeyPairOutput {
            private_key_ciphertext_blob,
            private_key_plaintext: (with_plaintext && ciphertext_for_recipient.is_none())
                .then_some(der),
            ciphertext_for_recipient,
            public_key,
            key_arn: key.arn().to_string(),
            key_pair_spec: pair_spec,
            key_material_id: key.record.current_material,
        })
    }
}
