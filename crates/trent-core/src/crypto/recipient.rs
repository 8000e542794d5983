//! `Recipient`: a Nitro Enclaves or NitroTPM attestation document on Decrypt, GenerateDataKey,
//! GenerateDataKeyPair, GenerateRandom and DeriveSharedSecret (docs/decisions.md, "Nitro
//! Enclaves recipients").
//!
//! The document is verified before the caller is authorized, since its PCRs are condition keys
//! (`kms:RecipientAttestation:*`) of the authorization, but only after the request's cheap
//! validation and after it has been counted against its request-rate quota (`Kms::admit`):
//! verification parses up to 256 KiB of CBOR and checks several ECDSA P-384 signatures, which a
//! throttled request must not cost. The answer then carries `CiphertextForRecipient` — the
//! plaintext in a CMS envelope to the document's public key (`trent_crypto::nitro::envelope`) —
//! and no plaintext. Without configured Nitro roots (`Kms::with_nitro_roots`) the parameter is
//! refused as `UnsupportedOperationException`, never ignored.

use std::sync::Arc;

use trent_crypto::nitro::{Attestation, AttestationError, MAX_DOCUMENT, TrustAnchors, envelope};

use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::service::Kms;
use crate::validate;

/// `RecipientInfo` as the request carries it.
#[derive(Default, Clone)]
pub struct RecipientInput {
    /// `KeyEncryptionAlgorithm`: only `RSAES_OAEP_SHA_256` exists.
    pub key_encryption_algorithm: Option<String>,
    /// `AttestationDocument`.
    pub attestation_document: Option<Vec<u8>>,
}

/// AWS's one `KeyEncryptionMechanism`.
const RSAES_OAEP_SHA_256: &str = "RSAES_OAEP_SHA_256";

impl Kms {
    /// The same service accepting `Recipient` documents whose chain ends in `roots`.
    pub fn with_nitro_roots(mut self, roots: TrustAnchors) -> Self {
        self.nitro_roots = (!roots.is_empty()).then(|| Arc::new(roots));
        self
    }

    /// Verifies the request's `Recipient`, if any, at the service's time.
    /// The verified document is noted on `caller` for the audit trail.
    pub(crate) fn attest(
        &self,
        caller: &Caller,
        recipient: Option<&RecipientInput>,
    ) -> KmsResult<Option<Attestation>> {
        let Some(recipient) = recipient else {
            return Ok(None);
        };
        let Some(roots) = &self.nitro_roots else {
            return Err(KmsError::UnsupportedOperation(
                "Recipient (Nitro Enclaves or NitroTPM attestation) is not supported by this Trent server: no Nitro root certificate is configured".into(),
            ));
        };
        if let Some(algorithm) = recipient.key_encryption_algorithm.as_deref()
            && algorithm != RSAES_OAEP_SHA_256
        {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value '{algorithm}' at 'recipient.keyEncryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [{RSAES_OAEP_SHA_256}]"
            )));
        }
        let document = validate::required(
            "recipient.attestationDocument",
            recipient.attestation_document.as_deref(),
        )?;
        validate::blob_length("recipient.attestationDocument", document, 1, MAX_DOCUMENT)?;
        let attestation = roots
            .verify(document, self.clock.now_ms())
            .map_err(|e| KmsError::Validation(attestation_message(e).into()))?;
        caller.note_recipient(Arc::new(attestation.clone()));
        Ok(Some(attestation))
    }
}

/// The message of a refused document: its category only, never a detail of the bytes.
fn attestation_message(e: AttestationError) -> &'static str {
    match e {
        AttestationError::Malformed => {
            "The attestation document in the Recipient parameter is not a valid Nitro Enclaves or NitroTPM attestation document."
        }
        AttestationError::Untrusted => {
            "The attestation document in the Recipient parameter could not be verified: its signature or certificate chain is not valid or not trusted."
        }
        AttestationError::NoPublicKey => {
            "The attestation document in the Recipient parameter does not include a public key."
        }
        AttestationError::BadPublicKey => {
            "The public key in the attestation document is not a valid RSA public key for RSAES_OAEP_SHA_256."
        }
    }
}

/// `CiphertextForRecipient` of `plaintext` for `attestation`.
pub(crate) fn seal_for_recipient(
    attestation: &Attestation,
    plaintext: &[u8],
) -> KmsResult<Vec<u8>> {
    envelope(attestation, plaintext)
        .map_err(|_| KmsError::Internal("CMS envelope for the recipient failed".into()))
}
