//! Proptest generators shared by the property and differential tests: policies
//! and requests drawn from a small universe so that statements actually match.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "generators of fixed, valid fixtures"
)]

use super::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use trent_policy::{ConditionContext, Policy, PolicyKind, Principal};

pub fn principal_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("*")),
        Just(json!({"AWS": "*"})),
        Just(json!({"AWS": ACCT})),
        Just(json!({"AWS": format!("arn:aws:iam::{ACCT}:root")})),
        Just(json!({"AWS": USER_ARN})),
        Just(json!({"AWS": [ROLE_ARN, OTHER]})),
        Just(json!({"AWS": SESSION_ARN})),
        Just(json!({"AWS": OTHER})),
        Just(json!({"Service": "logs.amazonaws.com"})),
    ]
}

pub fn strings(options: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec(prop::sample::select(options), 1..=2)
        .prop_map(|v| if v.len() == 1 { json!(v[0]) } else { json!(v) })
}

pub const ACTIONS: &[&str] = &[
    "kms:*",
    "kms:Decrypt",
    "kms:Enc*",
    "KMS:dec?ypt",
    "*",
    "kms:ReEncrypt*",
    "kms:Schedule*",
];
pub const RESOURCES: &[&str] = &[
    "*",
    KEY_ARN,
    "arn:aws:kms:*:111122223333:key/*",
    "arn:aws:kms:us-east-1:444455556666:key/*",
    "arn:aws:kms:us-east-1:111122223333:alias/${aws:username}",
];
pub const CONDITIONS: &[(&str, &str, &str)] = &[
    ("StringEquals", "kms:CallerAccount", r#""111122223333""#),
    (
        "StringNotEquals",
        "kms:CallerAccount",
        r#"["444455556666"]"#,
    ),
    ("StringEquals", "kms:EncryptionContext:app", r#"["a","b"]"#),
    ("StringLike", "kms:EncryptionContext:app", r#""a*""#),
    (
        "StringEqualsIfExists",
        "kms:EncryptionContext:app",
        r#""a""#,
    ),
    (
        "StringNotEqualsIfExists",
        "kms:ViaService",
        r#""ec2.us-east-1.amazonaws.com""#,
    ),
    (
        "ForAnyValue:StringEquals",
        "kms:EncryptionContextKeys",
        r#"["app","env"]"#,
    ),
    (
        "ForAllValues:StringEquals",
        "kms:EncryptionContextKeys",
        r#"["app"]"#,
    ),
    ("Null", "kms:EncryptionContextKeys", r#""false""#),
    ("Bool", "aws:SecureTransport", "true"),
    ("NumericLessThan", "kms:X", r#""5""#),
    (
        "StringEquals",
        "aws:PrincipalTag/team",
        r#""${aws:username}""#,
    ),
];

pub fn conditions() -> impl Strategy<Value = Option<Value>> {
    prop::collection::vec(prop::sample::select(CONDITIONS), 0..=2).prop_map(|cs| {
        if cs.is_empty() {
            return None;
        }
        let mut ops = Map::new();
        for (op, key, values) in cs {
            let entry = ops.entry(op).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(key.to_owned(), serde_json::from_str(values).unwrap());
            }
        }
        Some(Value::Object(ops))
    })
}

pub fn statement(kind: PolicyKind) -> impl Strategy<Value = Value> {
    (
        prop::option::of(0u8..5),
        prop::bool::ANY,
        (principal_value(), 0u8..8),
        (strings(ACTIONS), prop::bool::ANY),
        (strings(RESOURCES), 0u8..8),
        conditions(),
    )
        .prop_map(
            move |(
                sid,
                allow,
                (principal, p_mode),
                (actions, not_action),
                (resources, r_mode),
                cond,
            )| {
                let mut st = Map::new();
                if let Some(s) = sid {
                    st.insert("Sid".into(), json!(format!("S{s}")));
                }
                st.insert("Effect".into(), json!(if allow { "Allow" } else { "Deny" }));
                if kind == PolicyKind::KeyPolicy {
                    let name = if p_mode == 0 {
                        "NotPrincipal"
                    } else {
                        "Principal"
                    };
                    st.insert(name.into(), principal);
                }
                st.insert(
                    if not_action { "NotAction" } else { "Action" }.into(),
                    actions,
                );
                match r_mode {
                    0 => {
                        st.insert("NotResource".into(), resources);
                    }
                    // Key policies may omit Resource (inert statement).
                    1 if kind == PolicyKind::KeyPolicy => {}
                    _ => {
                        st.insert("Resource".into(), resources);
                    }
                }
                if let Some(c) = cond {
                    st.insert("Condition".into(), c);
                }
                Value::Object(st)
            },
        )
}

pub fn policy_json(kind: PolicyKind) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(statement(kind), 1..=5),
        prop::bool::ANY,
    )
        .prop_map(move |(sts, v2012)| {
            let mut doc = Map::new();
            if v2012 {
                doc.insert("Version".into(), json!("2012-10-17"));
            }
            // Identity policies need unique Sids: number them by position.
            let sts: Vec<Value> = sts
                .into_iter()
                .enumerate()
                .map(|(i, mut s)| {
                    if let (Value::Object(m), PolicyKind::Identity) = (&mut s, kind)
                        && m.contains_key("Sid")
                    {
                        m.insert("Sid".into(), json!(format!("S{i}")));
                    }
                    s
                })
                .collect();
            doc.insert("Statement".into(), Value::Array(sts));
            Value::Object(doc).to_string()
        })
}

pub fn key_policy_strategy() -> impl Strategy<Value = Policy> {
    policy_json(PolicyKind::KeyPolicy).prop_map(|j| key_policy(&j))
}

pub fn identity_strategy() -> impl Strategy<Value = Policy> {
    policy_json(PolicyKind::Identity).prop_map(|j| identity(&j))
}

#[derive(Debug, Clone)]
pub struct Req {
    pub principal: Principal,
    pub action: &'static str,
    pub resource: &'static str,
    pub context: ConditionContext,
}

pub fn request() -> impl Strategy<Value = Req> {
    let principals = prop_oneof![
        Just(alice()),
        Just(admin_session()),
        Just(Principal::root(ACCT)),
        Just(Principal::user(OTHER, "arn:aws:iam::444455556666:user/bob")),
        Just(Principal::service("logs.amazonaws.com")),
    ];
    let action = prop::sample::select(
        &[
            "kms:Decrypt",
            "kms:Encrypt",
            "kms:ReEncryptFrom",
            "kms:ScheduleKeyDeletion",
        ][..],
    );
    let resource = prop::sample::select(
        &[
            KEY_ARN,
            "arn:aws:kms:us-east-1:444455556666:key/x",
            "*",
            "arn:aws:kms:us-east-1:111122223333:alias/bob",
        ][..],
    );
    let context = (
        prop::option::of(prop::sample::select(&[ACCT, OTHER][..])),
        prop::option::of(prop::sample::select(&["a", "abc", "zzz"][..])),
        prop::option::of(prop::collection::vec(
            prop::sample::select(&["app", "env", "x"][..]),
            0..3,
        )),
        prop::option::of(prop::sample::select(&["true", "false"][..])),
        prop::option::of(prop::sample::select(&["1", "9", "nan"][..])),
        prop::option::of(prop::sample::select(&["bob", "alice"][..])),
    )
        .prop_map(|(caller, app, keys, tls, x, user)| {
            let mut c = ConditionContext::new();
            if let Some(v) = caller {
                c.insert("kms:CallerAccount", v);
            }
            if let Some(v) = app {
                c.insert("kms:EncryptionContext:app", v);
            }
            if let Some(v) = keys {
                c.insert_multi("kms:EncryptionContextKeys", v);
            }
            if let Some(v) = tls {
                c.insert("aws:SecureTransport", v);
            }
            if let Some(v) = x {
                c.insert("kms:X", v);
            }
            if let Some(v) = user {
                c.insert("aws:username", v);
                c.insert("aws:PrincipalTag/team", v);
            }
            c
        });
    (principals, action, resource, context).prop_map(|(principal, action, resource, context)| Req {
        principal,
        action,
        resource,
        context,
    })
}
