//! Differential test: the compiled evaluator against a deliberately naive
//! model that reads the policy JSON directly (no precompilation, recursive
//! wildcard matching, string substitution for variables), on random policies
//! and requests from the shared generators. Both must agree on exactly which
//! statements apply and how their principal matched, and on the KMS decision.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod common;
use common::generators::*;
use common::*;
use proptest::prelude::*;
use serde_json::Value;
use trent_policy::kms::{KmsRequest, authorize, cross_account_permitted};
use trent_policy::{
    ConditionContext, ContextValue, Decision, Policy, PolicyKind, PrincipalKind, PrincipalMatch,
    RequestContext,
};

// ---------------------------------------------------------------- the model

fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

fn like(p: &str, s: &str) -> bool {
    glob(
        &p.chars().collect::<Vec<_>>(),
        &s.chars().collect::<Vec<_>>(),
    )
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(list).collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    }
}

/// The only variable the generators use; `None` if it has no value.
fn substitute(text: &str, vars: bool, ctx: &ConditionContext) -> Option<String> {
    if !vars || !text.contains("${aws:username}") {
        return Some(text.to_owned());
    }
    match ctx.get("aws:username") {
        Some(ContextValue::Single(u)) => Some(text.replace("${aws:username}", u)),
        _ => None,
    }
}

fn arn_like(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    if p.len() < 6 {
        return like(pattern, value);
    }
    v.len() == 6 && p.iter().zip(&v).all(|(a, b)| like(a, b))
}

fn principal_model(spec: &Value, r: &Req) -> Option<PrincipalMatch> {
    let p = &r.principal;
    let mut best = None;
    let entries: Vec<(String, String)> = match spec {
        Value::String(s) if s == "*" => return Some(PrincipalMatch::Direct),
        Value::Object(m) => m
            .iter()
            .flat_map(|(t, v)| list(v).into_iter().map(move |x| (t.clone(), x)))
            .collect(),
        _ => panic!("bad principal"),
    };
    for (ty, v) in entries {
        let is_service = matches!(p.kind, PrincipalKind::Service(_));
        let hit = match ty.as_str() {
            "AWS" if v == "*" => Some(PrincipalMatch::Direct),
            "AWS" if v == p.account || v == format!("arn:aws:iam::{}:root", p.account) => {
                (!is_service).then_some(PrincipalMatch::Account)
            }
            "AWS" => {
                let role_hit =
                    matches!(&p.kind, PrincipalKind::AssumedRole { role_arn } if *role_arn == v);
                (v == p.arn || role_hit).then_some(PrincipalMatch::Direct)
            }
            "Service" => matches!(&p.kind, PrincipalKind::Service(n) if *n == v)
                .then_some(PrincipalMatch::Direct),
            _ => None,
        };
        match hit {
            Some(PrincipalMatch::Direct) => return hit,
            Some(h) => best = Some(h),
            None => {}
        }
    }
    best
}

fn not_principal_excludes(spec: &Value, r: &Req) -> bool {
    let p = &r.principal;
    let listed: Vec<String> = match spec {
        Value::String(_) => return true,
        Value::Object(m) => m.values().flat_map(list).collect(),
        _ => panic!("bad principal"),
    };
    if listed.iter().any(|v| v == "*") {
        return true;
    }
    let has = |x: &str| listed.iter().any(|v| v == x);
    let acct = has(&p.account) || has(&format!("arn:aws:iam::{}:root", p.account));
    match &p.kind {
        PrincipalKind::Root => acct,
        PrincipalKind::User | PrincipalKind::FederatedUser => acct && has(&p.arn),
        PrincipalKind::AssumedRole { role_arn } => acct && has(role_arn) && has(&p.arn),
        PrincipalKind::Service(n) => has(n),
    }
}

fn condition_model(
    op: &str,
    key: &str,
    values: &Value,
    r: &Req,
    key_policy: bool,
    vars: bool,
) -> bool {
    let (set, rest) = match op.split_once(':') {
        Some((s, rest)) => (Some(s), rest),
        None => (None, op),
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(b) => (true, b),
        None => (false, rest),
    };
    let lower = key.to_lowercase();
    let hidden =
        key_policy && (lower.starts_with("aws:resourcetag/") || lower == "kms:resourcealiases");
    let present = if hidden { None } else { r.context.get(key) };
    let vals = list(values);
    if base == "Null" {
        let absent = present.is_none_or(|v| v.values().is_empty());
        return vals
            .iter()
            .any(|v| (v == "true") == absent && (v == "true" || v == "false"));
    }
    let negated = base.contains("Not");
    let positive = |x: &str| -> Option<bool> {
        match base {
            "StringEquals" | "StringNotEquals" => Some(
                vals.iter()
                    .any(|v| substitute(v, vars, &r.context).is_some_and(|v| v == x)),
            ),
            "StringLike" | "StringNotLike" => Some(
                vals.iter()
                    .any(|v| substitute(v, vars, &r.context).is_some_and(|v| like(&v, x))),
            ),
            "Bool" => {
                let b = x.to_ascii_lowercase();
                (b == "true" || b == "false")
                    .then(|| vals.iter().any(|v| v.to_ascii_lowercase() == b))
            }
            "NumericLessThan" => {
                let n: f64 = x.parse().ok().filter(|n: &f64| n.is_finite())?;
                Some(
                    vals.iter()
                        .filter_map(|v| v.parse::<f64>().ok())
                        .any(|v| n < v),
                )
            }
            other => panic!("model lacks {other}"),
        }
    };
    let test = |x: &str| positive(x).is_some_and(|m| m != negated);
    match (set, present) {
        (None, None) => if_exists || negated,
        (None, Some(ContextValue::Single(v))) => test(v),
        (None, Some(ContextValue::Multi(_))) => false,
        (Some("ForAnyValue"), None) => if_exists,
        (Some("ForAnyValue"), Some(v)) => v.values().iter().any(|x| test(x)),
        (Some(_), None) => true,
        (Some(_), Some(v)) => v.values().iter().all(|x| test(x)),
    }
}

