//! Trent's side of the differential test against an independent IAM evaluator
//! (`tests/differential/`): reads one scenario per line of standard input (JSON) and writes one
//! decision per line (`Allowed`, `ExplicitlyDenied`, `ImplicitlyDenied`, or `Error: …` for a
//! policy Trent refuses), decided by [`trent_policy::kms::authorize`] — the function every real
//! key-policy-controlled request goes through — with no grants.
//!
//! A scenario: `{"keyPolicy": {...}, "identityPolicies": [{...}], "principal": {"arn", "account",
//! "kind": "user" | "role" | "root", "roleArn"}, "action", "keyArn", "keyAccount",
//! "context": {"key": "value" | ["values"]}}`.

use std::io::{BufRead, Write};

use serde_json::Value;
use trent_policy::kms::{KmsRequest, authorize};
use trent_policy::{ConditionContext, Decision, IdentityPolicyType, Policy, PolicyKind, Principal};

fn decide(line: &str) -> Result<&'static str, String> {
    let s: Value = serde_json::from_str(line).map_err(|e| format!("bad scenario: {e}"))?;
    let text = |v: &Value| v.to_string();
    let get = |v: &'_ Value, name: &str| v.get(name).cloned().unwrap_or(Value::Null);
    let key_policy = Policy::parse(&text(&get(&s, "keyPolicy")), PolicyKind::KeyPolicy)
        .map_err(|e| format!("key policy: {e}"))?;
    let identity = get(&s, "identityPolicies");
    let identity = identity
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| Policy::parse_identity(&text(p), IdentityPolicyType::RoleInline))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("identity policy: {e}"))?;
    let p = &get(&s, "principal");
    let field = |v: &Value, name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (arn, account) = (field(p, "arn"), field(p, "account"));
    let principal = match p["kind"].as_str() {
        Some("root") => Principal::root(&account),
        Some("role") => Principal::assumed_role(&account, &arn, &field(p, "roleArn")),
        _ => Principal::user(&account, &arn),
    };
    let mut context = ConditionContext::new();
    if let Some(entries) = s.get("context").and_then(Value::as_object) {
        for (k, v) in entries {
            match v {
                Value::Array(values) => {
                    context.insert_multi(k, values.iter().filter_map(Value::as_str));
                }
                Value::String(v) => context.insert(k, v.as_str()),
                other => context.insert(k, other.to_string()),
            }
        }
    }
    let (action, key_arn, key_account) = (
        field(&s, "action"),
        field(&s, "keyArn"),
        field(&s, "keyAccount"),
    );
    let request = KmsRequest {
        principal: &principal,
        action: &action,
        key_arn: &key_arn,
        key_account: &key_account,
        context: &context,
    };
    Ok(
        match authorize(&key_policy, &identity, false, &request).decision {
            Decision::Allow => "Allowed",
            Decision::ExplicitDeny => "ExplicitlyDenied",
            Decision::ImplicitDeny => "ImplicitlyDenied",
        },
    )
}

fn main() -> std::io::Result<()> {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match decide(&line) {
            Ok(d) => writeln!(out, "{d}")?,
            Err(e) => writeln!(out, "Error: {}", e.replace('\n', " "))?,
        }
    }
    out.flush()
}
