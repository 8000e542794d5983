//! The custodian of EXTERNAL_KEY_STORE-type key stores: an XKS proxy, reached through
//! [`XksProvider`] / [`XksProxy`] (implemented by `trent-custody-xks`, the only crate that
//! speaks the XKS proxy API), and the outer layer of such a key's ciphertext blob.
//!
//! The traits are the domain's whole view of a proxy. Their methods do network I/O, so they
//! return boxed futures (std only: this crate has no async runtime). A failure carries the
//! KMS error for each calling context, as the XKS spec's mapping table gives them, because
//! only the custodian knows which proxy outcome it was.
//!
//! # The outer blob (double encryption)
//!
//! The inner layer is Trent's ordinary version-1 blob, sealed with the KMS key's own
//! material and bound to the encryption context. The proxy encrypts that whole blob under the
//! external key; the outer blob carries its answer behind a header naming the KMS key, so
//! Decrypt needs no `KeyId` (integers big-endian):
//!
//! ```text
//! offset  size  field
//! 0       1     format version = 0x03 (external key store outer layer; key id a UUID)
//! 1       1     algorithm      = 0x01 (AES-256-GCM)
//! 2       16    key id (the UUID of the KMS key)
//! 18      1     m = length of ciphertextMetadata (0–20)
//! 19      m     ciphertextMetadata
//! 19+m    1     v = length of the initialization vector (12 or 16)
//! 20+m    v     initialization vector
//! 20+m+v  16    authentication tag
//! 36+m+v  n     the proxy's ciphertext (n = length of the inner blob, ≥ 1)
//! ```
//!
//! The AAD sent to the proxy is the 18-byte header then the SHA-256 of the canonical
//! encryption context ([`proxy_aad`]): the outer layer binds key identity and context too, at
//! a fixed 50 bytes whatever the context's size.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A proxy call in flight.
pub type XksFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, XksFailure>> + Send + 'a>>;

/// Where a key store's proxy is and the credential Trent signs with
/// (`XksProxyAuthenticationCredential`). Not `Debug`: it holds the secret.
#[derive(Clone)]
pub struct XksProxyLocation {
    /// `XksProxyUriEndpoint`: `https://` and a host name.
    pub uri_endpoint: String,
    /// `XksProxyUriPath`: `[/<prefix>]/kms/xks/v1`.
    pub uri_path: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    /// The KMS Region of the key store, signed into the credential scope.
    pub region: String,
}

/// The spec's `requestMetadata`: who asked KMS for what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XksRequestContext {
    pub kms_request_id: String,
    /// The KMS operation that caused the call (`KmsHealthCheck`, `CreateKey`, `Encrypt`, …).
    pub kms_operation: String,
    /// The caller's ARN (not sent with GetHealthStatus).
    pub aws_principal_arn: Option<String>,
    /// The KMS key's ARN (Encrypt and Decrypt).
    pub kms_key_arn: Option<String>,
}

/// A KMS error: AWS's `__type` and a fixed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmsErrorText {
    pub code: &'static str,
    pub message: &'static str,
}

/// Why a proxy call failed, as each calling context reports it (the XKS spec's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksFailure {
    /// For CreateCustomKeyStore / UpdateCustomKeyStore.
    pub store_management: KmsErrorText,
    /// For CreateKey.
    pub create_key: KmsErrorText,
    /// For Encrypt, Decrypt, GenerateDataKey*, ReEncrypt (always `KMSInvalidStateException`).
    pub crypto: KmsErrorText,
    /// The `ConnectionErrorCode` a failed ConnectCustomKeyStore leaves.
    pub connection_error_code: &'static str,
    /// What happened, for the operator's log (the proxy's own message; never a secret).
    pub detail: String,
}

/// GetKeyMetadata's answer about an external key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksKeyInfo {
    pub key_spec: String,
    pub key_usage: Vec<String>,
    pub key_status: String,
}

