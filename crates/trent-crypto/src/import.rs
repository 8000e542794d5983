//! Imported key material (BYOK): the RSA wrapping key pair GetParametersForImport hands out, and
//! unwrapping the material ImportKeyMaterial receives with each AWS wrapping algorithm.
//!
//! The wrapping private key lives only until its import token expires; the domain keeps it
//! wrapped under the root key meanwhile (PKCS#8 DER from [`WrappingKeyPair::pkcs8_der`]).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AES_256, KeyEncryptionKey, KeyWrapPadded};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    PrivateDecryptingKey,
};
use zeroize::Zeroizing;

use crate::material::MaterialId;
use crate::spec::WireEnum;

/// `WrappingKeySpec`: the RSA key size of the wrapping key pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrappingKeySpec {
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Sm2,
}

impl WireEnum for WrappingKeySpec {
    const ALL: &'static [Self] = &[Self::Rsa2048, Self::Rsa3072, Self::Rsa4096, Self::Sm2];
    fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::Sm2 => "SM2",
        }
    }
}

/// `AlgorithmSpec`: how the caller wrapped the key material under the public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrappingAlgorithm {
    RsaesPkcs1V15,
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
    Sm2Pke,
}

impl WireEnum for WrappingAlgorithm {
    const ALL: &'static [Self] = &[
        Self::RsaesPkcs1V15,
        Self::RsaesOaepSha1,
        Self::RsaesOaepSha256,
        Self::RsaAesKeyWrapSha1,
        Self::RsaAesKeyWrapSha256,
        Self::Sm2Pke,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Self::RsaesPkcs1V15 => "RSAES_PKCS1_V1_5",
            Self::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            Self::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            Self::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            Self::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
            Self::Sm2Pke => "SM2PKE",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// The spec or algorithm is one Trent does not implement (SM2, PKCS#1 v1.5).
    #[error("unsupported wrapping key spec or algorithm")]
    Unsupported,
    /// Key generation or encoding failed.
    #[error("wrapping key failure")]
    Internal,
    /// The encrypted key material does not decrypt under the wrapping key.
    #[error("the encrypted key material cannot be unwrapped")]
    Unwrap,
}

/// An RSA key pair used to receive one import of key material.
pub struct WrappingKeyPair {
    private: PrivateDecryptingKey,
}

impl std::fmt::Debug for WrappingKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappingKeyPair").finish_non_exhaustive()
    }
}

impl WrappingKeyPair {
    pub fn generate(spec: WrappingKeySpec) -> Result<Self, ImportError> {
        let size = match spec {
            WrappingKeySpec::Rsa2048 => KeySize::Rsa2048,
            WrappingKeySpec::Rsa3072 => KeySize::Rsa3072,
            WrappingKeySpec::Rsa4096 => KeySize::Rsa4096,
            WrappingKeySpec::Sm2 => return Err(ImportError::Unsupported),
        };
        let private = PrivateDecryptingKey::generate(size).map_err(|_| ImportError::Internal)?;
        Ok(Self { private })
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, ImportError> {
        let private = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| ImportError::Internal)?;
        Ok(Self { private })
    }

