//! `trent xks-proxy`: an XKS proxy (spec v1.0.3) over an external key manager behind
//! [`KeyBackend`]: the AES-256 keys of [`crate::keys`] (`keys.json`), or AES keys in a
//! PKCS#11 token ([`crate::pkcs11`], `[pkcs11]` in the configuration).
//!
//! Every request goes through the same steps, in the order the spec's errors imply:
//! route (unknown path or prefix → 404 `InvalidUriPathException`; not POST → 405), read the
//! body (capped), SigV4 with one of the configured credentials, Region and service
//! `kms-xks-proxy` (→ 401 `AuthenticationFailedException`), JSON shape and `requestMetadata`
//! (→ 400 `ValidationException`), key lookup (→ 404 `KeyNotFoundException`), key state and
//! usage, then AES-256-GCM.
//!
//! The AES-GCM AAD is the spec's recommended construction,
//! `len16_be(AAD) ‖ AAD ‖ len8(ciphertextMetadata) ‖ ciphertextMetadata`, so the tag also
//! protects the metadata; the metadata this proxy stamps names that scheme (`trent-xks/1`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::backend::{BackendError, KeyBackend, KeyInfo, KeysFileBackend};
use crate::client::SIGNING_SERVICE;
use crate::error::ProxyErrorName as N;
use crate::keys;
use crate::pkcs11::{Pkcs11Backend, Pkcs11Config};
use crate::wire::{
    self, AES_GCM, DecryptRequest, DecryptResponse, EkmInstance, EncryptRequest, EncryptResponse,
    ErrorBody, HealthStatus, KeyMetadata, MetadataOnlyRequest, Operation, RequestMetadata, SHA_256,
};

/// The ciphertext metadata stamped on every Encrypt: the AAD scheme's version.
pub const CIPHERTEXT_METADATA: &[u8] = b"trent-xks/1";
/// The largest request body read (Base64 of the largest plaintext and AAD, plus metadata).
const MAX_BODY_BYTES: usize = 128 * 1024;
/// The largest plaintext / ciphertext accepted (the spec's minimum is 4300).
const MAX_DATA_BYTES: usize = 8192;
/// The largest AAD accepted: its length must fit the 2-byte prefix.
const MAX_AAD_BYTES: usize = u16::MAX as usize;

/// One accepted SigV4 credential. Not `Debug`: it holds the secret.
#[derive(Clone, Deserialize)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

/// The proxy's configuration (`trent xks-proxy serve --config FILE`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// `IP:PORT` to listen on (port 0: any free port, printed at start).
    pub listen: String,
    /// Where `keys.json` lives (the keys-file backend); relative paths are relative to the
    /// config file. Unused with `[pkcs11]`.
    #[serde(default)]
    pub data_dir: PathBuf,
    /// The PKCS#11 backend: external keys are AES keys in this token (else `keys.json`).
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
    /// PEM certificate chain and private key for HTTPS. Both or neither: without them the
    /// proxy serves plain HTTP, for use behind a TLS-terminating load balancer only (KMS
    /// and Trent talk HTTPS).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The Region requests must be signed for (the KMS Region of the calling key store).
    pub region: String,
    /// Text before `/kms/xks/v1` in every path: empty, or `/` and a prefix.
    #[serde(default)]
    pub uri_path_prefix: String,
    /// The accepted credentials (two at once while rotating).
    #[serde(rename = "credential")]
    pub credentials: Vec<Credential>,
}

