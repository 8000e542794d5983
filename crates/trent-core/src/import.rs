//! Imported key material (BYOK): CreateKey with Origin EXTERNAL, GetParametersForImport,
//! ImportKeyMaterial, DeleteImportedKeyMaterial, and the expiry step the background task runs.
//!
//! An EXTERNAL key starts in PendingImport with no material. GetParametersForImport makes an RSA
//! wrapping key pair and an import token valid for 24 hours; the private key is kept wrapped
//! under the root key, in the store, until then (so an import works across restarts). Imported
//! material gets a deterministic id ([`imported_material_id`]), which is how re-importing the
//! same material is told apart from importing different material.
//!
//! Material may be imported into symmetric encryption keys (32 raw bytes), HMAC keys (raw bytes
//! of a length the spec allows) and RSA / ECC / Ed25519 / ML-DSA keys (a PKCS#8 DER private key
//! of the key's modulus size, curve or parameter set; ML-DSA in the seed-only form). It is stored wrapped under the root key exactly like generated
//! material, so loading goes through the same `parse_material` path.
//!
//! Related multi-Region symmetric keys keep the same list of materials: new material is imported
//! into the primary and written, not yet imported, to every replica, which imports it too
//! before RotateKeyOnDemand of the primary makes it current on all of them (`rotation.rs`).

use std::sync::Arc;

use trent_crypto::import::{
    WrappingAlgorithm, WrappingKeyPair, WrappingKeySpec, imported_material_id,
};
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin, WireEnum};
use trent_crypto::{AsymmetricKey, HmacKey, MaterialId, SymmetricKey, random};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::authz::Resource;
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::key_state::{Op, check};
use crate::lifecycle::{
    DAY_MS, ImportedMaterial, MaterialState, NO_MATERIAL, import_key_aad, imported_materials,
};
use crate::material::Material;
use crate::model::{ExpirationModel, ImportParams, KeyRecord, StoredMaterial, Tag, material_aad};
use crate::service::Kms;
use crate::validate;

/// How long an import token and its public key are valid.
pub const IMPORT_TOKEN_VALIDITY_MS: i64 = DAY_MS;
/// How far ahead ValidTo may be.
pub const MAX_VALID_TO_MS: i64 = 365 * DAY_MS;

/// GetParametersForImport output.
pub struct ImportParameters {
    pub key_arn: String,
    pub import_token: Vec<u8>,
    pub public_key: Vec<u8>,
    pub valid_to_ms: i64,
}

/// ImportKeyMaterial input (members as in the AWS API; `valid_to_ms` from `ValidTo`).
#[derive(Debug, Default, Clone)]
pub struct ImportKeyMaterialInput {
    pub key_id: Option<String>,
    pub import_token: Option<Vec<u8>>,
    pub encrypted_key_material: Option<Vec<u8>>,
    pub valid_to_ms: Option<i64>,
    pub expiration_model: Option<String>,
    pub import_type: Option<String>,
    pub key_material_id: Option<String>,
    pub key_material_description: Option<String>,
}

/// `ImportType`: whether ImportKeyMaterial brings material the key already has or new
/// material (for the next RotateKeyOnDemand of a symmetric key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportType {
    NewKeyMaterial,
    ExistingKeyMaterial,
}

impl WireEnum for ImportType {
    const ALL: &'static [Self] = &[Self::NewKeyMaterial, Self::ExistingKeyMaterial];
    fn as_str(self) -> &'static str {
        match self {
            Self::NewKeyMaterial => "NEW_KEY_MATERIAL",
            Self::ExistingKeyMaterial => "EXISTING_KEY_MATERIAL",
        }
    }
}

/// Brings the lifecycle fields DescribeKey and the background task read in line with the
/// key's imported materials: the expiration model of the current material while it is
/// imported, and the earliest expiry of any imported material (the due date of the next
/// expiry step).
pub(crate) fn sync_import_lifecycle(record: &mut KeyRecord) {
    let list = &record.lifecycle.imported_materials;
    let model = list
        .iter()
        .find(|m| m.state == MaterialState::Current && m.imported)
        .and_then(|m| m.expiration_model);
    let valid_to = list
        .iter()
        .filter(|m| m.imported)
        .filter_map(|m| m.valid_to_ms)
        .min();
    record.lifecycle.expiration_model = model;
    record.lifecycle.valid_to_ms = valid_to;
}

