//! External key stores (`EXTERNAL_KEY_STORE`): the XKS proxy API v1.0.3 from both ends.
//!
//! - [`client`]: Trent as an XKS client — GetHealthStatus, GetKeyMetadata, Encrypt and
//!   Decrypt over HTTPS, SigV4-signed (service `kms-xks-proxy`) with the key store's
//!   `XksProxyAuthenticationCredential`, every answer checked against the spec.
//! - [`proxy`]: `trent xks-proxy`, a spec-following proxy with TLS and SigV4 verification,
//!   so Trent (and anyone) has a real proxy to run against. Its external key manager is
//!   behind [`backend::KeyBackend`]: AES keys in a PKCS#11 token ([`pkcs11`], e.g. SoftHSM2)
//!   or AES-256 keys kept in a file ([`keys`]).
//! - [`error`]: the proxy's error names and the spec's mapping of every outcome onto the KMS
//!   error a caller sees, per calling context, and onto `ConnectionErrorCode`.
//!
//! - [`custody`]: the client behind `trent_crypto::custody::xks`'s traits, which is all the
//!   domain sees (double encryption's outer blob format is defined there).
//!
//! Nothing here knows about Trent's domain: `trent-core` decides when to call which
//! operation and what goes into the AAD.

pub mod backend;
pub mod client;
pub mod custody;
pub mod endpoint;
pub mod error;
pub mod keys;
pub mod pkcs11;
pub mod proxy;
pub mod wire;

pub use client::{ClientSettings, ProxyTarget, XksCiphertext, XksClient};
pub use error::{KmsErrorCode, ProxyErrorName, XksError};