impl ProxyConfig {
    /// Reads a TOML file and makes its relative paths relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config: ProxyConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut config.data_dir);
        if let Some(p) = config.tls_cert.as_mut() {
            rebase(p);
        }
        if let Some(p) = config.tls_key.as_mut() {
            rebase(p);
        }
        if let Some(p) = config.pkcs11.as_mut() {
            crate::pkcs11::rebase(p, base);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let p = &self.uri_path_prefix;
        let prefix_ok = p.is_empty()
            || (p.starts_with('/')
                && p.len() >= 2
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-')));
        if !prefix_ok {
            return Err("uri_path_prefix must be empty or / and A-Za-z0-9/_-".into());
        }
        if self.credentials.is_empty() {
            return Err("at least one [[credential]] is needed".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tls_cert and tls_key go together".into());
        }
        if self.pkcs11.is_none() && self.data_dir.as_os_str().is_empty() {
            return Err("data_dir (keys.json) or [pkcs11] is needed".into());
        }
        Ok(())
    }

    /// The keys file.
    pub fn keys_file(&self) -> PathBuf {
        self.data_dir.join(keys::KEYS_FILE)
    }

    /// `<prefix>/kms/xks/v1`.
    pub fn base_path(&self) -> String {
        format!("{}/kms/xks/v1", self.uri_path_prefix.trim_end_matches('/'))
    }
}

/// A running proxy's state.
pub struct Proxy {
    config: ProxyConfig,
    base_path: String,
    backend: Arc<dyn KeyBackend>,
    signing_keys: trent_sigv4::SigningKeyCache<()>,
    /// One cache owner per configured credential (same order), so a cached signing key is
    /// only ever used for the credential it was derived from.
    credential_owners: Vec<Arc<()>>,
}

/// A proxy error answer.
struct Failure {
    name: N,
    message: String,
}

fn fail(name: N, message: impl Into<String>) -> Failure {
    Failure {
        name,
        message: message.into(),
    }
}

type Reply = Result<serde_json::Value, Failure>;

impl Proxy {
    /// Checks the configuration and opens its key manager: the `[pkcs11]` token if
    /// configured, else `keys.json`.
    pub fn new(config: ProxyConfig) -> Result<Arc<Self>, String> {
        config.validate()?;
        let backend: Arc<dyn KeyBackend> = match &config.pkcs11 {
            Some(p) => Arc::new(Pkcs11Backend::open(p)?),
            None => Arc::new(KeysFileBackend::open(config.keys_file())?),
        };
        Self::with_backend(config, backend)
    }

    /// A proxy over any key manager.
    pub fn with_backend(
        config: ProxyConfig,
        backend: Arc<dyn KeyBackend>,
    ) -> Result<Arc<Self>, String> {
        config.validate()?;
        let config_owners = config.credentials.iter().map(|_| Arc::new(())).collect();
        Ok(Arc::new(Self {
            base_path: config.base_path(),
            backend,
            config,
            signing_keys: trent_sigv4::SigningKeyCache::new(64),
            credential_owners: config_owners,
        }))
    }

    /// The key `id`'s metadata (404 `KeyNotFoundException` for an unknown one).
    fn describe(&self, key_id: Option<&str>) -> Result<(String, KeyInfo), Failure> {
        let id =
            key_id.ok_or_else(|| fail(N::KeyNotFoundException, "no external key with this id"))?;
        let info = self.backend.describe(id).map_err(backend_failure)?;
        Ok((id.to_owned(), info))
    }

    /// Answers one request.
    pub async fn handle(
        self: Arc<Self>,
        request: http::Request<Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let (parts, body) = request.into_parts();
        let Some((operation, key_id)) = self.route(parts.uri.path()) else {
            return error_response(&fail(
                N::InvalidUriPathException,
                "no such XKS proxy URI path",
            ));
        };
        if parts.method != http::Method::POST {
            let mut response = error_response(&fail(
                N::ValidationException,
                "XKS proxy operations are POST requests",
            ));
            *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            return response;
        }
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(b) => Zeroizing::new(b.to_bytes().to_vec()),
            Err(_) => {
                return error_response(&fail(
                    N::UnsupportedOperationException,
                    "the request body is larger than this proxy accepts",
                ));
            }
        };
        if let Err(f) = self.authenticate(&parts, &body) {
            return error_response(&f);
        }
        // The backend's calls block (a PKCS#11 token call, a file read, a session lock):
        // run them on tokio's blocking pool, not on an async worker thread.
        let id = key_id.clone();
        let result = tokio::task::spawn_blocking(move || {
            self.dispatch(&parts, operation, id.as_deref(), &body)
        })
        .await
        .unwrap_or_else(|_| {
            Err(fail(
                N::InternalException,
                "the request's backend task failed",
            ))
        });
        match result {
            Ok(value) => json_response(200, &value),
            Err(f) => {
                tracing::info!(
                    operation = ?operation,
                    key = key_id.as_deref().unwrap_or(""),
                    error = f.name.as_str(),
                    "xks-proxy: request refused"
                );
                error_response(&f)
            }
        }
    }

    /// The operation and key id a path names, if it is one of this proxy's four URIs.
    fn route(&self, path: &str) -> Option<(Operation, Option<String>)> {
        let rest = path.strip_prefix(self.base_path.as_str())?;
        if rest == "/health" {
            return Some((Operation::GetHealthStatus, None));
        }
        let rest = rest.strip_prefix("/keys/")?;
        let (id, op) = rest.split_once('/')?;
        let op = match op {
            "metadata" => Operation::GetKeyMetadata,
            "encrypt" => Operation::Encrypt,
            "decrypt" => Operation::Decrypt,
            _ => return None,
        };
        if id.is_empty() || id.contains('/') {
            return None;
        }
        Some((op, Some(id.to_owned())))
    }

    fn authenticate(&self, parts: &http::request::Parts, body: &[u8]) -> Result<(), Failure> {
        let denied = |why: &str| fail(N::AuthenticationFailedException, why);
        let probe = trent_sigv4::RequestParts {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body,
        };
        let parsed = trent_sigv4::parse(&probe).map_err(|e| denied(&e.message()))?;
        parsed
            .check_scope(&self.config.region, SIGNING_SERVICE)
            .map_err(|e| denied(&e.message()))?;
        if parsed.is_presigned() {
            return Err(denied(
                "XKS requests are signed in the Authorization header",
            ));
        }
        let (credential, owner) = self
            .config
            .credentials
            .iter()
            .zip(&self.credential_owners)
            .find(|(c, _)| c.access_key_id == parsed.access_key_id)
            .ok_or_else(|| denied("the access key id is not one of this proxy's"))?;
        // Verify over the signed headers only: KMS signs just `host` and `x-amz-date`, and
        // the unsigned `content-type` must not fail the check.
        let mut signed = http::HeaderMap::new();
        for name in parsed.signed_headers.iter() {
            if let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) {
                for value in parts.headers.get_all(&header) {
                    signed.append(header.clone(), value.clone());
                }
            }
        }
        let req = trent_sigv4::RequestParts {
            headers: &signed,
            ..probe
        };
        let key = self
            .signing_keys
            .get_or_derive(owner, &credential.secret_access_key, &parsed);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        trent_sigv4::verify(&req, &parsed, &key, now).map_err(|e| denied(&e.message()))
    }