/// Whether every material permanently part of the key (current and non-current) is imported:
/// only then is a symmetric EXTERNAL key usable (AWS: "import all of the key materials").
fn all_imported(list: &[ImportedMaterial]) -> bool {
    list.iter()
        .filter(|m| m.state != MaterialState::PendingRotation)
        .all(|m| m.imported)
}

/// `KeyMaterialDescription`: at most 256 characters of `[a-zA-Z0-9:/_\s.-]`.
fn validate_material_description(d: &str) -> KmsResult<()> {
    validate::length("keyMaterialDescription", d, 0, 256)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || c.is_whitespace() || ":/_.-".contains(c);
    if d.is_empty() || !d.chars().all(allowed) {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{d}' at 'keyMaterialDescription' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_\\s.-]+$"
        )));
    }
    Ok(())
}

/// Key specs whose material can be imported (AWS: symmetric encryption, HMAC, RSA, the ECC
/// specs, Ed25519, ML-DSA and SM2 (China Regions); not ML-KEM).
pub(crate) fn importable_spec(spec: KeySpec) -> bool {
    matches!(
        spec,
        KeySpec::SymmetricDefault
            | KeySpec::Hmac224
            | KeySpec::Hmac256
            | KeySpec::Hmac384
            | KeySpec::Hmac512
            | KeySpec::Rsa2048
            | KeySpec::Rsa3072
            | KeySpec::Rsa4096
            | KeySpec::EccNistP256
            | KeySpec::EccNistP384
            | KeySpec::EccNistP521
            | KeySpec::EccSecgP256k1
            | KeySpec::EccNistEdwards25519
            | KeySpec::MlDsa44
            | KeySpec::MlDsa65
            | KeySpec::MlDsa87
            | KeySpec::Sm2
    )
}

