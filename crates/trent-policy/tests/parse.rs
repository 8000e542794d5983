//! Parsing and validation: every rejection rule, the accepted shapes, and the
//! canonical serialization.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failed unwrap is a failed test"
)]

mod common;
use trent_policy::{IdentityPolicyType, Policy, PolicyError, PolicyKind};

const KP: PolicyKind = PolicyKind::KeyPolicy;
const ID: PolicyKind = PolicyKind::Identity;

fn err(json: &str, kind: PolicyKind) -> PolicyError {
    match Policy::parse(json, kind) {
        Ok(p) => panic!("accepted: {json} as {}", p.to_json()),
        Err(e) => e,
    }
}

fn key_stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{{body}}}]}}"#)
}

const OK_KEY: &str =
    r#""Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*""#;

#[test]
fn json_shape_errors() {
    for (json, needle) in [
        ("not json", "expected"),
        (r#"{"Statement":[]} trailing"#, "trailing"),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}}"#,
            "duplicate field `Effect`",
        ),
        (
            r#"{"Statement":[],"Statement":[]}"#,
            "duplicate field `Statement`",
        ),
        (
            &key_stmt(&format!(
                r#"{OK_KEY},"Condition":{{"Bool":{{"aws:SecureTransport":"true"}},"Bool":{{"aws:SecureTransport":"true"}}}}"#
            )),
            "duplicate key `Bool`",
        ),
        (
            &key_stmt(&format!(
                r#"{OK_KEY},"Condition":{{"StringEquals":{{"kms:CallerAccount":"1","kms:CallerAccount":"2"}}}}"#
            )),
            "duplicate key `kms:CallerAccount`",
        ),
        (
            &key_stmt(
                r#""Effect":"Allow","Principal":{"AWS":"111122223333","AWS":"444455556666"},"Action":"kms:*","Resource":"*""#,
            ),
            "duplicate key `AWS`",
        ),
        (
            &key_stmt(&format!(r#"{OK_KEY},"Foo":1"#)),
            "unknown field `Foo`",
        ),
        (
            r#"{"Version":"2012-10-17","Bar":1,"Statement":[]}"#,
            "unknown field `Bar`",
        ),
        (
            &key_stmt(r#""Effect":"Allow","Principal":"*","Action":5,"Resource":"*""#),
            "a string or a list of strings",
        ),
        (
            &key_stmt(&format!(
                r#"{OK_KEY},"Condition":{{"StringEquals":{{"kms:CallerAccount":null}}}}"#
            )),
            "a string, number, boolean",
        ),
        (
            &key_stmt(&format!(
                r#"{OK_KEY},"Condition":{{"StringEquals":{{"kms:CallerAccount":{{"a":"b"}}}}}}"#
            )),
            "a string, number, boolean",
        ),
        (r#"{"Statement":"x"}"#, "statement object"),
        (r#"[]"#, "expected a JSON object"),
        (r#"["2012-10-17", null, []]"#, "expected a JSON object"),
        (
            r#"{"Statement":[["Allow", null, "*"]]}"#,
            "expected a JSON object",
        ),
    ] {
        let e = err(json, KP);
        assert!(matches!(e, PolicyError::Json(_)), "{json}: {e:?}");
        assert!(e.to_string().contains(needle), "{json}: {e}");
    }
}

#[test]
fn document_rules() {
    assert_eq!(
        err(r#"{"Version":"2012-10-18","Statement":[]}"#, KP),
        PolicyError::UnsupportedVersion("2012-10-18".into())
    );
    assert_eq!(
        err(r#"{"Version":"2012-10-17"}"#, KP),
        PolicyError::NoStatement
    );
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":[]}"#, ID),
        PolicyError::NoStatement
    );
    let big = key_stmt(&format!(r#""Sid":"{}",{OK_KEY}"#, "x".repeat(32 * 1024)));
    assert!(matches!(
        err(&big, KP),
        PolicyError::TooLarge { limit: 32768, .. }
    ));
    let bad_char = key_stmt(&format!(r#""Sid":"ĀB",{OK_KEY}"#));
    assert!(matches!(
        err(&bad_char, KP),
        PolicyError::InvalidCharacter { code: 0x100, .. }
    ));
    let control = key_stmt(&format!("\"Sid\":\"a\u{1}\",{OK_KEY}"));
    assert!(matches!(
        err(&control, KP),
        PolicyError::InvalidCharacter { code: 1, .. }
    ));
    // Latin-1 supplement is allowed in key policies.
    assert!(Policy::parse(&key_stmt(&format!(r#""Sid":"Clé é",{OK_KEY}"#)), KP).is_ok());
}

#[test]
fn identity_size_limits_ignore_whitespace() {
    let stmt = r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#;
    let padded = format!(r#"{{"Statement":[{stmt}]{}}}"#, " ".repeat(10_000));
    assert!(Policy::parse(&padded, ID).is_ok());
    let sid = "a".repeat(6_200);
    let big = format!(
        r#"{{"Statement":[{{"Sid":"{sid}","Effect":"Allow","Action":"kms:*","Resource":"*"}}]}}"#
    );
    assert!(matches!(
        err(&big, ID),
        PolicyError::TooLarge { limit: 6144, .. }
    ));
    assert!(Policy::parse_identity(&big, IdentityPolicyType::RoleInline).is_ok());
    assert!(Policy::parse_identity(&big, IdentityPolicyType::GroupInline).is_err());
    assert_eq!(IdentityPolicyType::GroupInline.max_chars(), 5120);
}

#[test]
fn statement_rules() {
    use PolicyError::*;
    let cases: Vec<(String, PolicyKind, PolicyError)> = vec![
        (key_stmt(r#""Principal":"*","Action":"kms:*","Resource":"*""#), KP, MissingElement { statement: 0, element: "Effect" }),
        (key_stmt(r#""Effect":"allow","Principal":"*","Action":"kms:*","Resource":"*""#), KP, InvalidEffect("allow".into())),
        (key_stmt(r#""Effect":"Allow","Principal":"*","Resource":"*""#), KP, MissingElement { statement: 0, element: "Action" }),
        (key_stmt(r#""Effect":"Allow","Principal":"*","Action":"kms:*","NotAction":"kms:X","Resource":"*""#), KP, ConflictingElements { statement: 0, first: "Action", second: "NotAction" }),
        (key_stmt(r#""Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","NotResource":"*""#), KP, ConflictingElements { statement: 0, first: "Resource", second: "NotResource" }),
        (key_stmt(r#""Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"kms:*","Resource":"*""#), KP, ConflictingElements { statement: 0, first: "Principal", second: "NotPrincipal" }),
        (key_stmt(r#""Effect":"Allow","Action":"kms:*","Resource":"*""#), KP, MissingElement { statement: 0, element: "Principal" }),
        (key_stmt(r#""Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*""#), ID, PrincipalNotAllowed),
        (key_stmt(r#""Effect":"Allow","NotPrincipal":"*","Action":"kms:*","Resource":"*""#), ID, PrincipalNotAllowed),
        (key_stmt(r#""Effect":"Allow","Action":"kms:*""#), ID, MissingElement { statement: 0, element: "Resource" }),
        (key_stmt(r#""Sid":"has space","Effect":"Allow","Action":"kms:*","Resource":"*""#), ID, InvalidSid("has space".into())),
        (r#"{"Statement":[{"Sid":"A","Effect":"Allow","Action":"kms:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#.into(), ID, DuplicateSid("A".into())),
        (key_stmt(r#""Effect":"Allow","Action":"Decrypt","Resource":"*""#), ID, InvalidAction("Decrypt".into())),
        (key_stmt(r#""Effect":"Allow","Action":"kms:","Resource":"*""#), ID, InvalidAction("kms:".into())),
        (key_stmt(r#""Effect":"Allow","Action":"kms:*","Resource":"key/abc""#), ID, InvalidResource("key/abc".into())),
    ];
    for (json, kind, expected) in cases {
        assert_eq!(err(&json, kind), expected, "{json}");
    }
    // Accepted variants.
    for (json, kind) in [
        (key_stmt(r#""Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*""#), KP),
        (key_stmt(r#""Effect":"Allow","Principal":"*","Action":"kms:*""#), KP),
        (r#"{"Statement":{"Sid":"A1","Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":["*"]}}"#.to_owned(), ID),
        (r#"{"Id":"x","Statement":{"Effect":"Deny","NotAction":"kms:Decrypt","NotResource":"arn:aws:kms:*:*:key/*"}}"#.to_owned(), ID),
    ] {
        assert!(Policy::parse(&json, kind).is_ok(), "{json}");
    }
}

#[test]
fn principal_rules() {
    for principal in [
        r#""arn:aws:iam::111122223333:root""#,
        r#"{"AWS":"arn:aws:iam::111122223333:user/*"}"#,
        r#"{"AWS":"arn:aws:iam::*:root"}"#,
        r#"{"AWS":"1111"}"#,
        r#"{"AWS":"bob"}"#,
        r#"{"AWS":"arn:aws:iam::1234:user/x"}"#,
        r#"{"AWS":"arn:aws:iam::111122223333:group/g"}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/R"}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/path/R/S"}"#,
        r#"{"AWS":"arn:aws:iam::111122223333:user/"}"#,
        r#"{"AWS":"AIDAEXAMPLEUNIQUEID"}"#,
        r#"{"AWS":[]}"#,
        r#"{}"#,
        r#"{"Foo":"x"}"#,
        r#"{"aws":"*"}"#,
        r#"{"Service":"*"}"#,
        r#"{"CanonicalUser":"abc"}"#,
    ] {
        let json = key_stmt(&format!(
            r#""Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*""#
        ));
        let e = err(&json, KP);
        assert!(
            matches!(e, PolicyError::InvalidPrincipal(_)),
            "{principal}: {e:?}"
        );
        assert_eq!(
            e.aws_message(),
            "Policy contains a statement with one or more invalid principals."
        );
    }
    for principal in [
        r#""*""#,
        r#"{"AWS":"*"}"#,
        r#"{"AWS":"111122223333"}"#,
        r#"{"AWS":"arn:aws-cn:iam::111122223333:root"}"#,
        r#"{"AWS":["arn:aws:iam::111122223333:user/path/x","arn:aws:iam::111122223333:role/r"]}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/R/S"}"#,
        r#"{"AWS":"arn:aws:sts::111122223333:federated-user/f"}"#,
        r#"{"Service":["logs.amazonaws.com","s3.amazonaws.com"]}"#,
        r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
    ] {
        let json = key_stmt(&format!(
            r#""Effect":"Allow","Principal":{principal},"Action":"kms:*","Resource":"*""#
        ));
        assert!(Policy::parse(&json, KP).is_ok(), "{principal}");
    }
}

#[test]
fn condition_rules() {
    let with = |cond: &str| key_stmt(&format!(r#"{OK_KEY},"Condition":{cond}"#));
    for op in [
        "StringEqual",
        "stringequals",
        "STRINGEQUALS",
        "NullIfExists",
        "ForAnyValue:Null",
        "ForSomeValues:StringEquals",
        "StringEqualsIfExistsIfExists",
        "IfExists",
    ] {
        assert_eq!(
            err(&with(&format!(r#"{{"{op}":{{"kms:X":"a"}}}}"#)), KP),
            PolicyError::UnknownConditionOperator(op.into())
        );
    }
    assert_eq!(
        err(&with(r#"{"StringEquals":{"CallerAccount":"a"}}"#), KP),
        PolicyError::InvalidConditionKey("CallerAccount".into())
    );
    for key in [
        "kms:EncryptionContext:app",
        "KMS:encryptioncontext:App",
        "aws:RequestTag/env",
    ] {
        let json = with(&format!(
            r#"{{"ForAllValues:StringEquals":{{"{key}":"a"}}}}"#
        ));
        let e = err(&json, KP);
        assert!(
            matches!(e, PolicyError::OverlyPermissiveCondition { .. }),
            "{key}"
        );
        assert!(e.aws_message().contains("To fix, remove ForAllValues."));
        // Identity policies accept it.
        let id = format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{{"ForAllValues:StringEquals":{{"{key}":"a"}}}}}}}}"#
        );
        assert!(Policy::parse(&id, ID).is_ok());
    }
    assert!(
        Policy::parse(
            &with(r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":"a"}}"#),
            KP
        )
        .is_ok()
    );
    assert!(
        Policy::parse(
            &with(r#"{"ForAnyValue:StringEquals":{"kms:EncryptionContext:app":"a"}}"#),
            KP
        )
        .is_ok()
    );
    for op in [
        "StringEquals",
        "ForAnyValue:StringLikeIfExists",
        "ForAllValues:NumericLessThanIfExists",
        "Null",
        "DateGreaterThanEqualsIfExists",
        "ArnNotLike",
    ] {
        assert!(
            Policy::parse(&with(&format!(r#"{{"{op}":{{"kms:X":"1"}}}}"#)), KP).is_ok(),
            "{op}"
        );
    }
}

#[test]
fn canonical_json() {
    let src = r#"{ "Statement" : { "Resource":"*", "Action":["kms:Decrypt"], "Effect":"Allow", "Principal":{"AWS":["111122223333"]},
        "Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"kms:X":[1.5, "2"]}} }, "Version":"2012-10-17" }"#;
    let p = Policy::parse(src, KP).unwrap();
    let json = p.to_json();
    assert_eq!(
        json,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"kms:X":[1.5,"2"]}}}]}"#
    );
    assert_eq!(Policy::parse(&json, KP).unwrap(), p);
}

#[test]
fn default_key_policy_pretty_prints_like_aws() {
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#,
        KP,
    )
    .unwrap();
    let expected = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;
    assert_eq!(p.to_json_pretty(), expected);
    assert_eq!(Policy::parse(expected, KP).unwrap(), p);
}

#[test]
fn principal_entries_for_existence_checks() {
    let p = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/x"],"Service":"logs.amazonaws.com"},"Action":"kms:*","Resource":"*"},
        {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:role/r"},"Action":"kms:*","Resource":"*"}]}"#,
        KP,
    )
    .unwrap();
    let sources: Vec<&str> = p.principal_entries().map(|(_, e)| e.source()).collect();
    assert_eq!(
        sources,
        [
            "111122223333",
            "arn:aws:iam::111122223333:user/x",
            "logs.amazonaws.com",
            "arn:aws:iam::111122223333:role/r"
        ]
    );
}