    fn dispatch(
        &self,
        parts: &http::request::Parts,
        operation: Operation,
        key_id: Option<&str>,
        body: &[u8],
    ) -> Reply {
        let json_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json_type {
            return Err(fail(
                N::ValidationException,
                "the content type must be application/json",
            ));
        }
        match operation {
            Operation::GetHealthStatus => {
                let request: MetadataOnlyRequest = parse_body(body)?;
                check_metadata(&request.request_metadata, operation)?;
                self.health()
            }
            Operation::GetKeyMetadata => {
                let request: MetadataOnlyRequest = parse_body(body)?;
                check_metadata(&request.request_metadata, operation)?;
                let (_, info) = self.describe(key_id)?;
                to_json(&KeyMetadata {
                    key_spec: info.key_spec,
                    key_usage: info.usage.into_iter().take(10).collect(),
                    key_status: if info.enabled { "ENABLED" } else { "DISABLED" }.into(),
                })
            }
            Operation::Encrypt => {
                let request: EncryptRequest = parse_body(body)?;
                check_metadata(&request.request_metadata, operation)?;
                let (id, info) = self.describe(key_id)?;
                encrypt(self.backend.as_ref(), &id, &info, &request)
            }
            Operation::Decrypt => {
                let request: DecryptRequest = parse_body(body)?;
                check_metadata(&request.request_metadata, operation)?;
                let (id, info) = self.describe(key_id)?;
                decrypt(self.backend.as_ref(), &id, &info, &request)
            }
        }
    }

    /// A deep check of the key manager (the backend's AES-GCM round trip).
    fn health(&self) -> Reply {
        let ekm = self.backend.health();
        to_json(&HealthStatus {
            xks_proxy_fleet_size: 1,
            xks_proxy_vendor: "Trent".into(),
            xks_proxy_model: "trent xks-proxy".into(),
            ekm_vendor: ekm.ekm_vendor,
            ekm_fleet_details: vec![EkmInstance {
                id: ekm.id,
                model: ekm.model,
                health_status: if ekm.active { "ACTIVE" } else { "UNAVAILABLE" }.into(),
            }],
        })
    }

