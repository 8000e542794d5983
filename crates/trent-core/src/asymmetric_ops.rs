//! Operations on asymmetric, HMAC and key-agreement keys: Sign, Verify, GetPublicKey, RSA
//! Encrypt/Decrypt, GenerateDataKeyPair(WithoutPlaintext), GenerateMac, VerifyMac and
//! DeriveSharedSecret; plus generating and parsing key material of every supported spec.
//!
//! Same shape as `crypto_ops.rs`: validate → resolve → authorize → require usable → act, with the
//! private key already parsed in the cache, so a Sign is one AWS-LC signing operation.

use std::collections::BTreeMap;

use trent_crypto::asymmetric::{self, AsymmetricKey};
use trent_crypto::spec::{
    DataKeyPairSpec, EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, KeyUsage, MacAlgorithm,
    MessageType, SigningAlgorithm, WireEnum,
};
use trent_crypto::{HmacKey, MaterialId, SymmetricKey};
use zeroize::Zeroizing;

use crate::authz::{Access, Resource};
use crate::cache::{LoadedKey, Material};
use crate::caller::Caller;
use crate::crypto_ops::{
    CiphertextUse, DecryptOutput, EncryptOutput, ReEncryptInput, ReEncryptOutput, open,
    refuse_recipient, require_symmetric_encryption, seal,
};
use crate::error::{KmsError, KmsResult};
use crate::grants::GrantTokens;
use crate::ids::KeyIdForms;
use crate::keys::require_usable;
use crate::model::KeyRecord;
use crate::service::Kms;
use crate::validate;

/// Largest Sign/Verify/GenerateMac message (AWS's PlaintextType bound).
pub const MAX_MESSAGE: usize = 4096;
/// Largest Signature / Mac accepted (AWS's CiphertextType bound).
pub const MAX_SIGNATURE: usize = 6144;
/// Largest peer public key for DeriveSharedSecret (AWS's PublicKeyType bound).
pub const MAX_PUBLIC_KEY: usize = 8192;

/// Fresh material for a new key: the bytes to wrap at rest and the parsed, cached form.
pub(crate) fn generate_material(
    spec: KeySpec,
    usage: KeyUsage,
) -> KmsResult<(Zeroizing<Vec<u8>>, Material)> {
    match spec {
        KeySpec::SymmetricDefault => {
            let key = SymmetricKey::generate()?;
            let raw = Zeroizing::new(key.expose_bytes().to_vec());
            Ok((raw, Material::Symmetric(key)))
        }
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            let key = HmacKey::generate(spec)?
                .ok_or_else(|| KmsError::Internal("HMAC spec without key length".into()))?;
            let raw = Zeroizing::new(key.expose_bytes().to_vec());
            Ok((raw, Material::Hmac(key)))
        }
        _ => {
            let der = asymmetric::generate_pkcs8(spec)?;
            let key = AsymmetricKey::from_pkcs8(spec, usage, &der)?;
            Ok((der, Material::Asymmetric(key)))
        }
    }
}

/// Parses unwrapped stored material of a key of `spec` and `usage`.
pub(crate) fn parse_material(spec: KeySpec, usage: KeyUsage, raw: &[u8]) -> KmsResult<Material> {
    let wrong = || KmsError::Internal("stored key material does not fit its key spec".into());
    match spec {
        KeySpec::SymmetricDefault => SymmetricKey::from_bytes(raw)
            .map(Material::Symmetric)
            .ok_or_else(wrong),
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            HmacKey::from_bytes(spec, raw)
                .map(Material::Hmac)
                .ok_or_else(wrong)
        }
        _ => Ok(Material::Asymmetric(AsymmetricKey::from_pkcs8(
            spec, usage, raw,
        )?)),
    }
}

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

#[derive(Default)]
pub struct GenerateDataKeyPairInput {
    pub key_id: Option<String>,
    pub key_pair_spec: Option<String>,
    pub encryption_context: BTreeMap<String, String>,
    pub grant_tokens: Vec<String>,
    pub has_recipient: bool,
    pub dry_run: bool,
}

