//! Element matching: Action/NotAction wildcards (case-insensitive),
//! Resource/NotResource (case-sensitive, per ARN segment, variables),
//! Principal/NotPrincipal forms, key-policy quirks, and `combine`.

mod common;
use common::*;
use trent_policy::{
    Decision, DenyCause, Policy, PolicyKind, PolicyType, Principal, PrincipalMatch, combine,
};

fn allows_action(pattern: &str, action: &str) -> bool {
    let p = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"{pattern}","Resource":"*"}}}}"#
    ));
    eval(&p, &alice(), action, KEY_ARN, &ctx(&[])).allow
}

#[test]
fn action_wildcards_are_case_insensitive() {
    for (pattern, action, expected) in [
        ("kms:Decrypt", "kms:Decrypt", true),
        ("KMS:dec?YPT", "kms:Decrypt", true),
        ("kms:decrypt", "KMS:DECRYPT", true),
        ("kms:*", "kms:Decrypt", true),
        ("*", "iam:CreateUser", true),
        ("kms:Describe*", "kms:Decrypt", false),
        ("kms:Gen*Key", "kms:GenerateDataKey", true),
        ("kms:Gen*Key", "kms:GenerateDataKeyPair", false),
        ("kms:Encrypt", "kms:ReEncryptFrom", false),
        ("kms:*Encrypt*", "kms:ReEncryptFrom", true),
        ("kms:Decrypt?", "kms:Decrypt", false),
        ("iam:*", "kms:Decrypt", false),
    ] {
        assert_eq!(
            allows_action(pattern, action),
            expected,
            "{pattern} vs {action}"
        );
    }
}

#[test]
fn not_action() {
    let allow = identity(
        r#"{"Statement":{"Effect":"Allow","NotAction":["kms:Decrypt","kms:Re*"],"Resource":"*"}}"#,
    );
    assert!(eval(&allow, &alice(), "kms:Encrypt", "*", &ctx(&[])).allow);
    assert!(!eval(&allow, &alice(), "kms:Decrypt", "*", &ctx(&[])).allow);
    assert!(!eval(&allow, &alice(), "kms:ReEncryptTo", "*", &ctx(&[])).allow);
    let deny =
        identity(r#"{"Statement":{"Effect":"Deny","NotAction":"kms:Decrypt","Resource":"*"}}"#);
    assert!(eval(&deny, &alice(), "kms:Encrypt", "*", &ctx(&[])).explicit_deny);
    assert!(!eval(&deny, &alice(), "kms:Decrypt", "*", &ctx(&[])).explicit_deny);
}

fn allows_resource(pattern: &str, resource: &str) -> bool {
    let p = identity(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"kms:*","Resource":"{pattern}"}}}}"#
    ));
    eval(
        &p,
        &alice(),
        "kms:Decrypt",
        resource,
        &ctx(&[("aws:username", "bob")]),
    )
    .allow
}

#[test]
fn resource_matching() {
    let key = KEY_ARN;
    for (pattern, resource, expected) in [
        ("*", key, true),
        ("*", "*", true),
        (key, key, true),
        (
            "arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab",
            key,
            false,
        ),
        ("arn:aws:kms:*:111122223333:key/*", key, true),
        ("arn:aws:kms:us-*-1:111122223333:key/*", key, true),
        (
            "arn:aws:kms:us-*-1:111122223333:key/*",
            "arn:aws:kms:us-east-2:111122223333:key/x",
            false,
        ),
        (
            "arn:aws:kms:*:*:key/*",
            "arn:aws:kms:us-east-1:111122223333:alias/key/x",
            false,
        ),
        ("arn:aws:kms:us-east-1:111122223333:*", key, true),
        (
            "arn:aws:kms:us-east-1:111122223333:key/????????-*",
            key,
            true,
        ),
        ("arn:aws:kms:us-east-1:444455556666:key/*", key, false),
        // A key-less action's resource `*` is only matched by `*`.
        ("arn:aws:kms:*:*:*", "*", false),
        // `*` within a segment does not cross a colon.
        (
            "arn:aws:kms:us-east-1:*:key/x",
            "arn:aws:kms:us-east-1:1:2:key/x",
            false,
        ),
        // Fewer than six segments: matched as a whole (documented choice).
        ("arn:aws:kms:*", KEY_ARN, true),
        // Variables in the resource part.
        (
            "arn:aws:kms:us-east-1:111122223333:alias/${aws:username}",
            "arn:aws:kms:us-east-1:111122223333:alias/bob",
            true,
        ),
        (
            "arn:aws:kms:us-east-1:111122223333:alias/${aws:username}",
            "arn:aws:kms:us-east-1:111122223333:alias/eve",
            false,
        ),
        (
            "arn:aws:kms:us-east-1:111122223333:alias/${aws:userid}",
            "arn:aws:kms:us-east-1:111122223333:alias/bob",
            false,
        ),
        (
            "arn:aws:kms:us-east-1:111122223333:alias/${aws:username}-*",
            "arn:aws:kms:us-east-1:111122223333:alias/bob-x",
            true,
        ),
    ] {
        assert_eq!(
            allows_resource(pattern, resource),
            expected,
            "{pattern} vs {resource}"
        );
    }
}

