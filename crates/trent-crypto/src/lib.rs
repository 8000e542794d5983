//! Trent's cryptographic core: what a KMS key *is* and how bytes are protected with it.
//!
//! This crate does no I/O and knows nothing of accounts, storage or HTTP. It offers:
//!
//! - [`spec`]: the closed AWS enums (key specs, key usages, algorithms) and their wire names;
//! - [`material`]: symmetric key material, zeroized on drop and never `Debug`-printable;
//! - [`asymmetric`], [`hmac_key`]: RSA/EC/Ed25519/ML-DSA and HMAC key material and their operations;
//! - [`kem`]: ML-KEM key material (Encapsulate, Decapsulate), held inside an [`AsymmetricKey`];
//! - [`root`]: the root key that wraps every piece of key material at rest;
//! - [`blob`]: the self-describing ciphertext blob returned by Encrypt and friends;
//! - [`context`]: the canonical encoding of an encryption context, bound as AAD;
//! - [`custody`]: the traits of key custodians (root key, per-key material, HSM key stores).
//! - [`nitro`]: Nitro Enclaves attestation documents (verified) and the CMS envelope of a
//!   `CiphertextForRecipient`.
//!
//! What it does **not** do: decide who may use a key (that is the domain's job), or keep keys
//! anywhere (the storage layer holds only wrapped bytes).

pub mod asymmetric;
pub mod blob;
pub mod context;
pub mod custody;
pub mod hash;
pub mod hmac_key;
pub mod import;
pub mod kem;
pub mod material;
pub mod nitro;
mod prehash;
pub mod random;
pub mod root;
pub mod sm2_key;
pub mod spec;

pub use asymmetric::{AsymmetricError, AsymmetricKey};
pub use blob::{BlobError, CiphertextBlob};
pub use context::EncryptionContext;
pub use custody::{CustodyError, RootCustodian, SymmetricCustody};
pub use hmac_key::HmacKey;
pub use material::{MaterialId, SymmetricKey};
pub use root::{RootKey, RootKeyError};