/// Which statements apply, with their effect and principal match.
fn model(
    doc: &Value,
    kind: PolicyKind,
    r: &Req,
    resource: &str,
) -> Vec<(usize, bool, PrincipalMatch)> {
    let vars = doc.get("Version").and_then(Value::as_str) == Some("2012-10-17");
    let key_policy = kind == PolicyKind::KeyPolicy;
    let statements = list_statements(doc);
    let mut out = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let allow = st["Effect"] == "Allow";
        let principal = if !key_policy {
            PrincipalMatch::Unchecked
        } else if let Some(p) = st.get("Principal") {
            match principal_model(p, r) {
                Some(m) => m,
                None => continue,
            }
        } else {
            if not_principal_excludes(&st["NotPrincipal"], r) {
                continue;
            }
            PrincipalMatch::Direct
        };
        let (actions, not_action) = match st.get("Action") {
            Some(a) => (list(a), false),
            None => (list(&st["NotAction"]), true),
        };
        let action = r.action.to_lowercase();
        if actions.iter().any(|a| like(&a.to_lowercase(), &action)) == not_action {
            continue;
        }
        let (resources, not_resource) = match (st.get("Resource"), st.get("NotResource")) {
            (Some(x), _) => (list(x), false),
            (None, Some(x)) => (list(x), true),
            (None, None) => continue,
        };
        let hit = resources.iter().any(|p| {
            substitute(p, vars, &r.context).is_some_and(|p| p == "*" || arn_like(&p, resource))
        });
        if hit == not_resource {
            continue;
        }
        let conditions_hold = st.get("Condition").is_none_or(|c| {
            c.as_object().unwrap().iter().all(|(op, keys)| {
                keys.as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| condition_model(op, k, v, r, key_policy, vars))
            })
        });
        if conditions_hold {
            out.push((i, allow, principal));
        }
    }
    out
}

fn list_statements(doc: &Value) -> Vec<Value> {
    match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

fn model_kms(kp: &Value, ip: &Value, grants: bool, r: &Req) -> Decision {
    let k = model(kp, PolicyKind::KeyPolicy, r, KEY_ARN);
    let i = model(ip, PolicyKind::Identity, r, KEY_ARN);
    if k.iter().chain(&i).any(|(_, allow, _)| !allow) {
        return Decision::ExplicitDeny;
    }
    let p = &r.principal;
    let cross = !matches!(p.kind, PrincipalKind::Service(_)) && p.account != ACCT;
    if cross && !cross_account_permitted(r.action) {
        return Decision::ImplicitDeny;
    }
    let iam = p.is_root() || !i.is_empty();
    let direct = k.iter().any(|(_, _, m)| *m == PrincipalMatch::Direct);
    let account = k.iter().any(|(_, _, m)| *m == PrincipalMatch::Account);
    if (direct && (!cross || iam)) || (account && iam) || grants {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

// ---------------------------------------------------------------- the test

fn production(p: &Policy, r: &Req, resource: &str) -> Vec<(usize, bool, PrincipalMatch)> {
    p.evaluate(&RequestContext {
        action: r.action,
        resource,
        principal: &r.principal,
        context: &r.context,
    })
    .matched
    .iter()
    .map(|m| {
        (
            m.index,
            m.effect == trent_policy::Effect::Allow,
            m.principal,
        )
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn evaluator_agrees_with_model(
        kp_json in policy_json(PolicyKind::KeyPolicy),
        ip_json in policy_json(PolicyKind::Identity),
        r in request(),
        grants in prop::bool::ANY,
    ) {
        let kp = key_policy(&kp_json);
        let ip = identity(&ip_json);
        let kp_doc: Value = serde_json::from_str(&kp_json).unwrap();
        let ip_doc: Value = serde_json::from_str(&ip_json).unwrap();
        prop_assert_eq!(production(&kp, &r, r.resource), model(&kp_doc, PolicyKind::KeyPolicy, &r, r.resource));
        prop_assert_eq!(production(&ip, &r, r.resource), model(&ip_doc, PolicyKind::Identity, &r, r.resource));
        let decision = authorize(&kp, &[&ip], grants, &KmsRequest {
            principal: &r.principal,
            action: r.action,
            key_arn: KEY_ARN,
            key_account: ACCT,
            context: &r.context,
        }).decision;
        prop_assert_eq!(decision, model_kms(&kp_doc, &ip_doc, grants, &r));
    }
}
