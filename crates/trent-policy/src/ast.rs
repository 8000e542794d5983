//! The checked, compiled policy: what step three of the pipeline produces and
//! the evaluator reads. Every pattern is compiled here, once.
//!
//! INVARIANT(checked): a value of these types was produced by `parse.rs` and
//! satisfies every rule of its [`PolicyKind`]; the evaluator and the
//! serializer rely on it (e.g. a key-policy statement has a principal element,
//! an identity-policy statement has a resource element).

use std::sync::Arc;

use crate::condition::ConditionBlock;
use crate::pattern::{ArnPattern, Pattern};
use crate::principal::{PrincipalEntry, PrincipalSpec, PrincipalType};
use crate::variables::Template;

/// Which rules a document is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A KMS key policy (a resource policy): `Principal` required, `Sid` may
    /// contain spaces, at most [`KEY_POLICY_MAX_CHARS`] characters.
    KeyPolicy,
    /// An IAM identity policy: `Principal` forbidden, alphanumeric `Sid`s; the
    /// size limit depends on [`IdentityPolicyType`] (managed by default).
    Identity,
}

/// Maximum key policy size (32 KiB), counted in characters.
pub const KEY_POLICY_MAX_CHARS: usize = 32 * 1024;

/// Where an identity policy is stored; decides its size limit. IAM counts
/// characters excluding whitespace ([`crate::identity_policy_size`]). The
/// inline limits are per entity, for the sum of all its inline policies: the
/// IAM layer must add sizes up; parsing checks one document against the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityPolicyType {
    /// A customer managed policy: 6144 characters.
    Managed,
    /// Inline policies of a user: 2048 characters (the IAM quota table; the
    /// 6144 of managed policies does not apply to user inline policies).
    UserInline,
    /// Inline policies of a role: 10240 characters.
    RoleInline,
    /// Inline policies of a group: 5120 characters.
    GroupInline,
}

impl IdentityPolicyType {
    /// The size limit in non-whitespace characters.
    #[must_use]
    pub const fn max_chars(self) -> usize {
        match self {
            Self::Managed => 6144,
            Self::UserInline => 2048,
            Self::RoleInline => 10240,
            Self::GroupInline => 5120,
        }
    }
}

/// `Version`. Policy variables are interpreted only under 2012-10-17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2012-10-17`.
    V2012_10_17,
    /// `2008-10-17`: `${...}` is literal text.
    V2008_10_17,
}

impl Version {
    /// The version string.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2012_10_17 => "2012-10-17",
            Self::V2008_10_17 => "2008-10-17",
        }
    }
}

/// `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `Allow`.
    Allow,
    /// `Deny`.
    Deny,
}

impl Effect {
    /// `"Allow"` / `"Deny"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "Allow",
            Self::Deny => "Deny",
        }
    }
}

/// A parsed, validated and compiled policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) kind: PolicyKind,
    pub(crate) version: Option<Version>,
    pub(crate) id: Option<String>,
    pub(crate) statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalElement>,
    pub(crate) action: ActionElement,
    pub(crate) resource: Option<ResourceElement>,
    pub(crate) conditions: Vec<ConditionBlock>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalElement {
    pub(crate) negated: bool,
    pub(crate) spec: PrincipalSpec,
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionElement {
    pub(crate) negated: bool,
    pub(crate) items: Vec<ActionItem>,
}

/// One action pattern: as written, and compiled lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionItem {
    pub(crate) source: String,
    pub(crate) pattern: Pattern,
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceElement {
    pub(crate) negated: bool,
    pub(crate) items: Vec<ResourceItem>,
}

/// One resource pattern: as written, and compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceItem {
    pub(crate) source: String,
    pub(crate) matcher: ResourceMatcher,
}

/// A compiled resource pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResourceMatcher {
    /// No policy variable: fully precompiled.
    Static(ArnPattern),
    /// Policy variables in the resource part (after the fifth colon): the
    /// first five segments are precompiled, the resource part resolved per request.
    Dynamic {
        prefix: Vec<Pattern>,
        resource: Template,
    },
}

