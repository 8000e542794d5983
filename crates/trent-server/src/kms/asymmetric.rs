//! Wire handlers for asymmetric, HMAC and key-agreement operations: Sign, Verify, GetPublicKey,
//! GenerateDataKeyPair(WithoutPlaintext), GenerateMac, VerifyMac, DeriveSharedSecret,
//! Encapsulate, Decapsulate.
//! (RSA Encrypt/Decrypt travel through the ordinary Encrypt/Decrypt handlers.)

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trent_core::crypto::{
    DecapsulateInput, DeriveSharedSecretInput, EncapsulateInput, GenerateDataKeyPairInput,
    MacInput, SignInput, VerifyInput,
};
use trent_core::{Caller, Kms};
use trent_crypto::spec::{AlgorithmLists, WireEnum};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::operation::Operation;
use super::operations::{b64, parse, to_json};
use super::shapes::{Blob, Context, b64 as b64de};

type ApiResult = Result<Vec<u8>, ApiError>;

/// Runs one of this module's operations; `None` if `operation` is not one of them.
pub async fn dispatch(
    kms: &Kms,
    caller: &Caller,
    operation: Operation,
    body: &[u8],
) -> Option<ApiResult> {
    Some(match operation {
        Operation::Sign => sign(kms, caller, parse(body)).await,
        Operation::Verify => verify(kms, caller, parse(body)).await,
        Operation::GetPublicKey => get_public_key(kms, caller, parse(body)).await,
        Operation::GenerateDataKeyPair => {
            generate_data_key_pair(kms, caller, parse(body), true).await
        }
        Operation::GenerateDataKeyPairWithoutPlaintext => {
            generate_data_key_pair(kms, caller, parse(body), false).await
        }
        Operation::GenerateMac => mac(kms, caller, parse(body), false).await,
        Operation::VerifyMac => mac(kms, caller, parse(body), true).await,
        Operation::DeriveSharedSecret => derive_shared_secret(kms, caller, parse(body)).await,
        Operation::Encapsulate => encapsulate(kms, caller, parse(body)).await,
        Operation::Decapsulate => decapsulate(kms, caller, parse(body)).await,
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct SignVerifyRequest {
    key_id: Option<String>,
    #[serde(deserialize_with = "b64de::deserialize_opt")]
    message: Option<Vec<u8>>,
    message_type: Option<String>,
    #[serde(deserialize_with = "b64de::deserialize_opt")]
    signature: Option<Vec<u8>>,
    signing_algorithm: Option<String>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyIdRequest {
    key_id: Option<String>,
    grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DataKeyPairRequest {
    key_id: Option<String>,
    key_pair_spec: Option<String>,
    encryption_context: Context,
    grant_tokens: Option<Vec<String>>,
    recipient: Option<super::shapes::RecipientShape>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct MacRequest {
    key_id: Option<String>,
    #[serde(deserialize_with = "b64de::deserialize_opt")]
    message: Option<Vec<u8>>,
    mac_algorithm: Option<String>,
    #[serde(deserialize_with = "b64de::deserialize_opt")]
    mac: Option<Vec<u8>>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeriveSharedSecretRequest {
    key_id: Option<String>,
    key_agreement_algorithm: Option<String>,
    #[serde(deserialize_with = "b64de::deserialize_opt")]
    public_key: Option<Vec<u8>>,
    grant_tokens: Option<Vec<String>>,
    recipient: Option<super::shapes::RecipientShape>,
    dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncapsulationRequest {
    key_id: Option<String>,
    #[serde(deserialize_with = "b64de::deserialize_opt")]
    shared_secret_ciphertext_blob: Option<Vec<u8>>,
    encapsulation_algorithm: Option<String>,
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SignResponse<'a> {
    key_id: &'a str,
    signature: Blob<'a>,
    signing_algorithm: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MacResponse<'a> {
    key_id: &'a str,
    mac: Blob<'a>,
    mac_algorithm: &'static str,
}

async fn sign(kms: &Kms, caller: &Caller, r: Result<SignVerifyRequest, ApiError>) -> ApiResult {
    let r = r?;
    let out = kms
        .sign(
            caller,
            SignInput {
                key_id: r.key_id,
                message: r.message.map(Zeroizing::new),
                message_type: r.message_type,
                signing_algorithm: r.signing_algorithm,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&SignResponse {
        key_id: &out.key_arn,
        signature: Blob(&out.signature),
        signing_algorithm: out.signing_algorithm.as_str(),
    })
}

async fn verify(kms: &Kms, caller: &Caller, r: Result<SignVerifyRequest, ApiError>) -> ApiResult {
    let r = r?;
    let out = kms
        .verify(
            caller,
            VerifyInput {
                key_id: r.key_id,
                message: r.message.map(Zeroizing::new),
                message_type: r.message_type,
                signature: r.signature,
                signing_algorithm: r.signing_algorithm,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&json!({
        "KeyId": out.key_arn,
        "SignatureValid": true,
        "SigningAlgorithm": out.signing_algorithm.as_str(),
    }))
}

/// The algorithm-list members AWS includes for a key (each only when non-empty).
pub fn insert_algorithm_lists(map: &mut serde_json::Map<String, Value>, lists: &AlgorithmLists) {
    fn names<E: WireEnum>(v: &[E]) -> Value {
        Value::from(v.iter().map(|a| a.as_str()).collect::<Vec<_>>())
    }
    if !lists.encryption.is_empty() {
        map.insert("EncryptionAlgorithms".into(), names(lists.encryption));
    }
    if !lists.signing.is_empty() {
        map.insert("SigningAlgorithms".into(), names(lists.signing));
    }
    if !lists.mac.is_empty() {
        map.insert("MacAlgorithms".into(), names(lists.mac));
    }
    if !lists.key_agreement.is_empty() {
        map.insert("KeyAgreementAlgorithms".into(), names(lists.key_agreement));
    }
    if !lists.encapsulation.is_empty() {
        map.insert("EncapsulationAlgorithms".into(), names(lists.encapsulation));
    }
}

async fn get_public_key(
    kms: &Kms,
    caller: &Caller,
    r: Result<KeyIdRequest, ApiError>,
) -> ApiResult {
    let r = r?;
    let out = kms
        .get_public_key(
            caller,
            r.key_id.as_deref(),
            &r.grant_tokens.unwrap_or_default(),
        )
        .await?;
    let record = &out.record;
    let mut map = serde_json::Map::new();
    map.insert("KeyId".into(), record.arn().into());
    map.insert("PublicKey".into(), b64(&out.public_key).into());
    map.insert(
        "CustomerMasterKeySpec".into(),
        record.key_spec.as_str().into(),
    );
    map.insert("KeySpec".into(), record.key_spec.as_str().into());
    map.insert("KeyUsage".into(), record.key_usage.as_str().into());
    insert_algorithm_lists(
        &mut map,
        &AlgorithmLists::for_key(record.key_spec, record.key_usage),
    );
    to_json(&Value::Object(map))
}

async fn generate_data_key_pair(
    kms: &Kms,
    caller: &Caller,
    r: Result<DataKeyPairRequest, ApiError>,
    with_plaintext: bool,
) -> ApiResult {
    let r = r?;
    let out = kms
        .generate_data_key_pair(
            caller,
            GenerateDataKeyPairInput {
                key_id: r.key_id,
                key_pair_spec: r.key_pair_spec,
                encryption_context: r.encryption_context.unwrap_or_default(),
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                // Only GenerateDataKeyPair has the member.
                recipient: r.recipient.filter(|_| with_plaintext).map(Into::into),
                dry_run: r.dry_run.unwrap_or(false),
            },
            with_plaintext,
        )
        .await?;
    to_json(&DataKeyPairResponse {
        private_key_ciphertext_blob: b64(&out.private_key_ciphertext_blob),
        private_key_plaintext: out.private_key_plaintext.map(|p| Zeroizing::new(b64(&p))),
        public_key: b64(&out.public_key),
        ciphertext_for_recipient: out.ciphertext_for_recipient.as_deref().map(b64),
        key_id: &out.key_arn,
        key_pair_spec: out.key_pair_spec.as_str(),
        key_material_id: out.key_material_id.to_hex(),
    })
}

/// Secrets go into the body through zeroizing strings (see docs/decisions.md, Response buffers).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyPairResponse<'a> {
    private_key_ciphertext_blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_plaintext: Option<Zeroizing<String>>,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext_for_recipient: Option<String>,
    key_id: &'a str,
    key_pair_spec: &'static str,
    key_material_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SharedSecretResponse<'a> {
    key_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_secret: Option<Zeroizing<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ciphertext_for_recipient: Option<String>,
    key_agreement_algorithm: &'static str,
    key_origin: &'static str,
}

async fn mac(
    kms: &Kms,
    caller: &Caller,
    r: Result<MacRequest, ApiError>,
    verify: bool,
) -> ApiResult {
    let r = r?;
    let out = kms
        .mac(
            caller,
            MacInput {
                key_id: r.key_id,
                message: r.message.map(Zeroizing::new),
                mac_algorithm: r.mac_algorithm,
                mac: r.mac,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                dry_run: r.dry_run.unwrap_or(false),
            },
            verify,
        )
        .await?;
    if verify {
        to_json(&json!({
            "KeyId": out.key_arn,
            "MacValid": true,
            "MacAlgorithm": out.mac_algorithm.as_str(),
        }))
    } else {
        to_json(&MacResponse {
            key_id: &out.key_arn,
            mac: Blob(&out.mac),
            mac_algorithm: out.mac_algorithm.as_str(),
        })
    }
}

async fn derive_shared_secret(
    kms: &Kms,
    caller: &Caller,
    r: Result<DeriveSharedSecretRequest, ApiError>,
) -> ApiResult {
    let r = r?;
    let out = kms
        .derive_shared_secret(
            caller,
            DeriveSharedSecretInput {
                key_id: r.key_id,
                key_agreement_algorithm: r.key_agreement_algorithm,
                public_key: r.public_key,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                recipient: r.recipient.map(Into::into),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&SharedSecretResponse {
        key_id: &out.key_arn,
        shared_secret: out
            .ciphertext_for_recipient
            .is_none()
            .then(|| Zeroizing::new(b64(&out.shared_secret))),
        ciphertext_for_recipient: out.ciphertext_for_recipient.as_deref().map(b64),
        key_agreement_algorithm: out.key_agreement_algorithm.as_str(),
        key_origin: out.key_origin.as_str(),
    })
}

/// Secrets go into the body through zeroizing strings (see docs/decisions.md, Response buffers).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EncapsulateResponse<'a> {
    key_id: &'a str,
    shared_secret: Zeroizing<String>,
    shared_secret_ciphertext_blob: String,
    encapsulation_algorithm: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DecapsulateResponse<'a> {
    key_id: &'a str,
    shared_secret: Zeroizing<String>,
    encapsulation_algorithm: &'static str,
}

async fn encapsulate(
    kms: &Kms,
    caller: &Caller,
    r: Result<EncapsulationRequest, ApiError>,
) -> ApiResult {
    let r = r?;
    let out = kms
        .encapsulate(
            caller,
            EncapsulateInput {
                key_id: r.key_id,
                encapsulation_algorithm: r.encapsulation_algorithm,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&EncapsulateResponse {
        key_id: &out.key_arn,
        shared_secret: Zeroizing::new(b64(&out.shared_secret)),
        shared_secret_ciphertext_blob: b64(&out.shared_secret_ciphertext_blob),
        encapsulation_algorithm: out.encapsulation_algorithm.as_str(),
    })
}

async fn decapsulate(
    kms: &Kms,
    caller: &Caller,
    r: Result<EncapsulationRequest, ApiError>,
) -> ApiResult {
    let r = r?;
    let out = kms
        .decapsulate(
            caller,
            DecapsulateInput {
                key_id: r.key_id,
                shared_secret_ciphertext_blob: r.shared_secret_ciphertext_blob,
                encapsulation_algorithm: r.encapsulation_algorithm,
                grant_tokens: r.grant_tokens.unwrap_or_default(),
                dry_run: r.dry_run.unwrap_or(false),
            },
        )
        .await?;
    to_json(&DecapsulateResponse {
        key_id: &out.key_arn,
        shared_secret: Zeroizing::new(b64(&out.shared_secret)),
        encapsulation_algorithm: out.encapsulation_algorithm.as_str(),
    })
}