impl XksKeyInfo {
    /// Whether KMS can use the key: `AES_256`, usable for `ENCRYPT` and `DECRYPT`, `ENABLED`.
    pub fn usable_by_kms(&self) -> bool {
        self.key_spec == "AES_256"
            && self.key_usage.iter().any(|u| u == "ENCRYPT")
            && self.key_usage.iter().any(|u| u == "DECRYPT")
            && self.key_status == "ENABLED"
    }
}

/// Makes proxy clients.
pub trait XksProvider: Send + Sync {
    /// A client for the proxy at `location` (no network yet; a malformed location fails
    /// with the configuration error, boxed: it is rare and large).
    fn proxy(&self, location: XksProxyLocation) -> Result<Arc<dyn XksProxy>, Box<XksFailure>>;
}

/// One key store's proxy.
pub trait XksProxy: Send + Sync {
    /// GetHealthStatus; every EKM instance unavailable is a failure (unreachable).
    fn health<'a>(&'a self, ctx: &'a XksRequestContext) -> XksFuture<'a, ()>;
    /// GetKeyMetadata of `xks_key_id`.
    fn key_metadata<'a>(
        &'a self,
        xks_key_id: &'a str,
        ctx: &'a XksRequestContext,
    ) -> XksFuture<'a, XksKeyInfo>;
    /// The outer blob: `inner` encrypted by the proxy under `xks_key_id` with
    /// [`proxy_aad`]`(key_id, canonical_context)`.
    fn seal<'a>(
        &'a self,
        xks_key_id: &'a str,
        ctx: &'a XksRequestContext,
        key_id: [u8; 16],
        canonical_context: &'a [u8],
        inner: &'a [u8],
    ) -> XksFuture<'a, Vec<u8>>;
    /// The inner blob back out of `outer` (which [`external_blob_key_id`] accepted).
    fn open<'a>(
        &'a self,
        xks_key_id: &'a str,
        ctx: &'a XksRequestContext,
        canonical_context: &'a [u8],
        outer: &'a [u8],
    ) -> XksFuture<'a, Zeroizing<Vec<u8>>>;
}

/// The format version byte of an outer blob.
pub const FORMAT_V3_EXTERNAL: u8 = 3;
const ALG_AES_256_GCM: u8 = 1;
/// Version, algorithm, key id.
pub const HEADER_LEN: usize = 18;

/// The proxy's answer to one Encrypt, as the outer blob carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksSealed {
    pub ciphertext: Vec<u8>,
    pub initialization_vector: Vec<u8>,
    pub authentication_tag: Vec<u8>,
    pub ciphertext_metadata: Option<Vec<u8>>,
}

/// The KMS key an outer blob names, if `bytes` starts like one.
pub fn external_blob_key_id(bytes: &[u8]) -> Option<[u8; 16]> {
    match bytes {
        [FORMAT_V3_EXTERNAL, ALG_AES_256_GCM, rest @ ..] => rest.get(..16)?.try_into().ok(),
        _ => None,
    }
}

fn header(key_id: [u8; 16]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = FORMAT_V3_EXTERNAL;
    h[1] = ALG_AES_256_GCM;
    h[2..].copy_from_slice(&key_id);
    h
}

/// What the proxy's AES-GCM authenticates: the header and the SHA-256 of the canonical
/// encryption context (`EncryptionContext::canonical_bytes`).
pub fn proxy_aad(key_id: [u8; 16], canonical_context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 32);
    aad.extend_from_slice(&header(key_id));
    aad.extend_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical_context).as_ref(),
    );
    aad
}

