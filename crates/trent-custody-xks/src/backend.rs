//! The proxy's external key manager, behind one small trait: [`KeyBackend`].
//!
//! `trent xks-proxy` answers the XKS API the same way whatever holds the keys; only looking a
//! key up, AES-256-GCM under it and the health of the key manager differ. Two backends:
//! [`KeysFileBackend`] (AES-256 keys in `<data_dir>/keys.json`, [`crate::keys`]) and
//! `crate::pkcs11::Pkcs11Backend` (AES keys in a PKCS#11 token, e.g. SoftHSM2).
//!
//! The proxy builds the AES-GCM AAD (the spec's `len16(AAD) ‖ AAD ‖ len8(meta) ‖ meta`) and
//! the IV; a backend only runs AES-GCM with what it is given, so the ciphertexts of both
//! backends have the same shape.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use zeroize::Zeroizing;

use crate::keys::{self, ProxyKey};

/// What GetKeyMetadata reports of a key, and what the proxy checks before using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `AES_256` for a 256-bit AES key (the only spec KMS accepts); others as
    /// `AES_128`, `AES_192`, or the token's key type name.
    pub key_spec: String,
    /// `ENCRYPT`, `DECRYPT`, and whatever else the key allows (`SIGN`, `WRAP`, …).
    pub usage: Vec<String>,
    /// `keyStatus` `ENABLED` (else `DISABLED`).
    pub enabled: bool,
}

impl KeyInfo {
    pub fn allows(&self, usage: &str) -> bool {
        self.usage.iter().any(|u| u == usage)
    }
}

/// Why a backend could not answer. Never carries key material.
#[derive(Debug)]
pub enum BackendError {
    /// No key with this id (the spec's `KeyNotFoundException`).
    NotFound,
    /// The ciphertext, IV, tag or AAD does not authenticate (`InvalidCiphertextException`).
    Ciphertext,
    /// The key refuses the operation (`InvalidKeyUsageException`).
    Usage,
    /// The key manager failed (`InternalException`); the detail is for the proxy's log.
    Internal(String),
}

/// The external key manager's health, for GetHealthStatus (one EKM instance).
#[derive(Debug, Clone)]
pub struct EkmHealth {
    pub ekm_vendor: String,
    pub id: String,
    pub model: String,
    pub active: bool,
}

/// An external key manager as the proxy uses it. Calls may block briefly (a file read, a
/// token call of tens of microseconds), as the proxy's handlers expect.
pub trait KeyBackend: Send + Sync {
    /// The key `id`'s metadata.
    fn describe(&self, id: &str) -> Result<KeyInfo, BackendError>;
    /// AES-256-GCM under key `id`: `data` (plaintext) becomes the ciphertext; returns the
    /// 16-byte tag.
    fn seal(
        &self,
        id: &str,
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], BackendError>;
    /// AES-256-GCM open under key `id`.
    fn open(
        &self,
        id: &str,
        iv: [u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; 16],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError>;
    /// A deep check of the key manager (a real AES-GCM round trip on a key no KMS key uses).
    fn health(&self) -> EkmHealth;
}

/// Keys as last loaded, and the file time they were loaded at.
struct KeyTable {
    modified: Option<SystemTime>,
    keys: Arc<HashMap<String, ProxyKey>>,
}

/// The keys file backend: re-read when its modification time changes, so
/// `trent xks-proxy create-key` (or an operator's edit) takes effect without a restart.
pub struct KeysFileBackend {
    path: PathBuf,
    table: RwLock<KeyTable>,
}

impl KeysFileBackend {
    /// Loads `path` (a missing file is an empty key manager).
    pub fn open(path: PathBuf) -> Result<Self, String> {
        let modified = keys::modified(&path);
        let loaded = keys::load(&path).map_err(|e| e.to_string())?;
        Ok(Self {
            path,
            table: RwLock::new(KeyTable {
                modified,
                keys: Arc::new(loaded),
            }),
        })
    }

    /// The keys, re-read first if the file changed since the last load.
    fn keys(&self) -> Result<Arc<HashMap<String, ProxyKey>>, BackendError> {
        let now = keys::modified(&self.path);
        if let Ok(table) = self.table.read()
            && table.modified == now
        {
            return Ok(table.keys.clone());
        }
        let loaded = keys::load(&self.path)
            .map_err(|e| BackendError::Internal(format!("cannot load the keys file: {e}")))?;
        let loaded = Arc::new(loaded);
        if let Ok(mut table) = self.table.write() {
            table.modified = now;
            table.keys = loaded.clone();
        }
        Ok(loaded)
    }

    fn with_key<T>(
        &self,
        id: &str,
        f: impl FnOnce(&ProxyKey) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let keys = self.keys()?;
        let key = keys.get(id).ok_or(BackendError::NotFound)?;
        f(key)
    }
}

impl KeyBackend for KeysFileBackend {
    fn describe(&self, id: &str) -> Result<KeyInfo, BackendError> {
        self.with_key(id, |key| {
            Ok(KeyInfo {
                key_spec: "AES_256".into(),
                usage: key
                    .usage
                    .iter()
                    .filter(|u| !u.is_empty())
                    .take(10)
                    .cloned()
                    .collect(),
                enabled: key.enabled,
            })
        })
    }

    fn seal(
        &self,
        id: &str,
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], BackendError> {
        self.with_key(id, |key| {
            keys::seal(&key.key, iv, aad, data)
                .ok_or_else(|| BackendError::Internal("AES-GCM seal failed".into()))
        })
    }

    fn open(
        &self,
        id: &str,
        iv: [u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; 16],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.with_key(id, |key| {
            keys::open(&key.key, iv, aad, ciphertext, tag).ok_or(BackendError::Ciphertext)
        })
    }

    fn health(&self) -> EkmHealth {
        EkmHealth {
            ekm_vendor: "Trent (AES-256 keys file)".into(),
            id: "keys-file".into(),
            model: "AES-256-GCM, software".into(),
            active: self.keys().is_ok() && self_test(),
        }
    }
}

/// A round trip under a fresh key: the crypto library works.
fn self_test() -> bool {
    let mut material = Zeroizing::new([0u8; 32]);
    if aws_lc_rs::rand::fill(material.as_mut()).is_err() {
        return false;
    }
    let Ok(unbound) =
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, material.as_ref())
    else {
        return false;
    };
    let key = aws_lc_rs::aead::LessSafeKey::new(unbound);
    let mut data = *b"health";
    let Some(tag) = keys::seal(&key, [7; 12], b"a", &mut data) else {
        return false;
    };
    keys::open(&key, [7; 12], b"a", &data, &tag).is_some_and(|p| p.as_slice() == b"health")
}