pub struct GenerateDataKeyPairOutput {
    pub private_key_ciphertext_blob: Vec<u8>,
    /// `None` for GenerateDataKeyPairWithoutPlaintext.
    pub private_key_plaintext: Option<Zeroizing<Vec<u8>>>,
    pub public_key: Vec<u8>,
    pub key_arn: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: MaterialId,
}

#[derive(Default)]
pub struct MacInput {
    pub key_id: Option<String>,
    pub message: Option<Zeroizing<Vec<u8>>>,
    pub mac_algorithm: Option<String>,
    /// VerifyMac only.
    pub mac: Option<Vec<u8>>,
    pub grant_tokens: Vec<String>,
    pub dry_run: bool,
}

pub struct MacOutput {
    pub key_arn: String,
    /// The MAC (GenerateMac); empty for VerifyMac.
    pub mac: Vec<u8>,
    pub mac_algorithm: MacAlgorithm,
}

#[derive(Default)]
pub struct DeriveSharedSecretInput {
    pub key_id: Option<String>,
    pub key_agreement_algorithm: Option<String>,
    pub public_key: Option<Vec<u8>>,
    pub grant_tokens: Vec<String>,
    pub has_recipient: bool,
    pub dry_run: bool,
}

pub struct DeriveSharedSecretOutput {
    pub key_arn: String,
    pub shared_secret: Zeroizing<Vec<u8>>,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
}

