//! Trent as an XKS client: the four proxy operations over HTTPS, SigV4-signed with the key
//! store's `XksProxyAuthenticationCredential` (service `kms-xks-proxy`), each bounded by a
//! timeout, every answer checked against the spec before it is believed.
//!
//! Connections are HTTP/1.1 over rustls, kept in a small per-proxy pool so a busy key does
//! not pay a TLS handshake per call. The signature covers `host` and `x-amz-date` only, as
//! KMS's does (spec §Authentication), so any spec-following proxy can verify it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::{ProxyErrorName, XksError};
use crate::wire::{
    self, AES_GCM, DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, ErrorBody,
    HealthStatus, KeyMetadata, MetadataOnlyRequest, RequestMetadata, SHA_256,
};

/// The SigV4 service name of the XKS proxy API.
pub const SIGNING_SERVICE: &str = "kms-xks-proxy";
/// KMS's own per-call timeout; Trent's default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The largest proxy answer read; the biggest legitimate one (Encrypt of 4300+ bytes) is
/// far smaller.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Idle connections kept per proxy.
const POOL_SIZE: usize = 8;

/// What every XKS client of one Trent node shares: trusted CAs, timeout, and the port
/// override (`XksProxyUriEndpoint` has no port; AWS always uses 443).
#[derive(Clone)]
pub struct ClientSettings {
    tls: Arc<rustls::ClientConfig>,
    /// Each proxy call's deadline, connection set-up included.
    pub timeout: Duration,
    /// The TCP port used instead of 443 (tests, proxies behind non-standard ports).
    pub port: Option<u16>,
    /// Which endpoints may be called (`allowed_proxy_hosts`; default: public ones only).
    pub endpoints: crate::endpoint::EndpointPolicy,
    /// How often `trent serve` checks every connected store's proxy (KMS: "every few
    /// minutes"; Trent's default [`DEFAULT_HEALTH_CHECK_INTERVAL`]).
    pub health_check_interval: Duration,
}

/// The periodic health check's default interval.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("timeout", &self.timeout)
            .field("port", &self.port)
            .field("endpoints", &self.endpoints)
            .field("health_check_interval", &self.health_check_interval)
            .finish_non_exhaustive()
    }
}

impl ClientSettings {
    /// Settings trusting the CA certificates in the PEM file `ca_bundle`, or the system's
    /// trust store when `None`.
    pub fn new(
        ca_bundle: Option<&Path>,
        timeout: Duration,
        port: Option<u16>,
    ) -> Result<Self, XksError> {
        Ok(Self {
            tls: tls_config(ca_bundle)?,
            timeout,
            port,
            endpoints: crate::endpoint::EndpointPolicy::default(),
            health_check_interval: DEFAULT_HEALTH_CHECK_INTERVAL,
        })
    }

    /// The same settings, also allowing these hosts (names or IP literals as written in
    /// `XksProxyUriEndpoint`) even when they are, or resolve to, internal addresses.
    pub fn allow_hosts(mut self, hosts: impl IntoIterator<Item = String>) -> Self {
        self.endpoints = crate::endpoint::EndpointPolicy::new(hosts);
        self
    }
}

