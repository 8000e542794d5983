//! The `Condition` element: operator blocks, their keys and precompiled values,
//! and the evaluation rules of policy-semantics §1.3 (missing keys, negation,
//! `IfExists`, set operators, multi-value OR / AND).

mod base64;
mod date;
mod ip;
mod numeric;
mod operator;

pub use operator::{BaseOperator, Operator, SetOperator};

use crate::context::ConditionValue;
use crate::pattern::{ArnPattern, Pattern};
use crate::raw::RawScalar;
use crate::variables::{Lookup, Template};
use date::Instant;
use ip::Cidr;
use numeric::Decimal;
use operator::Family;

/// One operator with its keys: `"StringEquals": {"k1": [..], "k2": ".."}`.
/// True iff every key's test is true.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionBlock {
    pub(crate) operator: Operator,
    pub(crate) entries: Vec<ConditionEntry>,
}

/// One key under an operator, with its values.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionEntry {
    /// The key as written (serialization keeps the author's spelling).
    pub(crate) key: String,
    /// Lower-cased key used for lookups.
    pub(crate) key_lower: String,
    /// IAM-only key in a key policy: always treated as absent.
    pub(crate) hidden: bool,
    /// The values as written.
    pub(crate) raw: Vec<RawScalar>,
    /// The values compiled for this operator's family.
    values: Values,
}

/// Policy values, parsed once for the operator family. Values that do not
/// parse for the family (`"abc"` under `NumericEquals`) are kept as `None`
/// and never match.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Str(Vec<StrValue>),
    Numeric(Vec<Option<Decimal>>),
    Date(Vec<Option<Instant>>),
    Bool(Vec<Option<bool>>),
    Binary(Vec<Option<Vec<u8>>>),
    Ip(Vec<Option<Cidr>>),
    Null(Vec<Option<bool>>),
}

/// A string-family value: static forms are precompiled, values with policy
/// variables are resolved per request.
#[derive(Debug, Clone, PartialEq)]
enum StrValue {
    Exact(String),
    Folded(String),
    Like(Pattern),
    Arn(ArnPattern),
    Template(Template),
}

