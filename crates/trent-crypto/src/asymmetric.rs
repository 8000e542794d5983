//! Asymmetric key material: RSA, ECDSA/ECDH (NIST curves, secp256k1), Ed25519, ML-DSA, SM2
//! ([`crate::sm2_key`], RustCrypto), and ML-KEM (whose stored form is not PKCS#8: see
//! [`crate::kem`]).
//!
//! Material is generated and stored as PKCS#8 DER (wrapped under the root key by the caller) and
//! parsed once into an [`AsymmetricKey`], which holds the ready-to-use AWS-LC key object for the
//! key's usage plus its SubjectPublicKeyInfo. AWS-LC cleanses private keys when they are freed;
//! PKCS#8 bytes that pass through Trent's own buffers are [`Zeroizing`]. Like [`crate::SymmetricKey`],
//! an `AsymmetricKey` is neither `Clone` nor `Debug`.
//!
//! This module trusts that the caller already checked the algorithm against the key spec and the
//! message against the message type (the domain does, to give AWS's error messages); a mismatch
//! that slips through is an [`AsymmetricError`], never a panic.

use aws_lc_rs::agreement;
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsBigEndian, AsDer, Curve25519SeedBin, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    self, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, EcdsaVerificationAlgorithm, Ed25519KeyPair, KeyPair,
    PqdsaKeyPair, PqdsaSigningAlgorithm, RsaEncoding, RsaParameters, UnparsedPublicKey,
    VerificationAlgorithm,
};
use zeroize::Zeroizing;

use crate::kem::MlKemKey;
use crate::prehash::{self, Ed25519Ph, MuSigner};
use crate::sm2_key::{self, Sm2Agreement, Sm2Key};
use crate::spec::{EncryptionAlgorithm, KeySpec, KeyUsage, MessageType, SigningAlgorithm};

/// Why an asymmetric operation failed. Carries no key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AsymmetricError {
    #[error("key spec {0} is not an asymmetric key spec Trent supports")]
    UnsupportedSpec(&'static str),
    #[error("the algorithm or message type does not fit this key")]
    WrongAlgorithm,
    #[error("stored key material could not be parsed")]
    BadMaterial,
    #[error("the cryptographic operation failed")]
    Failed,
    /// Decryption failed (wrong key, wrong algorithm, tampered ciphertext): says nothing more.
    #[error("decryption failed")]
    Decrypt,
    /// The peer public key of a key agreement is not a valid key on this key's curve.
    #[error("the peer public key is not valid for this key")]
    BadPeerKey,
}

enum Inner {
    RsaSign(rsa::KeyPair),
    RsaDecrypt {
        private: OaepPrivateDecryptingKey,
        public: OaepPublicEncryptingKey,
    },
    Ecdsa(EcdsaKeyPair),
    Ecdh(agreement::PrivateKey),
    Ed25519(Ed25519KeyPair, Box<Ed25519Ph>),
    /// The MuSigner is absent only for PKCS#8 not in AWS-LC's seed-only form.
    MlDsa(PqdsaKeyPair, Option<MuSigner>),
    MlKem(Box<MlKemKey>),
    Sm2(Box<Sm2Key>),
    /// An SM2 KEY_AGREEMENT key (ECDH on the SM2 curve).
    Sm2Ecdh(Box<Sm2Agreement>),
}

/// A parsed private key for one usage, with its DER SubjectPublicKeyInfo.
pub struct AsymmetricKey {
    spec: KeySpec,
    public_der: Vec<u8>,
    inner: Inner,
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static EcdsaSigningAlgorithm> {
    Some(match spec {
        KeySpec::EccNistP256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        KeySpec::EccNistP384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        KeySpec::EccNistP521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        KeySpec::EccSecgP256k1 => &signature::ECDSA_P256K1_SHA256_ASN1_SIGNING,
        _ => return None,
    })
}

fn ecdsa_verification(spec: KeySpec) -> Option<&'static EcdsaVerificationAlgorithm> {
    Some(match spec {
        KeySpec::EccNistP256 => &signature::ECDSA_P256_SHA256_ASN1,
        KeySpec::EccNistP384 => &signature::ECDSA_P384_SHA384_ASN1,
        KeySpec::EccNistP521 => &signature::ECDSA_P521_SHA512_ASN1,
        KeySpec::EccSecgP256k1 => &signature::ECDSA_P256K1_SHA256_ASN1,
        _ => return None,
    })
}

