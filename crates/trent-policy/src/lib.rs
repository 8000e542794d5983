//! The IAM / KMS policy language: parse, validate, serialize and evaluate
//! policy documents exactly as AWS does (see `shared/docs/policy-semantics.md` §1).
//!
//! ```text
//!   JSON text ──step 1: size, charset──▶ raw serde form ──step 3: rules of
//!   (raw.rs)      step 2: JSON shape,       (raw.rs)          the PolicyKind──▶ Policy (ast.rs)
//!                 duplicate keys                               patterns compiled
//!
//!   Policy + RequestContext ──evaluate.rs──▶ PolicyOutcome (applicable statements)
//!   outcomes ──decision.rs / kms.rs──▶ Authorization { Decision, reasons (Sids), cause }
//! ```
//!
//! What this crate does **not** do: any I/O, reading a clock (time arrives as
//! `aws:CurrentTime` / `aws:EpochTime` in the context), checking that
//! principals exist (the domain walks [`PrincipalSpec::entries`]), building the
//! request context, or matching grants (the domain passes `grants_allow`).
//!
//! The public interface is: [`Policy`] (`parse`, `parse_identity`, `to_json`,
//! `to_json_pretty`, `evaluate`), the request types in `context`, the outcome
//! types, [`combine`] for generic IAM decisions and [`kms::authorize`] for KMS.
//!
//! ```
//! use trent_policy::kms::{KmsRequest, authorize};
//! use trent_policy::{ConditionContext, Policy, PolicyKind, Principal};
//!
//! let key_policy = Policy::parse(
//!     r#"{"Version":"2012-10-17","Statement":[{"Sid":"KeyUser","Effect":"Allow",
//!        "Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},
//!        "Action":"kms:Decrypt","Resource":"*",
//!        "Condition":{"StringEquals":{"kms:EncryptionContext:app":"billing"}}}]}"#,
//!     PolicyKind::KeyPolicy,
//! )?;
//! let alice = Principal::user("111122223333", "arn:aws:iam::111122223333:user/alice");
//! let context = ConditionContext::new().with("kms:EncryptionContext:app", "billing");
//! let request = KmsRequest {
//!     principal: &alice,
//!     action: "kms:Decrypt",
//!     key_arn: "arn:aws:kms:us-east-1:111122223333:key/k1",
//!     key_account: "111122223333",
//!     context: &context,
//! };
//! let no_identity_policies: [&Policy; 0] = [];
//! let answer = authorize(&key_policy, &no_identity_policies, false, &request);
//! assert!(answer.is_allowed());
//! assert_eq!(answer.reasons[0].sid.as_deref(), Some("KeyUser"));
//! # Ok::<(), trent_policy::PolicyError>(())
//! ```

#![warn(missing_docs)]

mod ast;
mod condition;
mod context;
mod decision;
mod error;
mod evaluate;
mod jackson;
pub mod kms;
mod parse;
mod pattern;
mod positions;
mod principal;
mod principal_text;
mod raw;
mod serialize;
mod variables;

pub use ast::{
    ActionElement, Effect, IdentityPolicyType, KEY_POLICY_MAX_CHARS, Policy, PolicyKind,
    PrincipalElement, ResourceElement, Statement, Version,
};
pub use condition::{BaseOperator, ConditionBlock, ConditionEntry, Operator, SetOperator};
pub use context::{
    ConditionContext, ConditionValue, ConditionValues, ContextValue, Principal, PrincipalKind,
    RequestContext,
};
pub use decision::{Authorization, Decision, DenyCause, PolicyType, Reason, Reasons, combine};
pub use error::PolicyError;
pub use evaluate::{MatchedStatement, PolicyOutcome};
pub use parse::identity_policy_size;
pub use positions::{Position, StatementSpan, statement_positions};
pub use principal::{PrincipalEntry, PrincipalMatch, PrincipalSpec, PrincipalType, PrincipalValue};
pub use principal_text::rewrite_principal_values;
