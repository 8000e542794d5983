//! The `Principal` / `NotPrincipal` element: validation of principal values
//! and matching them against the calling [`Principal`].
//!
//! AWS stores user and role principals as unique ids (AIDA…, AROA…) so that a
//! re-created user no longer matches. Trent compares ARNs instead: a deleted
//! and re-created user with the same ARN matches again (documented deviation).

use crate::context::{Principal, PrincipalKind};

/// The key of a principal map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalType {
    /// `"AWS"`: accounts, users, roles, sessions, federated users, `*`.
    Aws,
    /// `"Service"`: service principals such as `logs.amazonaws.com`.
    Service,
    /// `"Federated"`: identity providers (never matches a KMS caller).
    Federated,
    /// `"CanonicalUser"`: S3 only; rejected in key policies.
    CanonicalUser,
}

impl PrincipalType {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "AWS" => Some(Self::Aws),
            "Service" => Some(Self::Service),
            "Federated" => Some(Self::Federated),
            "CanonicalUser" => Some(Self::CanonicalUser),
            _ => None,
        }
    }

    /// The JSON key.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Aws => "AWS",
            Self::Service => "Service",
            Self::Federated => "Federated",
            Self::CanonicalUser => "CanonicalUser",
        }
    }
}

/// What a principal value denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalValue {
    /// `"*"`, `{"AWS": "*"}`: everyone.
    Everyone,
    /// An account, written as `"123456789012"` or `arn:aws:iam::123456789012:root`.
    Account(String),
    /// An IAM user ARN.
    User(String),
    /// An IAM role ARN: matches every session of the role.
    Role(String),
    /// An STS assumed-role session ARN: exactly that session.
    AssumedRole(String),
    /// An STS federated-user ARN.
    FederatedUser(String),
    /// A service principal name.
    Service(String),
    /// A `Federated` identity provider.
    Federated(String),
    /// An S3 canonical user id.
    CanonicalUser(String),
}

impl PrincipalValue {
    /// `s` read as an `AWS` principal of a key policy: `*`, an account id, or an IAM/STS
    /// principal ARN (`…:root`, `user/…`, `role/…`, `assumed-role/ROLE/SESSION`,
    /// `federated-user/…`). `None` if it is none of these.
    #[must_use]
    pub fn parse_aws(s: &str) -> Option<Self> {
        parse_aws(s)
    }
}

/// One principal as written plus what it denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalEntry {
    pub(crate) source: String,
    pub(crate) value: PrincipalValue,
}

impl PrincipalEntry {
    /// The value as written in the policy.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What it denotes.
    #[must_use]
    pub fn value(&self) -> &PrincipalValue {
        &self.value
    }
}

/// A whole `Principal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSpec {
    /// The bare string `"*"`.
    Everyone,
    /// Principal type → entries, in document order.
    Map(Vec<(PrincipalType, Vec<PrincipalEntry>)>),
}

/// How a statement's principal matched the caller. The KMS algorithm treats
/// the two kinds differently (policy-semantics §1.5 steps 3 and 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalMatch {
    /// Identity policy: there is no principal to check.
    Unchecked,
    /// The caller itself is named (its ARN, its role, `*`, its service name),
    /// or it is not excluded by a `NotPrincipal`.
    Direct,
    /// Only the caller's account is named: in an Allow this delegates to the
    /// account's IAM policies; in a Deny it covers every principal of the account.
    Account,
}

impl PrincipalSpec {
    /// All entries with their types.
    pub fn entries(&self) -> impl Iterator<Item = (PrincipalType, &PrincipalEntry)> {
        let map: &[(PrincipalType, Vec<PrincipalEntry>)] = match self {
            Self::Everyone => &[],
            Self::Map(m) => m,
        };
        map.iter()
            .flat_map(|(t, es)| es.iter().map(move |e| (*t, e)))
    }

    /// Does this (positive) principal element name the caller?
    pub(crate) fn matches(&self, p: &Principal) -> Option<PrincipalMatch> {
        if matches!(self, Self::Everyone) {
            return Some(PrincipalMatch::Direct);
        }
        let mut best = None;
        for (_, entry) in self.entries() {
            match entry_match(&entry.value, p) {
                Some(PrincipalMatch::Direct) => return Some(PrincipalMatch::Direct),
                Some(m) => best = Some(m),
                None => {}
            }
        }
        best
    }