fn is_rsa(spec: KeySpec) -> bool {
    matches!(spec, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
}

/// AWS's rules for which wrapping algorithm may carry which material: an RSA private key only
/// with an RSA_AES_KEY_WRAP algorithm (its PKCS#8 is too large for RSAES-OAEP), and an
/// ECC_NIST_P521 private key not with RSAES-OAEP under an RSA_2048 wrapping key. SM2PKE goes
/// with an SM2 wrapping key and only with it, and wraps RSA, ECC and SM2 private keys (AWS:
/// "supported for wrapping RSA, ECC, and SM2 key material"); SM2 material never goes under an
/// RSA_AES_KEY_WRAP algorithm.
fn check_wrapping_for_spec(
    key_spec: KeySpec,
    algorithm: WrappingAlgorithm,
    wrapping_spec: WrappingKeySpec,
) -> KmsResult<()> {
    let sm2pke = algorithm == WrappingAlgorithm::Sm2Pke;
    if sm2pke != (wrapping_spec == WrappingKeySpec::Sm2) {
        return Err(KmsError::Validation(format!(
            "The {} wrapping algorithm is not supported with the {} wrapping key spec. Use the SM2PKE wrapping algorithm with the SM2 wrapping key spec, and an RSA wrapping algorithm with an RSA wrapping key spec.",
            algorithm.as_str(),
            wrapping_spec.as_str()
        )));
    }
    let wrapped_by_sm2pke = is_rsa(key_spec)
        || matches!(
            key_spec,
            KeySpec::EccNistP256
                | KeySpec::EccNistP384
                | KeySpec::EccNistP521
                | KeySpec::EccSecgP256k1
                | KeySpec::EccNistEdwards25519
                | KeySpec::Sm2
        );
    if sm2pke && !wrapped_by_sm2pke {
        return Err(KmsError::Validation(format!(
            "The SM2PKE wrapping algorithm is not supported for KMS keys with key spec {}. It wraps RSA, ECC and SM2 key material.",
            key_spec.as_str()
        )));
    }
    // SM2 keys exist only in AWS's China Regions, where the RSA_AES_KEY_WRAP algorithms are
    // not offered, and AWS lists those for RSA and ECC material only: SM2 material travels
    // under SM2PKE or RSAES_OAEP (docs/decisions.md, "SM2 keys").
    let rsa_aes = matches!(
        algorithm,
        WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256
    );
    if rsa_aes && key_spec == KeySpec::Sm2 {
        return Err(KmsError::Validation(format!(
            "The {} wrapping algorithm is not supported for KMS keys with key spec SM2. To import SM2 key material, use the SM2PKE, RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256 wrapping algorithm.",
            algorithm.as_str()
        )));
    }
    let oaep = matches!(
        algorithm,
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256
    );
    if oaep && is_rsa(key_spec) {
        return Err(KmsError::Validation(format!(
            "The {} wrapping algorithm is not supported for KMS keys with key spec {}. To import an RSA private key, use an RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256 wrapping algorithm.",
            algorithm.as_str(),
            key_spec.as_str()
        )));
    }
    if oaep && key_spec == KeySpec::EccNistP521 && wrapping_spec == WrappingKeySpec::Rsa2048 {
        return Err(KmsError::Validation(format!(
            "The {} wrapping algorithm with the RSA_2048 wrapping key spec is not supported for KMS keys with key spec ECC_NIST_P521. Use a larger wrapping key spec or an RSA_AES_KEY_WRAP wrapping algorithm.",
            algorithm.as_str()
        )));
    }
    Ok(())
}

/// Imported material parsed for a key of `spec` and `usage`: the parsed form and the bytes its
/// material id is derived from (the raw key, or the public key of an asymmetric key).
pub(crate) fn parse_imported(
    spec: KeySpec,
    usage: KeyUsage,
    raw: &[u8],
) -> KmsResult<(Material, Zeroizing<Vec<u8>>)> {
    match spec {
        KeySpec::SymmetricDefault => {
            let key = SymmetricKey::from_bytes(raw).ok_or_else(|| {
                KmsError::IncorrectKeyMaterial(
                    "Key material for a SYMMETRIC_DEFAULT key must be 256 bits (32 bytes).".into(),
                )
            })?;
            Ok((Material::Symmetric(key), Zeroizing::new(raw.to_vec())))
        }
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            let key = HmacKey::from_bytes(spec, raw).ok_or_else(|| {
                let (lo, hi) = spec
                    .hmac_key_lengths()
                    .map_or((0, 0), |r| (*r.start(), *r.end()));
                KmsError::IncorrectKeyMaterial(format!(
                    "Key material for an {} key must be between {lo} and {hi} bytes.",
                    spec.as_str()
                ))
            })?;
            Ok((Material::Hmac(key), Zeroizing::new(raw.to_vec())))
        }
        _ => {
            let invalid = || {
                KmsError::IncorrectKeyMaterial(format!(
                    "Key material for a {} key must be a DER-encoded PKCS#8 private key of that key spec.",
                    spec.as_str()
                ))
            };
            let key = AsymmetricKey::from_pkcs8(spec, usage, raw).map_err(|_| invalid())?;
            // An ML-DSA key is kept in the seed-only form (RFC 9881 `seed`), as generated ones
            // are: EXTERNAL_MU signing derives the key from its seed.
            if !key.has_every_signing_mode() {
                return Err(KmsError::IncorrectKeyMaterial(format!(
                    "Key material for a {} key must be a DER-encoded PKCS#8 private key in the seed-only form (RFC 9881).",
                    spec.as_str()
                )));
            }
            let public = Zeroizing::new(key.public_key_der().to_vec());
            Ok((Material::Asymmetric(key), public))
        }
    }
}

