//! HMAC key material (HMAC_224/256/384/512 key specs) for GenerateMac and VerifyMac.
//!
//! The raw key is kept in a zeroizing buffer (for re-wrapping) next to AWS-LC's prepared HMAC
//! key, so a MAC costs one HMAC computation. Verification is constant-time. Not `Clone`/`Debug`.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::random::{self, RandomError};
use crate::spec::{KeySpec, MacAlgorithm};

pub struct HmacKey {
    spec: KeySpec,
    raw: Zeroizing<Vec<u8>>,
    key: hmac::Key,
}

fn algorithm(alg: MacAlgorithm) -> hmac::Algorithm {
    match alg {
        MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
        MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    }
}

impl HmacKey {
    /// Fresh random key of the spec's length; `None` for a non-HMAC spec.
    pub fn generate(spec: KeySpec) -> Result<Option<Self>, RandomError> {
        let Some(len) = spec.hmac_key_len() else {
            return Ok(None);
        };
        let raw = random::secret_bytes(len)?;
        Ok(Self::from_bytes(spec, &raw))
    }

    /// A key from its raw bytes; `None` unless `spec` is an HMAC spec and the length is one
    /// AWS accepts for it ([`KeySpec::hmac_key_lengths`]: generated or imported material).
    pub fn from_bytes(spec: KeySpec, bytes: &[u8]) -> Option<Self> {
        if !spec
            .hmac_key_lengths()
            .is_some_and(|r| r.contains(&bytes.len()))
        {
            return None;
        }
        let alg = *spec.mac_algorithms().first()?;
        Some(Self {
            spec,
            raw: Zeroizing::new(bytes.to_vec()),
            key: hmac::Key::new(algorithm(alg), bytes),
        })
    }

    /// The raw bytes, only for wrapping under the root key.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The key's one MAC algorithm.
    pub fn algorithm(&self) -> Option<MacAlgorithm> {
        self.spec.mac_algorithms().first().copied()
    }

    pub fn mac(&self, message: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, message).as_ref().to_vec()
    }

    /// Constant-time check of `mac` over `message`.
    pub fn verify(&self, message: &[u8], mac: &[u8]) -> bool {
        hmac::verify(&self.key, message, mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_lengths_and_verification() {
        for spec in [
            KeySpec::Hmac224,
            KeySpec::Hmac256,
            KeySpec::Hmac384,
            KeySpec::Hmac512,
        ] {
            let k = HmacKey::generate(spec).unwrap().unwrap();
            let alg = k.algorithm().unwrap();
            let mac = k.mac(b"msg");
            assert_eq!(mac.len(), alg.mac_len());
            assert!(k.verify(b"msg", &mac));
            assert!(!k.verify(b"msG", &mac));
            assert!(!k.verify(b"msg", &mac[1..]));
        }
        assert!(HmacKey::generate(KeySpec::Rsa2048).unwrap().is_none());
        assert!(HmacKey::from_bytes(KeySpec::Hmac256, &[0; 31]).is_none());
        assert!(HmacKey::from_bytes(KeySpec::Hmac256, &[0; 64]).is_some());
        assert!(HmacKey::from_bytes(KeySpec::Hmac256, &[0; 65]).is_none());
        assert!(HmacKey::from_bytes(KeySpec::Hmac224, &[0; 28]).is_some());
        assert!(HmacKey::from_bytes(KeySpec::Hmac512, &[0; 128]).is_some());
        assert!(HmacKey::from_bytes(KeySpec::Hmac384, &[0; 47]).is_none());
    }
}
