//! The two signing modes AWS-LC's safe API lacks: Ed25519ph over a caller-supplied SHA-512
//! digest (`ED25519_PH_SHA_512`, MessageType DIGEST) and ML-DSA over a caller-supplied 64-byte
//! μ (`ML_DSA_SHAKE_256`, MessageType EXTERNAL_MU).
//!
//! Reaching them in AWS-LC would take FFI, which the workspace forbids (`unsafe_code`), so they
//! use RustCrypto's `ed25519-dalek` and `ml-dsa`, built from the same seed as the AWS-LC key
//! (their public keys are checked to match when the key is loaded). Both keep their secrets in
//! zeroize-on-drop types. Plain Ed25519 and ML-DSA stay on AWS-LC.

use digest::consts::U64;
use digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update};
use ml_dsa::common::array::Array;
use ml_dsa::{
    EncodedSignature, EncodedVerifyingKey, ExpandedSigningKey, MlDsa44, MlDsa65, MlDsa87,
    MlDsaParams, Signature, VerifyingKey,
};

use crate::spec::KeySpec;

/// A SHA-512 digest the caller already computed, presented as the hasher `ed25519-dalek`'s
/// prehash API expects: updates are ignored and finalizing yields the digest.
#[derive(Clone)]
struct Precomputed([u8; 64]);

impl Default for Precomputed {
    fn default() -> Self {
        Precomputed([0; 64])
    }
}

impl HashMarker for Precomputed {}

impl OutputSizeUser for Precomputed {
    type OutputSize = U64;
}

impl Update for Precomputed {
    fn update(&mut self, _data: &[u8]) {}
}

impl FixedOutput for Precomputed {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.0);
    }
}

fn precomputed(digest: &[u8]) -> Option<Precomputed> {
    digest.try_into().ok().map(Precomputed)
}

/// An Ed25519 key for Ed25519ph signing.
pub(crate) struct Ed25519Ph(ed25519_dalek::SigningKey);

impl Ed25519Ph {
    /// From the 32-byte seed; `None` unless the derived public key is `public`.
    pub(crate) fn from_seed(seed: &[u8], public: &[u8]) -> Option<Self> {
        let seed: &[u8; 32] = seed.try_into().ok()?;
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        (key.verifying_key().as_bytes().as_slice() == public).then_some(Self(key))
    }

    /// Ed25519ph (RFC 8032, empty context) over a 64-byte SHA-512 digest.
    pub(crate) fn sign(&self, digest: &[u8]) -> Option<Vec<u8>> {
        let signature = self.0.sign_prehashed(precomputed(digest)?, None).ok()?;
        Some(signature.to_bytes().to_vec())
    }
}

/// Verifies an Ed25519ph signature with a raw 32-byte public key.
pub(crate) fn ed25519ph_verify(public: &[u8], digest: &[u8], signature: &[u8]) -> bool {
    let (Ok(public), Some(digest), Ok(signature)) = (
        <&[u8; 32]>::try_from(public),
        precomputed(digest),
        ed25519_dalek::Signature::from_slice(signature),
    ) else {
        return false;
    };
    ed25519_dalek::VerifyingKey::from_bytes(public)
        .map(|k| k.verify_prehashed(digest, None, &signature).is_ok())
        .unwrap_or(false)
}

/// An ML-DSA key for signing a precomputed μ.
pub(crate) enum MuSigner {
    L44(Box<ExpandedSigningKey<MlDsa44>>),
    L65(Box<ExpandedSigningKey<MlDsa65>>),
    L87(Box<ExpandedSigningKey<MlDsa87>>),
}

/// The 32-byte seed of AWS-LC's seed-only ML-DSA PKCS#8 (RFC 9881 `seed` choice:
/// `... 04 22 80 20 <seed>`, 54 bytes in all).
fn seed_of(pkcs8: &[u8]) -> Option<&[u8]> {
    if pkcs8.len() != 54 || pkcs8.get(18..22) != Some(&[0x04, 0x22, 0x80, 0x20]) {
        return None;
    }
    pkcs8.get(22..)
}

fn expand<P: MlDsaParams>(seed: &[u8], public: &[u8]) -> Option<Box<ExpandedSigningKey<P>>> {
    let seed = Array::try_from(seed).ok()?;
    let key = ExpandedSigningKey::<P>::from_seed(&seed);
    (key.verifying_key().encode().as_slice() == public).then(|| Box::new(key))
}

fn sign_mu_with<P: MlDsaParams>(key: &ExpandedSigningKey<P>, mu: &[u8]) -> Option<Vec<u8>> {
    let mu = Array::try_from(mu).ok()?;
    Some(key.sign_mu_deterministic(&mu).encode().to_vec())
}

fn verify_mu_with<P: MlDsaParams>(public: &[u8], mu: &[u8], signature: &[u8]) -> bool {
    let (Ok(public), Ok(mu), Ok(signature)) = (
        EncodedVerifyingKey::<P>::try_from(public),
        Array::try_from(mu),
        EncodedSignature::<P>::try_from(signature),
    ) else {
        return false;
    };
    let Some(signature) = Signature::<P>::decode(&signature) else {
        return false;
    };
    VerifyingKey::<P>::decode(&public).verify_mu(&mu, &signature)
}

impl MuSigner {
    /// From AWS-LC's PKCS#8; `None` if it is not the seed-only form or the derived public key
    /// differs from `public` (the raw FIPS 204 encoding).
    pub(crate) fn from_pkcs8(spec: KeySpec, pkcs8: &[u8], public: &[u8]) -> Option<Self> {
        let seed = seed_of(pkcs8)?;
        Some(match spec {
            KeySpec::MlDsa44 => MuSigner::L44(expand(seed, public)?),
            KeySpec::MlDsa65 => MuSigner::L65(expand(seed, public)?),
            KeySpec::MlDsa87 => MuSigner::L87(expand(seed, public)?),
            _ => return None,
        })
    }

    /// An ML-DSA signature over the 64-byte μ (FIPS 204 Algorithm 7 with external μ).
    pub(crate) fn sign_mu(&self, mu: &[u8]) -> Option<Vec<u8>> {
        match self {
            MuSigner::L44(k) => sign_mu_with(k, mu),
            MuSigner::L65(k) => sign_mu_with(k, mu),
            MuSigner::L87(k) => sign_mu_with(k, mu),
        }
    }
}

/// Verifies an ML-DSA signature over μ with the raw public key of `spec`.
pub(crate) fn ml_dsa_verify_mu(spec: KeySpec, public: &[u8], mu: &[u8], signature: &[u8]) -> bool {
    match spec {
        KeySpec::MlDsa44 => verify_mu_with::<MlDsa44>(public, mu, signature),
        KeySpec::MlDsa65 => verify_mu_with::<MlDsa65>(public, mu, signature),
        KeySpec::MlDsa87 => verify_mu_with::<MlDsa87>(public, mu, signature),
        _ => false,
    }
}

/// Length of the raw public key inside an SPKI of `spec`, for the two key types handled here.
pub(crate) fn raw_public_len(spec: KeySpec) -> Option<usize> {
    match spec {
        KeySpec::EccNistEdwards25519 => Some(32),
        KeySpec::MlDsa44 => Some(1312),
        KeySpec::MlDsa65 => Some(1952),
        KeySpec::MlDsa87 => Some(2592),
        _ => None,
    }
}
