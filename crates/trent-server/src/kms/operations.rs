//! One function per KMS operation: JSON request → `trent_core::Kms` call → JSON response.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use trent_core::keys::CreateKeyInput;
use trent_core::model::{AliasRecord, KeyRecord};
use trent_core::{Caller, Kms};
use trent_crypto::spec::{EncryptionAlgorithm, KeyState, WireEnum};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::operation::Operation;
use super::shapes::*;
use trent_core::crypto::{DecryptInput, EncryptInput, GenerateDataKeyInput, ReEncryptInput};

type ApiResult = Result<Vec<u8>, ApiError>;

/// Runs `operation` with the JSON `body`.
pub async fn dispatch(kms: &Kms, caller: &Caller, operation: Operation, body: &[u8]) -> ApiResult {
    if let Some(result) = super::asymmetric::dispatch(kms, caller, operation, body).await {
        return result;
    }
    if let Some(result) = super::grants::dispatch(kms, caller, operation, body).await {
        return result;
    }
    if let Some(result) = super::custom_key_stores::dispatch(kms, caller, operation, body).await {
        return result;
    }
    match operation {
        Operation::Encrypt => encrypt(kms, caller, parse(body)?).await,
        Operation::Decrypt => decrypt(kms, caller, parse(body)?).await,
        Operation::GenerateDataKey => generate_data_key(kms, caller, parse(body)?, true).await,
        Operation::GenerateDataKeyWithoutPlaintext => {
            generate_data_key(kms, caller, parse(body)?, false).await
        }
        Operation::ReEncrypt => re_encrypt(kms, caller, parse(body)?).await,
        Operation::GenerateRandom => generate_random(kms, caller, parse(body)?).await,
        Operation::ExplainDecision => super::explain::explain_decision(kms, caller, body).await,
        Operation::AnalyzeKeyAccess => super::access::analyze_key_access(kms, caller, body).await,
        Operation::CreateKey => create_key(kms, caller, parse(body)?).await,
        Operation::DescribeKey => describe_key(kms, caller, parse(body)?).await,
        Operation::ListKeys => list_keys(kms, caller, parse(body)?).await,
        Operation::EnableKey => {
            let r: KeyIdRequest = parse(body)?;
            kms.enable_key(caller, r.key_id.as_deref()).await?;
            empty()
        }
        Operation::DisableKey => {
            let r: KeyIdRequest = parse(body)?;
            kms.disable_key(caller, r.key_id.as_deref()).await?;
            empty()
        }
        Operation::UpdateKeyDescription => {
            let r: UpdateKeyDescriptionRequest = parse(body)?;
            kms.update_key_description(caller, r.key_id.as_deref(), r.description.as_deref())
                .await?;
            empty()
        }
        Operation::CreateAlias => {
            let r: AliasRequest = parse(body)?;
            kms.create_alias(caller, r.alias_name.as_deref(), r.target_key_id.as_deref())
                .await?;
            empty()
        }
        Operation::UpdateAlias => {
            let r: AliasRequest = parse(body)?;
            kms.update_alias(caller, r.alias_name.as_deref(), r.target_key_id.as_deref())
                .await?;
            empty()
        }
        Operation::DeleteAlias => {
            let r: AliasRequest = parse(body)?;
            kms.delete_alias(caller, r.alias_name.as_deref()).await?;
            empty()
        }
        Operation::ListAliases => list_aliases(kms, caller, parse(body)?).await,
        Operation::TagResource => {
            let r: TagResourceRequest = parse(body)?;
            let tags = r.tags.map(|t| t.into_iter().map(Into::into).collect());
            kms.tag_resource(caller, r.key_id.as_deref(), tags).await?;
            empty()
        }
        Operation::UntagResource => {
            let r: UntagResourceRequest = parse(body)?;
            kms.untag_resource(caller, r.key_id.as_deref(), r.tag_keys)
                .await?;
            empty()
        }
        Operation::ListResourceTags => {
            let r: ListRequest = parse(body)?;
            let page = kms
                .list_resource_tags(caller, r.key_id.as_deref(), r.limit, r.marker.as_deref())
                .await?;
            let tags: Vec<TagShape> = page.tags.iter().map(TagShape::from).collect();
            paged(json!({ "Tags": tags }), page.next_marker)
        }
        Operation::GetKeyPolicy => {
            let r: KeyPolicyRequest = parse(body)?;
            let policy = kms
                .get_key_policy(caller, r.key_id.as_deref(), r.policy_name.as_deref())
                .await?;
            to_json(
                &json!({ "Policy": policy, "PolicyName": r.policy_name.as_deref().unwrap_or("default") }),
            )
        }
        Operation::PutKeyPolicy => {
            let r: KeyPolicyRequest = parse(body)?;
            kms.put_key_policy(
                caller,
                r.key_id.as_deref(),
                r.policy_name.as_deref(),
                r.policy.as_deref(),
                r.bypass_policy_lockout_safety_check,
            )
            .await?;
            empty()
        }
        Operation::ListKeyPolicies => {
            let r: ListRequest = parse(body)?;
            let names = kms
                .list_key_policies(caller, r.key_id.as_deref(), r.limit, r.marker.as_deref())
                .await?;
            to_json(&json!({ "PolicyNames": names, "Truncated": false }))
        }
        Operation::ReplicateKey => super::multi_region::replicate_key(kms, caller, body).await,
        Operation::UpdatePrimaryRegion => {
            super::multi_region::update_primary_region(kms, caller, body).await
        }
        Operation::EnableKeyRotation
        | Operation::DisableKeyRotation
        | Operation::GetKeyRotationStatus
        | Operation::RotateKeyOnDemand
        | Operation::ListKeyRotations
        | Operation::ScheduleKeyDeletion
        | Operation::CancelKeyDeletion
        | Operation::GetParametersForImport
        | Operation::ImportKeyMaterial
        | Operation::DeleteImportedKeyMaterial => {
            super::lifecycle::dispatch(kms, caller, operation, body).await
        }
        // Sent to their own modules above.
        Operation::Sign
        | Operation::Verify
        | Operation::GetPublicKey
        | Operation::GenerateDataKeyPair
        | Operation::GenerateDataKeyPairWithoutPlaintext
        | Operation::GenerateMac
        | Operation::VerifyMac
        | Operation::DeriveSharedSecret
        | Operation::Encapsulate
        | Operation::Decapsulate
        | Operation::CreateGrant
        | Operation::ListGrants
        | Operation::ListRetirableGrants
        | Operation::RetireGrant
        | Operation::RevokeGrant
        // Answered in `kms/last_usage.rs`, beside the audit trail.
        | Operation::GetKeyLastUsage => Err(ApiError::UnknownOperation),
        // Answered in `kms/custom_key_stores.rs`.
        Operation::ConnectCustomKeyStore
        | Operation::CreateCustomKeyStore
        | Operation::DeleteCustomKeyStore
        | Operation::DescribeCustomKeyStores
        | Operation::DisconnectCustomKeyStore
        | Operation::UpdateCustomKeyStore => Err(ApiError::UnknownOperation),
    }
}

