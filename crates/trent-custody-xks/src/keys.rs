//! The proxy's external keys: AES-256 keys in `<data_dir>/keys.json` (mode 0600), the
//! "external key manager" behind `trent xks-proxy`.
//!
//! The file is the EKM's own storage and deliberately separate from anything Trent holds:
//! Trent never sees these bytes, which is the point of an external key store. The proxy
//! re-reads the file when its modification time changes, so `trent xks-proxy create-key`
//! (or an operator's edit) takes effect without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The file's name under the data directory.
pub const KEYS_FILE: &str = "keys.json";

/// One key as stored. Not `Debug`: it holds the material.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// The `externalKeyId` (1–128 of `A-Za-z0-9-_.`).
    pub id: String,
    /// Base64 of the 32 key bytes.
    pub material: Zeroizing<String>,
    /// What the key may do: `ENCRYPT`, `DECRYPT` (other spec values are reported, not used).
    pub usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub status: String,
}

#[derive(Default, Serialize, Deserialize)]
struct KeysFile {
    keys: Vec<StoredKey>,
}

/// A loaded key.
pub struct ProxyKey {
    pub key: LessSafeKey,
    pub usage: Vec<String>,
    pub enabled: bool,
}

impl ProxyKey {
    pub fn allows(&self, usage: &str) -> bool {
        self.usage.iter().any(|u| u == usage)
    }
}

/// Why the keys file could not be used. Never carries material.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {error}")]
    Format { path: PathBuf, error: String },
    #[error("a key with id {0:?} already exists")]
    Exists(String),
    #[error("an external key id is 1 to 128 characters of A-Za-z0-9-_.")]
    BadId,
}

/// Whether `id` is an `externalKeyId` the spec allows.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn read_file(path: &Path) -> Result<KeysFile, KeysError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            serde_json::from_slice(&bytes).map_err(|e| KeysError::Format {
                path: path.to_owned(),
                error: e.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
        Err(error) => Err(KeysError::Io {
            path: path.to_owned(),
            error,
        }),
    }
}

/// Parses the keys file into usable keys.
pub fn load(path: &Path) -> Result<HashMap<String, ProxyKey>, KeysError> {
    let file = read_file(path)?;
    let mut out = HashMap::with_capacity(file.keys.len());
    for stored in file.keys {
        let bad = |what: &str| KeysError::Format {
            path: path.to_owned(),
            error: format!("key {:?}: {what}", stored.id),
        };
        if !valid_key_id(&stored.id) {
            return Err(bad("invalid id"));
        }
        let material = Zeroizing::new(
            STANDARD
                .decode(stored.material.as_bytes())
                .map_err(|_| bad("material is not Base64"))?,
        );
        if material.len() != 32 {
            return Err(bad("material is not 32 bytes"));
        }
        let key = UnboundKey::new(&AES_256_GCM, &material).map_err(|_| bad("unusable key"))?;
        let enabled = match stored.status.as_str() {
            "ENABLED" => true,
            "DISABLED" => false,
            _ => return Err(bad("status is neither ENABLED nor DISABLED")),
        };
        out.insert(
            stored.id.clone(),
            ProxyKey {
                key: LessSafeKey::new(key),
                usage: stored.usage,
                enabled,
            },
        );
    }
    Ok(out)
}

/// The file's modification time, if it exists (the reload trigger).
pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Adds a new random AES-256 key `id` with `usage` and `status` to the keys file (created
/// with mode 0600 when absent).
pub fn create_key(path: &Path, id: &str, usage: &[String], enabled: bool) -> Result<(), KeysError> {
    if !valid_key_id(id) {
        return Err(KeysError::BadId);
    }
    let mut file = read_file(path)?;
    if file.keys.iter().any(|k| k.id == id) {
        return Err(KeysError::Exists(id.to_owned()));
    }
    let mut material = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(material.as_mut()).map_err(|_| KeysError::Format {
        path: path.to_owned(),
        error: "no randomness".into(),
    })?;
    file.keys.push(StoredKey {
        id: id.to_owned(),
        material: Zeroizing::new(STANDARD.encode(material.as_ref())),
        usage: usage.to_vec(),
        status: if enabled { "ENABLED" } else { "DISABLED" }.to_owned(),
    });
    let json = Zeroizing::new(
        serde_json::to_vec_pretty(&file).map_err(|e| KeysError::Format {
            path: path.to_owned(),
            error: e.to_string(),
        })?,
    );
    write_private(path, &json).map_err(|error| KeysError::Io {
        path: path.to_owned(),
        error,
    })
}

/// Writes `bytes` to a temporary file readable only by the owner, then renames it over `path`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// AES-256-GCM seal in place: returns the tag; `data` becomes the ciphertext.
pub fn seal(key: &LessSafeKey, iv: [u8; 12], aad: &[u8], data: &mut [u8]) -> Option<[u8; 16]> {
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), data)
        .ok()?;
    let mut out = [0u8; 16];
    out.copy_from_slice(tag.as_ref());
    Some(out)
}

/// AES-256-GCM open of `ciphertext` with its separate `tag`.
pub fn open(
    key: &LessSafeKey,
    iv: [u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(ciphertext.len() + tag.len()));
    buf.extend_from_slice(ciphertext);
    buf.extend_from_slice(tag);
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}