/// The outer blob for `key_id` around the proxy's answer; `None` if its sizes are outside the
/// spec's (metadata ≤ 20, IV 12 or 16, tag 16, ciphertext not empty).
pub fn encode_external_blob(key_id: [u8; 16], sealed: &XksSealed) -> Option<Vec<u8>> {
    let meta = sealed.ciphertext_metadata.as_deref().unwrap_or_default();
    let iv = &sealed.initialization_vector;
    if meta.len() > 20
        || !(iv.len() == 12 || iv.len() == 16)
        || sealed.authentication_tag.len() != 16
        || sealed.ciphertext.is_empty()
    {
        return None;
    }
    let mut out =
        Vec::with_capacity(HEADER_LEN + 2 + meta.len() + iv.len() + 16 + sealed.ciphertext.len());
    out.extend_from_slice(&header(key_id));
    out.push(u8::try_from(meta.len()).ok()?);
    out.extend_from_slice(meta);
    out.push(u8::try_from(iv.len()).ok()?);
    out.extend_from_slice(iv);
    out.extend_from_slice(&sealed.authentication_tag);
    out.extend_from_slice(&sealed.ciphertext);
    Some(out)
}

/// Parses an outer blob into its key id and the proxy's fields; `None` if malformed.
pub fn decode_external_blob(bytes: &[u8]) -> Option<([u8; 16], XksSealed)> {
    let mut r = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = r.split_at_checked(n)?;
        r = rest;
        Some(head)
    };
    if take(2)? != [FORMAT_V3_EXTERNAL, ALG_AES_256_GCM] {
        return None;
    }
    let key_id: [u8; 16] = take(16)?.try_into().ok()?;
    let m = usize::from(*take(1)?.first()?);
    if m > 20 {
        return None;
    }
    let meta = take(m)?.to_vec();
    let v = usize::from(*take(1)?.first()?);
    if v != 12 && v != 16 {
        return None;
    }
    let iv = take(v)?.to_vec();
    let tag = take(16)?.to_vec();
    let ciphertext = r.to_vec();
    if ciphertext.is_empty() {
        return None;
    }
    Some((
        key_id,
        XksSealed {
            ciphertext,
            initialization_vector: iv,
            authentication_tag: tag,
            ciphertext_metadata: (m > 0).then_some(meta),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> XksSealed {
        XksSealed {
            ciphertext: vec![7; 90],
            initialization_vector: vec![1; 12],
            authentication_tag: vec![2; 16],
            ciphertext_metadata: Some(b"trent-xks/1".to_vec()),
        }
    }

    #[test]
    fn outer_blob_round_trips_and_rejects_malformed() {
        let id = [9u8; 16];
        let blob = encode_external_blob(id, &sample()).unwrap();
        assert_eq!(external_blob_key_id(&blob), Some(id));
        assert_eq!(blob.len(), HEADER_LEN + 1 + 11 + 1 + 12 + 16 + 90);
        assert_eq!(decode_external_blob(&blob), Some((id, sample())));
        for cut in 0..blob.len() - 90 {
            assert_eq!(decode_external_blob(&blob[..cut]), None, "cut at {cut}");
        }
        let mut bad = blob.clone();
        bad[0] = 1;
        assert_eq!(decode_external_blob(&bad), None);
        assert_eq!(external_blob_key_id(&bad), None);
        let mut bad = blob.clone();
        bad[18] = 21;
        assert_eq!(decode_external_blob(&bad), None);

        let mut no_meta = sample();
        no_meta.ciphertext_metadata = None;
        let blob = encode_external_blob(id, &no_meta).unwrap();
        assert_eq!(decode_external_blob(&blob), Some((id, no_meta)));

        let mut long_meta = sample();
        long_meta.ciphertext_metadata = Some(vec![0; 21]);
        assert_eq!(encode_external_blob(id, &long_meta), None);
    }

    #[test]
    fn proxy_aad_binds_key_and_context() {
        let a = proxy_aad([1; 16], b"ctx");
        assert_eq!(a.len(), 50);
        assert_ne!(a, proxy_aad([2; 16], b"ctx"));
        assert_ne!(a, proxy_aad([1; 16], b"ctx2"));
    }

    #[test]
    fn usable_keys() {
        let mut k = XksKeyInfo {
            key_spec: "AES_256".into(),
            key_usage: vec!["ENCRYPT".into(), "DECRYPT".into()],
            key_status: "ENABLED".into(),
        };
        assert!(k.usable_by_kms());
        k.key_usage.pop();
        assert!(!k.usable_by_kms());
    }
}
