//! What a request brings to evaluation: the action, the resource, the calling
//! principal and the condition-key values. All of it is supplied by the caller;
//! this crate reads no clock and no store.
//!
//! Condition values come from a [`ConditionValues`] source that the evaluator
//! asks for one key at a time, and only for keys a matching statement's
//! conditions or variables name: a caller can compute values lazily from facts
//! it already holds instead of building a map per request. [`ConditionContext`]
//! is the plain map form of such a source.

use std::borrow::Cow;
use std::collections::HashMap;

/// The calling principal, as authenticated by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's own ARN (for a role session the `sts` assumed-role ARN;
    /// for a service principal its name, e.g. `logs.amazonaws.com`).
    pub arn: String,
    /// The 12-digit account id the principal belongs to (empty for service principals).
    pub account: String,
    /// What kind of principal this is.
    pub kind: PrincipalKind,
    /// The IAM unique id of the user (`AIDA…`) or, for a role session, of its role (`AROA…`).
    /// A policy principal bound to a unique id ([`crate::Policy::bind_principals`]) names
    /// only the caller carrying that id, as AWS matches principals: a user or role deleted
    /// and re-created under the same name has a new id and no longer matches.
    pub unique_id: Option<String>,
}

/// Kind of calling principal; decides which policy principals name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root user (`arn:aws:iam::ACCT:root`).
    Root,
    /// An IAM user.
    User,
    /// A role session; `role_arn` is the role's IAM ARN including its path,
    /// which is what `aws:PrincipalArn` and role principals match.
    AssumedRole {
        /// `arn:aws:iam::ACCT:role/path/name`.
        role_arn: String,
    },
    /// An STS federated user (`arn:aws:sts::ACCT:federated-user/name`).
    FederatedUser,
    /// An AWS service principal such as `logs.amazonaws.com`.
    Service(String),
}

impl Principal {
    /// The root user of `account` in the `aws` partition.
    #[must_use]
    pub fn root(account: &str) -> Self {
        Self {
            arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_owned(),
            kind: PrincipalKind::Root,
            unique_id: None,
        }
    }

    /// An IAM user given its ARN.
    #[must_use]
    pub fn user(account: &str, arn: &str) -> Self {
        Self {
            arn: arn.to_owned(),
            account: account.to_owned(),
            kind: PrincipalKind::User,
            unique_id: None,
        }
    }

    /// A role session given the session ARN and the role ARN.
    #[must_use]
    pub fn assumed_role(account: &str, session_arn: &str, role_arn: &str) -> Self {
        Self {
            arn: session_arn.to_owned(),
            account: account.to_owned(),
            kind: PrincipalKind::AssumedRole {
                role_arn: role_arn.to_owned(),
            },
            unique_id: None,
        }
    }

    /// A service principal such as `logs.amazonaws.com`.
    #[must_use]
    pub fn service(name: &str) -> Self {
        Self {
            arn: name.to_owned(),
            account: String::new(),
            kind: PrincipalKind::Service(name.to_owned()),
            unique_id: None,
        }
    }

    /// This principal with its IAM unique id: the user's (`AIDA…`) for a user, the role's
    /// (`AROA…`) for a role session.
    #[must_use]
    pub fn with_unique_id(mut self, id: &str) -> Self {
        self.unique_id = Some(id.to_owned());
        self
    }

    /// `true` for the account root user.
    #[must_use]
    pub fn is_root(&self) -> bool {
        matches!(self.kind, PrincipalKind::Root)
    }
}

/// The value of one condition key in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    /// A single-valued key (most keys).
    Single(String),
    /// A multi-valued key (`ArrayOfString`, e.g. `kms:EncryptionContextKeys`);
    /// meant for `ForAnyValue:`/`ForAllValues:` operators.
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice (one element for `Single`).
    #[must_use]
    pub fn values(&self) -> &[String] {
        match self {
            Self::Single(v) => std::slice::from_ref(v),
            Self::Multi(vs) => vs,
        }
    }

    /// This value, borrowed, as a [`ConditionValues`] source answers.
    #[must_use]
    pub fn borrowed(&self) -> ConditionValue<'_> {
        match self {
            Self::Single(v) => ConditionValue::Single(Cow::Borrowed(v)),
            Self::Multi(vs) => ConditionValue::Multi(Cow::Borrowed(vs)),
        }
    }
}

