//! Key material in its parsed, ready-to-use form, and the two ways Trent makes it: generating
//! fresh material for a new key (CreateKey) and parsing stored material unwrapped from the root
//! key (loading a key into the cache).
//!
//! Material is parsed once, here, so the request path never parses key bytes: the cache holds
//! each version as a [`Material`] and the operations read it from there.

use std::sync::Arc;
use trent_crypto::asymmetric::{self, AsymmetricKey};
use trent_crypto::spec::{KeySpec, KeyUsage};

use trent_crypto::{HmacKey, SymmetricCustody, SymmetricKey};
use zeroize::Zeroizing;

use crate::error::{KmsError, KmsResult};

/// One version of a key's material, parsed once when the key is loaded (the hot path never
/// parses key material).
#[expect(
    clippy::large_enum_variant,
    reason = "each Material already sits in its own Arc; boxing the AES key would add an indirection to the hot path"
)]
pub enum Material {
    /// Built-in symmetric material, held in process (the common case: no indirection).
    Symmetric(SymmetricKey),
    Asymmetric(AsymmetricKey),
    Hmac(HmacKey),
    /// A symmetric key held by another custodian (an HSM key store's token): Trent holds a
    /// handle, the bytes stay with the custodian (`trent_crypto::custody`).
    HeldSymmetric(Arc<dyn SymmetricCustody>),
}

/// Fresh material for a new key: the bytes to wrap at rest and the parsed, cached form.
pub(crate) fn generate_material(
    spec: KeySpec,
    usage: KeyUsage,
) -> KmsResult<(Zeroizing<Vec<u8>>, Material)> {
    match spec {
        KeySpec::SymmetricDefault => {
            let key = SymmetricKey::generate()?;
            let raw = Zeroizing::new(key.expose_bytes().to_vec());
            Ok((raw, Material::Symmetric(key)))
        }
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            let key = HmacKey::generate(spec)?
                .ok_or_else(|| KmsError::Internal("HMAC spec without key length".into()))?;
            let raw = Zeroizing::new(key.expose_bytes().to_vec());
            Ok((raw, Material::Hmac(key)))
        }
        KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => {
            let dk = trent_crypto::kem::generate(spec)?;
            let key = AsymmetricKey::from_ml_kem(spec, &dk)?;
            Ok((dk, Material::Asymmetric(key)))
        }
        _ => {
            let der = asymmetric::generate_pkcs8(spec)?;
            let key = AsymmetricKey::from_pkcs8(spec, usage, &der)?;
            Ok((der, Material::Asymmetric(key)))
        }
    }
}

/// Parses unwrapped stored material of a key of `spec` and `usage`.
pub(crate) fn parse_material(spec: KeySpec, usage: KeyUsage, raw: &[u8]) -> KmsResult<Material> {
    let wrong = || KmsError::Internal("stored key material does not fit its key spec".into());
    match spec {
        KeySpec::SymmetricDefault => SymmetricKey::from_bytes(raw)
            .map(Material::Symmetric)
            .ok_or_else(wrong),
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
            HmacKey::from_bytes(spec, raw)
                .map(Material::Hmac)
                .ok_or_else(wrong)
        }
        // ML-KEM: the FIPS 203 expanded decapsulation key (no PKCS#8 in AWS-LC).
        KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => {
            Ok(Material::Asymmetric(AsymmetricKey::from_ml_kem(spec, raw)?))
        }
        _ => Ok(Material::Asymmetric(AsymmetricKey::from_pkcs8(
            spec, usage, raw,
        )?)),
    }
}