    /// Serves HTTPS (or HTTP without TLS files) on `listener` until `shutdown` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), String> {
        let acceptor = match (&self.config.tls_cert, &self.config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            _ => None,
        };
        tokio::pin!(shutdown);
        // Stopping closes every open connection too, as a stopped process would.
        let (stopping, stopped) = tokio::sync::watch::channel(());
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => {
                    drop(stopping);
                    return Ok(());
                }
                a = listener.accept() => a,
            };
            let Ok((tcp, _peer)) = accepted else {
                // Out of file descriptors, typically: let connections close before retrying.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let proxy = self.clone();
            let acceptor = acceptor.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let proxy = proxy.clone();
                    async move { Ok::<_, std::convert::Infallible>(proxy.handle(req).await) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                let serve = async {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                };
                // `changed` fails once the sender is dropped: the proxy is stopping.
                tokio::select! {
                    () = serve => {}
                    _ = stopped.changed() => {}
                }
            });
        }
    }
}

/// Binds `config.listen`; returns the listener and the address actually bound.
pub async fn bind(config: &ProxyConfig) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| format!("{}: {e}", cert.display()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        // serde's message names the field, never its value.
        fail(N::ValidationException, format!("invalid request body: {e}"))
    })
}

fn check_metadata(metadata: &RequestMetadata, operation: Operation) -> Result<(), Failure> {
    match metadata.missing_for(operation) {
        Some(field) => Err(fail(
            N::ValidationException,
            format!("requestMetadata.{field} is required"),
        )),
        None => Ok(()),
    }
}

