//! Property tests over policies and requests drawn from a small shared
//! universe (so that statements actually match): explicit deny dominates,
//! evaluation is deterministic and order-independent, action case does not
//! matter, adding a Deny never grants, and parse → serialize → parse is the
//! identity.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod common;
use common::generators::*;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use trent_policy::kms::{KmsRequest, authorize};
use trent_policy::{Decision, Policy, PolicyKind, PolicyType, RequestContext, combine};

fn eval_req(p: &Policy, r: &Req, action: &str) -> trent_policy::PolicyOutcome {
    p.evaluate(&RequestContext {
        action,
        resource: r.resource,
        principal: &r.principal,
        context: &r.context,
    })
}

fn kms_decision(kp: &Policy, iam: &[&Policy], grants: bool, r: &Req) -> Decision {
    authorize(
        kp,
        iam,
        grants,
        &KmsRequest {
            principal: &r.principal,
            action: r.action,
            key_arn: KEY_ARN,
            key_account: ACCT,
            context: &r.context,
        },
    )
    .decision
}

fn with_statement(p: &Policy, statement: &str) -> Policy {
    let mut v: Value = serde_json::from_str(&p.to_json()).unwrap();
    if let Some(Value::Array(sts)) = v.get_mut("Statement") {
        sts.push(serde_json::from_str(statement).unwrap());
    }
    Policy::parse(&v.to_string(), p.kind()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_is_identity(kp in key_policy_strategy(), ip in identity_strategy()) {
        for p in [&kp, &ip] {
            let json = p.to_json();
            let again = Policy::parse(&json, p.kind()).unwrap();
            prop_assert_eq!(&again, p);
            prop_assert_eq!(again.to_json(), json);
            prop_assert_eq!(&Policy::parse(&p.to_json_pretty(), p.kind()).unwrap(), p);
        }
    }

    #[test]
    fn explicit_deny_always_wins(kp in key_policy_strategy(), ip in identity_strategy(), r in request(), grants in prop::bool::ANY) {
        let ko = eval_req(&kp, &r, r.action);
        let io = eval_req(&ip, &r, r.action);
        let generic = combine(&[(PolicyType::ResourceBased, &ko), (PolicyType::IdentityBased, &io)]);
        prop_assert_eq!(generic.decision == Decision::ExplicitDeny, ko.explicit_deny || io.explicit_deny);
        // KMS evaluates against the key ARN.
        let on_key = Req { resource: KEY_ARN, ..r.clone() };
        let kd = eval_req(&kp, &on_key, r.action).explicit_deny || eval_req(&ip, &on_key, r.action).explicit_deny;
        let kms = kms_decision(&kp, &[&ip], grants, &r);
        prop_assert_eq!(kms == Decision::ExplicitDeny, kd);
        // An applicable universal Deny overrides every allow and every grant.
        let denied = with_statement(&kp, r#"{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}"#);
        prop_assert_eq!(kms_decision(&denied, &[&ip], grants, &r), Decision::ExplicitDeny);
    }

    #[test]
    fn adding_a_deny_never_grants(kp in key_policy_strategy(), ip in identity_strategy(), extra in statement(PolicyKind::KeyPolicy), r in request()) {
        let Value::Object(mut m) = extra else { unreachable!() };
        m.insert("Effect".into(), json!("Deny"));
        let more = with_statement(&kp, &Value::Object(m).to_string());
        if kms_decision(&kp, &[&ip], false, &r) != Decision::Allow {
            prop_assert!(kms_decision(&more, &[&ip], false, &r) != Decision::Allow);
        }
    }

    #[test]
    fn evaluation_is_deterministic_and_order_free(kp in key_policy_strategy(), r in request()) {
        let a = eval_req(&kp, &r, r.action);
        prop_assert_eq!(&a, &eval_req(&kp, &r, r.action));
        prop_assert_eq!(&a, &eval_req(&kp.clone(), &r, r.action));
        // Action names are case-insensitive.
        let upper = r.action.to_uppercase();
        let u = eval_req(&kp, &r, &upper);
        prop_assert_eq!((u.allow, u.explicit_deny), (a.allow, a.explicit_deny));
        // Statement order does not change the flags.
        let mut v: Value = serde_json::from_str(&kp.to_json()).unwrap();
        if let Some(Value::Array(sts)) = v.get_mut("Statement") {
            sts.reverse();
        }
        let reversed = key_policy(&v.to_string());
        let b = eval_req(&reversed, &r, r.action);
        prop_assert_eq!((b.allow, b.explicit_deny), (a.allow, a.explicit_deny));
    }

    #[test]
    fn parser_never_panics(s in ".{0,200}") {
        let _ = Policy::parse(&s, PolicyKind::KeyPolicy);
        let _ = Policy::parse(&s, PolicyKind::Identity);
    }

    #[test]
    fn parser_never_panics_on_mutated_policies(j in policy_json(PolicyKind::KeyPolicy), at in any::<prop::sample::Index>(), byte in prop::sample::select(&['{', '}', '[', ']', '"', ',', ':', '$', '*', 'x'][..])) {
        let mut chars: Vec<char> = j.chars().collect();
        let i = at.index(chars.len());
        chars[i] = byte;
        let s: String = chars.into_iter().collect();
        let _ = Policy::parse(&s, PolicyKind::KeyPolicy);
    }
}

/// Guard on the generators: a fair share of random cases must actually allow
/// and deny, or the properties above would hold vacuously.
#[test]
fn generators_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut allow, mut deny, mut kms_allow) = (0, 0, 0);
    for _ in 0..500 {
        let kp = key_policy_strategy()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let ip = identity_strategy().new_tree(&mut runner).unwrap().current();
        let r = request().new_tree(&mut runner).unwrap().current();
        let o = eval_req(&kp, &r, r.action);
        allow += usize::from(o.allow);
        deny += usize::from(o.explicit_deny);
        kms_allow += usize::from(kms_decision(&kp, &[&ip], false, &r) == Decision::Allow);
    }
    assert!(
        allow > 20 && deny > 20 && kms_allow > 15,
        "allow {allow} deny {deny} kms {kms_allow}"
    );
}