pub(super) fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    // The SDKs send `{}` for input-less calls; some tools send nothing at all.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Serialization(serialization_message(&e)))
}

fn serialization_message(e: &serde_json::Error) -> String {
    // serde's message names no Rust types for these shapes; keep just its first sentence.
    let text = e.to_string();
    text.split(" at line").next().unwrap_or("").to_string()
}

pub(super) fn to_json<T: Serialize>(v: &T) -> ApiResult {
    // Room for the usual response (a ciphertext and a key ARN) without growing.
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, v)
        .map_err(|e| ApiError::Domain(trent_core::KmsError::Internal(e.to_string())))?;
    Ok(out)
}

pub(super) fn empty() -> ApiResult {
    Ok(b"{}".to_vec())
}

pub(super) fn paged(mut body: Value, next_marker: Option<String>) -> ApiResult {
    if let Value::Object(map) = &mut body {
        map.insert("Truncated".into(), Value::Bool(next_marker.is_some()));
        if let Some(m) = next_marker {
            map.insert("NextMarker".into(), Value::String(m));
        }
    }
    to_json(&body)
}

pub(super) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Builds `KeyMetadata` as AWS returns it for a key.
pub fn key_metadata(r: &KeyRecord) -> Value {
    let mut m = json!({
        "AWSAccountId": r.account_id,
        "KeyId": r.public_id(),
        "Arn": r.arn(),
        "CreationDate": epoch_seconds(r.created_ms),
        "Enabled": r.effective_state() == KeyState::Enabled,
        "Description": r.description,
        "KeyUsage": r.key_usage.as_str(),
        "KeyState": r.effective_state().as_str(),
        "Origin": r.origin.as_str(),
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": r.key_spec.as_str(),
        "KeySpec": r.key_spec.as_str(),
        "MultiRegion": r.multi_region,
        "CurrentKeyMaterialId": r.current_material.to_hex(),
    });
    if let Value::Object(map) = &mut m {
        super::asymmetric::insert_algorithm_lists(
            map,
            &trent_crypto::spec::AlgorithmLists::for_key(r.key_spec, r.key_usage),
        );
        super::lifecycle::add_key_metadata(map, r);
        super::multi_region::add_key_metadata(map, r);
        if let trent_core::model::KeyCustody::CloudHsm(held) = &r.custody {
            map.insert("CustomKeyStoreId".into(), json!(held.custom_key_store_id));
            map.insert("CloudHsmClusterId".into(), json!(held.cloud_hsm_cluster_id));
        }
        if let trent_core::model::KeyCustody::External { held, xks_key_id } = &r.custody {
            map.insert("CustomKeyStoreId".into(), json!(held.custom_key_store_id));
            map.insert("XksKeyConfiguration".into(), json!({ "Id": xks_key_id }));
        }
        // A replica being created has no usable material yet (AWS shows none).
        if r.state == KeyState::Creating {
            map.remove("CurrentKeyMaterialId");
        }
    }
    m
}

