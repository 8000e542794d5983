//! Trent's network edge: one HTTP endpoint for every AWS service Trent speaks.
//!
//! ```text
//!  HTTP request ─► auth.rs (SigV4 parse → credential lookup → verify) ─► Caller
//!               └► route by the credential scope's service:
//!                    "kms"         ─► kms/   (awsJson1.1: X-Amz-Target → operation → trent-core)
//!                    "iam" / "sts" ─► query/ (Query protocol: Action=… form → XML)
//! ```
//!
//! This crate owns the wire: JSON shapes, base64 blobs, `__type` error codes, status codes and
//! the `x-amzn-RequestId` header. It holds no business rules; every decision, authorization
//! included, is made by `trent_core::Kms`.

pub mod admin;
mod auth;
mod kms;
mod query;
mod server;

pub use server::{AppState, ServeOptions, router, serve};