fn tls_config(ca_bundle: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, XksError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| XksError::Config(format!("{}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(XksError::Config(format!(
                    "{}: no CA certificate",
                    path.display()
                )));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| XksError::Config(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One key store's proxy: where it is and the credential to sign with. Not `Debug`: it holds
/// the secret.
pub struct ProxyTarget {
    /// `XksProxyUriEndpoint`: `https://` and a host name, no port, no path.
    pub uri_endpoint: String,
    /// `XksProxyUriPath`: `[/<prefix>]/kms/xks/v1`.
    pub uri_path: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    /// The Region signed into the credential scope: the KMS Region of the key store.
    pub region: String,
}

/// The result of a proxy Encrypt: what KMS keeps in its ciphertext blob.
pub use trent_crypto::custody::xks::XksSealed as XksCiphertext;

/// A client of one proxy.
pub struct XksClient {
    settings: ClientSettings,
    host: String,
    /// `host[:port]` as signed and sent.
    authority: String,
    port: u16,
    uri_path: String,
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    region: String,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl XksClient {
    /// A client for `target`; checks only the shape of the endpoint (no network).
    pub fn new(settings: &ClientSettings, target: ProxyTarget) -> Result<Self, XksError> {
        let host = target
            .uri_endpoint
            .strip_prefix("https://")
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            })
            .ok_or_else(|| XksError::Config("the endpoint must be https://<host>".into()))?
            .to_owned();
        settings
            .endpoints
            .check_host(&host)
            .map_err(XksError::Refused)?;
        let port = settings.port.unwrap_or(443);
        let authority = if port == 443 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            settings: settings.clone(),
            host,
            authority,
            port,
            uri_path: target.uri_path.trim_end_matches('/').to_owned(),
            access_key_id: target.access_key_id,
            secret_access_key: target.secret_access_key,
            region: target.region,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// GetHealthStatus. An answer whose every EKM instance is `UNAVAILABLE` is
    /// [`XksError::AllEkmUnavailable`], which KMS treats as unreachable.
    pub async fn get_health_status(
        &self,
        metadata: RequestMetadata,
    ) -> Result<HealthStatus, XksError> {
        let body = MetadataOnlyRequest {
            request_metadata: metadata,
        };
        let health: HealthStatus = self.call("/health", &body).await?;
        if health.xks_proxy_fleet_size == 0
            || health.ekm_fleet_details.is_empty()
            || health.ekm_fleet_details.len() > 10
        {
            return Err(XksError::InvalidResponse(
                "the health status must list 1 to 10 EKM instances and a fleet size above 0".into(),
            ));
        }
        if health
            .ekm_fleet_details
            .iter()
            .all(|e| e.health_status == "UNAVAILABLE")
        {
            return Err(XksError::AllEkmUnavailable);
        }
        Ok(health)
    }

    /// GetKeyMetadata of `key_id`.
    pub async fn get_key_metadata(
        &self,
        key_id: &str,
        metadata: RequestMetadata,
    ) -> Result<KeyMetadata, XksError> {
        let path = key_path(key_id, "metadata")?;
        let body = MetadataOnlyRequest {
            request_metadata: metadata,
        };
        self.call(&path, &body).await
    }

    /// Encrypt `plaintext` under `key_id`, binding `aad`. Always asks for the SHA-256
    /// integrity value and checks it, and checks every size rule of the spec.
    pub async fn encrypt(
        &self,
        key_id: &str,
        metadata: RequestMetadata,
        plaintext: &[u8],
        aad: Option<&[u8]>,
    ) -> Result<XksCiphertext, XksError> {
        let path = key_path(key_id, "encrypt")?;
        let body = EncryptRequest {
            request_metadata: metadata,
            plaintext: STANDARD.encode(plaintext),
            encryption_algorithm: AES_GCM.into(),
            additional_authenticated_data: aad.map(|a| STANDARD.encode(a)),
            ciphertext_data_integrity_value_algorithm: Some(SHA_256.into()),
        };
        let answer: EncryptResponse = self.call(&path, &body).await?;
        let ciphertext = decode_field("ciphertext", &answer.ciphertext)?;
        let iv = decode_field("initializationVector", &answer.initialization_vector)?;
        let tag = decode_field("authenticationTag", &answer.authentication_tag)?;
        let meta = answer
            .ciphertext_metadata
            .as_deref()
            .map(|m| decode_field("ciphertextMetadata", m))
            .transpose()?;
        if ciphertext.len() != plaintext.len() {
            return Err(invalid("the ciphertext is not as long as the plaintext"));
        }
        if iv.len() != 12 && iv.len() != 16 {
            return Err(invalid("the initialization vector is not 12 or 16 bytes"));
        }
        if tag.len() != 16 {
            return Err(invalid("the authentication tag is not 16 bytes"));
        }
        if meta.as_ref().is_some_and(|m| m.len() > 20) {
            return Err(invalid("the ciphertext metadata is longer than 20 bytes"));
        }
        let cdiv = answer
            .ciphertext_data_integrity_value
            .as_deref()
            .ok_or_else(|| invalid("the ciphertext data integrity value is missing"))
            .and_then(|v| decode_field("ciphertextDataIntegrityValue", v))?;
        let expected = wire::integrity_value(aad, meta.as_deref(), &iv, &ciphertext, &tag);
        if cdiv != expected {
            return Err(invalid(
                "the ciphertext data integrity value does not match",
            ));
        }
        Ok(XksCiphertext {
            ciphertext,
            initialization_vector: iv,
            authentication_tag: tag,
            ciphertext_metadata: meta,
        })
    }

    /// Decrypt what [`XksClient::encrypt`] returned, with the same `aad`.
    pub async fn decrypt(
        &self,
        key_id: &str,
        metadata: RequestMetadata,
        sealed: &XksCiphertext,
        aad: Option<&[u8]>,
    ) -> Result<Zeroizing<Vec<u8>>, XksError> {
        let path = key_path(key_id, "decrypt")?;
        let body = DecryptRequest {
            request_metadata: metadata,
            ciphertext: STANDARD.encode(&sealed.ciphertext),
            encryption_algorithm: AES_GCM.into(),
            initialization_vector: STANDARD.encode(&sealed.initialization_vector),
            authentication_tag: STANDARD.encode(&sealed.authentication_tag),
            ciphertext_metadata: sealed
                .ciphertext_metadata
                .as_ref()
                .map(|m| STANDARD.encode(m)),
            additional_authenticated_data: aad.map(|a| STANDARD.encode(a)),
        };
        let answer: DecryptResponse = self.call(&path, &body).await?;
        let answer = Zeroizing::new(answer.plaintext);
        let plaintext = Zeroizing::new(
            STANDARD
                .decode(answer.as_bytes())
                .map_err(|_| invalid("plaintext is not Base64"))?,
        );
        if plaintext.len() != sealed.ciphertext.len() {
            return Err(invalid("the plaintext is not as long as the ciphertext"));
        }
        Ok(plaintext)
    }

    /// Double encryption's outer layer: the proxy encrypts `inner` (the KMS key's own blob)
    /// under `xks_key_id`, bound to the KMS key and the canonical encryption context; the
    /// result is the outer blob of `trent_crypto::custody::xks`.
    pub async fn seal_layer(
        &self,
        xks_key_id: &str,
        metadata: RequestMetadata,
        key_id: [u8; 16],
        canonical_context: &[u8],
        inner: &[u8],
    ) -> Result<Vec<u8>, XksError> {
        let aad = trent_crypto::custody::xks::proxy_aad(key_id, canonical_context);
        let sealed = self
            .encrypt(xks_key_id, metadata, inner, Some(&aad))
            .await?;
        trent_crypto::custody::xks::encode_external_blob(key_id, &sealed)
            .ok_or_else(|| invalid("the encrypt answer does not fit the ciphertext blob"))
    }

    /// Removes the outer layer of a blob `decode_external_blob` parsed (its `key_id` and
    /// fields), giving back the KMS key's own blob.
    pub async fn open_layer(
        &self,
        xks_key_id: &str,
        metadata: RequestMetadata,
        key_id: [u8; 16],
        canonical_context: &[u8],
        sealed: &XksCiphertext,
    ) -> Result<Zeroizing<Vec<u8>>, XksError> {
        let aad = trent_crypto::custody::xks::proxy_aad(key_id, canonical_context);
        self.decrypt(xks_key_id, metadata, sealed, Some(&aad)).await
    }

    /// POSTs `body` to `<uri_path><suffix>` and parses the answer, within the timeout.
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        suffix: &str,
        body: &B,
    ) -> Result<R, XksError> {
        let json =
            Zeroizing::new(serde_json::to_vec(body).map_err(|e| XksError::Config(e.to_string()))?);
        let path = format!("{}{suffix}", self.uri_path);
        let (status, bytes) =
            tokio::time::timeout(self.settings.timeout, self.round_trip(&path, &json))
                .await
                .map_err(|_| XksError::TimedOut)??;
        let bytes = Zeroizing::new(bytes);
        if status == 200 {
            return serde_json::from_slice(&bytes)
                .map_err(|e| invalid(&format!("unexpected answer ({e})")));
        }
        let error: ErrorBody = serde_json::from_slice(&bytes)
            .map_err(|_| invalid(&format!("HTTP {status} without an XKS error body")))?;
        match ProxyErrorName::parse(&error.error_name) {
            Some(name) => Err(XksError::Proxy {
                name,
                message: error.error_message.unwrap_or_default(),
            }),
            None => Err(invalid(&format!(
                "HTTP {status} with unknown error name {:?}",
                error.error_name
            ))),
        }
    }

    /// One signed request on a pooled or new connection. A pooled connection the proxy has
    /// closed meanwhile fails before an answer; the request is then sent once more on a
    /// fresh connection (all four operations are safe to repeat).
    async fn round_trip(&self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), XksError> {
        if let Some(sender) = self.pooled()
            && let Ok(answer) = self.send(sender, path, body).await
        {
            return Ok(answer);
        }
        let sender = self.connect().await?;
        self.send(sender, path, body).await
    }

    fn pooled(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// A TCP connection to the first permitted address the host resolves to. Every address
    /// is checked against the endpoint policy before it is used (DNS rebinding).
    async fn tcp(&self) -> Result<tokio::net::TcpStream, XksError> {
        let addresses = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| XksError::Unreachable(e.to_string()))?;
        let mut refused = None;
        let mut last = None;
        for address in addresses {
            if let Err(why) = self
                .settings
                .endpoints
                .check_address(&self.host, address.ip())
            {
                refused = Some(why);
                continue;
            }
            match tokio::net::TcpStream::connect(address).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(match (last, refused) {
            (Some(e), _) => XksError::Unreachable(e),
            (None, Some(why)) => XksError::Refused(why),
            (None, None) => XksError::Unreachable(format!("{} has no address", self.host)),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, XksError> {
        let tcp = self.tcp().await?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| XksError::Config(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(self.settings.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| XksError::Tls(e.to_string()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| XksError::Unreachable(e.to_string()))?;
        tokio::spawn(async move {
            // Ends when the proxy closes the connection or the sender is dropped.
            let _ = connection.await;
        });
        Ok(sender)
    }

    async fn send(
        &self,
        mut sender: SendRequest<Full<Bytes>>,
        path: &str,
        body: &[u8],
    ) -> Result<(u16, Vec<u8>), XksError> {
        sender
            .ready()
            .await
            .map_err(|e| XksError::Unreachable(e.to_string()))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let signed = trent_sigv4::sign(
            "POST",
            path,
            "",
            &self.authority,
            &[],
            body,
            &self.access_key_id,
            &self.secret_access_key,
            None,
            &self.region,
            SIGNING_SERVICE,
            now,
        );
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| XksError::Config(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| XksError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| XksError::InvalidResponse(format!("reading the answer: {e}")))?
            .to_bytes()
            .to_vec();
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POOL_SIZE
            && !sender.is_closed()
        {
            idle.push(sender);
        }
        Ok((status, bytes))
    }
}

/// `/keys/{id}/{operation}`, after checking the id is one the spec allows (so it needs no
/// escaping in the path).
fn key_path(key_id: &str, operation: &str) -> Result<String, XksError> {
    if !crate::keys::valid_key_id(key_id) {
        return Err(XksError::Config(
            "an external key id is 1 to 128 characters of A-Za-z0-9-_.".into(),
        ));
    }
    Ok(format!("/keys/{key_id}/{operation}"))
}

fn decode_field(name: &str, value: &str) -> Result<Vec<u8>, XksError> {
    STANDARD
        .decode(value)
        .map_err(|_| invalid(&format!("{name} is not Base64")))
}

fn invalid(what: &str) -> XksError {
    XksError::InvalidResponse(what.to_owned())
}

impl KeyMetadata {
    /// Whether KMS can use the key: `AES_256`, usable for `ENCRYPT` and `DECRYPT`, `ENABLED`.
    pub fn usable_by_kms(&self) -> bool {
        self.info().usable_by_kms()
    }

    /// The answer in the custody seam's terms.
    pub fn info(&self) -> trent_crypto::custody::xks::XksKeyInfo {
        trent_crypto::custody::xks::XksKeyInfo {
            key_spec: self.key_spec.clone(),
            key_usage: self.key_usage.clone(),
            key_status: self.key_status.clone(),
        }
    }
}
