//! Encapsulate and Decapsulate: ML-KEM (FIPS 203) with an ENCAPSULATE_DECAPSULATE key.
//!
//! Encapsulate makes a fresh 32-byte shared secret and its encapsulated form with the key's
//! public (encapsulation) key; Decapsulate recovers the secret from an encapsulated form with the
//! private key. Anyone holding the public key from GetPublicKey can encapsulate outside Trent;
//! only Decapsulate needs the private key. A ciphertext of the wrong length for the key spec is
//! InvalidCiphertextException; any other ciphertext gives 32 bytes (ML-KEM's implicit rejection),
//! as AWS documents.

use std::sync::Arc;

use trent_crypto::spec::{EncapsulationAlgorithm, KeyUsage};
use zeroize::Zeroizing;

use super::require_usage;
use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate;

/// Largest `SharedSecretCiphertextBlob` (AWS's CiphertextType bound).
pub const MAX_SHARED_SECRET_CIPHERTEXT: usize = 6144;

#[derive(Default)]
pub struct EncapsulateInput {
    pub key_id: Option<String>,
    pub encapsulation_algorithm: Option<String>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct EncapsulateOutput {
    pub key_arn: String,
    pub shared_secret: Zeroizing<Vec<u8>>,
    pub shared_secret_ciphertext_blob: Vec<u8>,
    pub encapsulation_algorithm: EncapsulationAlgorithm,
}

#[derive(Default)]
pub struct DecapsulateInput {
    pub key_id: Option<String>,
    pub shared_secret_ciphertext_blob: Option<Vec<u8>>,
    pub encapsulation_algorithm: Option<String>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct DecapsulateOutput {
    pub key_arn: String,
    pub shared_secret: Zeroizing<Vec<u8>>,
    pub encapsulation_algorithm: EncapsulationAlgorithm,
}

impl Kms {
    /// What Encapsulate and Decapsulate share: the algorithm validated, the key resolved,
    /// counted, authorized for `action`, usable and of usage ENCAPSULATE_DECAPSULATE.
    async fn ml_kem_key(
        &self,
        caller: &Caller,
        key_id: &str,
        algorithm: Option<&str>,
        grant_tokens: &[String],
        action: &'static str,
    ) -> KmsResult<(Arc<LoadedKey>, EncapsulationAlgorithm)> {
        let alg_name = validate::required("encapsulationAlgorithm", algorithm)?;
        let alg =
            validate::enum_value::<EncapsulationAlgorithm>("encapsulationAlgorithm", alg_name)?;
        let tokens = self.open_grant_tokens(grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        self.check(
            caller,
            Access::new(action, Resource::Key(&key))
                .named_as(key_id)
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_usage(&key, KeyUsage::EncapsulateDecapsulate, action)?;
        Ok((key, alg))
    }

    pub async fn encapsulate(
        &self,
        caller: &Caller,
        input: EncapsulateInput,
    ) -> KmsResult<EncapsulateOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let (key, alg) = self
            .ml_kem_key(
                caller,
                key_id,
                input.encapsulation_algorithm.as_deref(),
                &input.grant_tokens,
                "kms:Encapsulate",
            )
            .await?;
        let private = key
            .asymmetric()
            .ok_or_else(|| KmsError::Internal("ML-KEM key without material".into()))?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let (ciphertext, shared_secret) = private
            .encapsulate()
            .map_err(|e| KmsError::Internal(format!("ML-KEM encapsulation failed: {e}")))?;
        Ok(EncapsulateOutput {
            key_arn: key.arn().to_string(),
            shared_secret,
            shared_secret_ciphertext_blob: ciphertext,
            encapsulation_algorithm: alg,
        })
    }

    pub async fn decapsulate(
        &self,
        caller: &Caller,
        input: DecapsulateInput,
    ) -> KmsResult<DecapsulateOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let ciphertext = validate::required(
            "sharedSecretCiphertextBlob",
            input.shared_secret_ciphertext_blob.as_deref(),
        )?;
        validate::blob_length(
            "sharedSecretCiphertextBlob",
            ciphertext,
            1,
            MAX_SHARED_SECRET_CIPHERTEXT,
        )?;
        let (key, alg) = self
            .ml_kem_key(
                caller,
                key_id,
                input.encapsulation_algorithm.as_deref(),
                &input.grant_tokens,
                "kms:Decapsulate",
            )
            .await?;
        let private = key
            .asymmetric()
            .ok_or_else(|| KmsError::Internal("ML-KEM key without material".into()))?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let shared_secret = private
            .decapsulate(ciphertext)
            .map_err(|_| KmsError::InvalidCiphertext)?;
        Ok(DecapsulateOutput {
            key_arn: key.arn().to_string(),
            shared_secret,
            encapsulation_algorithm: alg,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trent_crypto::spec::WireEnum;

    #[test]
    fn the_ciphertext_bound_fits_every_spec() {
        for spec in [
            trent_crypto::spec::KeySpec::MlKem512,
            trent_crypto::spec::KeySpec::MlKem768,
            trent_crypto::spec::KeySpec::MlKem1024,
        ] {
            let len = trent_crypto::kem::ciphertext_len(spec).unwrap_or(usize::MAX);
            assert!(len <= MAX_SHARED_SECRET_CIPHERTEXT, "{}", spec.as_str());
        }
    }
}
