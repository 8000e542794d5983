//! Shared helpers for the integration tests: build policies, contexts and
//! requests from a small fixed universe of accounts and principals.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![expect(
    clippy::panic,
    reason = "test helpers fail the test on invalid fixtures"
)]

pub mod generators;

use trent_policy::{
    ConditionContext, Policy, PolicyKind, PolicyOutcome, Principal, RequestContext,
};

pub const ACCT: &str = "111122223333";
pub const OTHER: &str = "444455556666";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
pub const USER_ARN: &str = "arn:aws:iam::111122223333:user/alice";
pub const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/ops/Admin";
pub const SESSION_ARN: &str = "arn:aws:sts::111122223333:assumed-role/Admin/sess1";

pub fn alice() -> Principal {
    Principal::user(ACCT, USER_ARN)
}

pub fn admin_session() -> Principal {
    Principal::assumed_role(ACCT, SESSION_ARN, ROLE_ARN)
}

pub fn key_policy(json: &str) -> Policy {
    Policy::parse(json, PolicyKind::KeyPolicy).unwrap_or_else(|e| panic!("{e}: {json}"))
}

pub fn identity(json: &str) -> Policy {
    Policy::parse(json, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// A context from `(key, value)` pairs; a value containing `|` is multi-valued
/// (split on `|`), and the literal `[]` is an empty multi-valued key.
pub fn ctx(pairs: &[(&str, &str)]) -> ConditionContext {
    let mut c = ConditionContext::new();
    for (k, v) in pairs {
        if *v == "[]" {
            c.insert_multi(k, Vec::<String>::new());
        } else if v.contains('|') {
            c.insert_multi(k, v.split('|'));
        } else {
            c.insert(k, *v);
        }
    }
    c
}

pub fn eval(
    p: &Policy,
    principal: &Principal,
    action: &str,
    resource: &str,
    c: &ConditionContext,
) -> PolicyOutcome {
    p.evaluate(&RequestContext {
        action,
        resource,
        principal,
        context: c,
    })
}

/// An identity policy allowing kms:Decrypt on `*` under one condition block.
pub fn condition_policy(operator: &str, key: &str, values: &str) -> Policy {
    identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{{"{operator}":{{"{key}":{values}}}}}}}}}"#
    ))
}

/// Does the single-condition policy allow the request with this context?
pub fn cond(operator: &str, key: &str, values: &str, pairs: &[(&str, &str)]) -> bool {
    let p = condition_policy(operator, key, values);
    eval(&p, &alice(), "kms:Decrypt", KEY_ARN, &ctx(pairs)).allow
}
