//! Operations on SIGN_VERIFY keys: Sign and Verify, with AWS's rules for which message types
//! each signing algorithm takes; and GetPublicKey, for any asymmetric key.
//!
//! The private key is parsed once when the key is loaded, so a Sign is one AWS-LC signing
//! operation (RustCrypto for Ed25519ph and ML-DSA external μ).

use std::sync::Arc;

use trent_crypto::asymmetric::AsymmetricKey;
use trent_crypto::spec::{KeyUsage, MessageType, SigningAlgorithm, WireEnum};
use zeroize::Zeroizing;

use super::{incompatible, require_usage};
use crate::authz::{Access, Resource};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::model::KeyRecord;
use crate::service::Kms;
use crate::validate::{self, Violations};

/// Largest Sign/Verify/GenerateMac message (AWS's PlaintextType bound).
pub const MAX_MESSAGE: usize = 4096;
/// Largest Signature / Mac accepted (AWS's CiphertextType bound).
pub const MAX_SIGNATURE: usize = 6144;

#[derive(Default)]
pub struct SignInput {
    pub key_id: Option<String>,
    pub message: Option<Zeroizing<Vec<u8>>>,
    pub message_type: Option<String>,
    pub signing_algorithm: Option<String>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct SignOutput {
    pub key_arn: String,
    pub signature: Vec<u8>,
    pub signing_algorithm: SigningAlgorithm,
}

#[derive(Default)]
pub struct VerifyInput {
    pub key_id: Option<String>,
    pub message: Option<Zeroizing<Vec<u8>>>,
    pub message_type: Option<String>,
    pub signature: Option<Vec<u8>>,
    pub signing_algorithm: Option<String>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct VerifyOutput {
    pub key_arn: String,
    pub signing_algorithm: SigningAlgorithm,
}

pub struct PublicKeyOutput {
    pub record: KeyRecord,
    pub public_key: Vec<u8>,
}

impl Kms {
    pub async fn sign(&self, caller: &Caller, input: SignInput) -> KmsResult<SignOutput> {
        let mut v = Violations::default();
        let key_id = v.take(validate::required("keyId", input.key_id.as_deref()));
        let message = v.take(message_member(input.message.as_ref()));
        let message_type = v.take(message_type(input.message_type.as_deref()));
        let alg = v.take(signing_algorithm(input.signing_algorithm.as_deref()));
        v.finish()?;
        let (Some(key_id), Some(message), Some(message_type), Some(alg)) =
            (key_id, message, message_type, alg)
        else {
            return Err(Violations::checked());
        };
        let (key, signature) = self
            .with_signing_key(
                caller,
                SigningRequest {
                    action: "kms:Sign",
                    key_id,
                    alg,
                    message_type,
                    message,
                    grant_tokens: &input.grant_tokens,
                    dry_run: input.dry_run,
                },
                |private| Ok(private.sign(alg, message_type, message)?),
            )
            .await?;
        Ok(SignOutput {
            key_arn: key.arn().to_string(),
            signature,
            signing_algorithm: alg,
        })
    }

    pub async fn verify(&self, caller: &Caller, input: VerifyInput) -> KmsResult<VerifyOutput> {
        let mut v = Violations::default();
        let key_id = v.take(validate::required("keyId", input.key_id.as_deref()));
        let message = v.take(message_member(input.message.as_ref()));
        let message_type = v.take(message_type(input.message_type.as_deref()));
        let signature = v.take(
            validate::required("signature", input.signature.as_deref()).and_then(|signature| {
                validate::blob_length("signature", signature, 1, MAX_SIGNATURE).map(|()| signature)
            }),
        );
        let alg = v.take(signing_algorithm(input.signing_algorithm.as_deref()));
        v.finish()?;
        let (Some(key_id), Some(message), Some(message_type), Some(signature), Some(alg)) =
            (key_id, message, message_type, signature, alg)
        else {
            return Err(Violations::checked());
        };
        let (key, valid) = self
            .with_signing_key(
                caller,
                SigningRequest {
                    action: "kms:Verify",
                    key_id,
                    alg,
                    message_type,
                    message,
                    grant_tokens: &input.grant_tokens,
                    dry_run: input.dry_run,
                },
                |private| Ok(private.verify(alg, message_type, message, signature)?),
            )
            .await?;
        if !valid {
            // AWS's KMSInvalidSignatureException carries no message.
            return Err(KmsError::InvalidSignature(String::new()));
        }
        Ok(VerifyOutput {
            key_arn: key.arn().to_string(),
            signing_algorithm: alg,
        })
    }