impl AsRef<Policy> for Policy {
    fn as_ref(&self) -> &Policy {
        self
    }
}

impl Policy {
    /// Every condition key (lower-cased) that evaluating this policy may read:
    /// the keys of its conditions and of the policy variables in its
    /// conditions and resources. A request source needs to provide only these.
    #[must_use]
    pub fn condition_keys(&self) -> std::collections::BTreeSet<&str> {
        let mut keys = std::collections::BTreeSet::new();
        for st in &self.statements {
            for block in &st.conditions {
                for entry in &block.entries {
                    entry.referenced_keys(&mut keys);
                }
            }
            for item in st.resource.iter().flat_map(|r| r.items.iter()) {
                if let ResourceMatcher::Dynamic { resource, .. } = &item.matcher {
                    keys.extend(resource.variable_keys());
                }
            }
        }
        keys
    }

    /// The kind this policy was checked as.
    #[must_use]
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// `Version`, if present.
    #[must_use]
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    /// `Id`, if present.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements in document order.
    #[must_use]
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Binds every IAM user and role principal (`arn:…:user/…`, `arn:…:role/…`) to the
    /// unique id `id_of` gives for its ARN; an entry `id_of` has no id for stays unbound and
    /// is compared by ARN. A bound entry matches only a caller whose
    /// [`Principal::unique_id`](crate::Principal::unique_id) is that id, so a user or role
    /// deleted and re-created under the same name no longer matches (as in AWS). Done once
    /// when a policy is loaded, never per request.
    pub fn bind_principals(&mut self, mut id_of: impl FnMut(&str) -> Option<String>) {
        use crate::principal::PrincipalValue;
        for st in &mut self.statements {
            let Some(PrincipalElement {
                spec: PrincipalSpec::Map(map),
                ..
            }) = st.principal.as_mut()
            else {
                continue;
            };
            for entry in map.iter_mut().flat_map(|(_, es)| es.iter_mut()) {
                if let PrincipalValue::User(arn) | PrincipalValue::Role(arn) = &entry.value {
                    entry.bound = id_of(arn).map(Arc::from);
                }
            }
        }
    }

    /// Every principal named in `Principal` / `NotPrincipal` elements, for
    /// the caller's "principals must exist" check (which needs a store).
    pub fn principal_entries(&self) -> impl Iterator<Item = (PrincipalType, &PrincipalEntry)> {
        self.statements
            .iter()
            .filter_map(|s| s.principal.as_ref())
            .flat_map(|p| p.spec.entries())
    }
}

impl Statement {
    /// `Sid`, if present.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// `Effect`.
    #[must_use]
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// `Principal` / `NotPrincipal` (always `None` in identity policies).
    #[must_use]
    pub fn principal(&self) -> Option<&PrincipalElement> {
        self.principal.as_ref()
    }

    /// `Action` / `NotAction`.
    #[must_use]
    pub fn action(&self) -> &ActionElement {
        &self.action
    }

    /// `Resource` / `NotResource`; `None` only in a key policy, where such a
    /// statement never applies.
    #[must_use]
    pub fn resource(&self) -> Option<&ResourceElement> {
        self.resource.as_ref()
    }

    /// The condition blocks (all must hold).
    #[must_use]
    pub fn conditions(&self) -> &[ConditionBlock] {
        &self.conditions
    }
}

impl PrincipalElement {
    /// `true` for `NotPrincipal`.
    #[must_use]
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The principals listed.
    #[must_use]
    pub fn spec(&self) -> &PrincipalSpec {
        &self.spec
    }
}

impl ActionElement {
    /// `true` for `NotAction`.
    #[must_use]
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The patterns as written.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|i| i.source.as_str())
    }
}

impl ResourceElement {
    /// `true` for `NotResource`.
    #[must_use]
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The patterns as written.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|i| i.source.as_str())
    }
}
