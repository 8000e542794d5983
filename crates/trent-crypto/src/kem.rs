//! ML-KEM (FIPS 203) key material for ENCAPSULATE_DECAPSULATE keys: ML_KEM_512, ML_KEM_768 and
//! ML_KEM_1024, on AWS-LC (`aws_lc_rs::kem`).
//!
//! **Stored form.** AWS-LC offers no PKCS#8 for ML-KEM and no key generation from the 64-byte
//! seed, but it exports and imports the FIPS 203 *expanded* decapsulation key
//! `dk = dk_PKE ‖ ek ‖ H(ek) ‖ z` (1632, 2400 or 3168 bytes). That is what Trent wraps under the
//! root key. A decapsulation key built from bytes cannot give its encapsulation key back in
//! AWS-LC, so [`MlKemKey::from_decapsulation_key`] takes `ek` from its place inside `dk`
//! (FIPS 203 §7.1) and checks it against the stored `H(ek)` (SHA3-256) before use.
//!
//! **Public key.** GetPublicKey returns, as for every asymmetric key in AWS KMS, a DER
//! SubjectPublicKeyInfo: the algorithm identifier `id-alg-ml-kem-512/768/1024`
//! (2.16.840.1.101.3.4.4.1/2/3, no parameters; RFC 9935) and the raw `ek` as the BIT STRING.
//!
//! Like the other key types here, an [`MlKemKey`] is neither `Clone` nor `Debug`; AWS-LC
//! cleanses the key when it is freed and shared secrets pass through [`Zeroizing`] buffers.

use aws_lc_rs::digest;
use aws_lc_rs::kem::{
    Algorithm, AlgorithmId, Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_512, ML_KEM_768,
    ML_KEM_1024,
};
use zeroize::Zeroizing;

use crate::asymmetric::AsymmetricError;
use crate::spec::{KeySpec, WireEnum};

/// Length of an ML-KEM shared secret (every parameter set).
pub const SHARED_SECRET_LEN: usize = 32;

/// The FIPS 203 parameter `k` of an ML-KEM key spec.
fn rank(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::MlKem512 => Some(2),
        KeySpec::MlKem768 => Some(3),
        KeySpec::MlKem1024 => Some(4),
        _ => None,
    }
}

fn algorithm(spec: KeySpec) -> Result<&'static Algorithm<AlgorithmId>, AsymmetricError> {
    match spec {
        KeySpec::MlKem512 => Ok(&ML_KEM_512),
        KeySpec::MlKem768 => Ok(&ML_KEM_768),
        KeySpec::MlKem1024 => Ok(&ML_KEM_1024),
        _ => Err(AsymmetricError::UnsupportedSpec(spec.as_str())),
    }
}

/// Length of an encapsulated shared secret (the ciphertext) for `spec`: 768, 1088 or 1568
/// bytes; `None` for a spec that is not ML-KEM.
pub fn ciphertext_len(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::MlKem512 => Some(768),
        KeySpec::MlKem768 => Some(1088),
        KeySpec::MlKem1024 => Some(1568),
        _ => None,
    }
}

/// Fresh ML-KEM key material of `spec`: the expanded decapsulation key (the stored form).
pub fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
    let key = DecapsulationKey::generate(algorithm(spec)?).map_err(|_| AsymmetricError::Failed)?;
    let bytes = key.key_bytes().map_err(|_| AsymmetricError::Failed)?;
    Ok(Zeroizing::new(bytes.as_ref().to_vec()))
}

/// `AlgorithmIdentifier ::= SEQUENCE { OID 2.16.840.1.101.3.4.4.n }` of `spec` (parameters
/// absent, RFC 9935).
fn algorithm_identifier(spec: KeySpec) -> Result<[u8; 13], AsymmetricError> {
    let last_arc = match spec {
        KeySpec::MlKem512 => 1,
        KeySpec::MlKem768 => 2,
        KeySpec::MlKem1024 => 3,
        _ => return Err(AsymmetricError::UnsupportedSpec(spec.as_str())),
    };
    Ok([
        0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, last_arc,
    ])
}

