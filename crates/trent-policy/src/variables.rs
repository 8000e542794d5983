//! Policy variables (`${aws:username}`, `${aws:PrincipalTag/team, 'default'}`)
//! and the escapes `${*}`, `${?}`, `${$}`, recognised only under Version
//! 2012-10-17.
//!
//! A template is parsed once. At evaluation each variable is replaced by the
//! single value of its context key; substituted text is always literal (a `*`
//! inside a tag value never acts as a wildcard), as are the escapes.

use std::borrow::Cow;

use crate::context::{ConditionValue, ConditionValues, hidden_in_key_policy};
use crate::pattern::{Tok, tokenize};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Policy text; `*`/`?` are wildcards where the operator allows them.
    Text(String),
    /// An escape: always the literal character.
    Escaped(char),
    /// A variable: lower-cased key and optional default.
    Var {
        key: String,
        default: Option<String>,
    },
}

/// Text with policy variables in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// Where a template is resolved: a key policy hides IAM-only keys.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup<'a> {
    pub ctx: &'a dyn ConditionValues,
    pub key_policy: bool,
}

impl<'a> Lookup<'a> {
    /// The context value of a lower-cased key, treating IAM-only keys as
    /// absent in key policies.
    pub(crate) fn get(self, lower_key: &str) -> Option<ConditionValue<'a>> {
        if self.key_policy && hidden_in_key_policy(lower_key) {
            return None;
        }
        self.ctx.value(lower_key)
    }

    /// A single-valued key's value (multi-valued keys cannot be variables).
    fn single(self, lower_key: &str) -> Option<Cow<'a, str>> {
        match self.get(lower_key)? {
            ConditionValue::Single(v) => Some(v),
            ConditionValue::Multi(_) => None,
        }
    }
}

impl Template {
    /// Parse `text`. Returns `None` when it contains no variable or escape, so
    /// callers can precompile the static form instead.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut found = false;
        let mut literal = String::new();
        while let Some(start) = rest.find("${") {
            let (before, from) = rest.split_at(start);
            literal.push_str(before);
            let after = from.get(2..).unwrap_or_default();
            let Some(end) = after.find('}') else {
                // Unterminated: the rest is plain text.
                literal.push_str(from);
                rest = "";
                break;
            };
            let body = after.get(..end).unwrap_or_default();
            match parse_body(body) {
                Some(part) => {
                    found = true;
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                // Not a variable: keep `${...}` as written.
                None => literal.push_str(from.get(..end + 3).unwrap_or_default()),
            }
            rest = after.get(end + 1..).unwrap_or_default();
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        found.then_some(Self { parts })
    }

    /// The (lower-cased) condition keys this template's variables read.
    pub(crate) fn variable_keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var { key, .. } => Some(key.as_str()),
            _ => None,
        })
    }

    /// Resolve to a literal string (equality operators: `*` is not special).
    /// `None` when a variable has no value and no default.
    pub(crate) fn resolve_string(&self, lookup: Lookup<'_>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Escaped(c) => out.push(*c),
                Part::Var { key, default } => {
                    out.push_str(&value(lookup, key, default.as_deref())?);
                }
            }
        }
        Some(out)
    }

    /// Resolve to pattern tokens (`Like` operators and resources): wildcards in
    /// policy text stay wildcards, substituted values and escapes are literal.
    pub(crate) fn resolve_tokens(&self, lookup: Lookup<'_>) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => tokenize(t, &mut out),
                Part::Escaped(c) => out.push(Tok::Char(*c)),
                Part::Var { key, default } => out.extend(
                    value(lookup, key, default.as_deref())?
                        .chars()
                        .map(Tok::Char),
                ),
            }
        }
        Some(out)
    }
}

fn value<'a>(lookup: Lookup<'a>, key: &str, default: Option<&'a str>) -> Option<Cow<'a, str>> {
    lookup.single(key).or(default.map(Cow::Borrowed))
}

/// Parse what is between `${` and `}`.
fn parse_body(body: &str) -> Option<Part> {
    match body.trim() {
        "*" => return Some(Part::Escaped('*')),
        "?" => return Some(Part::Escaped('?')),
        "$" => return Some(Part::Escaped('$')),
        _ => {}
    }
    let (key, default) = match body.split_once(',') {
        Some((key, default)) => {
            let d = default.trim();
            let inner = d.strip_prefix('\'')?.strip_suffix('\'')?;
            (key.trim(), Some(inner.to_owned()))
        }
        None => (body.trim(), None),
    };
    // A key is `prefix:name`, without characters that cannot appear in keys.
    let valid = key.contains(':')
        && !key.starts_with(':')
        && !key
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '$' | '{' | '}' | '\''));
    valid.then(|| Part::Var {
        key: key.to_lowercase(),
        default,
    })
}

#[cfg(test)]
mod tests;
