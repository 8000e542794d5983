//! The pipeline from text to a checked [`Policy`], in three visible steps:
//!
//! 1. text checks that need the raw document (size, character set);
//! 2. text → raw serde form (`raw.rs`: JSON shape, unknown and duplicate
//!    elements);
//! 3. raw form → checked AST (`ast.rs`): every rule of the policy kind, and
//!    compilation of patterns, principals and condition values.

use std::collections::HashSet;
use std::sync::Arc;

use crate::ast::{
    ActionElement, ActionItem, Effect, IdentityPolicyType, KEY_POLICY_MAX_CHARS, Policy,
    PolicyKind, PrincipalElement, ResourceElement, ResourceItem, ResourceMatcher, Statement,
    Version,
};
use crate::condition::{ConditionBlock, ConditionEntry, Operator, SetOperator};
use crate::context::hidden_in_key_policy;
use crate::error::PolicyError;
use crate::pattern::{ARN_PARTS, ArnPattern, Pattern};
use crate::principal::{PrincipalEntry, PrincipalSpec, PrincipalType, parse_value};
use crate::raw::{
    ObjectOnly, RawPolicy, RawPrincipal, RawStatement, RawValues, Strings, UniqueMap,
};
use crate::variables::Template;

/// The size IAM counts for an identity policy: characters excluding whitespace.
#[must_use]
pub fn identity_policy_size(json: &str) -> usize {
    json.chars().filter(|c| !c.is_whitespace()).count()
}

impl Policy {
    /// Parse and validate a policy document of the given kind. Identity
    /// policies get the managed-policy size limit; see
    /// [`parse_identity`](Self::parse_identity) for the inline limits.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first rule the document breaks.
    pub fn parse(json: &str, kind: PolicyKind) -> Result<Self, PolicyError> {
        match kind {
            PolicyKind::KeyPolicy => {
                parse_with_limit(json, kind, KEY_POLICY_MAX_CHARS, json.chars().count())
            }
            PolicyKind::Identity => Self::parse_identity(json, IdentityPolicyType::Managed),
        }
    }

    /// Parse an identity policy with the size limit of where it is stored.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first rule the document breaks.
    pub fn parse_identity(json: &str, ty: IdentityPolicyType) -> Result<Self, PolicyError> {
        parse_with_limit(
            json,
            PolicyKind::Identity,
            ty.max_chars(),
            identity_policy_size(json),
        )
    }
}

fn parse_with_limit(
    json: &str,
    kind: PolicyKind,
    limit: usize,
    size: usize,
) -> Result<Policy, PolicyError> {
    // Step one: checks on the text itself.
    if size > limit {
        return Err(PolicyError::TooLarge { size, limit });
    }
    if let Some((position, c)) = json
        .chars()
        .enumerate()
        .find(|(_, c)| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}'))
    {
        return Err(PolicyError::InvalidCharacter {
            code: u32::from(c),
            position,
        });
    }
    // Step two: text to the raw serde form.
    let ObjectOnly(raw) = serde_json::from_str::<ObjectOnly<RawPolicy>>(json)
        .map_err(|e| PolicyError::Json(e.to_string()))?;
    // Step three: raw form to the checked AST.
    check(raw, kind)
}

fn check(raw: RawPolicy, kind: PolicyKind) -> Result<Policy, PolicyError> {
    let version = match raw.version.as_deref() {
        None => None,
        Some("2012-10-17") => Some(Version::V2012_10_17),
        Some("2008-10-17") => Some(Version::V2008_10_17),
        Some(other) => return Err(PolicyError::UnsupportedVersion(other.to_owned())),
    };
    let variables = version == Some(Version::V2012_10_17);
    let raw_statements = raw.statement.map(|s| s.0).unwrap_or_default();
    if raw_statements.is_empty() {
        return Err(PolicyError::NoStatement);
    }
    let mut sids = HashSet::new();
    let mut statements = Vec::with_capacity(raw_statements.len());
    for (index, st) in raw_statements.into_iter().enumerate() {
        let statement = check_statement(st, index, kind, variables)?;
        if kind == PolicyKind::Identity
            && let Some(sid) = &statement.sid
            && !sids.insert(Arc::clone(sid))
        {
            return Err(PolicyError::DuplicateSid(sid.to_string()));
        }
        statements.push(statement);
    }
    Ok(Policy {
        kind,
        version,
        id: raw.id,
        statements,
    })
}

