//! The JSON bodies of the XKS proxy API v1.0.3, shared by the client and the proxy.
//!
//! Binary fields are standard Base64 (RFC 4648 §4) strings on the wire; these types keep
//! them as strings and the two sides decode them where their rules differ (the proxy answers
//! a bad value with `ValidationException`, the client calls it an invalid response).
//! Unknown fields are ignored everywhere, as the spec requires (AWS may add metadata).

use serde::{Deserialize, Serialize};

/// `requestMetadata`: who asked KMS for what. Every field is optional here; which ones an
/// operation requires is checked by the proxy ([`RequestMetadata::missing_for`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_source_vpc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_source_vpce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_via_service: Option<String>,
}

/// The four proxy operations, named as in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetHealthStatus,
    GetKeyMetadata,
    Encrypt,
    Decrypt,
}

impl RequestMetadata {
    /// The first field `op` requires that is absent or empty (the spec's table; the reference
    /// proxy also accepts GetKeyMetadata without `kmsKeyArn`, which 1.0.3 no longer lists).
    pub fn missing_for(&self, op: Operation) -> Option<&'static str> {
        let empty = |f: &Option<String>| f.as_deref().is_none_or(str::is_empty);
        let mut required: Vec<(&'static str, &Option<String>)> = vec![
            ("kmsRequestId", &self.kms_request_id),
            ("kmsOperation", &self.kms_operation),
        ];
        if op != Operation::GetHealthStatus {
            required.push(("awsPrincipalArn", &self.aws_principal_arn));
        }
        if matches!(op, Operation::Encrypt | Operation::Decrypt) {
            required.push(("kmsKeyArn", &self.kms_key_arn));
        }
        required
            .into_iter()
            .find(|(_, f)| empty(f))
            .map(|(name, _)| name)
    }
}

/// A body that carries only `requestMetadata` (GetHealthStatus, GetKeyMetadata).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOnlyRequest {
    pub request_metadata: RequestMetadata,
}

/// GetHealthStatus's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    pub xks_proxy_fleet_size: u32,
    pub xks_proxy_vendor: String,
    pub xks_proxy_model: String,
    pub ekm_vendor: String,
    pub ekm_fleet_details: Vec<EkmInstance>,
}

/// One external key manager instance in [`HealthStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmInstance {
    pub id: String,
    pub model: String,
    /// `ACTIVE`, `DEGRADED` or `UNAVAILABLE`.
    pub health_status: String,
}

/// GetKeyMetadata's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadata {
    /// `AES_256` for the keys KMS can use.
    pub key_spec: String,
    /// e.g. `["ENCRYPT", "DECRYPT"]`.
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// Encrypt's request body. Its `Debug` leaves the plaintext out.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    pub request_metadata: RequestMetadata,
    pub plaintext: String,
    pub encryption_algorithm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
}

/// Encrypt's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptResponse {
    pub ciphertext: String,
    pub initialization_vector: String,
    pub authentication_tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<String>,
}

/// Decrypt's request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    pub request_metadata: RequestMetadata,
    pub ciphertext: String,
    pub encryption_algorithm: String,
    pub initialization_vector: String,
    pub authentication_tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
}

/// Decrypt's answer. Its `Debug` leaves the plaintext out.
#[derive(Clone, Serialize, Deserialize)]
pub struct DecryptResponse {
    pub plaintext: String,
}

impl std::fmt::Debug for EncryptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("request_metadata", &self.request_metadata)
            .field("encryption_algorithm", &self.encryption_algorithm)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DecryptResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptResponse").finish_non_exhaustive()
    }
}

/// A proxy error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The only encryption algorithm of spec v1.
pub const AES_GCM: &str = "AES_GCM";
/// The only ciphertext data integrity value algorithm of spec v1.
pub const SHA_256: &str = "SHA_256";

/// The spec's ciphertext data integrity value: SHA-256 over
/// `AAD ‖ ciphertextMetadata ‖ IV ‖ ciphertext ‖ tag` (absent fields omitted, no lengths).
pub fn integrity_value(
    aad: Option<&[u8]>,
    metadata: Option<&[u8]>,
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [
        aad.unwrap_or_default(),
        metadata.unwrap_or_default(),
        iv,
        ciphertext,
        tag,
    ] {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[test]
    fn integrity_value_matches_the_spec_example() {
        let dec = |s: &str| STANDARD.decode(s).unwrap();
        let cdiv = integrity_value(
            Some(b"project=nile,department=marketing"),
            Some(&dec("a2V5X3ZlcnNpb249MQ==")),
            &dec("HMrlRw85cAJUd5Ax"),
            &dec("ghxkK1txeDNn3q8Y"),
            &dec("vBxN2ncH1oEkR8WVXpmyYQ=="),
        );
        assert_eq!(
            STANDARD.encode(cdiv),
            "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc="
        );
    }

    #[test]
    fn required_metadata_per_operation() {
        let mut m = RequestMetadata {
            kms_request_id: Some("r".into()),
            kms_operation: Some("KmsHealthCheck".into()),
            ..Default::default()
        };
        assert_eq!(m.missing_for(Operation::GetHealthStatus), None);
        assert_eq!(
            m.missing_for(Operation::GetKeyMetadata),
            Some("awsPrincipalArn")
        );
        m.aws_principal_arn = Some("arn:aws:iam::111122223333:root".into());
        assert_eq!(m.missing_for(Operation::GetKeyMetadata), None);
        assert_eq!(m.missing_for(Operation::Encrypt), Some("kmsKeyArn"));
        m.kms_request_id = Some(String::new());
        assert_eq!(
            m.missing_for(Operation::GetHealthStatus),
            Some("kmsRequestId")
        );
    }
}
