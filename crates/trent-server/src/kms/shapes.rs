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

    /// A base64 blob, decoded straight from the request text (no intermediate `String`, so
    /// no undecoded copy of a plaintext is left behind either).
    pub fn deserialize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        d.deserialize_option(OptionalBlob)
    }

    struct OptionalBlob;

    impl<'de> serde::de::Visitor<'de> for OptionalBlob {
        type Value = Option<Vec<u8>>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a base64 string")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(BlobText).map(Some)
        }
    }

    struct BlobText;

    impl serde::de::Visitor<'_> for BlobText {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a base64 string")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            STANDARD
                .decode(s.as_bytes())
                .map_err(|_| E::custom("Invalid base64 blob"))
        }
    }
}

/// Bytes serialized as a base64 string, written straight into the response (no intermediate
/// `String`: for plaintexts and data keys, no extra copy of the secret).
pub struct Blob<'a>(pub &'a [u8]);

impl Serialize for Blob<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&base64::display::Base64Display::new(self.0, &STANDARD))
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

/// `RecipientInfo` (Nitro Enclaves): the algorithm and the attestation document.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct RecipientShape {
    pub key_encryption_algorithm: Option<String>,
    #[serde(deserialize_with = "b64::deserialize_opt")]
    pub attestation_document: Option<Vec<u8>>,
}

impl From<RecipientShape> for trent_core::crypto::RecipientInput {
    fn from(r: RecipientShape) -> Self {
        Self {
            key_encryption_algorithm: r.key_encryption_algorithm,
            attestation_document: r.attestation_document,
        }
    }
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
    pub recipient: Option<RecipientShape>,
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
    pub recipient: Option<RecipientShape>,
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateRandomRequest {
    pub number_of_bytes: Option<i64>,
    pub custom_key_store_id: Option<String>,
    pub recipient: Option<RecipientShape>,
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
