//! Every condition operator, table-driven: positive and negative cases,
//! missing keys, IfExists, Null, set operators, multi-value and multi-key
//! semantics, unparseable values, IPv4/IPv6 CIDRs, policy variables.

mod common;
use common::cond;

/// (operator, key, policy values as JSON, context, expected allow)
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], bool);

fn run(cases: &[Case<'_>]) {
    for (i, (op, key, values, context, expected)) in cases.iter().enumerate() {
        assert_eq!(
            cond(op, key, values, context),
            *expected,
            "case {i}: {op} {key} {values} with {context:?}"
        );
    }
}

const K: &str = "kms:EncryptionContext:app";

#[test]
#[rustfmt::skip]
fn string_operators() {
    run(&[
        ("StringEquals", K, r#""a""#, &[(K, "a")], true),
        ("StringEquals", K, r#""a""#, &[(K, "A")], false),
        ("StringEquals", K, r#""a""#, &[], false),
        ("StringEquals", K, r#"["x","a"]"#, &[(K, "a")], true),
        ("StringEquals", K, r#""a*""#, &[(K, "abc")], false),
        ("StringEquals", K, r#""a*""#, &[(K, "a*")], true),
        ("StringNotEquals", K, r#"["x","y"]"#, &[(K, "a")], true),
        ("StringNotEquals", K, r#"["x","y"]"#, &[(K, "x")], false),
        ("StringNotEquals", K, r#""x""#, &[], true),
        ("StringEqualsIgnoreCase", K, r#""ABC""#, &[(K, "abc")], true),
        ("StringEqualsIgnoreCase", K, r#""ABC""#, &[(K, "abd")], false),
        ("StringEqualsIgnoreCase", K, r#""ABC""#, &[], false),
        ("StringNotEqualsIgnoreCase", K, r#""ABC""#, &[(K, "aBc")], false),
        ("StringNotEqualsIgnoreCase", K, r#""ABC""#, &[(K, "x")], true),
        ("StringNotEqualsIgnoreCase", K, r#""ABC""#, &[], true),
        ("StringLike", K, r#""a*c""#, &[(K, "abbbc")], true),
        ("StringLike", K, r#""a*c""#, &[(K, "ac")], true),
        ("StringLike", K, r#""a?c""#, &[(K, "abc")], true),
        ("StringLike", K, r#""a?c""#, &[(K, "ac")], false),
        ("StringLike", K, r#""A*""#, &[(K, "abc")], false),
        ("StringLike", K, r#""*""#, &[(K, "")], true),
        ("StringLike", K, r#""*""#, &[], false),
        ("StringNotLike", K, r#""a*""#, &[(K, "b")], true),
        ("StringNotLike", K, r#"["b*","a*"]"#, &[(K, "abc")], false),
        ("StringNotLike", K, r#""a*""#, &[], true),
        // JSON numbers and booleans are compared as their text.
        ("StringEquals", K, "5", &[(K, "5")], true),
        ("StringEquals", K, "true", &[(K, "true")], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn condition_keys_are_case_insensitive_values_are_not() {
    run(&[
        ("StringEquals", "KMS:encryptioncontext:APP", r#""v""#, &[("kms:EncryptionContext:app", "v")], true),
        ("StringEquals", "aws:username", r#""v""#, &[("AWS:UserName", "v")], true),
        ("StringEquals", "aws:username", r#""v""#, &[("AWS:UserName", "V")], false),
    ]);
}

#[test]
#[rustfmt::skip]
fn numeric_operators() {
    let n = "kms:RotationPeriodInDays";
    run(&[
        ("NumericEquals", n, r#""10""#, &[(n, "10")], true),
        ("NumericEquals", n, r#""10""#, &[(n, "10.0")], true),
        ("NumericEquals", n, "10", &[(n, "1e1")], true),
        ("NumericEquals", n, r#""10""#, &[(n, "11")], false),
        ("NumericEquals", n, r#""10""#, &[(n, "abc")], false),
        ("NumericEquals", n, r#""abc""#, &[(n, "10")], false),
        ("NumericEquals", n, r#""10""#, &[], false),
        ("NumericEquals", n, r#"["9","10"]"#, &[(n, "10")], true),
        ("NumericNotEquals", n, r#""10""#, &[(n, "11")], true),
        ("NumericNotEquals", n, r#""10""#, &[(n, "10.00")], false),
        ("NumericNotEquals", n, r#""10""#, &[], true),
        ("NumericNotEquals", n, r#""10""#, &[(n, "abc")], false),
        ("NumericLessThan", n, r#""10""#, &[(n, "9.99")], true),
        ("NumericLessThan", n, r#""10""#, &[(n, "10")], false),
        ("NumericLessThan", n, r#""-4""#, &[(n, "-5")], true),
        ("NumericLessThan", n, r#""1546257599.0""#, &[(n, "1546257598")], true),
        ("NumericLessThanEquals", n, r#""10""#, &[(n, "10")], true),
        ("NumericLessThanEquals", n, r#""10""#, &[(n, "10.0001")], false),
        ("NumericGreaterThan", n, r#""10""#, &[(n, "10.5")], true),
        ("NumericGreaterThan", n, r#""10""#, &[(n, "10")], false),
        ("NumericGreaterThanEquals", n, r#""10""#, &[(n, "10")], true),
        ("NumericGreaterThanEquals", n, r#""10""#, &[(n, "9")], false),
        // Exact: no float rounding at 2^53 + 1.
        ("NumericGreaterThan", n, r#""9007199254740992""#, &[(n, "9007199254740993")], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn date_operators() {
    let d = "aws:CurrentTime";
    run(&[
        ("DateEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "1577836800")], true),
        ("DateEquals", d, r#""2020-01-01T01:00:00+01:00""#, &[(d, "2020-01-01T00:00:00Z")], true),
        ("DateEquals", d, r#""2020-01-01""#, &[(d, "2020-01-01T00:00:00Z")], true),
        ("DateEquals", d, r#""2020-01-01T00:00Z""#, &[(d, "2020-01-01T00:00:00.000Z")], true),
        ("DateEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "garbage")], false),
        ("DateNotEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "2020-01-02T00:00:00Z")], true),
        ("DateNotEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "1577836800")], false),
        ("DateNotEquals", d, r#""2020-01-01T00:00:00Z""#, &[], true),
        ("DateNotEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "garbage")], false),
        ("DateLessThan", d, r#""2020-01-01T00:00:00Z""#, &[(d, "2019-12-31T23:59:59Z")], true),
        ("DateLessThan", d, r#""2020-01-01T00:00:00Z""#, &[(d, "2020-01-01T00:00:00Z")], false),
        ("DateLessThanEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "2020-01-01T00:00:00Z")], true),
        ("DateGreaterThan", d, "1577836800", &[(d, "2020-01-01T00:00:01Z")], true),
        ("DateGreaterThan", d, r#""2020-01-01T00:00:00Z""#, &[(d, "2020-01-01T00:00:00.5Z")], true),
        ("DateGreaterThanEquals", d, r#""2020-01-01T00:00:00Z""#, &[(d, "2019-12-31T23:59:59.999Z")], false),
        ("DateGreaterThan", d, r#""not a date""#, &[(d, "2020-01-01T00:00:00Z")], false),
        ("DateLessThan", d, r#""2020-02-30""#, &[(d, "2000-01-01")], false),
        ("DateLessThan", d, r#""2024-02-29""#, &[(d, "2000-01-01")], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn bool_binary_ip_operators() {
    let b = "aws:SecureTransport";
    let x = "kms:Blob";
    let ip = "aws:SourceIp";
    run(&[
        ("Bool", b, r#""true""#, &[(b, "true")], true),
        ("Bool", b, "true", &[(b, "true")], true),
        ("Bool", b, r#""true""#, &[(b, "false")], false),
        ("Bool", b, r#""true""#, &[], false),
        ("Bool", b, r#""true""#, &[(b, "TRUE")], true),
        ("Bool", b, r#""true""#, &[(b, "yes")], false),
        ("Bool", b, r#""false""#, &[(b, "false")], true),
        ("BinaryEquals", x, r#""QmluYXJ5""#, &[(x, "QmluYXJ5")], true),
        ("BinaryEquals", x, r#""QmluYXJ5""#, &[(x, "QmluYXJ6")], false),
        ("BinaryEquals", x, r#""QmluYXJ5""#, &[(x, "!!")], false),
        ("BinaryEquals", x, r#""QmluYXJ5""#, &[], false),
        ("IpAddress", ip, r#""203.0.113.0/24""#, &[(ip, "203.0.113.7")], true),
        ("IpAddress", ip, r#""203.0.113.0/24""#, &[(ip, "203.0.114.1")], false),
        ("IpAddress", ip, r#""10.0.0.1""#, &[(ip, "10.0.0.1")], true),
        ("IpAddress", ip, r#""10.0.0.1""#, &[(ip, "10.0.0.2")], false),
        ("IpAddress", ip, r#""0.0.0.0/0""#, &[(ip, "8.8.8.8")], true),
        ("IpAddress", ip, r#""2001:db8::/32""#, &[(ip, "2001:db8:1::1")], true),
        ("IpAddress", ip, r#""2001:db8::/32""#, &[(ip, "2001:db9::1")], false),
        ("IpAddress", ip, r#""2001:db8::1""#, &[(ip, "2001:db8::1")], true),
        ("IpAddress", ip, r#""2001:db8::/32""#, &[(ip, "10.0.0.1")], false),
        ("IpAddress", ip, r#"["10.0.0.0/8","2001:db8::/32"]"#, &[(ip, "2001:db8::5")], true),
        ("IpAddress", ip, r#""10.0.0.0/33""#, &[(ip, "10.0.0.1")], false),
        ("IpAddress", ip, r#""10.0.0.0/8""#, &[(ip, "not-an-ip")], false),
        ("IpAddress", ip, r#""10.0.0.0/8""#, &[], false),
        ("NotIpAddress", ip, r#""10.0.0.0/8""#, &[(ip, "11.0.0.1")], true),
        ("NotIpAddress", ip, r#""10.0.0.0/8""#, &[(ip, "10.1.1.1")], false),
        ("NotIpAddress", ip, r#""10.0.0.0/8""#, &[], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn arn_operators() {
    let a = "aws:SourceArn";
    run(&[
        ("ArnLike", a, r#""arn:aws:iam::111122223333:role/*""#, &[(a, "arn:aws:iam::111122223333:role/a/b")], true),
        ("ArnLike", a, r#""arn:aws:iam::111122223333:role/*""#, &[(a, "arn:aws:iam::111122223333:user/x")], false),
        ("ArnLike", a, r#""arn:aws:iam::1*:role/x""#, &[(a, "arn:aws:iam::111:role/x")], true),
        // `*` in the account segment does not swallow a colon.
        ("ArnLike", a, r#""arn:aws:iam::*:role/x""#, &[(a, "arn:aws:iam::1:2:role/x")], false),
        // The resource segment may contain colons.
        ("ArnLike", a, r#""arn:aws:logs:*:*:log-group:*""#, &[(a, "arn:aws:logs:us-east-1:1:log-group:g:*")], true),
        ("ArnEquals", a, r#""arn:aws:s3:::bucket""#, &[(a, "arn:aws:s3:::bucket")], true),
        ("ArnEquals", a, r#""arn:aws:s3:::*""#, &[(a, "arn:aws:s3:::bucket")], true),
        ("ArnEquals", a, r#""arn:aws:s3:::bucket""#, &[(a, "arn:aws:s3:::Bucket")], false),
        ("ArnLike", a, r#""arn:aws:s3:::*""#, &[(a, "not-an-arn")], false),
        ("ArnNotEquals", a, r#""arn:aws:s3:::bucket""#, &[(a, "arn:aws:s3:::other")], true),
        ("ArnNotLike", a, r#""arn:aws:s3:::b*""#, &[(a, "arn:aws:s3:::bucket")], false),
        ("ArnNotLike", a, r#""arn:aws:s3:::b*""#, &[], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn null_and_if_exists() {
    run(&[
        ("Null", K, r#""true""#, &[], true),
        ("Null", K, r#""true""#, &[(K, "x")], false),
        ("Null", K, r#""false""#, &[(K, "x")], true),
        ("Null", K, r#""false""#, &[], false),
        ("Null", K, "true", &[], true),
        ("Null", "kms:EncryptionContextKeys", r#""true""#, &[("kms:EncryptionContextKeys", "[]")], true),
        ("Null", K, r#""maybe""#, &[], false),
        ("StringEqualsIfExists", K, r#""a""#, &[], true),
        ("StringEqualsIfExists", K, r#""a""#, &[(K, "b")], false),
        ("StringEqualsIfExists", K, r#""a""#, &[(K, "a")], true),
        ("StringNotEqualsIfExists", K, r#""a""#, &[], true),
        ("StringNotEqualsIfExists", K, r#""a""#, &[(K, "a")], false),
        ("NumericLessThanIfExists", "kms:X", r#""5""#, &[], true),
        ("NumericLessThanIfExists", "kms:X", r#""5""#, &[("kms:X", "6")], false),
        ("DateGreaterThanIfExists", "aws:CurrentTime", r#""2020-01-01""#, &[], true),
        ("BoolIfExists", "aws:SecureTransport", r#""false""#, &[], true),
        ("BoolIfExists", "aws:SecureTransport", r#""false""#, &[("aws:SecureTransport", "true")], false),
        ("IpAddressIfExists", "aws:SourceIp", r#""10.0.0.0/8""#, &[], true),
        ("ArnLikeIfExists", "aws:SourceArn", r#""arn:aws:s3:::x""#, &[], true),
        ("BinaryEqualsIfExists", "kms:Blob", r#""QQ==""#, &[], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn set_operators() {
    let m = "kms:EncryptionContextKeys";
    run(&[
        ("ForAnyValue:StringEquals", m, r#"["a","b"]"#, &[(m, "c|a")], true),
        ("ForAnyValue:StringEquals", m, r#"["a","b"]"#, &[(m, "c|d")], false),
        ("ForAnyValue:StringEquals", m, r#"["a","b"]"#, &[], false),
        ("ForAnyValue:StringEquals", m, r#"["a","b"]"#, &[(m, "[]")], false),
        ("ForAnyValue:StringEquals", m, r#"["a","b"]"#, &[(m, "a")], true),
        ("ForAllValues:StringEquals", m, r#"["a","b"]"#, &[(m, "a|b")], true),
        ("ForAllValues:StringEquals", m, r#"["a","b"]"#, &[(m, "a|c")], false),
        ("ForAllValues:StringEquals", m, r#"["a","b"]"#, &[], true),
        ("ForAllValues:StringEquals", m, r#"["a","b"]"#, &[(m, "[]")], true),
        ("ForAllValues:StringNotEquals", m, r#"["c"]"#, &[(m, "a|b")], true),
        ("ForAllValues:StringNotEquals", m, r#"["c"]"#, &[(m, "a|c")], false),
        ("ForAnyValue:StringNotEquals", m, r#"["c","d"]"#, &[(m, "c|c")], false),
        ("ForAnyValue:StringNotEquals", m, r#"["c","d"]"#, &[(m, "a|c")], true),
        ("ForAnyValue:StringNotEquals", m, r#"["c"]"#, &[], false),
        // IfExists does not rescue ForAnyValue on an absent key (docs/decisions.md).
        ("ForAnyValue:StringEqualsIfExists", m, r#"["a"]"#, &[], false),
        ("ForAnyValue:StringEqualsIfExists", m, r#"["a"]"#, &[(m, "b|a")], true),
        ("ForAllValues:StringEqualsIfExists", m, r#"["a"]"#, &[], true),
        ("ForAnyValue:StringLike", m, r#"["a*"]"#, &[(m, "x|abc")], true),
        ("ForAllValues:StringLike", m, r#"["a*"]"#, &[(m, "ab|abc")], true),
        ("ForAnyValue:NumericGreaterThan", m, r#""5""#, &[(m, "1|7")], true),
        // A plain operator on a multi-valued key does not match (OPEN 2, as the oracle).
        ("StringEquals", m, r#""a""#, &[(m, "a|b")], false),
        ("StringNotEquals", m, r#""z""#, &[(m, "a|b")], false),
    ]);
}

#[test]
fn several_values_keys_and_operators() {
    let p = common::identity(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
        "Condition":{"StringEquals":{"kms:EncryptionContext:a":["1","2"],"kms:EncryptionContext:b":"x"},
                     "Bool":{"aws:SecureTransport":"true"}}}}"#,
    );
    let check = |pairs: &[(&str, &str)]| {
        common::eval(
            &p,
            &common::alice(),
            "kms:Decrypt",
            "*",
            &common::ctx(pairs),
        )
        .allow
    };
    let t = ("aws:SecureTransport", "true");
    assert!(check(&[
        ("kms:EncryptionContext:a", "2"),
        ("kms:EncryptionContext:b", "x"),
        t
    ]));
    assert!(!check(&[
        ("kms:EncryptionContext:a", "3"),
        ("kms:EncryptionContext:b", "x"),
        t
    ]));
    assert!(!check(&[
        ("kms:EncryptionContext:a", "1"),
        ("kms:EncryptionContext:b", "y"),
        t
    ]));
    assert!(!check(&[("kms:EncryptionContext:a", "1"), t]));
    assert!(!check(&[
        ("kms:EncryptionContext:a", "1"),
        ("kms:EncryptionContext:b", "x")
    ]));
}

#[test]
#[rustfmt::skip]
fn empty_value_list_never_matches() {
    run(&[
        ("StringEquals", K, "[]", &[(K, "a")], false),
        ("StringNotEquals", K, "[]", &[(K, "a")], false),
    ]);
}

#[test]
#[rustfmt::skip]
fn policy_variables_in_conditions() {
    let u = ("aws:username", "bob");
    run(&[
        ("StringEquals", K, r#""${aws:username}""#, &[(K, "bob"), u], true),
        ("StringEquals", K, r#""${aws:username}""#, &[(K, "alice"), u], false),
        ("StringEquals", K, r#""${AWS:UserName}""#, &[(K, "bob"), u], true),
        ("StringEquals", K, r#""team-${aws:username}""#, &[(K, "team-bob"), u], true),
        // Unresolvable: positive operators don't match, negated ones do (OPEN 1).
        ("StringEquals", K, r#""${aws:username}""#, &[(K, "bob")], false),
        ("StringNotEquals", K, r#""${aws:username}""#, &[(K, "bob")], true),
        ("StringEquals", K, r#""${aws:PrincipalTag/team, 'company-wide'}""#, &[(K, "company-wide")], true),
        ("StringEquals", K, r#""${aws:PrincipalTag/team, 'company-wide'}""#, &[(K, "red"), ("aws:PrincipalTag/team", "red")], true),
        ("StringLike", K, r#""a${*}b""#, &[(K, "a*b")], true),
        ("StringLike", K, r#""a${*}b""#, &[(K, "axb")], false),
        ("StringLike", K, r#""a${?}b""#, &[(K, "a?b")], true),
        ("StringLike", K, r#""a${?}b""#, &[(K, "axb")], false),
        ("StringEquals", K, r#""cost${$}""#, &[(K, "cost$")], true),
        ("StringLike", K, r#""${aws:username}-*""#, &[(K, "bob-1"), u], true),
        // Substituted text is literal, never a wildcard.
        ("StringLike", K, r#""${aws:PrincipalTag/x}""#, &[(K, "abc"), ("aws:PrincipalTag/x", "a*")], false),
        ("StringLike", K, r#""${aws:PrincipalTag/x}""#, &[(K, "a*"), ("aws:PrincipalTag/x", "a*")], true),
        // Multi-valued keys cannot be variables.
        ("StringEquals", K, r#""${kms:EncryptionContextKeys}""#, &[(K, "a"), ("kms:EncryptionContextKeys", "a|b")], false),
        ("StringEqualsIgnoreCase", K, r#""${aws:username}""#, &[(K, "BOB"), u], true),
        ("ArnLike", "aws:SourceArn", r#""arn:aws:iam::*:user/${aws:username}""#, &[("aws:SourceArn", "arn:aws:iam::1:user/bob"), u], true),
        ("ArnLike", "aws:SourceArn", r#""arn:aws:iam::*:user/${aws:username}""#, &[("aws:SourceArn", "arn:aws:iam::1:user/eve"), u], false),
        // Not substituted in numeric values.
        ("NumericEquals", "kms:X", r#""${kms:Y}""#, &[("kms:X", "1"), ("kms:Y", "1")], false),
        // Not a variable (no prefix): literal text.
        ("StringEquals", K, r#""${nope}""#, &[(K, "${nope}")], true),
    ]);
}

#[test]
fn variables_are_literal_under_version_2008() {
    let p = common::identity(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*",
        "Condition":{"StringEquals":{"kms:EncryptionContext:a":"${aws:username}"}}}}"#,
    );
    let allowed = |v: &str| {
        let c = common::ctx(&[("kms:EncryptionContext:a", v), ("aws:username", "bob")]);
        common::eval(&p, &common::alice(), "kms:Decrypt", "*", &c).allow
    };
    assert!(allowed("${aws:username}"));
    assert!(!allowed("bob"));
}