#[test]
fn not_resource_with_unresolved_variable_applies() {
    let p = identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"kms:*",
        "NotResource":"arn:aws:kms:us-east-1:111122223333:alias/${aws:username}"}}"#,
    );
    let alias = "arn:aws:kms:us-east-1:111122223333:alias/bob";
    assert!(
        !eval(
            &p,
            &alice(),
            "kms:Decrypt",
            alias,
            &ctx(&[("aws:username", "bob")])
        )
        .explicit_deny
    );
    assert!(eval(&p, &alice(), "kms:Decrypt", alias, &ctx(&[])).explicit_deny);
    assert!(
        eval(
            &p,
            &alice(),
            "kms:Decrypt",
            KEY_ARN,
            &ctx(&[("aws:username", "bob")])
        )
        .explicit_deny
    );
}

fn principal_match(principal_json: &str, caller: &Principal) -> Option<PrincipalMatch> {
    let p = key_policy(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{principal_json},"Action":"kms:*","Resource":"*"}}}}"#
    ));
    eval(&p, caller, "kms:Decrypt", KEY_ARN, &ctx(&[]))
        .matched
        .first()
        .map(|m| m.principal)
}

#[test]
fn principal_forms() {
    use PrincipalMatch::{Account, Direct};
    let root = Principal::root(ACCT);
    let other_user = Principal::user(OTHER, "arn:aws:iam::444455556666:user/alice");
    let svc = Principal::service("logs.amazonaws.com");
    let other_session = Principal::assumed_role(
        ACCT,
        "arn:aws:sts::111122223333:assumed-role/Admin/sess2",
        ROLE_ARN,
    );
    let cases: Vec<(&str, Principal, Option<PrincipalMatch>)> = vec![
        (r#""*""#, alice(), Some(Direct)),
        (r#"{"AWS":"*"}"#, alice(), Some(Direct)),
        (r#"{"AWS":"*"}"#, svc.clone(), Some(Direct)),
        (r#"{"AWS":"111122223333"}"#, alice(), Some(Account)),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            alice(),
            Some(Account),
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            root.clone(),
            Some(Account),
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
            other_user.clone(),
            None,
        ),
        (r#"{"AWS":"111122223333"}"#, svc.clone(), None),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
            alice(),
            Some(Direct),
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:user/Alice"}"#,
            alice(),
            None,
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
            other_user.clone(),
            None,
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}"#,
            admin_session(),
            Some(Direct),
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:role/Admin"}"#,
            admin_session(),
            None,
        ),
        (
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/sess1"}"#,
            admin_session(),
            Some(Direct),
        ),
        (
            r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/sess1"}"#,
            other_session,
            None,
        ),
        (
            r#"{"Service":"logs.amazonaws.com"}"#,
            svc.clone(),
            Some(Direct),
        ),
        (r#"{"Service":"logs.amazonaws.com"}"#, alice(), None),
        (
            r#"{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/alice"]}"#,
            alice(),
            Some(Direct),
        ),
        (
            r#"{"AWS":"arn:aws:iam::111122223333:root","Service":"logs.amazonaws.com"}"#,
            svc,
            Some(Direct),
        ),
        (
            r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
            alice(),
            None,
        ),
    ];
    for (json, caller, expected) in cases {
        assert_eq!(
            principal_match(json, &caller),
            expected,
            "{json} vs {}",
            caller.arn
        );
    }
}

fn not_principal_denies(principal_json: &str, caller: &Principal) -> bool {
    let p = key_policy(&format!(
        r#"{{"Statement":{{"Effect":"Deny","NotPrincipal":{principal_json},"Action":"kms:*","Resource":"*"}}}}"#
    ));
    eval(&p, caller, "kms:Decrypt", KEY_ARN, &ctx(&[])).explicit_deny
}

#[test]
fn not_principal_checks_every_identity_level() {
    let bob = Principal::user(ACCT, "arn:aws:iam::111122223333:user/bob");
    let bob_and_acct = r#"{"AWS":["arn:aws:iam::111122223333:user/bob","111122223333"]}"#;
    assert!(!not_principal_denies(bob_and_acct, &bob));
    assert!(not_principal_denies(bob_and_acct, &alice()));
    // Listing only the user leaves the account level unexcluded: Bob is denied too.
    assert!(not_principal_denies(
        r#"{"AWS":"arn:aws:iam::111122223333:user/bob"}"#,
        &bob
    ));
    // Listing only the account does not exclude its users.
    assert!(not_principal_denies(r#"{"AWS":"111122223333"}"#, &bob));
    assert!(!not_principal_denies(
        r#"{"AWS":"111122223333"}"#,
        &Principal::root(ACCT)
    ));
    // A session needs account, role and session listed.
    let all = r#"{"AWS":["111122223333","arn:aws:iam::111122223333:role/ops/Admin","arn:aws:sts::111122223333:assumed-role/Admin/sess1"]}"#;
    assert!(!not_principal_denies(all, &admin_session()));
    let no_session = r#"{"AWS":["111122223333","arn:aws:iam::111122223333:role/ops/Admin"]}"#;
    assert!(not_principal_denies(no_session, &admin_session()));
    assert!(!not_principal_denies(r#""*""#, &alice()));
    assert!(!not_principal_denies(
        r#"{"Service":"logs.amazonaws.com"}"#,
        &Principal::service("logs.amazonaws.com")
    ));
    assert!(not_principal_denies(
        r#"{"Service":"logs.amazonaws.com"}"#,
        &alice()
    ));
}

#[test]
fn key_policy_statement_without_resource_never_applies() {
    let p = key_policy(r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*"}}"#);
    assert!(p.statements()[0].resource().is_none());
    let o = eval(&p, &alice(), "kms:Decrypt", KEY_ARN, &ctx(&[]));
    assert!(!o.allow && o.matched.is_empty());
}

#[test]
fn iam_only_keys_are_absent_in_key_policies() {
    let cond = r#""Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}"#;
    let kp = key_policy(&format!(
        r#"{{"Statement":{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*",{cond}}}}}"#
    ));
    let ip = identity(&format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"kms:*","Resource":"*",{cond}}}}}"#
    ));
    let c = ctx(&[
        ("aws:ResourceTag/env", "prod"),
        ("kms:ResourceAliases", "alias/a"),
    ]);
    assert!(!eval(&kp, &alice(), "kms:Decrypt", KEY_ARN, &c).allow);
    assert!(eval(&ip, &alice(), "kms:Decrypt", KEY_ARN, &c).allow);
    let kp_null = key_policy(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*",
        "Condition":{"Null":{"kms:ResourceAliases":"true"}}}}"#,
    );
    assert!(eval(&kp_null, &alice(), "kms:Decrypt", KEY_ARN, &c).allow);
}

#[test]
fn matched_statements_carry_sids() {
    let p = identity(
        r#"{"Statement":[{"Sid":"A1","Effect":"Allow","Action":"kms:*","Resource":"*"},
        {"Sid":"D1","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"},
        {"Sid":"X","Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
    );
    let o = eval(&p, &alice(), "kms:Decrypt", KEY_ARN, &ctx(&[]));
    assert!(o.allow && o.explicit_deny);
    let sids: Vec<_> = o
        .matched
        .iter()
        .map(|m| m.sid.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(sids, ["A1", "D1"]);
    let a = combine(&[(PolicyType::IdentityBased, &o)]);
    assert_eq!(a.decision, Decision::ExplicitDeny);
    assert_eq!(a.reasons.len(), 1);
    assert_eq!(a.reasons[0].sid.as_deref(), Some("D1"));
    assert_eq!(
        a.access_denied_message(USER_ARN, "kms:Decrypt", KEY_ARN)
            .as_deref(),
        Some(
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in an identity-based policy"
        )
    );
    let none = eval(&p, &alice(), "s3:GetObject", KEY_ARN, &ctx(&[]));
    let a = combine(&[(PolicyType::IdentityBased, &none)]);
    assert_eq!(a.decision, Decision::ImplicitDeny);
    assert_eq!(a.deny_cause, Some(DenyCause::NoIdentityPolicyAllows));
    let allowed = eval(&p, &alice(), "iam:GetUser", KEY_ARN, &ctx(&[]));
    let a = combine(&[(PolicyType::IdentityBased, &allowed)]);
    assert!(a.is_allowed());
    assert_eq!(a.reasons[0].sid.as_deref(), Some("X"));
    assert_eq!(a.access_denied_message(USER_ARN, "iam:GetUser", "*"), None);
}

#[test]
fn a_policy_reports_the_condition_keys_it_reads() {
    let policy = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*",
             "Condition":{"StringEquals":{"kms:EncryptionContext:App":"${aws:PrincipalTag/Team}"},
                          "Bool":{"aws:SecureTransport":"true"}}},
            {"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}]}"#,
        PolicyKind::KeyPolicy,
    )
    .unwrap();
    let keys: Vec<&str> = policy.condition_keys().into_iter().collect();
    assert_eq!(
        keys,
        [
            "aws:principaltag/team",
            "aws:securetransport",
            "kms:encryptioncontext:app"
        ]
    );
    let plain = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#,
        PolicyKind::KeyPolicy,
    )
    .unwrap();
    assert!(plain.condition_keys().is_empty());
}
