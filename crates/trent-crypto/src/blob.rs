//! The ciphertext blob returned by Encrypt, GenerateDataKey and ReEncrypt.
//!
//! The blob is self-describing, so Decrypt needs no `KeyId`: it names the key and the exact
//! version of key material that sealed it. Layout, version 1 (all integers big-endian):
//!
//! ```text
//! offset  size  field
//! 0       1     format version = 0x01 (key id is a UUID) or 0x02 (key id is a multi-Region key
//!               id: `mrk-` and the hex of these 16 bytes)
//! 1       1     algorithm      = 0x01 (AES-256-GCM, SYMMETRIC_DEFAULT)
//! 2       16    key id (the UUID of the KMS key, or a multi-Region key id's 16 bytes)
//! 18      32    key material id
//! 50      12    AES-GCM nonce (random)
//! 62      n     ciphertext (n = plaintext length)
//! 62+n    16    AES-GCM tag
//! ```
//!
//! The AAD is the 50-byte header (version, algorithm, key id, material id) followed by the
//! canonical encryption context, so changing any header byte, the context or the key used makes
//! authentication fail. Parsing is a bounds-checked cursor: malformed input is an error, never a
//! panic. The format is documented for users in `docs/ciphertext-format.md`.

use zeroize::Zeroizing;

use crate::context::EncryptionContext;
use crate::custody::{CustodyError, SymmetricCustody};
use crate::material::{MaterialId, NONCE_BYTES, SymmetricKey, TAG_LEN};
use crate::random;

/// Format version of a blob whose key id is a UUID.
pub const FORMAT_V1: u8 = 1;
/// Format version of a blob whose key id is a multi-Region key id (the same id in every Region,
/// so any related key can open it). Otherwise identical to version 1.
pub const FORMAT_V2_MULTI_REGION: u8 = 2;
/// Algorithm byte for AES-256-GCM (SYMMETRIC_DEFAULT).
pub const ALG_AES_256_GCM: u8 = 1;
/// Bytes before the nonce; they are authenticated as part of the AAD.
pub const HEADER_LEN: usize = 1 + 1 + 16 + 32;
/// Bytes a blob adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_BYTES + TAG_LEN;

/// Why a blob could not be used. Deliberately without detail: a caller learns only that the
/// ciphertext is not valid (the edge answers `InvalidCiphertextException`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    #[error("ciphertext blob is malformed")]
    Malformed,
    #[error("ciphertext failed authentication")]
    Authentication,
    #[error("the system random number generator failed")]
    Random,
    #[error("the plaintext is too large to seal")]
    TooLarge,
    /// The key's custodian (an HSM, say) could not perform the operation now.
    #[error("the key custodian is unavailable")]
    Unavailable,
    /// The key's custodian failed (detail for the operator's log, no secret).
    #[error("{0}")]
    Custody(String),
}

impl From<CustodyError> for BlobError {
    fn from(e: CustodyError) -> Self {
        match e {
            CustodyError::Authentication => BlobError::Authentication,
            CustodyError::TooLarge => BlobError::TooLarge,
            CustodyError::Unavailable => BlobError::Unavailable,
            CustodyError::Failed(m) => BlobError::Custody(m),
        }
    }
}

/// A parsed (not yet authenticated) ciphertext blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiphertextBlob {
    pub key_id: [u8; 16],
    /// Whether `key_id` is a multi-Region key id (format version 2).
    pub multi_region: bool,
    pub material_id: MaterialId,
    nonce: [u8; NONCE_BYTES],
    sealed: Vec<u8>,
}

impl CiphertextBlob {
    /// Encrypts `plaintext` under `key` (material `material_id` of key `key_id`) and returns the
    /// serialized blob.
    pub fn seal(
        key_id: [u8; 16],
        material_id: MaterialId,
        key: &SymmetricKey,
        context: &EncryptionContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BlobError> {
        Self::seal_for(key_id, false, material_id, key, context, plaintext)
    }

    /// [`CiphertextBlob::seal`], for a key id that is a multi-Region key id when
    /// `multi_region` (format version 2).
    pub fn seal_for(
        key_id: [u8; 16],
        multi_region: bool,
        material_id: MaterialId,
        key: &(impl SymmetricCustody + ?Sized),
        context: &EncryptionContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BlobError> {
        let nonce = random::array::<NONCE_BYTES>().map_err(|_| BlobError::Random)?;
        let header = header(version(multi_region), key_id, material_id);
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        key.seal_append(nonce, &aad(&header, context), plaintext, &mut out)
            .map_err(BlobError::from)?;
        Ok(out)
    }

    /// Parses the structure of a blob without decrypting it.
    pub fn parse(bytes: &[u8]) -> Result<Self, BlobError> {
        let mut r = Reader(bytes);
        let version = r.array::<1>()?;
        let alg = r.array::<1>()?;
        let multi_region = match version {
            [FORMAT_V1] => false,
            [FORMAT_V2_MULTI_REGION] => true,
            _ => return Err(BlobError::Malformed),
        };
        if alg != [ALG_AES_256_GCM] {
            return Err(BlobError::Malformed);
        }
        let key_id = r.array::<16>()?;
        let material_id = MaterialId(r.array::<32>()?);
        let nonce = r.array::<NONCE_BYTES>()?;
        let sealed = r.rest();
        if sealed.len() < TAG_LEN {
            return Err(BlobError::Malformed);
        }
        Ok(Self {
            key_id,
            multi_region,
            material_id,
            nonce,
            sealed: sealed.to_vec(),
        })
    }

    /// Authenticates and decrypts with the key material the blob names.
    pub fn open(
        &self,
        key: &(impl SymmetricCustody + ?Sized),
        context: &EncryptionContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, BlobError> {
        let header = header(version(self.multi_region), self.key_id, self.material_id);
        Ok(key.open(self.nonce, &aad(&header, context), &self.sealed)?)
    }
}

fn version(multi_region: bool) -> u8 {
    if multi_region {
        FORMAT_V2_MULTI_REGION
    } else {
        FORMAT_V1
    }
}

fn header(version: u8, key_id: [u8; 16], material_id: MaterialId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let parts: [&[u8]; 4] = [&[version], &[ALG_AES_256_GCM], &key_id, &material_id.0];
    let mut at = 0;
    for part in parts {
        if let Some(dst) = h.get_mut(at..at + part.len()) {
            dst.copy_from_slice(part);
        }
        at += part.len();
    }
    h
}

fn aad(header: &[u8; HEADER_LEN], context: &EncryptionContext<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + context.canonical_len());
    aad.extend_from_slice(header);
    context.write_canonical(&mut aad);
    aad
}

/// A cursor over untrusted bytes whose reads return errors instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        let (head, tail) = self.0.split_at_checked(N).ok_or(BlobError::Malformed)?;
        self.0 = tail;
        head.try_into().map_err(|_| BlobError::Malformed)
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

#[cfg(test)]
mod tests;