fn alias_entry(a: &AliasRecord) -> Value {
    json!({
        "AliasName": a.alias_name,
        "AliasArn": a.arn(),
        "TargetKeyId": trent_core::ids::public_key_id(&a.target_key_id),
        "CreationDate": epoch_seconds(a.created_ms),
        "LastUpdatedDate": epoch_seconds(a.updated_ms),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptResponse<'a> {
    ciphertext_blob: Blob<'a>,
    key_id: &'a str,
    encryption_algorithm: &'static str,
}

async fn encrypt(kms: &Kms, caller: &Caller, r: EncryptRequest) -> ApiResult {
    let out = kms
        .encrypt(
            caller,
            EncryptInput {
                key_id: r.key_id,
                plaintext: r.plaintext.map(Zeroizing::new),
                encryption_context: r.encryption_context.unwrap_or_default(),
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                encryption_algorithm: r.encryption_algorithm,
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&EncryptResponse {
        ciphertext_blob: Blob(&out.ciphertext_blob),
        key_id: &out.key_arn,
        encryption_algorithm: out.encryption_algorithm.as_str(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptResponse<'a> {
    key_id: &'a str,
    /// Absent with a `Recipient`: the plaintext is only in `CiphertextForRecipient`.
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext_for_recipient: Option<Blob<'a>>,
    encryption_algorithm: &'static str,
    /// Only for a symmetric key, as in AWS (an RSA key has no key material id).
    #[serde(skip_serializing_if = "Option::is_none")]
    key_material_id: Option<String>,
}

async fn decrypt(kms: &Kms, caller: &Caller, r: DecryptRequest) -> ApiResult {
    let out = kms
        .decrypt(
            caller,
            DecryptInput {
                ciphertext_blob: r.ciphertext_blob,
                encryption_context: r.encryption_context.unwrap_or_default(),
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                key_id: r.key_id,
                encryption_algorithm: r.encryption_algorithm,
                recipient: r.recipient.map(Into::into),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&DecryptResponse {
        key_id: &out.key_arn,
        plaintext: out
            .ciphertext_for_recipient
            .is_none()
            .then(|| Blob(&out.plaintext)),
        ciphertext_for_recipient: out.ciphertext_for_recipient.as_deref().map(Blob),
        encryption_algorithm: out.encryption_algorithm.as_str(),
        key_material_id: (out.encryption_algorithm == EncryptionAlgorithm::SymmetricDefault)
            .then(|| out.key_material_id.to_hex()),
    })
}

async fn re_encrypt(kms: &Kms, caller: &Caller, r: ReEncryptRequest) -> ApiResult {
    let out = kms
        .re_encrypt(
            caller,
            ReEncryptInput {
                ciphertext_blob: r.ciphertext_blob,
                source_encryption_context: r.source_encryption_context.unwrap_or_default(),
                source_key_id: r.source_key_id,
                destination_key_id: r.destination_key_id,
                destination_encryption_context: r
                    .destination_encryption_context
                    .unwrap_or_default(),
                source_encryption_algorithm: r.source_encryption_algorithm,
                destination_encryption_algorithm: r.destination_encryption_algorithm,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    let mut body = json!({
        "CiphertextBlob": b64(&out.ciphertext_blob),
        "SourceKeyId": out.source_key_arn,
        "KeyId": out.key_arn,
        "SourceEncryptionAlgorithm": out.source_encryption_algorithm.as_str(),
        "DestinationEncryptionAlgorithm": out.destination_encryption_algorithm.as_str(),
    });
    // Key material ids only for the symmetric side(s), as in AWS: RSA keys have none.
    if let Value::Object(m) = &mut body {
        if out.source_encryption_algorithm == EncryptionAlgorithm::SymmetricDefault {
            m.insert(
                "SourceKeyMaterialId".into(),
                json!(out.source_key_material_id.to_hex()),
            );
        }
        if out.destination_encryption_algorithm == EncryptionAlgorithm::SymmetricDefault {
            m.insert(
                "DestinationKeyMaterialId".into(),
                json!(out.destination_key_material_id.to_hex()),
            );
        }
    }
    to_json(&body)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateDataKeyResponse<'a> {
    ciphertext_blob: Blob<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plaintext: Option<Blob<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext_for_recipient: Option<Blob<'a>>,
    key_id: &'a str,
    key_material_id: String,
}

async fn generate_data_key(
    kms: &Kms,
    caller: &Caller,
    r: GenerateDataKeyRequest,
    with_plaintext: bool,
) -> ApiResult {
    let out = kms
        .generate_data_key(
            caller,
            GenerateDataKeyInput {
                key_id: r.key_id,
                encryption_context: r.encryption_context.unwrap_or_default(),
                number_of_bytes: r.number_of_bytes,
                key_spec: r.key_spec,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                // Only GenerateDataKey has the member.
                recipient: r.recipient.filter(|_| with_plaintext).map(Into::into),
                dry_run: r.dry_run.unwrap_or(false),
            },
            with_plaintext,
        )
        .await?;
    to_json(&GenerateDataKeyResponse {
        ciphertext_blob: Blob(&out.ciphertext_blob),
        plaintext: out.plaintext.as_deref().map(|p| Blob(p)),
        ciphertext_for_recipient: out.ciphertext_for_recipient.as_deref().map(Blob),
        key_id: &out.key_arn,
        key_material_id: out.key_material_id.to_hex(),
    })
}

async fn generate_random(kms: &Kms, caller: &Caller, r: GenerateRandomRequest) -> ApiResult {
    let recipient = r.recipient.map(trent_core::crypto::RecipientInput::from);
    let (bytes, for_recipient) = kms
        .generate_random_for(
            caller,
            r.number_of_bytes,
            r.custom_key_store_id.as_deref(),
            recipient.as_ref(),
        )
        .await?;
    // Encoded straight into the response: no unzeroized copy of the random bytes' text.
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct GenerateRandomResponse<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        plaintext: Option<Blob<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ciphertext_for_recipient: Option<Blob<'a>>,
    }
    to_json(&GenerateRandomResponse {
        plaintext: bytes.as_deref().map(|b| Blob(b)),
        ciphertext_for_recipient: for_recipient.as_deref().map(Blob),
    })
}

async fn create_key(kms: &Kms, caller: &Caller, r: CreateKeyRequest) -> ApiResult {
    let record = kms
        .create_key(
            caller,
            CreateKeyInput {
                policy: r.policy,
                description: r.description,
                key_usage: r.key_usage,
                customer_master_key_spec: r.customer_master_key_spec,
                key_spec: r.key_spec,
                origin: r.origin,
                custom_key_store_id: r.custom_key_store_id,
                bypass_policy_lockout_safety_check: r.bypass_policy_lockout_safety_check,
                tags: r
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                multi_region: r.multi_region.unwrap_or(false),
                xks_key_id: r.xks_key_id,
            },
        )
        .await?;
    to_json(&json!({ "KeyMetadata": key_metadata(&record) }))
}

async fn describe_key(kms: &Kms, caller: &Caller, r: KeyIdRequest) -> ApiResult {
    let record = kms
        .describe_key(
            caller,
            r.key_id.as_deref(),
            &r.grant_tokens.unwrap_or_default(),
        )
        .await?;
    to_json(&json!({ "KeyMetadata": key_metadata(&record) }))
}

async fn list_keys(kms: &Kms, caller: &Caller, r: ListRequest) -> ApiResult {
    let page = kms.list_keys(caller, r.limit, r.marker.as_deref()).await?;
    let keys: Vec<Value> = page
        .keys
        .iter()
        .map(|(id, arn)| json!({ "KeyId": id, "KeyArn": arn }))
        .collect();
    paged(json!({ "Keys": keys }), page.next_marker)
}

async fn list_aliases(kms: &Kms, caller: &Caller, r: ListRequest) -> ApiResult {
    let page = kms
        .list_aliases(caller, r.key_id.as_deref(), r.limit, r.marker.as_deref())
        .await?;
    let aliases: Vec<Value> = page.aliases.iter().map(alias_entry).collect();
    paged(json!({ "Aliases": aliases }), page.next_marker)
}

#[cfg(test)]
mod robustness_tests;