fn ecdh(spec: KeySpec) -> Option<&'static agreement::Algorithm> {
    Some(match spec {
        KeySpec::EccNistP256 => &agreement::ECDH_P256,
        KeySpec::EccNistP384 => &agreement::ECDH_P384,
        KeySpec::EccNistP521 => &agreement::ECDH_P521,
        _ => return None,
    })
}

fn ml_dsa(spec: KeySpec) -> Option<&'static PqdsaSigningAlgorithm> {
    Some(match spec {
        KeySpec::MlDsa44 => &signature::ML_DSA_44_SIGNING,
        KeySpec::MlDsa65 => &signature::ML_DSA_65_SIGNING,
        KeySpec::MlDsa87 => &signature::ML_DSA_87_SIGNING,
        _ => return None,
    })
}

fn ml_dsa_verification(spec: KeySpec) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match spec {
        KeySpec::MlDsa44 => &signature::ML_DSA_44,
        KeySpec::MlDsa65 => &signature::ML_DSA_65,
        KeySpec::MlDsa87 => &signature::ML_DSA_87,
        _ => return None,
    })
}

fn rsa_size(spec: KeySpec) -> Option<rsa::KeySize> {
    Some(match spec {
        KeySpec::Rsa2048 => rsa::KeySize::Rsa2048,
        KeySpec::Rsa3072 => rsa::KeySize::Rsa3072,
        KeySpec::Rsa4096 => rsa::KeySize::Rsa4096,
        _ => return None,
    })
}

/// The SHA-2 digest a signing algorithm hashes RAW messages with.
fn sha(alg: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    match alg.digest_len()? {
        32 => Some(&digest::SHA256),
        48 => Some(&digest::SHA384),
        64 => Some(&digest::SHA512),
        _ => None,
    }
}