/// One condition key's value as a [`ConditionValues`] source gives it:
/// borrowed from facts the source holds, or computed for this question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionValue<'a> {
    /// A single-valued key.
    Single(Cow<'a, str>),
    /// A multi-valued key (`ForAnyValue:`/`ForAllValues:`).
    Multi(Cow<'a, [String]>),
}

impl ConditionValue<'_> {
    /// Whether a multi-valued key has no values (an empty set counts as absent).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Single(_) => false,
            Self::Multi(vs) => vs.is_empty(),
        }
    }

    /// Whether `f` holds for some value.
    pub fn any(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::Single(v) => f(v),
            Self::Multi(vs) => vs.iter().any(|v| f(v)),
        }
    }

    /// Whether `f` holds for every value.
    pub fn all(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::Single(v) => f(v),
            Self::Multi(vs) => vs.iter().all(|v| f(v)),
        }
    }
}

/// Where the evaluator gets condition-key values from. It asks only for keys
/// that a policy it is evaluating references, so a source may compute each
/// value on demand.
pub trait ConditionValues: Sync {
    /// The value of `lower_key` (already lower-cased), or `None` if the
    /// request has no such key.
    fn value(&self, lower_key: &str) -> Option<ConditionValue<'_>>;
}

impl std::fmt::Debug for dyn ConditionValues + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A lazy source cannot list its keys; requests are debugged by their other fields.
        f.write_str("<condition values>")
    }
}

/// A request with no condition keys at all.
impl ConditionValues for () {
    fn value(&self, _lower_key: &str) -> Option<ConditionValue<'_>> {
        None
    }
}

/// Condition keys → values for one request. Keys are case-insensitive: they
/// are stored lower-cased, and policies look them up lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionContext {
    values: HashMap<String, ContextValue>,
}

impl ConditionContext {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Set a single-valued key (replacing any previous value).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.values
            .insert(key.to_lowercase(), ContextValue::Single(value.into()));
    }

    /// Set a multi-valued key (replacing any previous value).
    pub fn insert_multi<I, S>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let vs = values.into_iter().map(Into::into).collect();
        self.values
            .insert(key.to_lowercase(), ContextValue::Multi(vs));
    }

    /// Builder form of [`insert`](Self::insert).
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Builder form of [`insert_multi`](Self::insert_multi).
    #[must_use]
    pub fn with_multi<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.insert_multi(key, values);
        self
    }

    /// Remove a key.
    pub fn remove(&mut self, key: &str) -> Option<ContextValue> {
        self.values.remove(&key.to_lowercase())
    }

    /// Look a key up, case-insensitively.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.values.get(&key.to_lowercase())
    }

    /// Look up a key that is already lower-cased.
    #[must_use]
    pub fn get_lower(&self, lower_key: &str) -> Option<&ContextValue> {
        self.values.get(lower_key)
    }

    /// Whether no key is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// All keys (lower-cased) and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl ConditionValues for ConditionContext {
    fn value(&self, lower_key: &str) -> Option<ConditionValue<'_>> {
        self.values.get(lower_key).map(ContextValue::borrowed)
    }
}

/// One authorization question put to one policy.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The permission, e.g. `kms:Decrypt` (matched case-insensitively).
    pub action: &'a str,
    /// The resource ARN, or `*` for actions without a resource.
    pub resource: &'a str,
    /// Who is calling.
    pub principal: &'a Principal,
    /// Condition keys and their values.
    pub context: &'a dyn ConditionValues,
}

/// Keys that KMS supports only in IAM policies: in a key policy they behave as
/// absent (policy-semantics §1.5, "Context differences by policy type").
pub(crate) fn hidden_in_key_policy(lower_key: &str) -> bool {
    lower_key.starts_with("aws:resourcetag/") || lower_key == "kms:resourcealiases"
}
