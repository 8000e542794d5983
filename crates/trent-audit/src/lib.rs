//! The audit trail: every API call and every piece of background work, as CloudTrail records,
//! in an append-only log whose batches are chained by SHA-256 digests.
//!
//! - [`record`]: the CloudTrail record shape; [`parameters`]: which request fields are logged.
//! - [`writer`]: [`AuditLog`]: records copied into the mapped segment ([`segment`]) under one
//!   short lock, a sealer closing each batch with its digest line, a sync thread behind it.
//! - [`format`]: segments, digest lines, the chain. [`verify`]: `trent audit verify`.
//! - [`read`]: LookupEvents over the files, and the JSON Lines export.
//! - [`usage`]: GetKeyLastUsage's per-key table, persisted every few seconds.
//! - [`shared`]: one trail for several nodes: the [`shared::SharedTrail`] port (implemented on
//!   PostgreSQL by `trent-store-postgres`), its verification; [`ship`]: the shipper copying
//!   each committed batch from the local files into it, off the request path.
//!
//! Nothing here knows HTTP or the KMS domain: the edge builds records from what it saw and
//! what the domain left on the `Caller`. The format and guarantees are in `docs/audit.md`.

pub mod format;
pub mod parameters;
pub mod read;
pub mod record;
pub mod segment;
pub mod shared;
pub mod ship;
pub mod usage;
pub mod verify;
pub mod writer;

pub use writer::{AuditLog, AuditSettings, Durability, EventId};

/// Why the trail could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit trail I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("audit trail is damaged: {0}")]
    Corrupt(String),
    /// The writer stopped or a write failed: the event is not durable.
    #[error("the audit trail is not accepting events")]
    Unavailable,
    #[error("no randomness for event ids")]
    Random,
    /// The shared trail's database failed or could not be reached.
    #[error("the shared audit trail: {0}")]
    Shared(String),
}
