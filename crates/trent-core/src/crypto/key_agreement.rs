//! DeriveSharedSecret: ECDH between a KEY_AGREEMENT key's private key and a peer's public
//! key. The shared secret is returned raw, as AWS does; deriving keys from it is the caller's
//! job.

use trent_crypto::spec::{KeyAgreementAlgorithm, KeyUsage, Origin, WireEnum};
use zeroize::Zeroizing;

use super::{RecipientInput, require_usage, seal_for_recipient};
use crate::authz::{Access, Resource};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::service::Kms;
use crate::validate::{self, Violations};

/// Largest peer public key for DeriveSharedSecret (AWS's PublicKeyType bound).
pub const MAX_PUBLIC_KEY: usize = 8192;

#[derive(Default)]
pub struct DeriveSharedSecretInput {
    pub key_id: Option<String>,
    pub key_agreement_algorithm: Option<String>,
    pub public_key: Option<Vec<u8>>,
    pub grant_tokens: Vec<String>,
    /// `Recipient`: answer with `ciphertext_for_recipient` instead of the shared secret.
    pub recipient: Option<RecipientInput>,
    pub dry_run: bool,
}

pub struct DeriveSharedSecretOutput {
    pub key_arn: String,
    /// Empty when the request had a `Recipient`.
    pub shared_secret: Zeroizing<Vec<u8>>,
    /// The shared secret enveloped for the `Recipient` (CMS), when the request had one.
    pub ciphertext_for_recipient: Option<Vec<u8>>,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    /// `KeyOrigin`: where the key's material came from (EXTERNAL for imported material).
    pub key_origin: Origin,
}

impl Kms {
    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        input: DeriveSharedSecretInput,
    ) -> KmsResult<DeriveSharedSecretOutput> {
        let mut v = Violations::default();
        let key_id = v.take(validate::required("keyId", input.key_id.as_deref()));
        let alg = v.take(
            validate::required(
                "keyAgreementAlgorithm",
                input.key_agreement_algorithm.as_deref(),
            )
            .and_then(|name| {
                validate::enum_value::<KeyAgreementAlgorithm>("keyAgreementAlgorithm", name)
            }),
        );
        let peer = v.take(
            validate::required("publicKey", input.public_key.as_deref()).and_then(|peer| {
                validate::blob_length("publicKey", peer, 1, MAX_PUBLIC_KEY).map(|()| peer)
            }),
        );
        v.finish()?;
        let (Some(key_id), Some(alg), Some(peer)) = (key_id, alg, peer) else {
            return Err(Violations::checked());
        };
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        // Verified once the request is counted: it costs CBOR parsing and ECDSA checks.
        let attestation = self.attest(caller, input.recipient.as_ref())?;
        self.check(
            caller,
            Access::new("kms:DeriveSharedSecret", Resource::Key(&key))
                .named_as(key_id)
                .condition("kms:KeyAgreementAlgorithm", alg.as_str())
                .grant_tokens(&tokens)
                .recipient(attestation.as_ref()),
        )?;
        require_usable(&key.record)?;
        require_usage(&key, KeyUsage::KeyAgreement, "kms:DeriveSharedSecret")?;
        let private = key
            .asymmetric()
            .ok_or_else(|| KmsError::Internal("key agreement key without material".into()))?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        // AWS's ValidationException for a public key it cannot use has an empty message.
        let shared_secret = private
            .derive_shared_secret(peer)
            .map_err(|_| KmsError::Validation(String::new()))?;
        let (shared_secret, ciphertext_for_recipient) = match &attestation {
            Some(attestation) => (
                Zeroizing::new(Vec::new()),
                Some(seal_for_recipient(attestation, &shared_secret)?),
            ),
            None => (shared_secret, None),
        };
        Ok(DeriveSharedSecretOutput {
            key_arn: key.arn().to_string(),
            shared_secret,
            ciphertext_for_recipient,
            key_agreement_algorithm: alg,
            key_origin: key.record.origin,
        })
    }
}
