//! The KMS domain: what Trent does, independent of how requests arrive or where state is kept.
//!
//! Every operation is a method on [`Kms`] that takes the authenticated [`Caller`] and a typed
//! input, and follows one shape: **validate → resolve → authorize → act**. Nothing here knows
//! HTTP, JSON or SQL; requests arrive as Rust values from the edge, state lives behind the
//! [`Store`] trait, and errors are [`KmsError`] values the edge maps to AWS wire errors.
//!
//! ```text
//!  edge (trent-server) ──► Kms::encrypt(&caller, input)
//!                            ├─ validate   (AWS constraint messages)
//!                            ├─ resolve    (key id / ARN / alias → cached key)
//!                            ├─ authorize  (authz.rs)
//!                            └─ act        (trent-crypto; Store only for writes and cache misses)
//! ```

pub mod aliases;
pub mod authz;
pub mod background;
pub mod cache;
pub mod caller;
pub mod clock;
pub mod credentials;
pub mod crypto;
pub mod deletion;
pub mod error;
pub mod grants;
pub mod iam;
pub mod ids;
pub mod import;
pub mod key_state;
pub mod keys;
pub mod lifecycle;
pub mod material;
pub mod memory_store;
pub mod model;
pub mod policies;
pub mod rotation;
pub mod service;
pub mod store;
pub mod sts;
pub mod tags;
pub mod validate;

pub use caller::Caller;
pub use clock::{Clock, SystemClock};
pub use credentials::{Credential, CredentialRegistry};
pub use error::KmsError;
pub use service::Kms;
pub use store::{Store, StoreError};
