//! Randomness from the system CSPRNG (via aws-lc-rs); every caller that needs random bytes comes here.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Fills `buf` with cryptographically secure random bytes.
///
/// The system generator failing is not something a KMS can work around, so it is reported as an
/// error for the caller to surface as an internal failure rather than a panic.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    SystemRandom::new().fill(buf).map_err(|_| RandomError)
}

/// `n` random bytes in a buffer that is zeroized when dropped (data keys, key material).
pub fn secret_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, RandomError> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    fill(&mut v)?;
    Ok(v)
}

/// A fixed-size array of random bytes (nonces, identifiers).
pub fn array<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut a = [0u8; N];
    fill(&mut a)?;
    Ok(a)
}

/// The system random generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;
