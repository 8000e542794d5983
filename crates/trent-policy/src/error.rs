//! Why a policy document was rejected: one typed variant per validation rule.
//!
//! Display strings follow the Cedar message style (lowercase, no final period,
//! user input in backticks). Where AWS has a verbatim message that SDK users
//! grep for, [`PolicyError::aws_message`] returns it instead; the KMS edge wraps
//! that in `MalformedPolicyDocumentException`, the IAM edge in
//! `MalformedPolicyDocument`.

/// A policy document failed parsing or validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, wrong JSON type for an element, unknown or duplicate element.
    #[error("invalid policy JSON: {0}")]
    Json(String),
    /// Over the size limit of this policy kind.
    #[error("policy is {size} characters long, the limit is {limit}")]
    TooLarge {
        /// Counted size (see [`crate::PolicyKind`] for how it is counted).
        size: usize,
        /// The limit that applied.
        limit: usize,
    },
    /// A character outside TAB, LF, CR and U+0020..=U+00FF.
    #[error(
        "policy contains the character U+{code:04X} at character {position}, only TAB, LF, CR and U+0020 to U+00FF are allowed"
    )]
    InvalidCharacter {
        /// Unicode scalar value of the offending character.
        code: u32,
        /// Character index (not byte) in the document.
        position: usize,
    },
    /// `Version` other than `2012-10-17` or `2008-10-17`.
    #[error("unsupported policy version `{0}`, use `2012-10-17`")]
    UnsupportedVersion(String),
    /// `Statement` missing or an empty list.
    #[error("policy has no statement")]
    NoStatement,
    /// A required statement element is missing.
    #[error("statement {statement} has no `{element}` element")]
    MissingElement {
        /// Zero-based statement index.
        statement: usize,
        /// e.g. `Effect`, `Action`, `Principal`.
        element: &'static str,
    },
    /// Both forms of an element in one statement (`Action` and `NotAction`, ...).
    #[error("statement {statement} has both `{first}` and `{second}`")]
    ConflictingElements {
        /// Zero-based statement index.
        statement: usize,
        /// The positive element name.
        first: &'static str,
        /// The negated element name.
        second: &'static str,
    },
    /// `Effect` other than exactly `Allow` / `Deny`.
    #[error("invalid effect `{0}`, expected `Allow` or `Deny`")]
    InvalidEffect(String),
    /// A `Sid` with characters this policy kind does not allow.
    #[error("invalid statement id `{0}`, identity policies allow only letters and digits")]
    InvalidSid(String),
    /// The same `Sid` on two statements of an identity policy.
    #[error("statement id `{0}` is used twice, statement ids must be unique")]
    DuplicateSid(String),
    /// `Principal`/`NotPrincipal` in an identity policy.
    #[error("identity policies must not specify a principal")]
    PrincipalNotAllowed,
    /// A principal value that is not `*`, an account, or an IAM/STS principal ARN.
    #[error("invalid principal `{0}`")]
    InvalidPrincipal(String),
    /// An action without a `service:` prefix.
    #[error("invalid action `{0}`, actions must be prefixed by a service, e.g. `kms:`")]
    InvalidAction(String),
    /// A resource that is neither `*` nor an ARN.
    #[error("invalid resource `{0}`, resources must be `*` or an ARN")]
    InvalidResource(String),
    /// An operator name not in the IAM condition operator list (names are case-sensitive).
    #[error("unknown condition operator `{0}`")]
    UnknownConditionOperator(String),
    /// A condition key without a `service:` prefix.
    #[error("invalid condition key `{0}`, keys must be prefixed by a service, e.g. `aws:`")]
    InvalidConditionKey(String),
    /// `ForAllValues` on a single-valued key where KMS rejects it (see §1.1 quirk).
    #[error(
        "overly permissive condition: `{operator}` with `{key}` matches requests without the key, remove ForAllValues"
    )]
    OverlyPermissiveCondition {
        /// The full operator, e.g. `ForAllValues:StringEquals`.
        operator: String,
        /// The offending key as written.
        key: String,
    },
}

impl PolicyError {
    /// The message AWS itself returns for this rejection where it is known
    /// verbatim, otherwise the [`Display`](std::fmt::Display) text.
    #[must_use]
    pub fn aws_message(&self) -> String {
        match self {
            Self::InvalidPrincipal(_) => {
                "Policy contains a statement with one or more invalid principals.".to_owned()
            }
            Self::PrincipalNotAllowed => {
                "Policy document should not specify a principal.".to_owned()
            }
            Self::InvalidAction(_) | Self::InvalidConditionKey(_) => {
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
                    .to_owned()
            }
            Self::OverlyPermissiveCondition { key, .. } => {
                let what = if key.to_ascii_lowercase().starts_with("aws:requesttag/") {
                    "tag"
                } else {
                    "encryption context"
                };
                format!(
                    "OverlyPermissiveCondition: Using the ForAllValues set operator with a \
                     single-valued condition key matches requests without the specified {what} \
                     or with an unspecified {what}. To fix, remove ForAllValues."
                )
            }
            other => other.to_string(),
        }
    }
}
