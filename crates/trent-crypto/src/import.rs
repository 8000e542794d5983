//! Imported key material (BYOK): the wrapping key pair GetParametersForImport hands out (RSA, or
//! SM2 for SM2PKE, RustCrypto's `sm2` as in [`crate::sm2_key`]), and unwrapping the material
//! ImportKeyMaterial receives with each AWS wrapping algorithm.
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
use crate::sm2_key::{self, Sm2Key};
use crate::spec::WireEnum;

/// `WrappingKeySpec`: the RSA key size of the wrapping key pair, or SM2.
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
    /// The spec or algorithm is one Trent does not implement (PKCS#1 v1.5), or the algorithm
    /// is not one of the wrapping key pair's kind.
    #[error("unsupported wrapping key spec or algorithm")]
    Unsupported,
    /// Key generation or encoding failed.
    #[error("wrapping key failure")]
    Internal,
    /// The encrypted key material does not decrypt under the wrapping key.
    #[error("the encrypted key material cannot be unwrapped")]
    Unwrap,
}

/// A key pair used to receive one import of key material.
pub struct WrappingKeyPair {
    private: Private,
}

enum Private {
    Rsa(PrivateDecryptingKey),
    /// The PKCS#8 and SPKI are kept: the parsed SM2 key does not give them back.
    Sm2 {
        key: Box<Sm2Key>,
        pkcs8: Zeroizing<Vec<u8>>,
        public: Vec<u8>,
    },
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
            WrappingKeySpec::Sm2 => {
                let der = sm2_key::generate_pkcs8().map_err(|_| ImportError::Internal)?;
                return Self::from_pkcs8(spec, &der);
            }
        };
        let private = PrivateDecryptingKey::generate(size).map_err(|_| ImportError::Internal)?;
        Ok(Self {
            private: Private::Rsa(private),
        })
    }

    /// The pair of `spec` from the PKCS#8 DER [`Self::pkcs8_der`] gave.
    pub fn from_pkcs8(spec: WrappingKeySpec, der: &[u8]) -> Result<Self, ImportError> {
        let private = if spec == WrappingKeySpec::Sm2 {
            let (key, public) = Sm2Key::from_pkcs8(der).map_err(|_| ImportError::Internal)?;
            Private::Sm2 {
                key: Box::new(key),
                pkcs8: Zeroizing::new(der.to_vec()),
                public,
            }
        } else {
            Private::Rsa(PrivateDecryptingKey::from_pkcs8(der).map_err(|_| ImportError::Internal)?)
        };
        Ok(Self { private })
    }

    /// The private key as PKCS#8 DER, to be wrapped under the root key.
    pub fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        match &self.private {
            Private::Rsa(private) => {
                let der = private.as_der().map_err(|_| ImportError::Internal)?;
                Ok(Zeroizing::new(der.as_ref().to_vec()))
            }
            Private::Sm2 { pkcs8, .. } => Ok(pkcs8.clone()),
        }
    }

    /// The public key as DER X.509 SubjectPublicKeyInfo, which is what AWS returns.
    pub fn public_key_der(&self) -> Result<Vec<u8>, ImportError> {
        match &self.private {
            Private::Rsa(private) => {
                let der = private
                    .public_key()
                    .as_der()
                    .map_err(|_| ImportError::Internal)?;
                Ok(der.as_ref().to_vec())
            }
            Private::Sm2 { public, .. } => Ok(public.clone()),
        }
    }

    /// Recovers the key material the caller wrapped with `algorithm`.
    pub fn unwrap_material(
        &self,
        algorithm: WrappingAlgorithm,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        let rsa = match &self.private {
            Private::Rsa(rsa) => rsa,
            Private::Sm2 { key, .. } => {
                return match algorithm {
                    // The GM/T 0009 DER ciphertext, as SM2PKE Decrypt takes.
                    WrappingAlgorithm::Sm2Pke => {
                        key.decrypt(encrypted).map_err(|_| ImportError::Unwrap)
                    }
                    _ => Err(ImportError::Unsupported),
                };
            }
        };
        match algorithm {
            WrappingAlgorithm::RsaesOaepSha1 => Self::oaep(rsa, &OAEP_SHA1_MGF1SHA1, encrypted),
            WrappingAlgorithm::RsaesOaepSha256 => {
                Self::oaep(rsa, &OAEP_SHA256_MGF1SHA256, encrypted)
            }
            WrappingAlgorithm::RsaAesKeyWrapSha1 => {
                Self::rsa_aes_key_wrap(rsa, &OAEP_SHA1_MGF1SHA1, encrypted)
            }
            WrappingAlgorithm::RsaAesKeyWrapSha256 => {
                Self::rsa_aes_key_wrap(rsa, &OAEP_SHA256_MGF1SHA256, encrypted)
            }
            WrappingAlgorithm::RsaesPkcs1V15 | WrappingAlgorithm::Sm2Pke => {
                Err(ImportError::Unsupported)
            }
        }
    }

    fn oaep(
        rsa: &PrivateDecryptingKey,
        algorithm: &'static OaepAlgorithm,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        let key = OaepPrivateDecryptingKey::new(rsa.clone()).map_err(|_| ImportError::Internal)?;
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
        rsa: &PrivateDecryptingKey,
        algorithm: &'static OaepAlgorithm,
        encrypted: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ImportError> {
        let rsa_len = rsa.key_size_bytes();
        if encrypted.len() <= rsa_len {
            return Err(ImportError::Unwrap);
        }
        let (wrapped_aes, wrapped_material) = encrypted.split_at(rsa_len);
        let aes = Self::oaep(rsa, algorithm, wrapped_aes)?;
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
        let again =
            WrappingKeyPair::from_pkcs8(WrappingKeySpec::Rsa2048, &pair.pkcs8_der().unwrap())
                .unwrap();
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
    fn sm2pke_round_trip() {
        use sm2::pkcs8::DecodePublicKey;
        let pair = WrappingKeyPair::generate(WrappingKeySpec::Sm2).unwrap();
        let again =
            WrappingKeyPair::from_pkcs8(WrappingKeySpec::Sm2, &pair.pkcs8_der().unwrap()).unwrap();
        let public = pair.public_key_der().unwrap();
        assert_eq!(again.public_key_der().unwrap(), public);
        // What a caller does with the SPKI: SM2PKE encryption, the GM/T 0009 DER form.
        let key =
            sm2::pke::EncryptingKey::new(sm2::PublicKey::from_public_key_der(&public).unwrap());
        let material = crate::asymmetric::generate_pkcs8(crate::spec::KeySpec::Sm2).unwrap();
        let wrapped = key
            .encrypt_der(
                &mut sm2::elliptic_curve::common::getrandom::SysRng,
                &material,
            )
            .unwrap();
        let out = again
            .unwrap_material(WrappingAlgorithm::Sm2Pke, &wrapped)
            .unwrap();
        assert_eq!(out.as_slice(), material.as_slice());
        let mut tampered = wrapped.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert_eq!(
            again.unwrap_material(WrappingAlgorithm::Sm2Pke, &tampered),
            Err(ImportError::Unwrap)
        );
        // An SM2 pair takes no RSA algorithm, an RSA pair not SM2PKE.
        assert_eq!(
            again.unwrap_material(WrappingAlgorithm::RsaesOaepSha256, &wrapped),
            Err(ImportError::Unsupported)
        );
        let rsa = WrappingKeyPair::generate(WrappingKeySpec::Rsa2048).unwrap();
        assert_eq!(
            rsa.unwrap_material(WrappingAlgorithm::Sm2Pke, &wrapped),
            Err(ImportError::Unsupported)
        );
        // Another SM2 pair cannot unwrap it.
        let other = WrappingKeyPair::generate(WrappingKeySpec::Sm2).unwrap();
        assert_eq!(
            other.unwrap_material(WrappingAlgorithm::Sm2Pke, &wrapped),
            Err(ImportError::Unwrap)
        );
    }

    #[test]
    fn imported_ids_depend_on_material_and_key() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(imported_material_id("k", &a), imported_material_id("k", &a));
        assert_ne!(imported_material_id("k", &a), imported_material_id("k", &b));
        assert_ne!(imported_material_id("k", &a), imported_material_id("j", &a));
    }
}
