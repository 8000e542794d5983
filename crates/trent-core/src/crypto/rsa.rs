//! Encrypt and Decrypt with an RSA ENCRYPT_DECRYPT key (RSAES_OAEP_SHA_1/256) or an SM2 one
//! (SM2PKE), reached from `symmetric.rs` when the request names one of those algorithms, and
//! the plaintext-size rule ReEncrypt shares with them.
//!
//! As in AWS, the ciphertext is the raw OAEP output, not a ciphertext blob: it names no key,
//! so Decrypt needs the `KeyId`, and no encryption context is bound to it.

use trent_crypto::asymmetric;
use trent_crypto::spec::{EncryptionAlgorithm, KeySpec, WireEnum};

use super::{
    DecryptOutput, EncryptOutput, RecipientInput, incompatible, rsa_key, seal_for_recipient,
};
use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::GrantTokens;
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;

impl Kms {
    /// Encrypt with an RSA key (RSAES_OAEP_*): the ciphertext is the raw OAEP output, as in AWS.
    pub(crate) async fn encrypt_asymmetric(
        &self,
        caller: &Caller,
        tokens: &GrantTokens,
        key_id: &str,
        plaintext: &[u8],
        algorithm: EncryptionAlgorithm,
        dry_run: bool,
    ) -> KmsResult<EncryptOutput> {
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        self.check(
            caller,
            Access::new("kms:Encrypt", Resource::Key(&key))
                .algorithm(algorithm.as_str())
                .named_as(key_id)
                .grant_tokens(tokens),
        )?;
        require_usable(&key.record)?;
        let private = rsa_key(&key, algorithm, "kms:Encrypt")?;
        require_rsa_plaintext_fits(&key, algorithm, plaintext)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        Ok(EncryptOutput {
            ciphertext_blob: private.encrypt(algorithm, plaintext)?,
            key_arn: key.arn().to_string(),
            encryption_algorithm: algorithm,
        })
    }

    /// Decrypt of RSA ciphertext: AWS requires the KeyId, since raw OAEP output names no key.
    #[allow(
        clippy::too_many_arguments,
        reason = "one caller (Decrypt), each argument a request member"
    )]
    pub(crate) async fn decrypt_asymmetric(
        &self,
        caller: &Caller,
        tokens: &GrantTokens,
        key_id: Option<&str>,
        ciphertext: &[u8],
        algorithm: EncryptionAlgorithm,
        dry_run: bool,
        recipient: Option<&RecipientInput>,
    ) -> KmsResult<DecryptOutput> {
        let key_id = key_id.ok_or_else(|| {
            KmsError::Validation(
                "KeyId is required when decrypting with an asymmetric KMS key (EncryptionAlgorithm other than SYMMETRIC_DEFAULT).".into(),
            )
        })?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        // The Recipient is verified once the request is counted (it costs CBOR parsing and
        // several ECDSA checks), before the authorization that reads its PCRs.
        let attestation = self.attest(caller, recipient)?;
        self.check(
            caller,
            Access::new("kms:Decrypt", Resource::Key(&key))
                .algorithm(algorithm.as_str())
                .named_as(key_id)
                .grant_tokens(tokens)
                .recipient(attestation.as_ref()),
        )?;
        require_usable(&key.record)?;
        let private = rsa_key(&key, algorithm, "kms:Decrypt")?;
        // Decrypted before a dry run answers, so a bad ciphertext is reported as such.
        let plaintext = private
            .decrypt(algorithm, ciphertext)
            .map_err(|_| KmsError::InvalidCiphertext)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        // With a Recipient the plaintext is only in the envelope.
        let (plaintext, ciphertext_for_recipient) = match &attestation {
            Some(attestation) => (
                zeroize::Zeroizing::new(Vec::new()),
                Some(seal_for_recipient(attestation, &plaintext)?),
            ),
            None => (plaintext, None),
        };
        Ok(DecryptOutput {
            key_arn: key.arn().to_string(),
            plaintext,
            ciphertext_for_recipient,
            encryption_algorithm: algorithm,
            key_material_id: key.record.current_material,
        })
    }
}

/// Refuses a plaintext longer than OAEP with `algorithm` can encrypt under the key's modulus.
pub(super) fn require_rsa_plaintext_fits(
    key: &LoadedKey,
    algorithm: EncryptionAlgorithm,
    plaintext: &[u8],
) -> KmsResult<()> {
    let max = if algorithm == EncryptionAlgorithm::Sm2Pke && key.record.key_spec == KeySpec::Sm2 {
        trent_crypto::sm2_key::SM2PKE_MAX_PLAINTEXT
    } else {
        asymmetric::rsa_max_plaintext(key.record.key_spec, algorithm)
            .ok_or_else(|| incompatible(algorithm.as_str(), key.record.key_spec))?
    };
    if plaintext.len() > max {
        return Err(KmsError::Validation(format!(
            "Algorithm {} and key spec {} cannot encrypt data larger than {max} bytes.",
            algorithm.as_str(),
            key.record.key_spec.as_str()
        )));
    }
    Ok(())
}