impl Kms {
    /// CreateKey's EXTERNAL branch: stores `record` (from [`external_key_record`]), a key in
    /// PendingImport without material. Input is already validated and authorized by
    /// `create_key`.
    pub(crate) async fn insert_external_key(&self, record: KeyRecord) -> KmsResult<KeyRecord> {
        let uuid = crate::ids::raw_key_id(&record.key_id)
            .ok_or_else(|| KmsError::Internal("new key id is not a key id".into()))?;
        self.store.insert_key_without_material(&record).await?;
        self.cache.set_key_aliases(&record.key_id, Vec::new());
        self.grants.init_new_key(&record.key_id);
        self.cache.put_key(Arc::new(LoadedKey::new(
            record.clone(),
            uuid,
            Default::default(),
        )));
        Ok(record)
    }

    pub async fn get_parameters_for_import(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        wrapping_algorithm: Option<&str>,
        wrapping_key_spec: Option<&str>,
    ) -> KmsResult<ImportParameters> {
        self.admit(caller, crate::quotas::RateQuota::GetParametersForImport)?;
        let key_id = validate::required("keyId", key_id)?;
        let algorithm = validate::required("wrappingAlgorithm", wrapping_algorithm)?;
        let algorithm = validate::enum_value::<WrappingAlgorithm>("wrappingAlgorithm", algorithm)?;
        let spec = validate::required("wrappingKeySpec", wrapping_key_spec)?;
        let spec = validate::enum_value::<WrappingKeySpec>("wrappingKeySpec", spec)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let context = crate::authz::condition_keys([
            ("kms:WrappingAlgorithm", algorithm.as_str().to_string()),
            ("kms:WrappingKeySpec", spec.as_str().to_string()),
        ]);
        self.authorize_with(
            caller,
            "kms:GetParametersForImport",
            Resource::Key(&key),
            context,
        )?;
        require_external(&key.record)?;
        check(Op::Import, &key.record)?;
        if algorithm == WrappingAlgorithm::RsaesPkcs1V15 {
            return Err(KmsError::UnsupportedOperation(
                "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported for importing key material.".into(),
            ));
        }
        check_wrapping_for_spec(key.record.key_spec, algorithm, spec)?;
        // RSA key generation takes long enough (up to seconds for 4096 bits) to keep it off the
        // async workers (an SM2 pair is quick, but takes the same path).
        let pair = tokio::task::spawn_blocking(move || WrappingKeyPair::generate(spec))
            .await
            .map_err(|e| KmsError::Internal(e.to_string()))?
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let public_key = pair
            .public_key_der()
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let private = pair
            .pkcs8_der()
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let token_bytes = random::array::<32>()?.to_vec();
        let token = hex::encode(&token_bytes);
        let now = self.clock.now_ms();
        let record = &key.record;
        let params = ImportParams {
            token: token.clone(),
            key_id: record.key_id.clone(),
            wrapping_algorithm: algorithm,
            wrapping_key_spec: spec,
            wrapped_private_key: self
                .root
                .wrap(&private, &import_key_aad(&record.key_id, &token))?,
            created_ms: now,
            expires_ms: now.saturating_add(IMPORT_TOKEN_VALIDITY_MS),
        };
        self.store.insert_import_params(&params).await?;
        Ok(ImportParameters {
            key_arn: record.arn(),
            import_token: token_bytes,
            public_key,
            valid_to_ms: params.expires_ms,
        })
    }