/// A backend failure as the spec's error; an internal detail goes to the log only.
fn backend_failure(e: BackendError) -> Failure {
    match e {
        BackendError::NotFound => fail(N::KeyNotFoundException, "no external key with this id"),
        BackendError::Ciphertext => fail(
            N::InvalidCiphertextException,
            "the ciphertext, IV, tag, metadata or AAD is not valid",
        ),
        BackendError::Usage => fail(
            N::InvalidKeyUsageException,
            "the external key does not allow this operation",
        ),
        BackendError::Internal(detail) => {
            tracing::warn!(%detail, "xks-proxy: the external key manager failed");
            fail(N::InternalException, "the external key manager failed")
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Reply {
    serde_json::to_value(value).map_err(|_| fail(N::InternalException, "cannot encode the answer"))
}

fn decode(name: &str, value: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    STANDARD
        .decode(value)
        .map(Zeroizing::new)
        .map_err(|_| fail(N::ValidationException, format!("{name} is not Base64")))
}

/// `len16_be(aad) ‖ aad ‖ len8(meta) ‖ meta`, the spec's recommended AES-GCM AAD.
fn gcm_aad(aad: Option<&[u8]>, metadata: Option<&[u8]>) -> Vec<u8> {
    let aad = aad.unwrap_or_default();
    let metadata = metadata.unwrap_or_default();
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    // Callers bound both lengths (65535, 20), so the casts cannot truncate.
    out.extend_from_slice(&u16::try_from(aad.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(aad);
    out.push(u8::try_from(metadata.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(metadata);
    out
}

fn check_algorithm(algorithm: &str) -> Result<(), Failure> {
    if algorithm == AES_GCM {
        Ok(())
    } else {
        Err(fail(
            N::ValidationException,
            "encryptionAlgorithm must be AES_GCM",
        ))
    }
}

fn usable_for(key: &KeyInfo, usage: &str) -> Result<(), Failure> {
    if !key.enabled {
        return Err(fail(
            N::InvalidStateException,
            "the external key is disabled",
        ));
    }
    if !key.allows(usage) {
        return Err(fail(
            N::InvalidKeyUsageException,
            format!("the external key does not allow {usage}"),
        ));
    }
    Ok(())
}

fn encrypt(backend: &dyn KeyBackend, id: &str, key: &KeyInfo, request: &EncryptRequest) -> Reply {
    check_algorithm(&request.encryption_algorithm)?;
    let want_cdiv = match request.ciphertext_data_integrity_value_algorithm.as_deref() {
        None => false,
        Some(SHA_256) => true,
        Some(_) => {
            return Err(fail(
                N::ValidationException,
                "ciphertextDataIntegrityValueAlgorithm must be SHA_256",
            ));
        }
    };
    let mut data = decode("plaintext", &request.plaintext)?;
    let aad = request
        .additional_authenticated_data
        .as_deref()
        .map(|a| decode("additionalAuthenticatedData", a))
        .transpose()?;
    if data.len() > MAX_DATA_BYTES || aad.as_ref().is_some_and(|a| a.len() > MAX_AAD_BYTES) {
        return Err(fail(
            N::UnsupportedOperationException,
            "the plaintext or AAD is larger than this proxy supports",
        ));
    }
    usable_for(key, "ENCRYPT")?;
    let mut iv = [0u8; 12];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| fail(N::InternalException, "no randomness"))?;
    let gcm_aad = gcm_aad(aad.as_deref().map(Vec::as_slice), Some(CIPHERTEXT_METADATA));
    let plaintext_len = data.len();
    let tag = backend
        .seal(id, iv, &gcm_aad, &mut data)
        .map_err(backend_failure)?;
    let cdiv = want_cdiv.then(|| {
        wire::integrity_value(
            aad.as_deref().map(Vec::as_slice),
            Some(CIPHERTEXT_METADATA),
            &iv,
            &data,
            &tag,
        )
    });
    // The spec's recommended trial decrypt, after the integrity value is computed. A key
    // the key manager allows only to encrypt cannot be tried (a token refuses C_Decrypt).
    if key.allows("DECRYPT") {
        let trial = backend.open(id, iv, &gcm_aad, &data, &tag).ok();
        if trial.is_none_or(|p| p.len() != plaintext_len) {
            return Err(fail(N::InternalException, "the trial decryption failed"));
        }
    }
    to_json(&EncryptResponse {
        ciphertext: STANDARD.encode(data.as_slice()),
        initialization_vector: STANDARD.encode(iv),
        authentication_tag: STANDARD.encode(tag),
        ciphertext_metadata: Some(STANDARD.encode(CIPHERTEXT_METADATA)),
        ciphertext_data_integrity_value: cdiv.map(|c| STANDARD.encode(c)),
    })
}

fn decrypt(backend: &dyn KeyBackend, id: &str, key: &KeyInfo, request: &DecryptRequest) -> Reply {
    check_algorithm(&request.encryption_algorithm)?;
    let ciphertext = decode("ciphertext", &request.ciphertext)?;
    let iv = decode("initializationVector", &request.initialization_vector)?;
    let tag = decode("authenticationTag", &request.authentication_tag)?;
    let metadata = request
        .ciphertext_metadata
        .as_deref()
        .map(|m| decode("ciphertextMetadata", m))
        .transpose()?;
    let aad = request
        .additional_authenticated_data
        .as_deref()
        .map(|a| decode("additionalAuthenticatedData", a))
        .transpose()?;
    if metadata.as_ref().is_some_and(|m| m.len() > 20) {
        return Err(fail(
            N::ValidationException,
            "ciphertextMetadata is longer than 20 bytes",
        ));
    }
    if ciphertext.len() > MAX_DATA_BYTES || aad.as_ref().is_some_and(|a| a.len() > MAX_AAD_BYTES) {
        return Err(fail(
            N::UnsupportedOperationException,
            "the ciphertext or AAD is larger than this proxy supports",
        ));
    }
    usable_for(key, "DECRYPT")?;
    let invalid = || {
        fail(
            N::InvalidCiphertextException,
            "the ciphertext, IV, tag, metadata or AAD is not valid",
        )
    };
    // This proxy only ever produces 12-byte IVs and 16-byte tags.
    let iv: [u8; 12] = iv.as_slice().try_into().map_err(|_| invalid())?;
    let tag: [u8; 16] = tag.as_slice().try_into().map_err(|_| invalid())?;
    let gcm_aad = gcm_aad(
        aad.as_deref().map(Vec::as_slice),
        metadata.as_deref().map(Vec::as_slice),
    );
    let plaintext = backend
        .open(id, iv, &gcm_aad, &ciphertext, &tag)
        .map_err(backend_failure)?;
    let encoded = Zeroizing::new(STANDARD.encode(plaintext.as_slice()));
    to_json(&DecryptResponse {
        plaintext: encoded.to_string(),
    })
}

fn json_response(status: u16, value: &serde_json::Value) -> http::Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = http::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(failure: &Failure) -> http::Response<Full<Bytes>> {
    let body = ErrorBody {
        error_name: failure.name.as_str().to_owned(),
        error_message: Some(failure.message.chars().take(511).collect()),
    };
    let value = serde_json::to_value(&body).unwrap_or_default();
    json_response(failure.name.status(), &value)
}
