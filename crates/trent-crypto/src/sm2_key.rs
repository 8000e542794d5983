//! SM2 keys (the China Regions' key spec): SM2DSA signatures and SM2PKE encryption, on
//! RustCrypto's `sm2` crate (AWS-LC has no SM2).
//!
//! As AWS KMS: the private key is stored as PKCS#8 (id-ecPublicKey on the SM2 curve), the public
//! key is a SubjectPublicKeyInfo of the same form; SM2DSA over a RAW message uses the default
//! distinguishing id `1234567812345678` (Z_A is computed here), over a DIGEST the caller's
//! 32-byte SM3(Z_A || M) is signed as is; signatures are DER `SEQUENCE { r, s }`; SM2PKE
//! ciphertexts are the GM/T 0009 ASN.1 DER form (C1, C3, C2). A KEY_AGREEMENT key does ECDH on
//! the SM2 curve (`elliptic-curve`'s generic `ecdh`): the shared secret is the x-coordinate of
//! the shared point, as for the NIST curves.

use sm2::dsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use sm2::dsa::signature::{Signer, Verifier};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::Generate;
use sm2::elliptic_curve::common::getrandom::SysRng;
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sm2::pke::{DecryptingKey, EncryptingKey};
use sm2::{PublicKey, SecretKey, Sm2};
use zeroize::Zeroizing;

use crate::asymmetric::AsymmetricError;
use crate::spec::MessageType;

/// The distinguishing id AWS KMS uses for SM2DSA over a RAW message.
const DIST_ID: &str = "1234567812345678";

/// The largest SM2PKE plaintext AWS KMS accepts.
pub const SM2PKE_MAX_PLAINTEXT: usize = 1024;

/// A parsed SM2 private key, ready for either usage.
pub(crate) struct Sm2Key {
    signing: SigningKey,
    decrypting: DecryptingKey,
}

/// Fresh SM2 private key material as PKCS#8 DER.
pub(crate) fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
    let secret = SecretKey::generate();
    let der = secret.to_pkcs8_der().map_err(|_| AsymmetricError::Failed)?;
    Ok(Zeroizing::new(der.as_bytes().to_vec()))
}

/// Parses PKCS#8 DER of an SM2 private key into the secret and its public key as SPKI DER (what
/// both usages' parsers need). Not an SM2 private key is [`AsymmetricError::BadMaterial`].
fn secret_from_pkcs8(der: &[u8]) -> Result<(SecretKey, Vec<u8>), AsymmetricError> {
    let secret = SecretKey::from_pkcs8_der(der).map_err(|_| AsymmetricError::BadMaterial)?;
    let public = secret
        .public_key()
        .to_public_key_der()
        .map_err(|_| AsymmetricError::Failed)?
        .as_bytes()
        .to_vec();
    Ok((secret, public))
}

impl Sm2Key {
    /// Parses PKCS#8 DER of an SM2 private key; returns it with its SPKI DER.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<(Self, Vec<u8>), AsymmetricError> {
        let (secret, public) = secret_from_pkcs8(der)?;
        let signing =
            SigningKey::new(DIST_ID, &secret).map_err(|_| AsymmetricError::BadMaterial)?;
        let decrypting = DecryptingKey::new(secret);
        Ok((
            Self {
                signing,
                decrypting,
            },
            public,
        ))
    }

    /// SM2DSA over a RAW message or a 32-byte DIGEST (SM3(Z_A || M)); DER signature.
    pub(crate) fn sign(
        &self,
        message_type: MessageType,
        message: &[u8],
    ) -> Result<Vec<u8>, AsymmetricError> {
        let signature: Signature = match message_type {
            MessageType::Raw => self
                .signing
                .try_sign(message)
                .map_err(|_| AsymmetricError::Failed)?,
            MessageType::Digest if message.len() == 32 => self
                .signing
                .sign_prehash(message)
                .map_err(|_| AsymmetricError::Failed)?,
            _ => return Err(AsymmetricError::WrongAlgorithm),
        };
        Ok(signature.to_der().as_bytes().to_vec())
    }

    /// SM2PKE encryption with the public key; the GM/T 0009 DER ciphertext.
    pub(crate) fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, AsymmetricError> {
        let key: &EncryptingKey = self.decrypting.encrypting_key();
        key.encrypt_der(&mut SysRng, plaintext)
            .map_err(|_| AsymmetricError::Failed)
    }

    /// SM2PKE decryption; any failure is [`AsymmetricError::Decrypt`].
    pub(crate) fn decrypt(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
        self.decrypting
            .decrypt_der(ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| AsymmetricError::Decrypt)
    }
}

/// A parsed SM2 private key of a KEY_AGREEMENT key.
pub(crate) struct Sm2Agreement {
    secret: SecretKey,
}

impl Sm2Agreement {
    /// Parses PKCS#8 DER of an SM2 private key; returns it with its SPKI DER.
    pub(crate) fn from_pkcs8(der: &[u8]) -> Result<(Self, Vec<u8>), AsymmetricError> {
        let (secret, public) = secret_from_pkcs8(der)?;
        Ok((Self { secret }, public))
    }

