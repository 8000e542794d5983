//! Trent's network edge: one HTTP endpoint for every AWS service Trent speaks.
//!
//! ```text
//!  connection ─► listener.rs (connection limit, idle eviction, header timeout, TLS, HTTP/1.1)
//!  headers ─► auth::check_headers (known key, replay window) ─► body.rs (size, budget, time)
//!  HTTP request ─► auth.rs (SigV4 parse → credential lookup → verify) ─► Caller
//!               └► route by the credential scope's service:
//!                    "kms"         ─► kms/   (awsJson1.1: X-Amz-Target → operation → trent-core)
//!                    "iam" / "sts" ─► query/ (Query protocol: Action=… form → XML)
//!                    "cloudtrail"  ─► cloudtrail.rs (LookupEvents over the audit trail)
//!  after the answer is built ─► audit.rs (its CloudTrail record, synced before it is sent)
//!  GET /console/… ─► console.rs (the web console's static files; it signs its own API calls)
//!  operator listener (127.0.0.1, admin token) ─► operator.rs (accounts, root key rotation)
//! ```
//!
//! This crate owns the wire: JSON shapes, base64 blobs, `__type` error codes, status codes and
//! the `x-amzn-RequestId` header. It holds no business rules; every decision, authorization
//! included, is made by `trent_core::Kms`.

pub mod admin;
pub mod audit;
mod auth;
mod body;
mod cloudtrail;
pub mod console;
mod kms;
mod listener;
mod metrics;
mod operator;
mod operator_access;
mod ops;
mod query;
mod server;

pub use body::{BodyLimits, MAX_BODY_BYTES};
pub use listener::{ConnectionLimits, Connections};
pub use operator::{ACCOUNTS_PATH, OperatorApi, ROTATE_PATH, operator_router};
pub use operator_access::KEY_ACCESS_PATH;
pub use server::{AppState, ops_router, router, serve};
