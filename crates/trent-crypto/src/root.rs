//! The root key: the one secret that protects all other secrets at rest.
//!
//! Every key material and stored credential secret is written to storage only as
//! `wrap(root, bytes, aad)`. The AAD names what the bytes are (for example the key id and
//! material id), so a wrapped blob copied onto another record fails to unwrap instead of
//! silently becoming that record's key.
//!
//! Wrapped format (version 1): `0x01 | nonce (12) | AES-256-GCM ciphertext | tag (16)`.

use zeroize::Zeroizing;

use crate::material::{NONCE_BYTES, SYMMETRIC_KEY_LEN, SymmetricKey, TAG_LEN};
use crate::random;

const WRAP_VERSION: u8 = 1;

/// The root key. Construct it from 32 secret bytes kept outside the database.
pub struct RootKey {
    key: SymmetricKey,
}

/// Why a root-key operation failed. Carries no detail about the secret involved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RootKeyError {
    #[error("root key must be exactly {SYMMETRIC_KEY_LEN} bytes")]
    BadLength,
    #[error("wrapped secret is malformed or was not wrapped by this root key")]
    Unwrap,
    #[error("the system random number generator failed")]
    Random,
    /// The root key is held elsewhere (a PKCS#11 token) and its holder failed; the detail
    /// (a module return code) is logged by the custodian, never a secret.
    #[error("the root key's custodian failed: {0}")]
    Custodian(String),
}

impl RootKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RootKeyError> {
        SymmetricKey::from_bytes(bytes)
            .map(|key| Self { key })
            .ok_or(RootKeyError::BadLength)
    }

    /// A fresh random root key and its bytes (for the caller to persist).
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>), RootKeyError> {
        let bytes = random::secret_bytes(SYMMETRIC_KEY_LEN).map_err(|_| RootKeyError::Random)?;
        Ok((Self::from_bytes(&bytes)?, bytes))
    }

    /// Encrypts `secret` under the root key, binding `aad`.
    pub fn wrap(&self, secret: &[u8], aad: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        let nonce = random::array::<NONCE_BYTES>().map_err(|_| RootKeyError::Random)?;
        let sealed = self.key.seal(nonce, aad, secret);
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// A symmetric key derived from the root key for one purpose (`label`), the same on every
    /// node that shares the root key: HMAC-SHA256(root, "trent:subkey:v1:" || label).
    pub fn derive_subkey(&self, label: &str) -> Result<SymmetricKey, RootKeyError> {
        let hmac_key =
            aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.key.expose_bytes());
        let tag = aws_lc_rs::hmac::sign(&hmac_key, format!("trent:subkey:v1:{label}").as_bytes());
        // HMAC-SHA256 output is exactly 32 bytes, a valid AES-256 key.
        SymmetricKey::from_bytes(tag.as_ref()).ok_or(RootKeyError::BadLength)
    }

    /// Decrypts what [`RootKey::wrap`] produced with the same `aad`.
    pub fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, RootKeyError> {
        let (&version, rest) = wrapped.split_first().ok_or(RootKeyError::Unwrap)?;
        if version != WRAP_VERSION || rest.len() < NONCE_BYTES + TAG_LEN {
            return Err(RootKeyError::Unwrap);
        }
        let (nonce, sealed) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| RootKeyError::Unwrap)?;
        self.key
            .open(nonce, aad, sealed)
            .ok_or(RootKeyError::Unwrap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip_and_aad_binding() {
        let (root, _) = RootKey::generate().unwrap();
        let w = root.wrap(b"secret material", b"key-1").unwrap();
        assert_eq!(
            root.unwrap(&w, b"key-1").unwrap().as_slice(),
            b"secret material"
        );
        assert_eq!(root.unwrap(&w, b"key-2").err(), Some(RootKeyError::Unwrap));
        let (other, _) = RootKey::generate().unwrap();
        assert_eq!(other.unwrap(&w, b"key-1").err(), Some(RootKeyError::Unwrap));
    }

    #[test]
    fn subkeys_are_deterministic_and_label_separated() {
        let (root, bytes) = RootKey::generate().unwrap();
        let again = RootKey::from_bytes(&bytes).unwrap();
        let nonce = [1u8; 12];
        let a = root
            .derive_subkey("grant-tokens")
            .unwrap()
            .seal(nonce, b"", b"x");
        assert_eq!(
            again
                .derive_subkey("grant-tokens")
                .unwrap()
                .open(nonce, b"", &a)
                .unwrap()
                .as_slice(),
            b"x"
        );
        assert!(
            root.derive_subkey("other")
                .unwrap()
                .open(nonce, b"", &a)
                .is_none()
        );
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let (root, _) = RootKey::generate().unwrap();
        for len in 0..40 {
            assert!(root.unwrap(&vec![1u8; len], b"").is_err());
        }
        assert_eq!(
            RootKey::from_bytes(&[0; 31]).err(),
            Some(RootKeyError::BadLength)
        );
    }
}