/// The DER SubjectPublicKeyInfo of the raw encapsulation key `ek` of `spec`.
pub fn public_key_der(spec: KeySpec, ek: &[u8]) -> Result<Vec<u8>, AsymmetricError> {
    let algorithm_identifier = algorithm_identifier(spec)?;
    let bit_string_len = ek.len() + 1; // the leading "unused bits" byte
    let body_len = algorithm_identifier.len() + 4 + bit_string_len;
    let mut der = Vec::with_capacity(4 + body_len);
    der.push(0x30);
    push_long_length(&mut der, body_len)?;
    der.extend_from_slice(&algorithm_identifier);
    der.push(0x03);
    push_long_length(&mut der, bit_string_len)?;
    der.push(0x00);
    der.extend_from_slice(ek);
    Ok(der)
}

/// The PKCS#8 private key (RFC 5958 `OneAsymmetricKey`, version 0) of the expanded
/// decapsulation key `dk` of `spec`, in RFC 9935's `expandedKey` form of `ML-KEM-PrivateKey`
/// (an OCTET STRING holding `dk`, inside the `privateKey` OCTET STRING). RFC 9935 also has a
/// `seed` form (the 64-byte `d ‖ z`), but AWS-LC neither exports the seed nor generates from
/// it, so the expanded form is the one Trent can write (docs/decisions.md, "ML-KEM keys").
pub fn private_key_pkcs8(spec: KeySpec, dk: &[u8]) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
    let algorithm_identifier = algorithm_identifier(spec)?;
    let rank = rank(spec).ok_or(AsymmetricError::UnsupportedSpec(spec.as_str()))?;
    if dk.len() != 768 * rank + 96 {
        return Err(AsymmetricError::Failed);
    }
    let inner_len = 4 + dk.len(); // OCTET STRING (expandedKey)
    let body_len = 3 + algorithm_identifier.len() + 4 + inner_len;
    let mut der = Zeroizing::new(Vec::with_capacity(4 + body_len));
    der.push(0x30);
    push_long_length(&mut der, body_len)?;
    der.extend_from_slice(&[0x02, 0x01, 0x00]); // version v1 (0)
    der.extend_from_slice(&algorithm_identifier);
    der.push(0x04); // privateKey
    push_long_length(&mut der, inner_len)?;
    der.push(0x04); // ML-KEM-PrivateKey: expandedKey
    push_long_length(&mut der, dk.len())?;
    der.extend_from_slice(dk);
    Ok(der)
}

/// A fresh ML-KEM key pair of `spec` for GenerateDataKeyPair: the PKCS#8 private key
/// ([`private_key_pkcs8`]) and the DER SubjectPublicKeyInfo public key.
pub fn generate_pair(spec: KeySpec) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), AsymmetricError> {
    let dk = generate(spec)?;
    let public = MlKemKey::from_decapsulation_key(spec, &dk)?
        .public_key_der()
        .to_vec();
    Ok((private_key_pkcs8(spec, &dk)?, public))
}

