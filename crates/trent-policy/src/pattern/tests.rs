//! Wildcard matcher: fixed cases plus a property test against a naive
//! recursive reference matcher (Cedar's `wildcard-matching` idea).

use super::*;
use proptest::prelude::*;

fn m(p: &str, s: &str) -> bool {
    Pattern::new(p).matches(s)
}

#[test]
fn glob_cases() {
    for (p, s, expected) in [
        ("", "", true),
        ("", "a", false),
        ("*", "", true),
        ("**", "abc", true),
        ("a*", "a", true),
        ("*a", "ba", true),
        ("*a", "ab", false),
        ("a*b*c", "aXbYc", true),
        ("a*b*c", "aXbY", false),
        ("a?c", "abc", true),
        ("a?c", "ac", false),
        ("?", "é", true),
        ("??", "é", false),
        ("*é*", "café!", true),
        ("a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaa", false),
        ("kms:*", "kms:decrypt", true),
        ("abc", "abc", true),
        ("abc", "abd", false),
    ] {
        assert_eq!(m(p, s), expected, "{p:?} vs {s:?}");
    }
}

#[test]
fn arn_segments() {
    let p = ArnPattern::new("arn:aws:kms:*:111122223333:key/*");
    assert!(p.matches("arn:aws:kms:us-east-1:111122223333:key/abc"));
    assert!(p.matches("arn:aws:kms:us-east-1:111122223333:key/a:b/c"));
    assert!(!p.matches("arn:aws:kms:us:east:111122223333:key/abc"));
    assert!(!p.matches("arn:aws:kms:us-east-1:111122223333"));
    let toks = {
        let mut t = Vec::new();
        tokenize("arn:aws:kms:*:1:key/*", &mut t);
        t
    };
    assert_eq!(
        ArnPattern::from_tokens(toks),
        ArnPattern::new("arn:aws:kms:*:1:key/*")
    );
}

/// Obviously-correct exponential reference.
fn reference(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| reference(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && reference(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && reference(rest, &s[1..]),
    }
}

proptest! {
    #[test]
    fn glob_agrees_with_reference(p in "[ab*?é]{0,8}", s in "[abé]{0,10}") {
        let pc: Vec<char> = p.chars().collect();
        let sc: Vec<char> = s.chars().collect();
        prop_assert_eq!(m(&p, &s), reference(&pc, &sc));
    }
}