/// The text of a scalar condition value (`true` and `"true"` are the same).
pub(crate) fn scalar_text(v: &RawScalar) -> String {
    match v {
        RawScalar::String(s) => s.clone(),
        RawScalar::Bool(b) => b.to_string(),
        RawScalar::Number(n) => n.to_string(),
    }
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn parse_bool(s: &str) -> Option<bool> {
    // AWS's casing tolerance is OPEN (§1.12 item 4); accept any case as the oracle does.
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl ConditionBlock {
    /// The operator.
    #[must_use]
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The keys and their values under this operator.
    #[must_use]
    pub fn entries(&self) -> &[ConditionEntry] {
        &self.entries
    }

    pub(crate) fn evaluate(&self, lookup: Lookup<'_>) -> bool {
        self.entries
            .iter()
            .all(|e| e.evaluate(self.operator, lookup))
    }
}

impl ConditionEntry {
    /// Compile `values` for `operator`. `variables` is true under Version 2012-10-17.
    pub(crate) fn new(
        operator: Operator,
        key: String,
        raw: Vec<RawScalar>,
        variables: bool,
        hidden: bool,
    ) -> Self {
        let texts: Vec<String> = raw.iter().map(scalar_text).collect();
        let family = operator.base.family();
        let str_value = |t: &String| {
            if variables
                && operator.base.allows_variables()
                && let Some(tpl) = Template::parse(t)
            {
                return StrValue::Template(tpl);
            }
            match family {
                Family::StringIgnoreCase => StrValue::Folded(fold(t)),
                Family::StringLike => StrValue::Like(Pattern::new(t)),
                Family::Arn => StrValue::Arn(ArnPattern::new(t)),
                _ => StrValue::Exact(t.clone()),
            }
        };
        let values = match family {
            Family::String | Family::StringIgnoreCase | Family::StringLike | Family::Arn => {
                Values::Str(texts.iter().map(str_value).collect())
            }
            Family::Numeric => Values::Numeric(texts.iter().map(|t| Decimal::parse(t)).collect()),
            Family::Date => Values::Date(texts.iter().map(|t| Instant::parse(t)).collect()),
            Family::Bool => Values::Bool(texts.iter().map(|t| parse_bool(t)).collect()),
            Family::Binary => Values::Binary(texts.iter().map(|t| base64::decode(t)).collect()),
            Family::Ip => Values::Ip(texts.iter().map(|t| Cidr::parse(t)).collect()),
            Family::Null => Values::Null(texts.iter().map(|t| parse_bool(t)).collect()),
        };
        let key_lower = key.to_lowercase();
        Self {
            key,
            key_lower,
            hidden,
            raw,
            values,
        }
    }

    /// The lower-cased condition keys this entry reads: its own key and those
    /// of any policy variable in its values.
    pub(crate) fn referenced_keys<'a>(&'a self, out: &mut std::collections::BTreeSet<&'a str>) {
        out.insert(&self.key_lower);
        if let Values::Str(vs) = &self.values {
            for v in vs {
                if let StrValue::Template(t) = v {
                    out.extend(t.variable_keys());
                }
            }
        }
    }

    /// The key as written.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The values as text (JSON booleans and numbers rendered as strings).
    pub fn values(&self) -> impl Iterator<Item = String> + '_ {
        self.raw.iter().map(scalar_text)
    }

    fn evaluate(&self, op: Operator, lookup: Lookup<'_>) -> bool {
        let present = if self.hidden {
            None
        } else {
            lookup.ctx.value(&self.key_lower)
        };
        if let Values::Null(expected) = &self.values {
            // An empty multi-valued key counts as absent.
            let is_null = present.as_ref().is_none_or(ConditionValue::is_empty);
            return expected.contains(&Some(is_null));
        }
        let negated = op.base.is_negated();
        match op.set {
            None => match present {
                // The missing-key rule.
                None => op.if_exists || negated,
                Some(ConditionValue::Single(v)) => self.test(op.base, negated, &v, lookup),
                // Plain operator on a multi-valued key: no match, as the oracle does (OPEN 2).
                Some(ConditionValue::Multi(_)) => false,
            },
            Some(SetOperator::ForAnyValue) => match present {
                // No value to match: false even with IfExists, as AWS answers (a role whose only
                // Allow carries `ForAnyValue:StringEqualsIfExists` on an absent key is denied;
                // docs/decisions.md).
                None => false,
                Some(cv) => cv.any(|v| self.test(op.base, negated, v, lookup)),
            },
            Some(SetOperator::ForAllValues) => match present {
                None => true,
                Some(cv) => cv.all(|v| self.test(op.base, negated, v, lookup)),
            },
        }
    }

    /// One request value against all policy values: positive operators need
    /// one policy value to match (OR), negated ones need none to match.
    fn test(&self, base: BaseOperator, negated: bool, value: &str, lookup: Lookup<'_>) -> bool {
        if self.raw.is_empty() {
            // Empty value list never matches, as the oracle does (OPEN 3).
            return false;
        }
        match self.any_matches(base, value, lookup) {
            Some(m) => m != negated,
            // The request value is not of the operator's type: no match either way.
            None => false,
        }
    }

    /// Whether any policy value matches `value` under the positive form of
    /// `base`; `None` if `value` does not parse as the family's type.
    fn any_matches(&self, base: BaseOperator, value: &str, lookup: Lookup<'_>) -> Option<bool> {
        let family = base.family();
        let cmp = base.cmp();
        Some(match &self.values {
            Values::Str(vs) => {
                let mut folded: Option<String> = None;
                vs.iter().any(|sv| match sv {
                    StrValue::Exact(s) => s == value,
                    StrValue::Folded(s) => *s == *folded.get_or_insert_with(|| fold(value)),
                    StrValue::Like(p) => p.matches(value),
                    StrValue::Arn(p) => p.matches(value),
                    StrValue::Template(t) => template_matches(t, family, value, lookup),
                })
            }
            Values::Numeric(vs) => {
                let v = Decimal::parse(value)?;
                vs.iter().flatten().any(|p| cmp.holds(v.cmp(p)))
            }
            Values::Date(vs) => {
                let v = Instant::parse(value)?;
                vs.iter().flatten().any(|p| cmp.holds(v.cmp(p)))
            }
            Values::Bool(vs) => {
                let v = parse_bool(value)?;
                vs.contains(&Some(v))
            }
            Values::Binary(vs) => {
                let v = base64::decode(value)?;
                vs.iter().flatten().any(|p| *p == v)
            }
            Values::Ip(vs) => {
                let v = ip::parse_addr(value)?;
                vs.iter().flatten().any(|c| c.contains(&v))
            }
            // Handled before any value is tested.
            Values::Null(_) => false,
        })
    }
}

/// A value with policy variables; an unresolvable variable makes it match
/// nothing (so negated operators are true: the documented rule, OPEN 1).
fn template_matches(t: &Template, family: Family, value: &str, lookup: Lookup<'_>) -> bool {
    match family {
        Family::StringLike => t
            .resolve_tokens(lookup)
            .is_some_and(|toks| Pattern::from_tokens(toks).matches(value)),
        Family::Arn => t
            .resolve_tokens(lookup)
            .is_some_and(|toks| ArnPattern::from_tokens(toks).matches(value)),
        Family::StringIgnoreCase => t
            .resolve_string(lookup)
            .is_some_and(|s| fold(&s) == fold(value)),
        _ => t.resolve_string(lookup).is_some_and(|s| s == value),
    }
}

#[cfg(test)]
mod tests;