    /// The private key as PKCS#8 DER, to be wrapped under the root key.
    pub fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        let der = self.private.as_der().map_err(|_| ImportError::Internal)?;
        Ok(Zeroizing::new(der.as_ref().to_vec()))
    }

    /// The public key as DER X.509 SubjectPublicKeyInfo, which is what AWS returns.
    pub fn public_key_der(&self) -> Result<Vec<u8>, ImportError> {
        let der = self
            .private
            .public_key()
            .as_der()
            .map_err(|_| ImportError::Internal)?;
        Ok(der.as_ref().to_vec())
    }

    /// Recovers the key material the caller wrapped with `algorithm`.
    pub fn unwrap_material(
        &self,
        algorithm: WrappingAlgorithm,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        match algorithm {
            WrappingAlgorithm::RsaesOaepSha1 => self.oaep(&OAEP_SHA1_MGF1SHA1, encrypted),
            WrappingAlgorithm::RsaesOaepSha256 => self.oaep(&OAEP_SHA256_MGF1SHA256, encrypted),
            WrappingAlgorithm::RsaAesKeyWrapSha1 => {
                self.rsa_aes_key_wrap(&OAEP_SHA1_MGF1SHA1, encrypted)
            }
            WrappingAlgorithm::RsaAesKeyWrapSha256 => {
                self.rsa_aes_key_wrap(&OAEP_SHA256_MGF1SHA256, encrypted)
            }
            WrappingAlgorithm::RsaesPkcs1V15 | WrappingAlgorithm::Sm2Pke => {
                Err(ImportError::Unsupported)
            }
        }
    }

    fn oaep(
        &self,
        algorithm: &'static OaepAlgorithm,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        let key = OaepPrivateDecryptingKey::new(self.private.clone())
            .map_err(|_| ImportError::Internal)?;
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let n = key
            .decrypt(algorithm, encrypted, &mut out, None)
            .map_err(|_| ImportError::Unwrap)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// CKM_RSA_AES_KEY_WRAP: an ephemeral AES-256 key under RSA-OAEP, followed by the material
    /// under that key with AES key wrap with padding (RFC 5649).
    fn rsa_aes_key_wrap(
        &self,
        algorithm: &'static OaepAlgorithm,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        let rsa_len = self.private.key_size_bytes();
        if encrypted.len() <= rsa_len {
            return Err(ImportError::Unwrap);
        }
        let (wrapped_aes, wrapped_material) = encrypted.split_at(rsa_len);
        let aes = self.oaep(algorithm, wrapped_aes)?;
        let kek = KeyEncryptionKey::new(&AES_256, &aes).map_err(|_| ImportError::Unwrap)?;
        let mut out = Zeroizing::new(vec![0u8; wrapped_material.len()]);
        let n = kek
            .unwrap_with_padding(wrapped_material, &mut out)
            .map_err(|_| ImportError::Unwrap)?
            .len();
        out.truncate(n);
        Ok(out)
    }
}

/// The material id of imported material: an HMAC of the key id under `material`, so
/// re-importing the same material yields the same id and different material a different one,
/// without the id revealing anything usable about the material. `material` is the raw key of a
/// symmetric or HMAC key, and the public key (SubjectPublicKeyInfo DER) of an asymmetric one,
/// which identifies the private key whatever PKCS#8 encoding it arrived in.
pub fn imported_material_id(key_id: &str, material: &[u8]) -> MaterialId {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, material);
    let tag = aws_lc_rs::hmac::sign(
        &key,
        format!("trent:imported-material-id:v1:{key_id}").as_bytes(),
    );
    let mut id = [0u8; 32];
    for (dst, src) in id.iter_mut().zip(tag.as_ref()) {
        *dst = *src;
    }
    MaterialId(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey};

    fn public(pair: &WrappingKeyPair) -> OaepPublicEncryptingKey {
        let der = pair.public_key_der().unwrap();
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&der).unwrap()).unwrap()
    }

    #[test]
    fn oaep_and_rsa_aes_key_wrap_round_trip() {
        let pair = WrappingKeyPair::generate(WrappingKeySpec::Rsa2048).unwrap();
        let again = WrappingKeyPair::from_pkcs8(&pair.pkcs8_der().unwrap()).unwrap();
        let material = [7u8; 32];
        let pk = public(&pair);
        let mut ct = vec![0u8; pk.ciphertext_size()];
        pk.encrypt(&OAEP_SHA256_MGF1SHA256, &material, &mut ct, None)
            .unwrap();
        let out = again
            .unwrap_material(WrappingAlgorithm::RsaesOaepSha256, &ct)
            .unwrap();
        assert_eq!(out.as_slice(), &material);
        assert_eq!(
            again.unwrap_material(WrappingAlgorithm::RsaesOaepSha1, &ct),
            Err(ImportError::Unwrap)
        );

        let aes = [9u8; 32];
        let mut wrapped_aes = vec![0u8; pk.ciphertext_size()];
        pk.encrypt(&OAEP_SHA1_MGF1SHA1, &aes, &mut wrapped_aes, None)
            .unwrap();
        let kek = KeyEncryptionKey::new(&AES_256, &aes).unwrap();
        let mut wrapped = vec![0u8; 64];
        let n = kek
            .wrap_with_padding(&material, &mut wrapped)
            .unwrap()
            .len();
        wrapped_aes.extend_from_slice(&wrapped[..n]);
        let out = pair
            .unwrap_material(WrappingAlgorithm::RsaAesKeyWrapSha1, &wrapped_aes)
            .unwrap();
        assert_eq!(out.as_slice(), &material);
    }

    #[test]
    fn imported_ids_depend_on_material_and_key() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(imported_material_id("k", &a), imported_material_id("k", &a));
        assert_ne!(imported_material_id("k", &a), imported_material_id("k", &b));
        assert_ne!(imported_material_id("k", &a), imported_material_id("j", &a));
    }
}
