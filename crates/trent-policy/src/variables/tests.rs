//! Template parsing and resolution.

use super::*;
use crate::ConditionContext;

fn ctx() -> ConditionContext {
    ConditionContext::new()
        .with("aws:username", "bob")
        .with_multi("aws:TagKeys", ["a", "b"])
}

fn resolve(text: &str) -> Option<String> {
    let c = ctx();
    Template::parse(text)?.resolve_string(Lookup {
        ctx: &c,
        key_policy: false,
    })
}

#[test]
fn parse_and_resolve() {
    assert_eq!(Template::parse("plain"), None);
    assert_eq!(Template::parse("${nokey}"), None);
    assert_eq!(Template::parse("${unterminated"), None);
    assert_eq!(resolve("home/${aws:username}/x"), Some("home/bob/x".into()));
    assert_eq!(resolve("${ AWS:UserName }"), Some("bob".into()));
    assert_eq!(resolve("${aws:userid}"), None);
    assert_eq!(resolve("${aws:userid, 'anon'}"), Some("anon".into()));
    assert_eq!(resolve("${aws:userid,'anon'}"), Some("anon".into()));
    assert_eq!(resolve("${aws:TagKeys}"), None);
    assert_eq!(resolve("a${*}b${?}c${$}"), Some("a*b?c$".into()));
    assert_eq!(
        resolve("${nokey}${aws:username}"),
        Some("${nokey}bob".into())
    );
    assert_eq!(
        resolve("${aws:userid, anon}"),
        Some("${aws:userid, anon}".into()).filter(|_| false)
    );
}

#[test]
fn tokens_keep_policy_wildcards_only() {
    let c = ConditionContext::new().with("aws:PrincipalTag/x", "a*");
    let t = Template::parse("${aws:PrincipalTag/x}?*${*}").unwrap_or_else(|| panic!("template"));
    let toks = t.resolve_tokens(Lookup {
        ctx: &c,
        key_policy: false,
    });
    assert_eq!(
        toks,
        Some(vec![
            Tok::Char('a'),
            Tok::Char('*'),
            Tok::One,
            Tok::Star,
            Tok::Char('*')
        ])
    );
}

#[test]
fn key_policy_hides_iam_only_keys() {
    let c = ConditionContext::new().with("aws:ResourceTag/env", "prod");
    let t = Template::parse("${aws:ResourceTag/env}").unwrap_or_else(|| panic!("template"));
    assert_eq!(
        t.resolve_string(Lookup {
            ctx: &c,
            key_policy: false
        }),
        Some("prod".into())
    );
    assert_eq!(
        t.resolve_string(Lookup {
            ctx: &c,
            key_policy: true
        }),
        None
    );
}
