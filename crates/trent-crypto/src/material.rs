//! Symmetric key material (AES-256) and the identifier of one version of a key's material.
//!
//! A [`SymmetricKey`] holds the expanded AES-GCM key used on the hot path plus the raw bytes
//! needed to re-wrap it. It is neither `Clone` nor `Debug`, and its raw bytes are zeroized on
//! drop (the expanded schedule lives inside AWS-LC, which cleanses it when freed).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::random::{self, RandomError};

/// Length of an AES-256 key in bytes.
pub const SYMMETRIC_KEY_LEN: usize = 32;
/// Length of the AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Length of an AES-GCM nonce.
pub const NONCE_BYTES: usize = NONCE_LEN;

/// Identifies one version of a key's material (what AWS calls `KeyMaterialId`: 64 hex digits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MaterialId(pub [u8; 32]);

impl MaterialId {
    pub fn random() -> Result<Self, RandomError> {
        random::array().map(MaterialId)
    }

    /// The 64-hex-digit form used on the wire and in storage.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(MaterialId(out))
    }
}

impl std::fmt::Debug for MaterialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaterialId({})", self.to_hex())
    }
}

/// An AES-256-GCM key: raw bytes (zeroized on drop) and the ready-to-use expanded key.
pub struct SymmetricKey {
    raw: Zeroizing<[u8; SYMMETRIC_KEY_LEN]>,
    aead: LessSafeKey,
}

impl SymmetricKey {
    /// Fresh random key material.
    pub fn generate() -> Result<Self, RandomError> {
        let raw = Zeroizing::new(random::array::<SYMMETRIC_KEY_LEN>()?);
        // 32 bytes is always a valid AES-256 key.
        Self::from_bytes(raw.as_slice()).ok_or(RandomError)
    }

    /// Key material from bytes; `None` unless exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let mut raw = Zeroizing::new([0u8; SYMMETRIC_KEY_LEN]);
        if bytes.len() != SYMMETRIC_KEY_LEN {
            return None;
        }
        raw.copy_from_slice(bytes);
        let unbound = UnboundKey::new(&AES_256_GCM, raw.as_slice()).ok()?;
        Some(Self {
            raw,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// The raw bytes, only for wrapping under the root key.
    pub fn expose_bytes(&self) -> &[u8] {
        self.raw.as_slice()
    }

    /// Encrypts `plaintext` with `nonce` and `aad`; returns ciphertext followed by the tag.
    pub fn seal(&self, nonce: [u8; NONCE_BYTES], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        // Sealing only fails for inputs beyond AES-GCM's 64 GiB limit; ours are kilobytes.
        match self.aead.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out,
        ) {
            Ok(tag) => out.extend_from_slice(tag.as_ref()),
            Err(_) => out.clear(),
        }
        out
    }

    /// Appends `plaintext` sealed (ciphertext then tag) to `out`; on error `out` is left as it
    /// was. Lets a caller build a whole message in one buffer.
    pub fn seal_append(
        &self,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        let start = out.len();
        out.extend_from_slice(plaintext);
        let Some(body) = out.get_mut(start..) else {
            return Err(SealError);
        };
        match self.aead.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            body,
        ) {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(SealError)
            }
        }
    }

    /// Decrypts ciphertext-with-tag; `None` when authentication fails.
    pub fn open(
        &self,
        nonce: [u8; NONCE_BYTES],
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(sealed.to_vec());
        let plain_len = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                buf.as_mut_slice(),
            )
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_tamper_fails() {
        let key = SymmetricKey::generate().unwrap();
        let nonce = [7u8; NONCE_BYTES];
        let sealed = key.seal(nonce, b"aad", b"hello");
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_eq!(
            key.open(nonce, b"aad", &sealed).unwrap().as_slice(),
            b"hello"
        );
        assert!(key.open(nonce, b"other", &sealed).is_none());
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert!(key.open(nonce, b"aad", &bad).is_none());
    }

    #[test]
    fn material_id_hex_round_trips() {
        let id = MaterialId::random().unwrap();
        assert_eq!(id.to_hex().len(), 64);
        assert_eq!(MaterialId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(MaterialId::from_hex("zz"), None);
    }

    #[test]
    fn wrong_length_material_is_refused() {
        assert!(SymmetricKey::from_bytes(&[0u8; 16]).is_none());
        assert!(SymmetricKey::from_bytes(&[0u8; 32]).is_some());
    }
}

/// AES-GCM refused to seal (only for inputs beyond its 64 GiB limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealError;