/// Exactly one of a positive/negated element pair, if any.
fn one_of<T>(
    statement: usize,
    positive: Option<T>,
    negated: Option<T>,
    names: (&'static str, &'static str),
) -> Result<Option<(bool, T)>, PolicyError> {
    match (positive, negated) {
        (Some(_), Some(_)) => Err(PolicyError::ConflictingElements {
            statement,
            first: names.0,
            second: names.1,
        }),
        (Some(p), None) => Ok(Some((false, p))),
        (None, Some(n)) => Ok(Some((true, n))),
        (None, None) => Ok(None),
    }
}

fn check_statement(
    st: RawStatement,
    index: usize,
    kind: PolicyKind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    if let Some(sid) = &st.sid
        && kind == PolicyKind::Identity
        && !sid.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(PolicyError::InvalidSid(sid.clone()));
    }
    let effect = match st.effect.as_deref() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(PolicyError::InvalidEffect(other.to_owned())),
        None => {
            return Err(PolicyError::MissingElement {
                statement: index,
                element: "Effect",
            });
        }
    };

    let principal = one_of(
        index,
        st.principal,
        st.not_principal,
        ("Principal", "NotPrincipal"),
    )?;
    let principal = match (kind, principal) {
        (PolicyKind::Identity, Some(_)) => return Err(PolicyError::PrincipalNotAllowed),
        (PolicyKind::Identity, None) => None,
        (PolicyKind::KeyPolicy, None) => {
            return Err(PolicyError::MissingElement {
                statement: index,
                element: "Principal",
            });
        }
        (PolicyKind::KeyPolicy, Some((negated, raw))) => Some(PrincipalElement {
            negated,
            spec: check_principal(raw, kind)?,
        }),
    };

    let action = one_of(index, st.action, st.not_action, ("Action", "NotAction"))?;
    let Some((negated, actions)) = action else {
        return Err(PolicyError::MissingElement {
            statement: index,
            element: "Action",
        });
    };
    let action = ActionElement {
        negated,
        items: actions
            .0
            .into_iter()
            .map(check_action)
            .collect::<Result<_, _>>()?,
    };

    let resource = one_of(
        index,
        st.resource,
        st.not_resource,
        ("Resource", "NotResource"),
    )?;
    let resource = match resource {
        Some((negated, resources)) => Some(ResourceElement {
            negated,
            items: resources
                .0
                .into_iter()
                .map(|r| check_resource(r, variables))
                .collect::<Result<_, _>>()?,
        }),
        // Key policies: accepted, but the statement never applies (§1.1 quirk).
        None if kind == PolicyKind::KeyPolicy => None,
        None => {
            return Err(PolicyError::MissingElement {
                statement: index,
                element: "Resource",
            });
        }
    };

    let conditions = match st.condition {
        Some(blocks) => check_conditions(blocks, kind, variables)?,
        None => Vec::new(),
    };

    Ok(Statement {
        sid: st.sid.map(Arc::from),
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

fn check_principal(raw: RawPrincipal, kind: PolicyKind) -> Result<PrincipalSpec, PolicyError> {
    let map = match raw {
        RawPrincipal::Bare(s) if s == "*" => return Ok(PrincipalSpec::Everyone),
        RawPrincipal::Bare(s) => return Err(PolicyError::InvalidPrincipal(s)),
        RawPrincipal::Map(m) => m,
    };
    if map.0.is_empty() {
        return Err(PolicyError::InvalidPrincipal("{}".to_owned()));
    }
    let mut out = Vec::with_capacity(map.0.len());
    for (type_name, Strings(values)) in map.0 {
        let ty = PrincipalType::parse(&type_name)
            .filter(|t| !(kind == PolicyKind::KeyPolicy && *t == PrincipalType::CanonicalUser))
            .ok_or_else(|| PolicyError::InvalidPrincipal(type_name.clone()))?;
        if values.is_empty() {
            return Err(PolicyError::InvalidPrincipal(format!("{type_name}: []")));
        }
        let entries = values
            .into_iter()
            .map(|source| match parse_value(ty, &source) {
                Some(value) => Ok(PrincipalEntry {
                    source,
                    value,
                    bound: None,
                }),
                None => Err(PolicyError::InvalidPrincipal(source)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push((ty, entries));
    }
    // `{"AWS": "*"}` keeps its map form so it serializes as written; it
    // matches like `"*"` because its entry is `PrincipalValue::Everyone`.
    Ok(PrincipalSpec::Map(out))
}

/// `*` or `service:pattern`; compiled lower-case (actions are case-insensitive).
fn check_action(source: String) -> Result<ActionItem, PolicyError> {
    let valid = source == "*"
        || source
            .split_once(':')
            .is_some_and(|(service, name)| !service.is_empty() && !name.is_empty());
    if !valid {
        return Err(PolicyError::InvalidAction(source));
    }
    let pattern = Pattern::new(&source.to_ascii_lowercase());
    Ok(ActionItem { source, pattern })
}

/// `*` or an ARN; policy variables only in the resource part.
fn check_resource(source: String, variables: bool) -> Result<ResourceItem, PolicyError> {
    if source != "*" && !source.starts_with("arn:") {
        return Err(PolicyError::InvalidResource(source));
    }
    let parts: Vec<&str> = source.splitn(ARN_PARTS, ':').collect();
    let dynamic = match parts.split_last() {
        Some((last, prefix)) if variables && parts.len() == ARN_PARTS => {
            Template::parse(last).map(|t| (prefix.iter().map(|p| Pattern::new(p)).collect(), t))
        }
        _ => None,
    };
    let matcher = match dynamic {
        Some((prefix, resource)) => ResourceMatcher::Dynamic { prefix, resource },
        None => ResourceMatcher::Static(ArnPattern::new(&source)),
    };
    Ok(ResourceItem { source, matcher })
}

fn check_conditions(
    blocks: UniqueMap<UniqueMap<RawValues>>,
    kind: PolicyKind,
    variables: bool,
) -> Result<Vec<ConditionBlock>, PolicyError> {
    let mut out = Vec::with_capacity(blocks.0.len());
    for (op_name, keys) in blocks.0 {
        let operator = Operator::parse(&op_name)
            .ok_or_else(|| PolicyError::UnknownConditionOperator(op_name.clone()))?;
        let mut entries = Vec::with_capacity(keys.0.len());
        for (key, RawValues(values)) in keys.0 {
            let valid_key = key
                .split_once(':')
                .is_some_and(|(prefix, name)| !prefix.is_empty() && !name.is_empty());
            if !valid_key {
                return Err(PolicyError::InvalidConditionKey(key));
            }
            let lower = key.to_lowercase();
            if kind == PolicyKind::KeyPolicy
                && operator.set == Some(SetOperator::ForAllValues)
                && (lower.starts_with("kms:encryptioncontext:")
                    || lower.starts_with("aws:requesttag/"))
            {
                return Err(PolicyError::OverlyPermissiveCondition {
                    operator: op_name,
                    key,
                });
            }
            let hidden = kind == PolicyKind::KeyPolicy && hidden_in_key_policy(&lower);
            entries.push(ConditionEntry::new(
                operator, key, values, variables, hidden,
            ));
        }
        out.push(ConditionBlock { operator, entries });
    }
    Ok(out)
}