    /// `NotPrincipal`: AWS checks each identity level of the caller (account,
    /// role, session); the statement applies unless every level is listed.
    /// Hence AWS's advice to list the account and role of an excluded session.
    pub(crate) fn excludes(&self, p: &Principal) -> bool {
        if matches!(self, Self::Everyone) {
            return true;
        }
        let covered =
            |level: Level<'_>| self.entries().any(|(_, e)| level_covered(&e.value, level));
        match &p.kind {
            PrincipalKind::Root => covered(Level::Account(&p.account)),
            PrincipalKind::User | PrincipalKind::FederatedUser => {
                covered(Level::Account(&p.account)) && covered(Level::Arn(&p.arn))
            }
            PrincipalKind::AssumedRole { role_arn } => {
                covered(Level::Account(&p.account))
                    && covered(Level::Arn(role_arn))
                    && covered(Level::Arn(&p.arn))
            }
            PrincipalKind::Service(name) => covered(Level::Service(name)),
        }
    }
}

#[derive(Clone, Copy)]
enum Level<'a> {
    Account(&'a str),
    Arn(&'a str),
    Service(&'a str),
}

fn level_covered(v: &PrincipalValue, level: Level<'_>) -> bool {
    match (v, level) {
        (PrincipalValue::Everyone, _) => true,
        (PrincipalValue::Account(a), Level::Account(x)) => a == x,
        (
            PrincipalValue::User(a)
            | PrincipalValue::Role(a)
            | PrincipalValue::AssumedRole(a)
            | PrincipalValue::FederatedUser(a),
            Level::Arn(x),
        ) => a == x,
        (PrincipalValue::Service(s), Level::Service(x)) => s == x,
        _ => false,
    }
}

fn entry_match(v: &PrincipalValue, p: &Principal) -> Option<PrincipalMatch> {
    let direct = match v {
        PrincipalValue::Everyone => true,
        PrincipalValue::Account(a) => {
            let same = !matches!(p.kind, PrincipalKind::Service(_)) && *a == p.account;
            return same.then_some(PrincipalMatch::Account);
        }
        PrincipalValue::User(a)
        | PrincipalValue::AssumedRole(a)
        | PrincipalValue::FederatedUser(a) => *a == p.arn,
        PrincipalValue::Role(a) => {
            *a == p.arn
                || matches!(&p.kind, PrincipalKind::AssumedRole { role_arn } if role_arn == a)
        }
        PrincipalValue::Service(s) => matches!(&p.kind, PrincipalKind::Service(n) if n == s),
        PrincipalValue::Federated(_) | PrincipalValue::CanonicalUser(_) => false,
    };
    direct.then_some(PrincipalMatch::Direct)
}

/// Validate one principal value of the given type. `None` = invalid.
pub(crate) fn parse_value(ty: PrincipalType, s: &str) -> Option<PrincipalValue> {
    let plain = !s.is_empty() && !s.contains(['*', '?']) && !s.chars().any(char::is_whitespace);
    match ty {
        PrincipalType::Aws => parse_aws(s),
        PrincipalType::Service => plain.then(|| PrincipalValue::Service(s.to_owned())),
        PrincipalType::Federated => plain.then(|| PrincipalValue::Federated(s.to_owned())),
        PrincipalType::CanonicalUser => plain.then(|| PrincipalValue::CanonicalUser(s.to_owned())),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `*`, an account id, or an IAM/STS principal ARN. No partial wildcards.
fn parse_aws(s: &str) -> Option<PrincipalValue> {
    if s == "*" {
        return Some(PrincipalValue::Everyone);
    }
    if s.contains(['*', '?']) {
        return None;
    }
    if is_account_id(s) {
        return Some(PrincipalValue::Account(s.to_owned()));
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    let partition_ok = !partition.is_empty()
        && partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-');
    if *arn != "arn" || !partition_ok || !region.is_empty() || !is_account_id(account) {
        return None;
    }
    let owned = s.to_owned();
    let name_ok = |rest: &str| !rest.is_empty() && !rest.ends_with('/') && !rest.starts_with('/');
    match *service {
        "iam" if *resource == "root" => Some(PrincipalValue::Account((*account).to_owned())),
        "iam" => {
            if let Some(rest) = resource.strip_prefix("user/") {
                name_ok(rest).then_some(PrincipalValue::User(owned))
            } else if let Some(rest) = resource.strip_prefix("role/") {
                name_ok(rest).then_some(PrincipalValue::Role(owned))
            } else {
                None
            }
        }
        "sts" => {
            if let Some(rest) = resource.strip_prefix("assumed-role/") {
                // Exactly RoleName/SessionName: session ARNs carry no role path.
                let ok = matches!(rest.split('/').collect::<Vec<_>>().as_slice(),
                    [role, session] if !role.is_empty() && !session.is_empty());
                ok.then_some(PrincipalValue::AssumedRole(owned))
            } else if let Some(rest) = resource.strip_prefix("federated-user/") {
                name_ok(rest).then_some(PrincipalValue::FederatedUser(owned))
            } else {
                None
            }
        }
        _ => None,
    }
}