    /// ECDH with a peer public key given as SPKI DER on the SM2 curve: the 32-byte x-coordinate
    /// of the shared point. Another curve, a point off the curve or anything but an SPKI is
    /// [`AsymmetricError::BadPeerKey`].
    pub(crate) fn derive_shared_secret(
        &self,
        peer_spki: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
        let peer =
            PublicKey::from_public_key_der(peer_spki).map_err(|_| AsymmetricError::BadPeerKey)?;
        let shared = elliptic_curve::ecdh::diffie_hellman::<Sm2>(
            self.secret.to_nonzero_scalar(),
            peer.as_affine(),
        );
        Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
    }
}

/// Verifies an SM2DSA DER signature with an SM2 public key (SPKI DER); `Ok(false)` when it does
/// not verify.
pub(crate) fn verify(
    public_der: &[u8],
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, AsymmetricError> {
    let public =
        PublicKey::from_public_key_der(public_der).map_err(|_| AsymmetricError::BadMaterial)?;
    let key = VerifyingKey::new(DIST_ID, public).map_err(|_| AsymmetricError::BadMaterial)?;
    let Ok(signature) = Signature::from_der(signature) else {
        return Ok(false);
    };
    Ok(match message_type {
        MessageType::Raw => key.verify(message, &signature).is_ok(),
        MessageType::Digest if message.len() == 32 => {
            key.verify_prehash(message, &signature).is_ok()
        }
        _ => return Err(AsymmetricError::WrongAlgorithm),
    })
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a failed unwrap is a failed test"
    )]

    use super::*;

    #[test]
    fn signs_verifies_encrypts_and_decrypts() {
        let der = generate_pkcs8().unwrap();
        let (key, public) = Sm2Key::from_pkcs8(&der).unwrap();
        let sig = key.sign(MessageType::Raw, b"message").unwrap();
        assert!(verify(&public, MessageType::Raw, b"message", &sig).unwrap());
        assert!(!verify(&public, MessageType::Raw, b"other", &sig).unwrap());
        let digest = [7u8; 32];
        let sig = key.sign(MessageType::Digest, &digest).unwrap();
        assert!(verify(&public, MessageType::Digest, &digest, &sig).unwrap());
        assert_eq!(
            key.sign(MessageType::Digest, &[1; 31]).err(),
            Some(AsymmetricError::WrongAlgorithm)
        );
        let ct = key.encrypt(b"secret").unwrap();
        assert_eq!(key.decrypt(&ct).unwrap().as_slice(), b"secret");
        let mut tampered = ct.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert_eq!(key.decrypt(&tampered).err(), Some(AsymmetricError::Decrypt));
        // Another key's material is another key.
        let (other, _) = Sm2Key::from_pkcs8(&generate_pkcs8().unwrap()).unwrap();
        assert!(other.decrypt(&ct).is_err());
    }

    #[test]
    fn ecdh_both_sides_agree_and_match_an_independent_computation() {
        use sm2::elliptic_curve::Group;
        use sm2::elliptic_curve::sec1::ToSec1Point;
        use sm2::{ProjectivePoint, Scalar};

        let (a_der, b_der) = (generate_pkcs8().unwrap(), generate_pkcs8().unwrap());
        let (a, a_public) = Sm2Agreement::from_pkcs8(&a_der).unwrap();
        let (b, b_public) = Sm2Agreement::from_pkcs8(&b_der).unwrap();
        let ab = a.derive_shared_secret(&b_public).unwrap();
        let ba = b.derive_shared_secret(&a_public).unwrap();
        assert_eq!(ab.as_slice(), ba.as_slice());
        assert_eq!(ab.len(), 32);

        // Independently: the x-coordinate of b_scalar * (a_scalar * G), by the curve's own
        // point arithmetic, and elliptic-curve's ephemeral ECDH against A's public key.
        let a_secret = SecretKey::from_pkcs8_der(&a_der).unwrap();
        let b_secret = SecretKey::from_pkcs8_der(&b_der).unwrap();
        let a_scalar: Scalar = *a_secret.to_nonzero_scalar();
        let b_scalar: Scalar = *b_secret.to_nonzero_scalar();
        let shared = (ProjectivePoint::generator() * a_scalar * b_scalar).to_affine();
        assert!(!bool::from(ProjectivePoint::from(shared).is_identity()));
        let encoded = shared.to_sec1_point(false);
        assert_eq!(encoded.x().unwrap().as_slice(), ab.as_slice());
        let ephemeral = elliptic_curve::ecdh::EphemeralSecret::<Sm2>::generate();
        let ephemeral_spki = ephemeral.public_key().to_public_key_der().unwrap();
        assert_eq!(
            a.derive_shared_secret(ephemeral_spki.as_bytes())
                .unwrap()
                .as_slice(),
            ephemeral
                .diffie_hellman(&a_secret.public_key())
                .raw_secret_bytes()
                .as_slice()
        );

        // Not an SM2 SPKI: a P-256 key, a raw SEC1 point, garbage.
        let p256 = crate::asymmetric::generate_pkcs8(crate::spec::KeySpec::EccNistP256).unwrap();
        let p256 = crate::asymmetric::AsymmetricKey::from_pkcs8(
            crate::spec::KeySpec::EccNistP256,
            crate::spec::KeyUsage::KeyAgreement,
            &p256,
        )
        .unwrap();
        for peer in [
            p256.public_key_der(),
            a_secret.public_key().to_sec1_bytes().as_ref(),
            b"garbage".as_slice(),
        ] {
            assert_eq!(
                a.derive_shared_secret(peer).err(),
                Some(AsymmetricError::BadPeerKey)
            );
        }
    }
}