/// A DER length in the two-byte long form (every ML-KEM SPKI length is 256..=65535).
fn push_long_length(der: &mut Vec<u8>, len: usize) -> Result<(), AsymmetricError> {
    let len = u16::try_from(len).map_err(|_| AsymmetricError::Failed)?;
    if len < 256 {
        return Err(AsymmetricError::Failed);
    }
    der.push(0x82);
    der.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The raw encapsulation key inside a DER SubjectPublicKeyInfo of `spec` (exactly the form
/// [`public_key_der`] makes); `None` for anything else.
pub fn encapsulation_key_from_der(spec: KeySpec, der: &[u8]) -> Option<&[u8]> {
    let ek_len = 384 * rank(spec)? + 32;
    let ek = der.get(der.len().checked_sub(ek_len)?..)?;
    (public_key_der(spec, ek).ok()?.as_slice() == der).then_some(ek)
}

/// Encapsulates a fresh shared secret to the public key `public_der` (DER SPKI) of `spec`:
/// `(ciphertext, shared secret)`. What a holder of the public key does outside KMS.
pub fn encapsulate_to(
    spec: KeySpec,
    public_der: &[u8],
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), AsymmetricError> {
    let ek = encapsulation_key_from_der(spec, public_der).ok_or(AsymmetricError::BadPeerKey)?;
    let key =
        EncapsulationKey::new(algorithm(spec)?, ek).map_err(|_| AsymmetricError::BadPeerKey)?;
    encapsulate_with(&key)
}

fn encapsulate_with(
    key: &EncapsulationKey<AlgorithmId>,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), AsymmetricError> {
    let (ciphertext, secret) = key.encapsulate().map_err(|_| AsymmetricError::Failed)?;
    Ok((
        ciphertext.as_ref().to_vec(),
        Zeroizing::new(secret.as_ref().to_vec()),
    ))
}

/// A parsed ML-KEM key pair: the decapsulation key, its encapsulation key and the SPKI.
pub struct MlKemKey {
    spec: KeySpec,
    decapsulation: DecapsulationKey<AlgorithmId>,
    encapsulation: EncapsulationKey<AlgorithmId>,
    public_der: Vec<u8>,
}

impl MlKemKey {
    /// Parses the stored expanded decapsulation key `dk` of `spec`.
    pub fn from_decapsulation_key(spec: KeySpec, dk: &[u8]) -> Result<Self, AsymmetricError> {
        let alg = algorithm(spec)?;
        let k = rank(spec).ok_or(AsymmetricError::UnsupportedSpec(spec.as_str()))?;
        // dk = dk_PKE (384k) ‖ ek (384k + 32) ‖ H(ek) (32) ‖ z (32).
        let ek_start = 384 * k;
        let ek_end = ek_start + 384 * k + 32;
        if dk.len() != ek_end + 64 {
            return Err(AsymmetricError::BadMaterial);
        }
        let ek = dk
            .get(ek_start..ek_end)
            .ok_or(AsymmetricError::BadMaterial)?;
        let hash = dk
            .get(ek_end..ek_end + 32)
            .ok_or(AsymmetricError::BadMaterial)?;
        if digest::digest(&digest::SHA3_256, ek).as_ref() != hash {
            return Err(AsymmetricError::BadMaterial);
        }
        let decapsulation =
            DecapsulationKey::new(alg, dk).map_err(|_| AsymmetricError::BadMaterial)?;
        let encapsulation =
            EncapsulationKey::new(alg, ek).map_err(|_| AsymmetricError::BadMaterial)?;
        let public_der = public_key_der(spec, ek)?;
        Ok(Self {
            spec,
            decapsulation,
            encapsulation,
            public_der,
        })
    }

    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The public (encapsulation) key as DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// A fresh shared secret and its encapsulated form: `(ciphertext, shared secret)`.
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), AsymmetricError> {
        encapsulate_with(&self.encapsulation)
    }

    /// The shared secret of `ciphertext`. A ciphertext of the wrong length is
    /// [`AsymmetricError::Decrypt`]; any other ciphertext yields 32 bytes (ML-KEM's implicit
    /// rejection: a ciphertext not made for this key gives an unrelated, random-looking secret).
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, AsymmetricError> {
        if Some(ciphertext.len()) != ciphertext_len(self.spec) {
            return Err(AsymmetricError::Decrypt);
        }
        let secret = self
            .decapsulation
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| AsymmetricError::Decrypt)?;
        Ok(Zeroizing::new(secret.as_ref().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: [KeySpec; 3] = [KeySpec::MlKem512, KeySpec::MlKem768, KeySpec::MlKem1024];

    #[test]
    fn stored_form_round_trips_and_holds_the_encapsulation_key() {
        for spec in SPECS {
            let alg = algorithm(spec).unwrap();
            let fresh = DecapsulationKey::generate(alg).unwrap();
            let dk = fresh.key_bytes().unwrap();
            let ek = fresh.encapsulation_key().unwrap().key_bytes().unwrap();
            let key = MlKemKey::from_decapsulation_key(spec, dk.as_ref()).unwrap();
            assert_eq!(
                encapsulation_key_from_der(spec, key.public_key_der()),
                Some(ek.as_ref())
            );
            // Encapsulated with AWS-LC's own key object, decapsulated by the parsed key.
            let (ct, ss) = fresh.encapsulation_key().unwrap().encapsulate().unwrap();
            assert_eq!(
                key.decapsulate(ct.as_ref()).unwrap().as_slice(),
                ss.as_ref()
            );
            let (ct, ss) = key.encapsulate().unwrap();
            assert_eq!(ct.len(), ciphertext_len(spec).unwrap());
            assert_eq!(ss.len(), SHARED_SECRET_LEN);
            assert_eq!(
                fresh.decapsulate(ct.as_slice().into()).unwrap().as_ref(),
                ss.as_slice()
            );
        }
    }

    #[test]
    fn spki_has_the_rfc_9935_layout() {
        let dk = generate(KeySpec::MlKem768).unwrap();
        let key = MlKemKey::from_decapsulation_key(KeySpec::MlKem768, &dk).unwrap();
        let der = key.public_key_der();
        assert_eq!(der.len(), 22 + 1184);
        assert_eq!(
            der.get(..22).unwrap(),
            &[
                0x30, 0x82, 0x04, 0xb2, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
                0x04, 0x04, 0x02, 0x03, 0x82, 0x04, 0xa1, 0x00
            ]
        );
    }

    #[test]
    fn data_key_pairs_are_rfc_9935_pkcs8_that_decapsulate_what_the_public_key_encapsulates() {
        for spec in SPECS {
            let (pkcs8, public) = generate_pair(spec).unwrap();
            let dk_len = 768 * rank(spec).unwrap() + 96;
            let [hi, lo] = u16::try_from(dk_len).unwrap().to_be_bytes();
            let [ihi, ilo] = u16::try_from(dk_len + 4).unwrap().to_be_bytes();
            let [bhi, blo] = u16::try_from(dk_len + 4 + 4 + 16).unwrap().to_be_bytes();
            let arc = match spec {
                KeySpec::MlKem512 => 1,
                KeySpec::MlKem768 => 2,
                _ => 3,
            };
            // OneAsymmetricKey { version 0, id-alg-ml-kem-*, privateKey OCTET STRING {
            //   expandedKey OCTET STRING } }, written out byte by byte.
            let header = [
                0x30, 0x82, bhi, blo, 0x02, 0x01, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48,
                0x01, 0x65, 0x03, 0x04, 0x04, arc, 0x04, 0x82, ihi, ilo, 0x04, 0x82, hi, lo,
            ];
            assert_eq!(pkcs8.get(..28).unwrap(), &header, "{spec:?}");
            let dk = pkcs8.get(28..).unwrap();
            assert_eq!(dk.len(), dk_len);
            // What a holder of the public key encapsulates, AWS-LC's own key object built from
            // the private key's bytes decapsulates.
            let (ciphertext, secret) = encapsulate_to(spec, &public).unwrap();
            let private = DecapsulationKey::new(algorithm(spec).unwrap(), dk).unwrap();
            assert_eq!(
                private
                    .decapsulate(ciphertext.as_slice().into())
                    .unwrap()
                    .as_ref(),
                secret.as_slice()
            );
        }
        assert!(generate_pair(KeySpec::Rsa2048).is_err());
        assert!(private_key_pkcs8(KeySpec::MlKem512, &[0; 2400]).is_err());
    }

    #[test]
    fn tampered_or_misfit_material_is_refused() {
        let mut dk = generate(KeySpec::MlKem512).unwrap();
        assert!(MlKemKey::from_decapsulation_key(KeySpec::MlKem768, &dk).is_err());
        if let Some(b) = dk.get_mut(768 + 5) {
            *b ^= 1;
        }
        assert_eq!(
            MlKemKey::from_decapsulation_key(KeySpec::MlKem512, &dk).err(),
            Some(AsymmetricError::BadMaterial)
        );
    }

    #[test]
    fn wrong_length_ciphertext_fails_and_foreign_ciphertext_is_implicitly_rejected() {
        let dk = generate(KeySpec::MlKem512).unwrap();
        let key = MlKemKey::from_decapsulation_key(KeySpec::MlKem512, &dk).unwrap();
        assert_eq!(
            key.decapsulate(&[0u8; 767]).err(),
            Some(AsymmetricError::Decrypt)
        );
        let (ct, ss) = key.encapsulate().unwrap();
        let mut other = ct.clone();
        if let Some(b) = other.first_mut() {
            *b ^= 1;
        }
        let rejected = key.decapsulate(&other).unwrap();
        assert_eq!(rejected.len(), 32);
        assert_ne!(rejected.as_slice(), ss.as_slice());
        let (ct2, ss2) = encapsulate_to(KeySpec::MlKem512, key.public_key_der()).unwrap();
        assert_eq!(key.decapsulate(&ct2).unwrap().as_slice(), ss2.as_slice());
    }
}
