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
//!                            ├─ authorize  (authz/: Kms::check(&caller, Access) → Decision)
//!                            └─ act        (trent-crypto; Store only for writes and cache misses)
//! ```
//!
//! The public face: [`Kms`] and its operation inputs/outputs (in [`crypto`], [`keys`],
//! [`grants`], [`iam`], [`sts`], [`import`], [`lifecycle`], [`multi_region`]), the operator's actions
//! ([`operator`], [`seed`]: no caller, no IAM), who calls ([`Caller`],
//! [`Principal`]), the authorization types ([`Access`], [`Decision`]), the storage contract
//! ([`Store`], [`model`], [`memory_store`]) and the errors. Everything else is internal.

// The operations, one family per module (each adds methods to `Kms`).
mod aliases;
pub mod background;
pub mod crypto;
pub mod custom_key_stores;
mod deletion;
pub mod external_key_stores;
pub mod feed;
pub mod grants;
pub mod iam;
pub mod import;
pub mod integrated_services;
pub mod keys;
mod last_usage;
pub mod multi_region;
pub mod operator;
mod policies;
pub mod quotas;
pub mod rotation;
pub mod seed;
pub mod service_events;
pub mod sts;
mod tags;

// Who is calling, and whether they may.
mod authz;
mod caller;
mod credentials;

// Keys in memory and at rest.
mod cache;
pub mod lifecycle;
mod material;
pub mod model;

// The service value and its surroundings.
pub mod clock;
mod error;
pub mod ids;
mod key_state;
pub mod memory_store;
mod service;
pub mod store;
pub mod store_contract;
pub mod validate;

pub use authz::{Access, Decision, OperationFacts, RequestFacts, Resource};
pub use authz::{access, explain, simulate};
pub use cache::{DEFAULT_KEY_CACHE_CAPACITY, LoadedKey};
pub use caller::{Caller, ForwardedBy, Identity, Principal};
pub use clock::{Clock, SystemClock};
pub use credentials::{
    Credential, CredentialIdentity, CredentialRegistry, MAX_CONCURRENT_LOOKUPS, MISS_CAPACITY,
    MISS_TTL, SessionInfo,
};
pub use error::{KmsError, KmsResult};
pub use service::{Kms, NewAccount, ServiceStats, random_access_key_id, random_id, random_secret};
pub use store::{Store, StoreError};