fn rsa_encoding(alg: SigningAlgorithm) -> Option<&'static dyn RsaEncoding> {
    use SigningAlgorithm::*;
    Some(match alg {
        RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn rsa_parameters(alg: SigningAlgorithm) -> Option<&'static RsaParameters> {
    use SigningAlgorithm::*;
    Some(match alg {
        RsassaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_2048_8192_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
        RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

fn oaep(alg: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Some(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

fn spki<T: AsDer<PublicKeyX509Der<'static>>>(key: &T) -> Result<Vec<u8>, AsymmetricError> {
    key.as_der()
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| AsymmetricError::Failed)
}

/// Largest plaintext RSAES_OAEP accepts for `spec`, as AWS documents it
/// (modulus length − 2 × hash length − 2).
pub fn rsa_max_plaintext(spec: KeySpec, alg: EncryptionAlgorithm) -> Option<usize> {
    let modulus = match spec {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        _ => return None,
    };
    let hash = match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => 20,
        EncryptionAlgorithm::RsaesOaepSha256 => 32,
        _ => return None,
    };
    Some(modulus - 2 * hash - 2)
}

/// Fresh private key material of `spec` as PKCS#8 (v1) DER.
pub fn generate_pkcs8(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
    let failed = |_| AsymmetricError::Failed;
    let der: Zeroizing<Vec<u8>> = if let Some(size) = rsa_size(spec) {
        let pair = rsa::KeyPair::generate(size).map_err(failed)?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(failed)?;
        Zeroizing::new(der.as_ref().to_vec())
    } else if let Some(alg) = ecdsa_signing(spec) {
        let pair = EcdsaKeyPair::generate(alg).map_err(failed)?;
        Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
    } else if spec == KeySpec::EccNistEdwards25519 {
        let pair = Ed25519KeyPair::generate().map_err(failed)?;
        Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
    } else if let Some(alg) = ml_dsa(spec) {
        let pair = PqdsaKeyPair::generate(alg).map_err(failed)?;
        Zeroizing::new(pair.to_pkcs8v1().map_err(failed)?.as_ref().to_vec())
    } else if spec == KeySpec::Sm2 {
        sm2_key::generate_pkcs8()?
    } else {
        return Err(AsymmetricError::UnsupportedSpec(spec_name(spec)));
    };
    Ok(der)
}

fn spec_name(spec: KeySpec) -> &'static str {
    use crate::spec::WireEnum;
    spec.as_str()
}

/// An RSA key of `spec` must have exactly the spec's modulus size (imported material may be
/// any size AWS-LC parses).
fn check_modulus(spec: KeySpec, modulus_bytes: usize) -> Result<(), AsymmetricError> {
    let expected = match spec {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        _ => return Err(AsymmetricError::UnsupportedSpec(spec_name(spec))),
    };
    if modulus_bytes == expected {
        Ok(())
    } else {
        Err(AsymmetricError::BadMaterial)
    }
}

impl AsymmetricKey {
    /// Parses PKCS#8 `der` as a key of `spec` for `usage` (RSA keys differ by usage: a signing
    /// key pair or an OAEP decryption key; NIST EC keys: ECDSA or ECDH).
    pub fn from_pkcs8(spec: KeySpec, usage: KeyUsage, der: &[u8]) -> Result<Self, AsymmetricError> {
        let mut rsa_public_der = None;
        if spec == KeySpec::Sm2 {
            if usage == KeyUsage::KeyAgreement {
                let (key, public_der) = Sm2Agreement::from_pkcs8(der)?;
                return Ok(Self {
                    spec,
                    public_der,
                    inner: Inner::Sm2Ecdh(Box::new(key)),
                });
            }
            // One parsed key serves SM2DSA and SM2PKE (the domain checks the key's usage).
            let (key, public_der) = Sm2Key::from_pkcs8(der)?;
            return Ok(Self {
                spec,
                public_der,
                inner: Inner::Sm2(Box::new(key)),
            });
        }
        let inner = match (spec, usage) {
            (KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096, KeyUsage::SignVerify) => {
                let pair = rsa::KeyPair::from_pkcs8(der).map_err(bad)?;
                check_modulus(spec, pair.public_modulus_len())?;
                Inner::RsaSign(pair)
            }
            (KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096, KeyUsage::EncryptDecrypt) => {
                let private = PrivateDecryptingKey::from_pkcs8(der).map_err(bad)?;
                check_modulus(spec, private.key_size_bytes())?;
                rsa_public_der = Some(spki(&private.public_key())?);
                let public = OaepPublicEncryptingKey::new(private.public_key()).map_err(bad)?;
                Inner::RsaDecrypt {
                    private: OaepPrivateDecryptingKey::new(private).map_err(bad)?,
                    public,
                }
            }
            (_, KeyUsage::KeyAgreement) => {
                let alg = ecdh(spec).ok_or(AsymmetricError::UnsupportedSpec(spec_name(spec)))?;
                Inner::Ecdh(agreement::PrivateKey::from_private_key_der(alg, der).map_err(bad)?)
            }
            (_, KeyUsage::SignVerify) => {
                if let Some(alg) = ecdsa_signing(spec) {
                    Inner::Ecdsa(EcdsaKeyPair::from_pkcs8(alg, der).map_err(bad)?)
                } else if spec == KeySpec::EccNistEdwards25519 {
                    let pair = Ed25519KeyPair::from_pkcs8(der).map_err(bad)?;
                    let seed = pair.seed().map_err(bad)?;
                    let seed = AsBigEndian::<Curve25519SeedBin>::as_be_bytes(&seed).map_err(bad)?;
                    let ph = Ed25519Ph::from_seed(seed.as_ref(), pair.public_key().as_ref())
                        .ok_or(AsymmetricError::BadMaterial)?;
                    Inner::Ed25519(pair, Box::new(ph))
                } else if let Some(alg) = ml_dsa(spec) {
                    let pair = PqdsaKeyPair::from_pkcs8(alg, der).map_err(bad)?;
                    let mu = MuSigner::from_pkcs8(spec, der, pair.public_key().as_ref());
                    Inner::MlDsa(pair, mu)
                } else {
                    return Err(AsymmetricError::UnsupportedSpec(spec_name(spec)));
                }
            }
            _ => return Err(AsymmetricError::UnsupportedSpec(spec_name(spec))),
        };
        let public_der = match &inner {
            Inner::RsaSign(k) => spki(k.public_key())?,
            Inner::RsaDecrypt { .. } => rsa_public_der.ok_or(AsymmetricError::Failed)?,
            Inner::Ecdsa(k) => spki(k.public_key())?,
            Inner::Ecdh(k) => spki(
                &k.compute_public_key()
                    .map_err(|_| AsymmetricError::Failed)?,
            )?,
            Inner::Ed25519(k, _) => spki(k.public_key())?,
            Inner::MlDsa(k, _) => spki(k.public_key())?,
            Inner::MlKem(k) => k.public_key_der().to_vec(),
            Inner::Sm2(_) | Inner::Sm2Ecdh(_) => return Err(AsymmetricError::Failed),
        };
        Ok(Self {
            spec,
            public_der,
            inner,
        })
    }

    /// An ENCAPSULATE_DECAPSULATE key of an ML-KEM `spec` from its stored (expanded FIPS 203)
    /// decapsulation key.
    pub fn from_ml_kem(spec: KeySpec, dk: &[u8]) -> Result<Self, AsymmetricError> {
        let key = MlKemKey::from_decapsulation_key(spec, dk)?;
        Ok(Self {
            spec,
            public_der: key.public_key_der().to_vec(),
            inner: Inner::MlKem(Box::new(key)),
        })
    }

    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// ML-KEM Encapsulate: `(ciphertext, shared secret)`.
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), AsymmetricError> {
        let Inner::MlKem(k) = &self.inner else {
            return Err(AsymmetricError::WrongAlgorithm);
        };
        k.encapsulate()
    }

    /// ML-KEM Decapsulate; a ciphertext of the wrong length is [`AsymmetricError::Decrypt`].
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
        let Inner::MlKem(k) = &self.inner else {
            return Err(AsymmetricError::WrongAlgorithm);
        };
        k.decapsulate(ciphertext)
    }

    /// Whether every signing mode of the key's spec is available: false only for an ML-DSA
    /// key whose PKCS#8 does not carry its seed (EXTERNAL_MU signing needs the seed).
    pub fn has_every_signing_mode(&self) -> bool {
        !matches!(self.inner, Inner::MlDsa(_, None))
    }

    /// The public key as DER SubjectPublicKeyInfo (what GetPublicKey returns).
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Signs `message` (RAW) or a precomputed digest (DIGEST) with `alg`.
    pub fn sign(
        &self,
        alg: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, AsymmetricError> {
        let failed = |_| AsymmetricError::Failed;
        match (&self.inner, message_type) {
            (Inner::RsaSign(k), MessageType::Raw | MessageType::Digest) => {
                let enc = rsa_encoding(alg).ok_or(AsymmetricError::WrongAlgorithm)?;
                let mut sig = vec![0u8; k.public_modulus_len()];
                if message_type == MessageType::Raw {
                    k.sign(enc, &SystemRandom::new(), message, &mut sig)
                        .map_err(failed)?;
                } else {
                    k.sign_digest(enc, &import_digest(alg, message)?, &mut sig)
                        .map_err(failed)?;
                }
                Ok(sig)
            }
            (Inner::Ecdsa(k), MessageType::Raw)
                if self.spec.signing_algorithms().contains(&alg) =>
            {
                let sig = k.sign(&SystemRandom::new(), message).map_err(failed)?;
                Ok(sig.as_ref().to_vec())
            }
            (Inner::Ecdsa(k), MessageType::Digest)
                if self.spec.signing_algorithms().contains(&alg) =>
            {
                let sig = k
                    .sign_digest(&import_digest(alg, message)?)
                    .map_err(failed)?;
                Ok(sig.as_ref().to_vec())
            }
            (Inner::Ed25519(k, _), MessageType::Raw) if alg == SigningAlgorithm::Ed25519Sha512 => {
                Ok(k.try_sign(message).map_err(failed)?.as_ref().to_vec())
            }
            (Inner::Ed25519(_, ph), MessageType::Digest)
                if alg == SigningAlgorithm::Ed25519PhSha512 =>
            {
                ph.sign(message).ok_or(AsymmetricError::WrongAlgorithm)
            }
            (Inner::MlDsa(_, Some(mu)), MessageType::ExternalMu)
                if alg == SigningAlgorithm::MlDsaShake256 =>
            {
                mu.sign_mu(message).ok_or(AsymmetricError::WrongAlgorithm)
            }
            (Inner::MlDsa(k, _), MessageType::Raw) if alg == SigningAlgorithm::MlDsaShake256 => {
                let mut sig = vec![0u8; k.algorithm().signature_len()];
                let n = k.sign(message, &mut sig).map_err(failed)?;
                sig.truncate(n);
                Ok(sig)
            }
            (Inner::Sm2(k), MessageType::Raw | MessageType::Digest)
                if alg == SigningAlgorithm::Sm2Dsa =>
            {
                k.sign(message_type, message)
            }
            _ => Err(AsymmetricError::WrongAlgorithm),
        }
    }

    /// Verifies `signature` over `message` (RAW) or a digest (DIGEST): `Ok(false)` when it does
    /// not verify.
    pub fn verify(
        &self,
        alg: SigningAlgorithm,
        message_type: MessageType,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, AsymmetricError> {
        verify_with_public_key(
            self.spec,
            &self.public_der,
            alg,
            message_type,
            message,
            signature,
        )
    }

    /// RSAES_OAEP encryption with the public key (Encrypt on an RSA ENCRYPT_DECRYPT key).
    pub fn encrypt(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, AsymmetricError> {
        if let Inner::Sm2(k) = &self.inner {
            return match alg {
                EncryptionAlgorithm::Sm2Pke => k.encrypt(plaintext),
                _ => Err(AsymmetricError::WrongAlgorithm),
            };
        }
        let Inner::RsaDecrypt { public, .. } = &self.inner else {
            return Err(AsymmetricError::WrongAlgorithm);
        };
        let oaep = oaep(alg).ok_or(AsymmetricError::WrongAlgorithm)?;
        let mut out = vec![0u8; public.ciphertext_size()];
        let n = public
            .encrypt(oaep, plaintext, &mut out, None)
            .map_err(|_| AsymmetricError::Failed)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// RSAES_OAEP decryption. Any failure is [`AsymmetricError::Decrypt`].
    pub fn decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
        if let Inner::Sm2(k) = &self.inner {
            return match alg {
                EncryptionAlgorithm::Sm2Pke => k.decrypt(ciphertext),
                _ => Err(AsymmetricError::WrongAlgorithm),
            };
        }
        let Inner::RsaDecrypt { private, .. } = &self.inner else {
            return Err(AsymmetricError::WrongAlgorithm);
        };
        let oaep = oaep(alg).ok_or(AsymmetricError::WrongAlgorithm)?;
        let mut out = Zeroizing::new(vec![0u8; private.min_output_size()]);
        let n = private
            .decrypt(oaep, ciphertext, &mut out, None)
            .map_err(|_| AsymmetricError::Decrypt)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// ECDH with a peer public key given as DER SubjectPublicKeyInfo: the shared secret is the
    /// x-coordinate of the shared point (what AWS and OpenSSL return), on a NIST curve or SM2.
    pub fn derive_shared_secret(
        &self,
        peer_spki: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
        let k = match &self.inner {
            Inner::Ecdh(k) => k,
            Inner::Sm2Ecdh(k) => return k.derive_shared_secret(peer_spki),
            _ => return Err(AsymmetricError::WrongAlgorithm),
        };
        // Only SPKI is accepted (AWS's contract); AWS-LC would also take a raw point.
        if peer_spki.first() != Some(&0x30) {
            return Err(AsymmetricError::BadPeerKey);
        }
        let peer = agreement::UnparsedPublicKey::new(k.algorithm(), peer_spki);
        agreement::agree(k, peer, AsymmetricError::BadPeerKey, |secret| {
            Ok(Zeroizing::new(secret.to_vec()))
        })
    }
}

fn bad<E>(_: E) -> AsymmetricError {
    AsymmetricError::BadMaterial
}

fn import_digest(alg: SigningAlgorithm, digest: &[u8]) -> Result<Digest, AsymmetricError> {
    let sha = sha(alg).ok_or(AsymmetricError::WrongAlgorithm)?;
    Digest::import_less_safe(digest, sha).map_err(|_| AsymmetricError::WrongAlgorithm)
}

/// Verifies a signature with a public key (SPKI DER) of `spec`; `Ok(false)` when it does not
/// verify. Used by Trent's Verify and by tests as an independent check.
pub fn verify_with_public_key(
    spec: KeySpec,
    public_der: &[u8],
    alg: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, AsymmetricError> {
    if !spec.signing_algorithms().contains(&alg) {
        return Err(AsymmetricError::WrongAlgorithm);
    }
    if spec == KeySpec::Sm2 {
        return sm2_key::verify(public_der, message_type, message, signature);
    }
    let raw_public = || {
        let n = prehash::raw_public_len(spec)?;
        public_der.get(public_der.len().checked_sub(n)?..)
    };
    match (alg, message_type) {
        (SigningAlgorithm::Ed25519PhSha512, MessageType::Digest) => {
            let public = raw_public().ok_or(AsymmetricError::WrongAlgorithm)?;
            return Ok(prehash::ed25519ph_verify(public, message, signature));
        }
        (SigningAlgorithm::MlDsaShake256, MessageType::ExternalMu) => {
            let public = raw_public().ok_or(AsymmetricError::WrongAlgorithm)?;
            return Ok(prehash::ml_dsa_verify_mu(spec, public, message, signature));
        }
        _ => {}
    }
    let verification: &'static dyn VerificationAlgorithm = if let Some(p) = rsa_parameters(alg) {
        p
    } else if let Some(e) = ecdsa_verification(spec) {
        e
    } else if spec == KeySpec::EccNistEdwards25519 && alg == SigningAlgorithm::Ed25519Sha512 {
        &signature::ED25519
    } else if let Some(m) = ml_dsa_verification(spec) {
        m
    } else {
        return Err(AsymmetricError::WrongAlgorithm);
    };
    let key = UnparsedPublicKey::new(verification, public_der);
    let ok = match message_type {
        MessageType::Raw => key.verify(message, signature).is_ok(),
        MessageType::Digest if sha(alg).is_some() && alg != SigningAlgorithm::Ed25519PhSha512 => {
            key.verify_digest(&import_digest(alg, message)?, signature)
                .is_ok()
        }
        _ => return Err(AsymmetricError::WrongAlgorithm),
    };
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(spec: KeySpec, usage: KeyUsage) -> AsymmetricKey {
        let der = generate_pkcs8(spec).unwrap();
        AsymmetricKey::from_pkcs8(spec, usage, &der).unwrap()
    }

    #[test]
    fn material_of_another_size_or_curve_is_refused() {
        let rsa2048 = generate_pkcs8(KeySpec::Rsa2048).unwrap();
        for usage in [KeyUsage::SignVerify, KeyUsage::EncryptDecrypt] {
            assert!(AsymmetricKey::from_pkcs8(KeySpec::Rsa2048, usage, &rsa2048).is_ok());
            assert_eq!(
                AsymmetricKey::from_pkcs8(KeySpec::Rsa3072, usage, &rsa2048).err(),
                Some(AsymmetricError::BadMaterial)
            );
        }
        let p384 = generate_pkcs8(KeySpec::EccNistP384).unwrap();
        for (spec, usage) in [
            (KeySpec::EccNistP256, KeyUsage::SignVerify),
            (KeySpec::EccNistP256, KeyUsage::KeyAgreement),
            (KeySpec::EccSecgP256k1, KeyUsage::SignVerify),
            (KeySpec::Rsa2048, KeyUsage::SignVerify),
        ] {
            assert!(AsymmetricKey::from_pkcs8(spec, usage, &p384).is_err());
        }
    }

    #[test]
    fn every_signing_algorithm_signs_and_verifies_raw_and_digest() {
        for spec in [
            KeySpec::Rsa2048,
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::EccSecgP256k1,
            KeySpec::EccNistEdwards25519,
            KeySpec::MlDsa44,
            KeySpec::MlDsa65,
            KeySpec::MlDsa87,
        ] {
            let k = key(spec, KeyUsage::SignVerify);
            for &alg in spec.signing_algorithms() {
                if alg == SigningAlgorithm::Ed25519PhSha512 {
                    continue; // DIGEST only: see ed25519ph_and_external_mu
                }
                let sig = k.sign(alg, MessageType::Raw, b"message").unwrap();
                assert!(k.verify(alg, MessageType::Raw, b"message", &sig).unwrap());
                assert!(!k.verify(alg, MessageType::Raw, b"messagE", &sig).unwrap());
                if let Some(sha) = sha(alg) {
                    let d = digest::digest(sha, b"message");
                    let dsig = k.sign(alg, MessageType::Digest, d.as_ref()).unwrap();
                    assert!(k.verify(alg, MessageType::Raw, b"message", &dsig).unwrap());
                    assert!(
                        k.verify(alg, MessageType::Digest, d.as_ref(), &sig)
                            .unwrap()
                    );
                }
            }
        }
    }

    #[test]
    fn ed25519ph_and_external_mu() {
        use ed25519_dalek::Digest as _;
        let k = key(KeySpec::EccNistEdwards25519, KeyUsage::SignVerify);
        let alg = SigningAlgorithm::Ed25519PhSha512;
        let d = digest::digest(&digest::SHA512, b"message");
        let sig = k.sign(alg, MessageType::Digest, d.as_ref()).unwrap();
        assert!(
            k.verify(alg, MessageType::Digest, d.as_ref(), &sig)
                .unwrap()
        );
        assert!(
            !k.verify(alg, MessageType::Digest, &[0u8; 64], &sig)
                .unwrap()
        );
        assert!(k.sign(alg, MessageType::Raw, b"message").is_err());
        // Independently: dalek's own SHA-512 hasher over the message verifies it.
        let public: [u8; 32] = k.public_key_der()[12..].try_into().unwrap();
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&sig).unwrap();
        let hasher = sha2::Sha512::new().chain_update(b"message");
        vk.verify_prehashed(hasher, None, &sig).unwrap();

        for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
            let k = key(spec, KeyUsage::SignVerify);
            let alg = SigningAlgorithm::MlDsaShake256;
            // μ = SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || M, 64) (FIPS 204, empty context).
            let raw = &k.public_key_der()
                [k.public_key_der().len() - prehash::raw_public_len(spec).unwrap()..];
            let mu = mu_of(raw, b"message");
            let sig = k.sign(alg, MessageType::ExternalMu, &mu).unwrap();
            // A signature over μ is an ordinary ML-DSA signature over the message (AWS-LC checks).
            assert!(k.verify(alg, MessageType::Raw, b"message", &sig).unwrap());
            assert!(k.verify(alg, MessageType::ExternalMu, &mu, &sig).unwrap());
            let raw_sig = k.sign(alg, MessageType::Raw, b"message").unwrap();
            assert!(
                k.verify(alg, MessageType::ExternalMu, &mu, &raw_sig)
                    .unwrap()
            );
            assert!(
                !k.verify(alg, MessageType::ExternalMu, &[0u8; 64], &sig)
                    .unwrap()
            );
        }
    }

    fn mu_of(public: &[u8], message: &[u8]) -> Vec<u8> {
        use sha3::digest::{ExtendableOutput, Update, XofReader};
        let mut tr = [0u8; 64];
        let mut h = sha3::Shake256::default();
        h.update(public);
        h.finalize_xof().read(&mut tr);
        let mut h = sha3::Shake256::default();
        h.update(&tr);
        h.update(&[0, 0]);
        h.update(message);
        let mut mu = vec![0u8; 64];
        h.finalize_xof().read(&mut mu);
        mu
    }

    #[test]
    fn rsa_oaep_round_trip_and_limits() {
        let k = key(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
        for alg in [
            EncryptionAlgorithm::RsaesOaepSha1,
            EncryptionAlgorithm::RsaesOaepSha256,
        ] {
            let max = rsa_max_plaintext(KeySpec::Rsa2048, alg).unwrap();
            let ct = k.encrypt(alg, &vec![7u8; max]).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(k.decrypt(alg, &ct).unwrap().len(), max);
            assert!(k.encrypt(alg, &vec![7u8; max + 1]).is_err());
        }
        let ct = k.encrypt(EncryptionAlgorithm::RsaesOaepSha1, b"x").unwrap();
        assert_eq!(
            k.decrypt(EncryptionAlgorithm::RsaesOaepSha256, &ct).err(),
            Some(AsymmetricError::Decrypt)
        );
    }

    #[test]
    fn ecdh_both_sides_agree() {
        let a = key(KeySpec::EccNistP384, KeyUsage::KeyAgreement);
        let b = key(KeySpec::EccNistP384, KeyUsage::KeyAgreement);
        let ab = a.derive_shared_secret(b.public_key_der()).unwrap();
        let ba = b.derive_shared_secret(a.public_key_der()).unwrap();
        assert_eq!(ab.as_slice(), ba.as_slice());
        assert_eq!(ab.len(), 48);
        let other = key(KeySpec::EccNistP256, KeyUsage::KeyAgreement);
        assert!(a.derive_shared_secret(other.public_key_der()).is_err());
        assert!(a.derive_shared_secret(b"garbage").is_err());
    }

    #[test]
    fn sm2_key_agreement_keys_agree_and_do_nothing_else() {
        let a = key(KeySpec::Sm2, KeyUsage::KeyAgreement);
        let b = key(KeySpec::Sm2, KeyUsage::KeyAgreement);
        let ab = a.derive_shared_secret(b.public_key_der()).unwrap();
        assert_eq!(
            ab.as_slice(),
            b.derive_shared_secret(a.public_key_der())
                .unwrap()
                .as_slice()
        );
        assert_eq!(ab.len(), 32);
        // The same PKCS#8 parsed for signing has the same public key.
        let der = generate_pkcs8(KeySpec::Sm2).unwrap();
        let agreeing =
            AsymmetricKey::from_pkcs8(KeySpec::Sm2, KeyUsage::KeyAgreement, &der).unwrap();
        let signing = AsymmetricKey::from_pkcs8(KeySpec::Sm2, KeyUsage::SignVerify, &der).unwrap();
        assert_eq!(agreeing.public_key_der(), signing.public_key_der());
        assert_eq!(
            a.sign(SigningAlgorithm::Sm2Dsa, MessageType::Raw, b"m")
                .err(),
            Some(AsymmetricError::WrongAlgorithm)
        );
        assert_eq!(
            a.encrypt(EncryptionAlgorithm::Sm2Pke, b"m").err(),
            Some(AsymmetricError::WrongAlgorithm)
        );
        assert_eq!(
            a.decrypt(EncryptionAlgorithm::Sm2Pke, b"m").err(),
            Some(AsymmetricError::WrongAlgorithm)
        );
        // Signing SM2 keys and NIST keys do not agree with SM2 peers across curves.
        assert_eq!(
            signing.derive_shared_secret(b.public_key_der()).err(),
            Some(AsymmetricError::WrongAlgorithm)
        );
        let p256 = key(KeySpec::EccNistP256, KeyUsage::KeyAgreement);
        assert!(p256.derive_shared_secret(a.public_key_der()).is_err());
        assert!(a.derive_shared_secret(p256.public_key_der()).is_err());
    }
}