    /// ImportKeyMaterial; returns the key ARN and the material id.
    pub async fn import_key_material(
        &self,
        caller: &Caller,
        input: ImportKeyMaterialInput,
    ) -> KmsResult<(String, MaterialId)> {
        self.admit(caller, crate::quotas::RateQuota::ImportKeyMaterial)?;
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let token = validate::required("importToken", input.import_token.as_deref())?;
        validate::blob_length("importToken", token, 1, 6144)?;
        let encrypted = validate::required(
            "encryptedKeyMaterial",
            input.encrypted_key_material.as_deref(),
        )?;
        validate::blob_length("encryptedKeyMaterial", encrypted, 1, 6144)?;
        let model = match input.expiration_model.as_deref() {
            Some(m) => validate::enum_value::<ExpirationModel>("expirationModel", m)?,
            // AWS's default is KEY_MATERIAL_EXPIRES, so without ValidTo either this is the
            // ValidationException "A validTo date must be set if the ExpirationModel is
            // KEY_MATERIAL_EXPIRES".
            None => ExpirationModel::KeyMaterialExpires,
        };
        let import_type = input
            .import_type
            .as_deref()
            .map(|t| validate::enum_value::<ImportType>("importType", t))
            .transpose()?;
        if let Some(m) = input.key_material_id.as_deref() {
            validate::length("keyMaterialId", m, 64, 64)?;
            if import_type == Some(ImportType::NewKeyMaterial) {
                return Err(KmsError::Validation(
                    "A KeyMaterialId cannot be specified when the ImportType is NEW_KEY_MATERIAL"
                        .into(),
                ));
            }
        }
        if let Some(d) = input.key_material_description.as_deref() {
            validate_material_description(d)?;
        }
        let now = self.clock.now_ms();
        let valid_to = match (model, input.valid_to_ms) {
            (ExpirationModel::KeyMaterialExpires, None) => {
                return Err(KmsError::Validation(
                    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                        .into(),
                ));
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, Some(_)) => {
                return Err(KmsError::Validation(
                    "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE".into(),
                ));
            }
            (ExpirationModel::KeyMaterialExpires, Some(t)) => {
                if t <= now || t > now.saturating_add(MAX_VALID_TO_MS) {
                    return Err(KmsError::Validation(
                        "The validTo date must be in the future and at most 365 days from now"
                            .into(),
                    ));
                }
                Some(t)
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, None) => None,
        };
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let mut context =
            crate::authz::condition_keys([("kms:ExpirationModel", model.as_str().to_string())]);
        if let Some(t) = valid_to {
            // kms:ValidTo is compared as epoch seconds (numeric and date operators both accept it).
            context.insert("kms:ValidTo", t.div_euclid(1000).to_string());
        }
        self.authorize_with(
            caller,
            "kms:ImportKeyMaterial",
            Resource::Key(&key),
            context,
        )?;
        require_external(&key.record)?;
        check(Op::Import, &key.record)?;

        let token_hex = hex::encode(token);
        let params = self
            .store
            .import_params(&token_hex)
            .await?
            .filter(|p| p.key_id == key.record.key_id)
            .ok_or_else(|| {
                KmsError::InvalidImportToken(
                    "Import token provided is not valid for this KMS key.".into(),
                )
            })?;
        if params.expires_ms <= now {
            return Err(KmsError::ExpiredImportToken(
                "The import token has expired. Call GetParametersForImport for a new one.".into(),
            ));
        }
        let private = self.root.unwrap(
            &params.wrapped_private_key,
            &import_key_aad(&params.key_id, &params.token),
        )?;
        let pair = WrappingKeyPair::from_pkcs8(params.wrapping_key_spec, &private)
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let raw = pair
            .unwrap_material(params.wrapping_algorithm, encrypted)
            .map_err(|_| KmsError::InvalidCiphertext)?;
        let (spec, usage) = (key.record.key_spec, key.record.key_usage);
        // Parsing (and AWS-LC's validation of) an RSA-4096 private key is not free: keep it off
        // the async workers.
        let (material, id_bytes, raw) = tokio::task::spawn_blocking(move || {
            parse_imported(spec, usage, &raw).map(|(m, id)| (m, id, raw))
        })
        .await
        .map_err(|e| KmsError::Internal(e.to_string()))??;
        let key_id = key.record.key_id.clone();
        // Bound to the public id: related multi-Region keys must get the same material, and
        // the same material gets the same id in every Region.
        let material_id = imported_material_id(crate::ids::public_key_id(&key_id), &id_bytes);
        if let Some(given) = input.key_material_id.as_deref()
            && given != material_id.to_hex()
        {
            return Err(incorrect_material());
        }
        // Related multi-Region HMAC and asymmetric keys hold one material for life: once any
        // of them has some, only that material is accepted. (A symmetric key's own list of
        // materials, kept the same on every related key, decides for it below.)
        if spec != KeySpec::SymmetricDefault
            && let Some(family) = self.family_material(&key.record).await?
            && family != material_id
        {
            return Err(incorrect_material());
        }

        let _guard = self.writes.lock().await;
        let current = self
            .load_key(&key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished during import".into()))?;
        check(Op::Import, &current.record)?;
        let mut record = current.record.clone();
        let mut new_for_family = false;
        if spec == KeySpec::SymmetricDefault {
            let added = import_symmetric(
                &mut record,
                material_id,
                import_type,
                ImportedMaterial {
                    material_id,
                    state: MaterialState::Current,
                    imported: true,
                    expiration_model: Some(model),
                    valid_to_ms: valid_to,
                    description: input.key_material_description,
                },
            )?;
            new_for_family = added == SymmetricImport::NewPending && record.multi_region;
        } else {
            // HMAC and asymmetric keys have one material for life (AWS: "you cannot change
            // the key material after the initial import").
            if current.record.current_material != NO_MATERIAL
                && current.record.current_material != material_id
            {
                return Err(incorrect_material());
            }
            record.current_material = material_id;
            record.lifecycle.expiration_model = Some(model);
            record.lifecycle.valid_to_ms = valid_to;
            if record.state == KeyState::PendingImport {
                record.state = KeyState::Enabled;
            }
        }
        let wrapped = self.root.wrap(&raw, &material_aad(&key_id, &material_id))?;
        let stored = StoredMaterial {
            key_id: key_id.clone(),
            material_id,
            wrapped,
            created_ms: now,
        };
        let arn = record.arn();
        if new_for_family {
            // New material of a multi-Region primary: every related key learns of it (to be
            // imported there too before the family can rotate to it), in one transaction.
            self.share_pending_material_locked(&record, &stored).await?;
            return Ok((arn, material_id));
        }
        self.store.add_material(&record, &stored, None).await?;
        self.cache.put_key(Arc::new(current.with_material(
            record,
            material_id,
            material,
        )));
        Ok((arn, material_id))
    }

    /// DeleteImportedKeyMaterial; returns the key ARN and the id of the deleted material.
    pub async fn delete_imported_key_material(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        key_material_id: Option<&str>,
    ) -> KmsResult<(String, Option<MaterialId>)> {
        self.admit(caller, crate::quotas::RateQuota::DeleteImportedKeyMaterial)?;
        let key_id = validate::required("keyId", key_id)?;
        if let Some(m) = key_material_id {
            validate::length("keyMaterialId", m, 64, 64)?;
        }
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:DeleteImportedKeyMaterial", Resource::Key(&key))?;
        require_external(&key.record)?;
        check(Op::DeleteImportedKeyMaterial, &key.record)?;
        let not_found = |m: &str| {
            KmsError::NotFound(format!(
                "Key material '{m}' does not exist for {}",
                key.arn()
            ))
        };
        let _guard = self.writes.lock().await;
        let current = self
            .load_key(&key.record.key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished".into()))?;
        let list = imported_materials(&current.record);
        if current.record.key_spec == KeySpec::SymmetricDefault && !list.is_empty() {
            // One material of several: the one named, else the current one.
            let target = match key_material_id {
                Some(m) => MaterialId::from_hex(m)
                    .filter(|id| list.iter().any(|e| e.material_id == *id))
                    .ok_or_else(|| not_found(m))?,
                None => current.record.current_material,
            };
            let record = self
                .delete_one_material_locked(&key.record.key_id, target)
                .await?;
            return Ok((record.arn(), Some(target)));
        }
        if let Some(m) = key_material_id
            && m != current.record.current_material.to_hex()
        {
            return Err(not_found(m));
        }
        let record = self.drop_material_locked(&key.record.key_id).await?;
        let id = (record.current_material != NO_MATERIAL).then_some(record.current_material);
        Ok((record.arn(), id))
    }

    /// Deletes one imported material of a symmetric key (the caller holds the write lock):
    /// material pending rotation is forgotten (it was never part of the key); the current or a
    /// non-current material awaits re-import, and the key with it (PendingImport, or stays
    /// PendingDeletion).
    pub(crate) async fn delete_one_material_locked(
        &self,
        key_id: &str,
        material_id: MaterialId,
    ) -> KmsResult<KeyRecord> {
        let current = self
            .load_key(key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished".into()))?;
        let mut record = current.record.clone();
        let mut list = imported_materials(&record);
        if let Some(pos) = list.iter().position(|m| m.material_id == material_id) {
            let pending = list
                .get(pos)
                .is_some_and(|m| m.state == MaterialState::PendingRotation);
            if pending && record.is_replica() {
                // The family's material pending rotation stays known to a replica, awaiting
                // import again (AWS: deleting a replica's material leaves the related keys
                // unchanged; the primary decides what the family rotates to).
                if let Some(m) = list.get_mut(pos) {
                    m.imported = false;
                    m.expiration_model = None;
                    m.valid_to_ms = None;
                }
            } else if pending {
                if record.is_primary() {
                    // AWS: deleting a primary's material pending rotation deletes it from the
                    // replicas too.
                    self.forget_pending_material_locked(&record, material_id)
                        .await?;
                }
                list.remove(pos);
            } else if let Some(m) = list.get_mut(pos) {
                m.imported = false;
                m.expiration_model = None;
                m.valid_to_ms = None;
                if record.state != KeyState::PendingDeletion {
                    record.state = KeyState::PendingImport;
                }
            }
        }
        record.lifecycle.imported_materials = list;
        sync_import_lifecycle(&mut record);
        self.store.delete_material(&record, &material_id).await?;
        self.cache.put_key(Arc::new(
            current.without_material(record.clone(), &material_id),
        ));
        Ok(record)
    }

    /// The background task's expiry step (the caller holds the write lock): every imported
    /// material whose ValidTo has passed is deleted as by DeleteImportedKeyMaterial.
    pub(crate) async fn expire_materials_locked(&self, key_id: &str, now: i64) -> KmsResult<()> {
        let current = self
            .load_key(key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished".into()))?;
        let list = imported_materials(&current.record);
        let due: Vec<MaterialId> = list
            .iter()
            .filter(|m| m.imported && m.valid_to_ms.is_some_and(|t| t <= now))
            .map(|m| m.material_id)
            .collect();
        if current.record.key_spec != KeySpec::SymmetricDefault || list.is_empty() {
            self.drop_material_locked(key_id).await?;
            return Ok(());
        }
        if due.is_empty() {
            // Nothing imported has expired: only the due date was stale. Recompute it rather
            // than drop materials that are still valid.
            self.update_key_record_locked(key_id, |r| {
                r.lifecycle.imported_materials = imported_materials(r);
                sync_import_lifecycle(r);
                Ok(())
            })
            .await?;
            return Ok(());
        }
        for id in due {
            self.delete_one_material_locked(key_id, id).await?;
        }
        Ok(())
    }

    /// Removes an EXTERNAL key's material: the key returns to PendingImport (or stays
    /// PendingDeletion). The caller holds the write lock. Used by DeleteImportedKeyMaterial and
    /// when material expires.
    pub(crate) async fn drop_material_locked(&self, key_id: &str) -> KmsResult<KeyRecord> {
        let current = self
            .load_key(key_id)
            .await?
            .ok_or_else(|| KmsError::Internal("key vanished".into()))?;
        let mut record = current.record.clone();
        if record.state != KeyState::PendingDeletion {
            record.state = KeyState::PendingImport;
        }
        record.lifecycle.expiration_model = None;
        record.lifecycle.valid_to_ms = None;
        self.store.delete_materials(&record).await?;
        self.cache
            .put_key(Arc::new(current.without_materials(record.clone())));
        Ok(record)
    }
}

/// What ImportKeyMaterial did to a symmetric key's list of materials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymmetricImport {
    /// Re-imported material the key has, or imported its first material.
    Known,
    /// Added new material, pending rotation.
    NewPending,
}

/// ImportKeyMaterial's change to a symmetric key's record: `new` (the material as imported,
/// its id `material_id`) re-imports material the key has, becomes the first material, or waits
/// for RotateKeyOnDemand as PENDING_ROTATION. ImportType defaults as AWS's: NEW_KEY_MATERIAL
/// before the first material, EXISTING_KEY_MATERIAL after. New material of a multi-Region
/// family goes into its primary only (a replica knows it from there).
fn import_symmetric(
    record: &mut KeyRecord,
    material_id: MaterialId,
    import_type: Option<ImportType>,
    new: ImportedMaterial,
) -> KmsResult<SymmetricImport> {
    let mut outcome = SymmetricImport::Known;
    let mut list = imported_materials(record);
    let import_type = import_type.unwrap_or(if list.is_empty() {
        ImportType::NewKeyMaterial
    } else {
        ImportType::ExistingKeyMaterial
    });
    if let Some(m) = list.iter_mut().find(|m| m.material_id == material_id) {
        // Re-import (NEW_KEY_MATERIAL naming material the key already has is one too).
        m.imported = true;
        m.expiration_model = new.expiration_model;
        m.valid_to_ms = new.valid_to_ms;
        if new.description.is_some() {
            m.description = new.description;
        }
    } else if import_type == ImportType::ExistingKeyMaterial {
        return Err(incorrect_material());
    } else if list.is_empty() {
        record.current_material = material_id;
        list.push(new);
    } else if record.is_replica() {
        // AWS: "You cannot directly import new key material into the replica Region keys."
        return Err(crate::multi_region::not_primary(record));
    } else if let Some(p) = list
        .iter()
        .find(|m| m.state == MaterialState::PendingRotation)
    {
        return Err(KmsError::InvalidState(format!(
            "New key material (id: {}) cannot be imported into KMS key {}, because another key material (id: {}) is pending rotation.",
            material_id.to_hex(),
            record.public_id(),
            p.material_id.to_hex()
        )));
    } else {
        list.push(ImportedMaterial {
            state: MaterialState::PendingRotation,
            ..new
        });
        outcome = SymmetricImport::NewPending;
    }
    if record.state == KeyState::PendingImport && all_imported(&list) {
        record.state = KeyState::Enabled;
    }
    record.lifecycle.imported_materials = list;
    sync_import_lifecycle(record);
    Ok(outcome)
}

/// Whether `record` holds `material_id` imported (a multi-Region family rotates to material
/// pending rotation only once every related key holds it).
pub(crate) fn holds_imported(record: &KeyRecord, material_id: MaterialId) -> bool {
    imported_materials(record)
        .iter()
        .any(|m| m.material_id == material_id && m.imported)
}

/// The record of a new EXTERNAL key: PendingImport, no material.
pub(crate) fn external_key_record(
    caller: &Caller,
    created_ms: i64,
    description: String,
    key_spec: KeySpec,
    key_usage: KeyUsage,
    policy: String,
    mut tags: Vec<Tag>,
) -> KeyRecord {
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    KeyRecord {
        key_id: Uuid::new_v4().hyphenated().to_string(),
        account_id: caller.account.clone(),
        region: caller.region.to_string(),
        created_ms,
        description,
        key_spec,
        key_usage,
        origin: Origin::External,
        state: KeyState::PendingImport,
        policy,
        // Bound by the caller (CreateKey), which has the IAM snapshot.
        policy_principals: Default::default(),
        tags,
        current_material: NO_MATERIAL,
        multi_region: false,
        lifecycle: Default::default(),
        custody: Default::default(),
    }
}

fn require_external(record: &KeyRecord) -> KmsResult<()> {
    if record.origin == Origin::External {
        Ok(())
    } else {
        Err(KmsError::UnsupportedOperation(format!(
            "{} origin is {} which is not valid for this operation.",
            record.arn(),
            record.origin.as_str()
        )))
    }
}

fn incorrect_material() -> KmsError {
    KmsError::IncorrectKeyMaterial(
        "The key material you are trying to import is different from the key material previously imported into this KMS key.".into(),
    )
}