impl Kms {
    pub async fn sign(&self, caller: &Caller, input: SignInput) -> KmsResult<SignOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let message = validate::required("message", input.message.as_ref())?;
        validate::blob_length("message", message, 1, MAX_MESSAGE)?;
        let alg_name = validate::required("signingAlgorithm", input.signing_algorithm.as_deref())?;
        let alg = validate::enum_value::<SigningAlgorithm>("signingAlgorithm", alg_name)?;
        let message_type = message_type(input.message_type.as_deref())?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            signing_access("kms:Sign", &key, alg, message_type, key_id).grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        let private = signing_key(&key, alg)?;
        check_message(alg, message_type, message)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let signature = private.sign(alg, message_type, message)?;
        Ok(SignOutput {
            key_arn: key.arn().to_string(),
            signature,
            signing_algorithm: alg,
        })
    }

    pub async fn verify(&self, caller: &Caller, input: VerifyInput) -> KmsResult<VerifyOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let message = validate::required("message", input.message.as_ref())?;
        validate::blob_length("message", message, 1, MAX_MESSAGE)?;
        let signature = validate::required("signature", input.signature.as_deref())?;
        validate::blob_length("signature", signature, 1, MAX_SIGNATURE)?;
        let alg_name = validate::required("signingAlgorithm", input.signing_algorithm.as_deref())?;
        let alg = validate::enum_value::<SigningAlgorithm>("signingAlgorithm", alg_name)?;
        let message_type = message_type(input.message_type.as_deref())?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            signing_access("kms:Verify", &key, alg, message_type, key_id).grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        let private = signing_key(&key, alg)?;
        check_message(alg, message_type, message)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        if !private.verify(alg, message_type, message, signature)? {
            return Err(KmsError::InvalidSignature(
                "Signature verification failed.".into(),
            ));
        }
        Ok(VerifyOutput {
            key_arn: key.arn().to_string(),
            signing_algorithm: alg,
        })
    }

    pub async fn get_public_key(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        grant_tokens: &[String],
    ) -> KmsResult<PublicKeyOutput> {
        let key_id = validate::required("keyId", key_id)?;
        let tokens = self.open_grant_tokens(grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new("kms:GetPublicKey", Resource::Key(&key)).grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        let private = key.asymmetric().ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "{} key spec {} does not have a public key.",
                key.arn().to_string(),
                key.record.key_spec.as_str()
            ))
        })?;
        Ok(PublicKeyOutput {
            record: key.record.clone(),
            public_key: private.public_key_der().to_vec(),
        })
    }

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
        self.check(
            caller,
            Access::new("kms:Encrypt", Resource::Key(&key))
                .algorithm(algorithm.as_str())
                .named_as(key_id)
                .grant_tokens(tokens),
        )?;
        require_usable(&key.record)?;
        let private = rsa_key(&key, algorithm)?;
        let max = asymmetric::rsa_max_plaintext(key.record.key_spec, algorithm)
            .ok_or_else(|| incompatible(algorithm.as_str(), key.record.key_spec))?;
        if plaintext.len() > max {
            return Err(KmsError::Validation(format!(
                "Plaintext length {} exceeds the maximum of {max} bytes for key spec {} with {}.",
                plaintext.len(),
                key.record.key_spec.as_str(),
                algorithm.as_str()
            )));
        }
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
    pub(crate) async fn decrypt_asymmetric(
        &self,
        caller: &Caller,
        tokens: &GrantTokens,
        key_id: Option<&str>,
        ciphertext: &[u8],
        algorithm: EncryptionAlgorithm,
        dry_run: bool,
    ) -> KmsResult<DecryptOutput> {
        let key_id = key_id.ok_or_else(|| {
            KmsError::Validation(
                "KeyId is required when decrypting with an asymmetric KMS key (EncryptionAlgorithm other than SYMMETRIC_DEFAULT).".into(),
            )
        })?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new("kms:Decrypt", Resource::Key(&key))
                .algorithm(algorithm.as_str())
                .named_as(key_id)
                .grant_tokens(tokens),
        )?;
        require_usable(&key.record)?;
        let private = rsa_key(&key, algorithm)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let plaintext = private
            .decrypt(algorithm, ciphertext)
            .map_err(|_| KmsError::InvalidCiphertext)?;
        Ok(DecryptOutput {
            key_arn: key.arn().to_string(),
            plaintext,
            encryption_algorithm: algorithm,
            key_material_id: key.record.current_material,
        })
    }

    /// ReEncrypt where either side uses an RSA key (RSAES_OAEP_*). An RSA source needs
    /// SourceKeyId, as in AWS, since raw OAEP output names no key.
    pub(crate) async fn re_encrypt_asymmetric(
        &self,
        caller: &Caller,
        tokens: &GrantTokens,
        input: ReEncryptInput,
        source_algorithm: EncryptionAlgorithm,
        destination_algorithm: EncryptionAlgorithm,
    ) -> KmsResult<ReEncryptOutput> {
        let blob = validate::required("ciphertextBlob", input.ciphertext_blob.as_deref())?;
        let destination =
            validate::required("destinationKeyId", input.destination_key_id.as_deref())?;
        let (source, parsed) = if source_algorithm == EncryptionAlgorithm::SymmetricDefault {
            let (key, parsed) = self
                .key_for_ciphertext(
                    caller,
                    blob,
                    input.source_key_id.as_deref(),
                    CiphertextUse {
                        action: "kms:ReEncryptFrom",
                        algorithm: source_algorithm,
                        context: &input.source_encryption_context,
                        same_key_as: None,
                        grant_tokens: tokens,
                    },
                )
                .await?;
            (key, Some(parsed))
        } else {
            let source_id = input.source_key_id.as_deref().ok_or_else(|| {
                KmsError::Validation(
                    "SourceKeyId is required when the source is an asymmetric KMS key (SourceEncryptionAlgorithm other than SYMMETRIC_DEFAULT).".into(),
                )
            })?;
            let key = self
                .resolve(caller, source_id, KeyIdForms::KeyOrAlias)
                .await?;
            let same = input.destination_key_id.as_deref() == Some(source_id);
            self.check(
                caller,
                Access::new("kms:ReEncryptFrom", Resource::Key(&key))
                    .algorithm(source_algorithm.as_str())
                    .named_as(source_id)
                    .condition(
                        "kms:ReEncryptOnSameKey",
                        if same { "true" } else { "false" },
                    )
                    .grant_tokens(tokens),
            )?;
            require_usable(&key.record)?;
            rsa_key(&key, source_algorithm)?;
            (key, None)
        };
        let dest = self
            .resolve(caller, destination, KeyIdForms::KeyOrAlias)
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
                .grant_tokens(tokens),
        )?;
        require_usable(&dest.record)?;
        if destination_algorithm == EncryptionAlgorithm::SymmetricDefault {
            require_symmetric_encryption(&dest, destination_algorithm)?;
        } else {
            rsa_key(&dest, destination_algorithm)?;
        }
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let plaintext = match &parsed {
            Some(parsed) => open(&source, parsed, &input.source_encryption_context)?,
            None => rsa_key(&source, source_algorithm)?
                .decrypt(source_algorithm, blob)
                .map_err(|_| KmsError::InvalidCiphertext)?,
        };
        let ciphertext_blob = if destination_algorithm == EncryptionAlgorithm::SymmetricDefault {
            seal(&dest, &input.destination_encryption_context, &plaintext)?
        } else {
            let max = asymmetric::rsa_max_plaintext(dest.record.key_spec, destination_algorithm)
                .ok_or_else(|| {
                    incompatible(destination_algorithm.as_str(), dest.record.key_spec)
                })?;
            if plaintext.len() > max {
                return Err(KmsError::Validation(format!(
                    "Plaintext length {} exceeds the maximum of {max} bytes for key spec {} with {}.",
                    plaintext.len(),
                    dest.record.key_spec.as_str(),
                    destination_algorithm.as_str()
                )));
            }
            rsa_key(&dest, destination_algorithm)?.encrypt(destination_algorithm, &plaintext)?
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

    /// GenerateDataKeyPair (`with_plaintext`) or GenerateDataKeyPairWithoutPlaintext.
    pub async fn generate_data_key_pair(
        &self,
        caller: &Caller,
        input: GenerateDataKeyPairInput,
        with_plaintext: bool,
    ) -> KmsResult<GenerateDataKeyPairOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let spec_name = validate::required("keyPairSpec", input.key_pair_spec.as_deref())?;
        let pair_spec = validate::enum_value::<DataKeyPairSpec>("keyPairSpec", spec_name)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        refuse_recipient(input.has_recipient)?;
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
                .named_as(key_id)
                .condition("kms:DataKeyPairSpec", pair_spec.as_str())
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        if key.record.key_spec != KeySpec::SymmetricDefault
            || key.record.key_usage != KeyUsage::EncryptDecrypt
        {
            return Err(KmsError::InvalidKeyUsage(format!(
                "{} key usage is {} and key spec is {}, which is not valid for this operation.",
                key.arn().to_string(),
                key.record.key_usage.as_str(),
                key.record.key_spec.as_str()
            )));
        }
        let spec = pair_spec.key_spec();
        if matches!(
            pair_spec,
            DataKeyPairSpec::Sm2
                | DataKeyPairSpec::MlKem512
                | DataKeyPairSpec::MlKem768
                | DataKeyPairSpec::MlKem1024
        ) {
            return Err(KmsError::UnsupportedOperation(format!(
                "KeyPairSpec {} is not supported by this Trent server yet",
                pair_spec.as_str()
            )));
        }
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        // Generation of RSA-4096 takes up to a second: keep it off the async workers.
        let (der, public_key) = tokio::task::spawn_blocking(move || -> KmsResult<_> {
            let der = asymmetric::generate_pkcs8(spec)?;
            let public = AsymmetricKey::from_pkcs8(spec, KeyUsage::SignVerify, &der)?
                .public_key_der()
                .to_vec();
            Ok((der, public))
        })
        .await
        .map_err(|e| KmsError::Internal(e.to_string()))??;
        let private_key_ciphertext_blob = seal(&key, &input.encryption_context, &der)?;
        Ok(GenerateDataKeyPairOutput {
            private_key_ciphertext_blob,
            private_key_plaintext: with_plaintext.then_some(der),
            public_key,
            key_arn: key.arn().to_string(),
            key_pair_spec: pair_spec,
            key_material_id: key.record.current_material,
        })
    }

    /// GenerateMac (`verify` false) or VerifyMac (`verify` true; a wrong MAC is
    /// `KMSInvalidMacException`).
    pub async fn mac(
        &self,
        caller: &Caller,
        input: MacInput,
        verify: bool,
    ) -> KmsResult<MacOutput> {
        let message = validate::required("message", input.message.as_ref())?;
        validate::blob_length("message", message, 1, MAX_MESSAGE)?;
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let alg_name = validate::required("macAlgorithm", input.mac_algorithm.as_deref())?;
        let alg = validate::enum_value::<MacAlgorithm>("macAlgorithm", alg_name)?;
        let expected = if verify {
            let mac = validate::required("mac", input.mac.as_deref())?;
            validate::blob_length("mac", mac, 1, MAX_SIGNATURE)?;
            Some(mac)
        } else {
            None
        };
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        let action = if verify {
            "kms:VerifyMac"
        } else {
            "kms:GenerateMac"
        };
        self.check(
            caller,
            Access::new(action, Resource::Key(&key))
                .named_as(key_id)
                .condition("kms:MacAlgorithm", alg.as_str())
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_usage(&key, KeyUsage::GenerateVerifyMac)?;
        if !key.record.key_spec.mac_algorithms().contains(&alg) {
            return Err(incompatible(alg.as_str(), key.record.key_spec));
        }
        let hmac = key
            .hmac()
            .ok_or_else(|| KmsError::Internal("HMAC key without HMAC material".into()))?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let mac = match expected {
            Some(mac) => {
                if !hmac.verify(message, mac) {
                    return Err(KmsError::InvalidMac("MAC verification failed.".into()));
                }
                Vec::new()
            }
            None => hmac.mac(message),
        };
        Ok(MacOutput {
            key_arn: key.arn().to_string(),
            mac,
            mac_algorithm: alg,
        })
    }

    pub async fn derive_shared_secret(
        &self,
        caller: &Caller,
        input: DeriveSharedSecretInput,
    ) -> KmsResult<DeriveSharedSecretOutput> {
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let alg_name = validate::required(
            "keyAgreementAlgorithm",
            input.key_agreement_algorithm.as_deref(),
        )?;
        let alg = validate::enum_value::<KeyAgreementAlgorithm>("keyAgreementAlgorithm", alg_name)?;
        let peer = validate::required("publicKey", input.public_key.as_deref())?;
        validate::blob_length("publicKey", peer, 1, MAX_PUBLIC_KEY)?;
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        refuse_recipient(input.has_recipient)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOrAlias).await?;
        self.check(
            caller,
            Access::new("kms:DeriveSharedSecret", Resource::Key(&key))
                .named_as(key_id)
                .condition("kms:KeyAgreementAlgorithm", alg.as_str())
                .grant_tokens(&tokens),
        )?;
        require_usable(&key.record)?;
        require_usage(&key, KeyUsage::KeyAgreement)?;
        let private = key
            .asymmetric()
            .ok_or_else(|| KmsError::Internal("key agreement key without material".into()))?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }
        let shared_secret = private.derive_shared_secret(peer).map_err(|_| {
            KmsError::Validation(format!(
                "PublicKey is not a valid DER-encoded SubjectPublicKeyInfo for key spec {}.",
                key.record.key_spec.as_str()
            ))
        })?;
        Ok(DeriveSharedSecretOutput {
            key_arn: key.arn().to_string(),
            shared_secret,
            key_agreement_algorithm: alg,
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

fn message_type(value: Option<&str>) -> KmsResult<MessageType> {
    value.map_or(Ok(MessageType::Raw), |v| {
        validate::enum_value("messageType", v)
    })
}

fn incompatible(algorithm: &str, spec: KeySpec) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "Algorithm {algorithm} is incompatible with key spec {}.",
        spec.as_str()
    ))
}

fn require_usage(key: &LoadedKey, usage: KeyUsage) -> KmsResult<()> {
    if key.record.key_usage != usage {
        return Err(KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for this operation.",
            key.arn().to_string(),
            key.record.key_usage.as_str()
        )));
    }
    Ok(())
}

/// The private key of a SIGN_VERIFY key, after checking `alg` fits its spec.
fn signing_key(key: &LoadedKey, alg: SigningAlgorithm) -> KmsResult<&AsymmetricKey> {
    require_usage(key, KeyUsage::SignVerify)?;
    if !key.record.key_spec.signing_algorithms().contains(&alg) {
        return Err(incompatible(alg.as_str(), key.record.key_spec));
    }
    key.asymmetric()
        .ok_or_else(|| KmsError::Internal("signing key without asymmetric material".into()))
}

/// The private key of an RSA ENCRYPT_DECRYPT key, after checking `algorithm` fits it.
fn rsa_key(key: &LoadedKey, algorithm: EncryptionAlgorithm) -> KmsResult<&AsymmetricKey> {
    require_usage(key, KeyUsage::EncryptDecrypt)?;
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
