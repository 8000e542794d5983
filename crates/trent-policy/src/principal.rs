//! The `Principal` / `NotPrincipal` element: validation of principal values
//! and matching them against the calling [`Principal`].
//!
//! AWS stores user and role principals as unique ids (AIDA…, AROA…) so that a
//! re-created user no longer matches. A parsed policy names them by ARN; the
//! domain binds each user or role entry to the unique id of the entity the ARN
//! named when the policy was set ([`crate::Policy::bind_principals`]), and a
//! bound entry then matches only a caller carrying that id
//! ([`Principal::unique_id`]). An unbound entry (a policy nobody bound: the
//! differential test, policies stored before bindings existed) is compared by ARN.

use std::sync::Arc;

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
    /// The unique id a user or role entry is bound to (see the module doc).
    pub(crate) bound: Option<Arc<str>>,
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

    /// The unique id this user or role entry is bound to, if it was bound.
    #[must_use]
    pub fn bound_id(&self) -> Option<&str> {
        self.bound.as_deref()
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
            match entry_match(entry, p) {
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
        let covered = |level: Level<'_>| self.entries().any(|(_, e)| level_covered(e, level));
        let id = p.unique_id.as_deref();
        match &p.kind {
            PrincipalKind::Root => covered(Level::Account(&p.account)),
            PrincipalKind::User => {
                covered(Level::Account(&p.account)) && covered(Level::Arn(&p.arn, id))
            }
            PrincipalKind::FederatedUser => {
                covered(Level::Account(&p.account)) && covered(Level::Arn(&p.arn, None))
            }
            PrincipalKind::AssumedRole { role_arn } => {
                covered(Level::Account(&p.account))
                    && covered(Level::Arn(role_arn, id))
                    && covered(Level::Arn(&p.arn, None))
            }
            PrincipalKind::Service(name) => covered(Level::Service(name)),
        }
    }
}

/// One identity level of a caller: its account, an ARN (with the unique id of the user or
/// role at that level, if any), or a service name.
#[derive(Clone, Copy)]
enum Level<'a> {
    Account(&'a str),
    Arn(&'a str, Option<&'a str>),
    Service(&'a str),
}

fn level_covered(e: &PrincipalEntry, level: Level<'_>) -> bool {
    match (&e.value, level) {
        (PrincipalValue::Everyone, _) => true,
        (PrincipalValue::Account(a), Level::Account(x)) => a == x,
        (PrincipalValue::User(_) | PrincipalValue::Role(_), Level::Arn(_, id))
            if e.bound.is_some() =>
        {
            e.bound.as_deref() == id
        }
        (
            PrincipalValue::User(a)
            | PrincipalValue::Role(a)
            | PrincipalValue::AssumedRole(a)
            | PrincipalValue::FederatedUser(a),
            Level::Arn(x, _),
        ) => a == x,
        (PrincipalValue::Service(s), Level::Service(x)) => s == x,
        _ => false,
    }
}

fn entry_match(e: &PrincipalEntry, p: &Principal) -> Option<PrincipalMatch> {
    // A bound user or role names the entity that held the ARN when the policy was set:
    // only a caller with that unique id (the user, or a session of the role) matches.
    if let Some(bound) = e.bound.as_deref() {
        let kind_ok = match e.value {
            PrincipalValue::User(_) => matches!(p.kind, PrincipalKind::User),
            PrincipalValue::Role(_) => matches!(p.kind, PrincipalKind::AssumedRole { .. }),
            _ => false,
        };
        let direct = kind_ok && p.unique_id.as_deref() == Some(bound);
        return direct.then_some(PrincipalMatch::Direct);
    }
    let direct = match &e.value {
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

#[cfg(test)]
mod tests {
    use crate::kms::{KmsRequest, authorize};
    use crate::{ConditionContext, Policy, PolicyKind, Principal};

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const ROLE: &str = "arn:aws:iam::111122223333:role/app";

    fn allowed(policy: &Policy, p: &Principal) -> bool {
        let context = ConditionContext::new();
        let req = KmsRequest {
            principal: p,
            action: "kms:Decrypt",
            key_arn: "arn:aws:kms:us-east-1:111122223333:key/k",
            key_account: "111122223333",
            context: &context,
        };
        let none: [&Policy; 0] = [];
        authorize(policy, &none, false, &req).is_allowed()
    }

    #[test]
    fn a_bound_principal_matches_only_its_unique_id() {
        let text = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":["{ALICE}","{ROLE}"]}},"Action":"kms:*","Resource":"*"}}]}}"#
        );
        let mut policy = Policy::parse(&text, PolicyKind::KeyPolicy).unwrap();
        let unbound_alice = Principal::user("111122223333", ALICE);
        assert!(allowed(&policy, &unbound_alice), "unbound: by ARN");
        policy.bind_principals(|arn| match arn {
            ALICE => Some("AIDAOLD".into()),
            ROLE => Some("AROAOLD".into()),
            _ => None,
        });
        let old = Principal::user("111122223333", ALICE).with_unique_id("AIDAOLD");
        let new = Principal::user("111122223333", ALICE).with_unique_id("AIDANEW");
        assert!(allowed(&policy, &old));
        assert!(!allowed(&policy, &new), "a re-created user does not match");
        let session = "arn:aws:sts::111122223333:assumed-role/app/s";
        let old_session =
            Principal::assumed_role("111122223333", session, ROLE).with_unique_id("AROAOLD");
        let new_session =
            Principal::assumed_role("111122223333", session, ROLE).with_unique_id("AROANEW");
        assert!(allowed(&policy, &old_session));
        assert!(!allowed(&policy, &new_session));
    }

    #[test]
    fn a_bound_not_principal_no_longer_excludes_a_recreated_user() {
        let text = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}},
               {{"Effect":"Deny","NotPrincipal":{{"AWS":["{ALICE}","111122223333"]}},"Action":"kms:*","Resource":"*"}}]}}"#
        );
        let mut policy = Policy::parse(&text, PolicyKind::KeyPolicy).unwrap();
        policy.bind_principals(|arn| (arn == ALICE).then(|| "AIDAOLD".into()));
        let old = Principal::user("111122223333", ALICE).with_unique_id("AIDAOLD");
        let new = Principal::user("111122223333", ALICE).with_unique_id("AIDANEW");
        assert!(allowed(&policy, &old));
        assert!(!allowed(&policy, &new));
    }
}