    /// What Sign and Verify share once their inputs are valid: the key, authorized for the
    /// action, usable, fitting the algorithm, and a well-formed message; a dry run stops
    /// there. `act` then uses the private key.
    async fn with_signing_key<T>(
        &self,
        caller: &Caller,
        request: SigningRequest<'_>,
        act: impl FnOnce(&AsymmetricKey) -> KmsResult<T>,
    ) -> KmsResult<(Arc<LoadedKey>, T)> {
        let SigningRequest {
            action,
            key_id,
            alg,
            message_type,
            message,
            grant_tokens,
            dry_run,
        } = request;
        let tokens = self.open_grant_tokens(grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.admit_key(caller, key.record.key_spec)?;
        self.check(
            caller,
            signing_access(action, &key, alg, message_type, key_id).grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        let private = signing_key(&key, alg, action)?;
        check_message(alg, message_type, message)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let out = act(private)?;
        Ok((key, out))
    }

    pub async fn get_public_key(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        grant_tokens: &[String],
    ) -> KmsResult<PublicKeyOutput> {
        self.admit(caller, crate::quotas::RateQuota::GetPublicKey)?;
        let key_id = validate::required("keyId", key_id)?;
        let tokens = self.open_grant_tokens(grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new("kms:GetPublicKey", Resource::Key(&key))
                .named_as(key_id)
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        let private = key.asymmetric().ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "{} key spec {} does not have a public key.",
                key.arn(),
                key.record.key_spec.as_str()
            ))
        })?;
        Ok(PublicKeyOutput {
            record: key.record.clone(),
            public_key: private.public_key_der().to_vec(),
        })
    }
}

/// The permission check of Sign and Verify, with their condition keys.
fn signing_access<'a>(
    action: &'a str,
    key: &'a LoadedKey,
    alg: SigningAlgorithm,
    message_type: MessageType,
    key_id: &'a str,
) -> Access<'a> {
    Access::new(action, Resource::Key(key))
        .named_as(key_id)
        .condition("kms:SigningAlgorithm", alg.as_str())
        .condition("kms:MessageType", message_type.as_str())
}

/// The required `Message` member, 1 to 4096 bytes.
fn message_member<M: AsRef<[u8]>>(value: Option<&M>) -> KmsResult<&M> {
    let message = validate::required("message", value)?;
    validate::blob_length("message", message.as_ref(), 1, MAX_MESSAGE)?;
    Ok(message)
}

/// The required `SigningAlgorithm` member.
fn signing_algorithm(value: Option<&str>) -> KmsResult<SigningAlgorithm> {
    validate::enum_value(
        "signingAlgorithm",
        validate::required("signingAlgorithm", value)?,
    )
}

/// The `MessageType` member; absent means RAW, as in AWS.
fn message_type(value: Option<&str>) -> KmsResult<MessageType> {
    value.map_or(Ok(MessageType::Raw), |v| {
        validate::enum_value("messageType", v)
    })
}

/// The private key of a SIGN_VERIFY key, after checking `alg` fits its spec.
fn signing_key<'k>(
    key: &'k LoadedKey,
    alg: SigningAlgorithm,
    action: &str,
) -> KmsResult<&'k AsymmetricKey> {
    require_usage(key, KeyUsage::SignVerify, action)?;
    if !key.record.key_spec.signing_algorithms().contains(&alg) {
        return Err(incompatible(alg.as_str(), key.record.key_spec));
    }
    key.asymmetric()
        .ok_or_else(|| KmsError::Internal("signing key without asymmetric material".into()))
}

/// AWS's rules for the message of Sign/Verify given the algorithm and message type:
/// ED25519_SHA_512 signs RAW only and ED25519_PH_SHA_512 DIGEST only; ML-DSA takes RAW or a
/// 64-byte EXTERNAL_MU; the others take RAW or a DIGEST of their hash's length.
fn check_message(
    alg: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> KmsResult<()> {
    use SigningAlgorithm::{Ed25519PhSha512, Ed25519Sha512, MlDsaShake256};
    let not_valid = || {
        KmsError::Validation(format!(
            "MessageType {} is not valid with signing algorithm {}.",
            message_type.as_str(),
            alg.as_str()
        ))
    };
    match (alg, message_type) {
        (MlDsaShake256, MessageType::ExternalMu) => {
            if message.len() != 64 {
                return Err(KmsError::Validation(
                    "Message must be 64 bytes long when MessageType is EXTERNAL_MU.".into(),
                ));
            }
            Ok(())
        }
        (_, MessageType::ExternalMu)
        | (Ed25519Sha512 | MlDsaShake256, MessageType::Digest)
        | (Ed25519PhSha512, MessageType::Raw) => Err(not_valid()),
        (_, MessageType::Digest) => {
            if Some(message.len()) != alg.digest_len() {
                return Err(KmsError::Validation(format!(
                    "Digest is invalid length for algorithm {}.",
                    alg.as_str()
                )));
            }
            Ok(())
        }
        (_, MessageType::Raw) => Ok(()),
    }
}

/// A Sign or Verify request, validated.
struct SigningRequest<'a> {
    action: &'a str,
    key_id: &'a str,
    alg: SigningAlgorithm,
    message_type: MessageType,
    message: &'a [u8],
    grant_tokens: &'a [String],
    dry_run: bool,
}
