//! Value parsers of the typed operator families.

use super::date::Instant;
use super::ip::{Cidr, parse_addr};
use super::numeric::Decimal;
use super::operator::Operator;
use super::*;

fn dec(s: &str) -> Decimal {
    Decimal::parse(s).unwrap_or_else(|| panic!("{s}"))
}

#[test]
fn decimals() {
    assert_eq!(dec("10"), dec("10.000"));
    assert_eq!(dec("1e1"), dec("10"));
    assert_eq!(dec("-0"), dec("0"));
    assert_eq!(dec("+5"), dec("5"));
    assert_eq!(dec(".5"), dec("0.5"));
    assert_eq!(dec("5."), dec("5"));
    assert!(dec("9.99") < dec("10"));
    assert!(dec("-10") < dec("-9.99"));
    assert!(dec("0.001") < dec("0.01"));
    assert!(dec("-0.5") < dec("0"));
    assert!(dec("123456789012345678901234567890") > dec("123456789012345678901234567889"));
    for bad in [
        "",
        "-",
        ".",
        "abc",
        "1.2.3",
        "1e",
        "1e9999999",
        "0x10",
        "1 0",
    ] {
        assert_eq!(Decimal::parse(bad), None, "{bad}");
    }
}

fn instant(s: &str) -> Instant {
    Instant::parse(s).unwrap_or_else(|| panic!("{s}"))
}

#[test]
fn instants() {
    assert_eq!(instant("1970-01-01T00:00:00Z"), instant("0"));
    assert_eq!(instant("2020-01-01T00:00:00Z"), instant("1577836800"));
    // All digits is epoch seconds, even when it looks like a year.
    assert_eq!(instant("2020"), instant("1970-01-01T00:33:40Z"));
    assert_eq!(instant("2020-03"), instant("2020-03-01"));
    assert_eq!(
        instant("2020-01-01T00:00:00-05:00"),
        instant("2020-01-01T05:00:00Z")
    );
    assert_eq!(
        instant("2020-01-01T00:00:00+0530"),
        instant("2019-12-31T18:30:00Z")
    );
    assert_eq!(instant("2020-01-01t00:00:00z"), instant("1577836800"));
    assert_eq!(instant("2020-01-01T00:00:00"), instant("1577836800"));
    assert_eq!(instant("1577836800.25"), instant("2020-01-01T00:00:00.25Z"));
    assert!(instant("-1.5") < instant("-1"));
    assert!(instant("1969-12-31T23:59:59Z") < instant("0"));
    assert_eq!(instant("2000-02-29"), instant("951782400"));
    for bad in [
        "",
        "2020-13-01",
        "2019-02-29",
        "2020-01-32",
        "2020-01-01T24:00Z",
        "2020-01-01T10",
        "2020-01-01T10:00:00.Z",
        "20-01-01",
        "yesterday",
        "2020-01-01T00:00:00+25:00",
        "1.2.3",
    ] {
        assert_eq!(Instant::parse(bad), None, "{bad}");
    }
}

#[test]
fn cidrs() {
    let c = |s: &str| Cidr::parse(s).unwrap_or_else(|| panic!("{s}"));
    let a = |s: &str| parse_addr(s).unwrap_or_else(|| panic!("{s}"));
    assert!(c("192.0.2.0/24").contains(&a("192.0.2.255")));
    assert!(!c("192.0.2.0/24").contains(&a("192.0.3.0")));
    assert!(c("192.0.2.77/24").contains(&a("192.0.2.1")));
    assert!(c("0.0.0.0/0").contains(&a("255.255.255.255")));
    assert!(c("192.0.2.1").contains(&a("192.0.2.1")));
    assert!(c("192.0.2.1/32").contains(&a("192.0.2.1/32")));
    assert!(c("::/0").contains(&a("2001:db8::1")));
    assert!(c("2001:db8:abcd::/48").contains(&a("2001:db8:abcd:12::1")));
    assert!(!c("2001:db8:abcd::/48").contains(&a("2001:db8:abce::1")));
    assert!(!c("::ffff:0:0/96").contains(&a("10.0.0.1")));
    for bad in [
        "",
        "10.0.0.0/",
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/-1",
        "10.0.0/8",
        "host/8",
    ] {
        assert_eq!(Cidr::parse(bad), None, "{bad}");
    }
}

#[test]
fn base64_decoding() {
    assert_eq!(base64::decode("QmluYXJ5"), Some(b"Binary".to_vec()));
    assert_eq!(base64::decode("QQ=="), Some(b"A".to_vec()));
    assert_eq!(base64::decode("QQ"), Some(b"A".to_vec()));
    assert_eq!(base64::decode("QUI="), Some(b"AB".to_vec()));
    assert_eq!(base64::decode(""), Some(Vec::new()));
    assert_eq!(base64::decode("Q"), None);
    assert_eq!(base64::decode("QR=="), None);
    assert_eq!(base64::decode("Q$=="), None);
    assert_eq!(base64::decode("QQ==="), None);
}

#[test]
fn operator_names_round_trip() {
    for base in BaseOperator::all() {
        for prefix in ["", "ForAnyValue:", "ForAllValues:"] {
            for suffix in ["", "IfExists"] {
                let name = format!("{prefix}{}{suffix}", base.name());
                let parsed = Operator::parse(&name);
                if *base == BaseOperator::Null && !(prefix.is_empty() && suffix.is_empty()) {
                    assert_eq!(parsed, None, "{name}");
                } else {
                    let op = parsed.unwrap_or_else(|| panic!("{name}"));
                    assert_eq!(op.to_string(), name);
                }
            }
        }
    }
}
