//! The JSON shapes of KMS requests and responses (member names exactly as in the AWS model).
//!
//! Blobs travel as base64 strings and timestamps as epoch seconds (fractional), per awsJson1.1.
//! Unknown members are ignored, as AWS does.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use trent_core::model::Tag;

/// Blobs (`Option<Vec<u8>>`) as optional base64 strings.
pub mod b64 {
    use super::*;

    pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            STANDARD
                .decode(s.as_bytes())
                .map_err(|_| serde::de::Error::custom("Invalid base64 blob"))
        })
        .transpose()
    }
}

/// Milliseconds since the epoch as awsJson's fractional seconds.
pub fn epoch_seconds(ms: i64) -> f64 {
    // i64 milliseconds of any real date are exactly representable in f64.
    #[expect(
        clippy::cast_precision_loss,
        reason = "millisecond timestamps fit in f64's 53-bit mantissa"
    )]
    let secs = ms as f64 / 1000.0;
    secs
}

#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct TagShape {
    pub tag_key: String,
    pub tag_value: String,
}

impl From<TagShape> for Tag {
    fn from(t: TagShape) -> Self {
        Tag {
            key: t.tag_key,
            value: t.tag_value,
        }
    }
}

impl From<&Tag> for TagShape {
    fn from(t: &Tag) -> Self {
        TagShape {
            tag_key: t.key.clone(),
            tag_value: t.value.clone(),
        }
    }
}

pub type Context = Option<BTreeMap<String, String>>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateKeyRequest {
    pub policy: Option<String>,
    pub description: Option<String>,
    pub key_usage: Option<String>,
    pub customer_master_key_spec: Option<String>,
    pub key_spec: Option<String>,
    pub origin: Option<String>,
    pub custom_key_store_id: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub tags: Option<Vec<TagShape>>,
    pub multi_region: Option<bool>,
    pub xks_key_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyIdRequest {
    pub key_id: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRequest {
    pub key_id: Option<String>,
    pub limit: Option<i64>,
    pub marker: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncryptRequest {
    pub key_id: Option<String>,
    #[serde(deserialize_with = "b64::deserialize_opt")]
    pub plaintext: Option<Vec<u8>>,
    pub encryption_context: Context,
    pub grant_tokens: Option<Vec<String>>,
    pub encryption_algorithm: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct DecryptRequest {
    #[serde(deserialize_with = "b64::deserialize_opt")]
    pub ciphertext_blob: Option<Vec<u8>>,
    pub encryption_context: Context,
    pub grant_tokens: Option<Vec<String>>,
    pub key_id: Option<String>,
    pub encryption_algorithm: Option<String>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReEncryptRequest {
    #[serde(deserialize_with = "b64::deserialize_opt")]
    pub ciphertext_blob: Option<Vec<u8>>,
    pub source_encryption_context: Context,
    pub source_key_id: Option<String>,
    pub destination_key_id: Option<String>,
    pub destination_encryption_context: Context,
    pub source_encryption_algorithm: Option<String>,
    pub destination_encryption_algorithm: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateDataKeyRequest {
    pub key_id: Option<String>,
    pub encryption_context: Context,
    pub number_of_bytes: Option<i64>,
    pub key_spec: Option<String>,
    pub grant_tokens: Option<Vec<String>>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateRandomRequest {
    pub number_of_bytes: Option<i64>,
    pub custom_key_store_id: Option<String>,
    pub recipient: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateKeyDescriptionRequest {
    pub key_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct AliasRequest {
    pub alias_name: Option<String>,
    pub target_key_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagResourceRequest {
    pub key_id: Option<String>,
    pub tags: Option<Vec<TagShape>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UntagResourceRequest {
    pub key_id: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyPolicyRequest {
    pub key_id: Option<String>,
    pub policy_name: Option<String>,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
}
