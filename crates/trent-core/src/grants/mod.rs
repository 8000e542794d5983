//! Grants: permissions on one key given to one principal, outside the key policy.
//!
//! - [`model`]: what a grant is (operations, constraints, stored form).
//! - [`cache`]: each key's grants in memory, indexed by grantee and operation.
//! - [`token`]: grant tokens, usable on any node before it has seen the grant.
//! - [`operations`]: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
//!
//! Grants as a source of permission (and delegation) are part of the decision in
//! `authz/grants.rs`; they are consulted only when the policies alone would deny.

mod cache;
mod model;
mod operations;
mod token;

pub(crate) use cache::{GrantCache, Known};
pub use model::{Grant, GrantConstraints, GrantOperation, MAX_GRANTS_PER_KEY};
pub use operations::{CreateGrantInput, GrantList, ListGrantsInput};
pub(crate) use token::GRANT_TOKEN_LABEL;
pub use token::{GrantTokens, NO_GRANT_TOKENS};
