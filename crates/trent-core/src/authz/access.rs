//! Who can use a key (issue 17, first cut): for the operator, every principal that can perform
//! each key operation, found by asking the real evaluator ([`trent_policy::kms::authorize`],
//! KMS's order) about each candidate — the key's account root, every IAM user and role of the
//! key's account (with their identity policies), every principal the key policy names (other
//! accounts, their users and roles with their own identity policies, service principals,
//! `*`) — plus the key's grants, with findings in the style of IAM Access Analyzer.
//!
//! Conditions: each question is asked with no condition key present. An operation allowed that
//! way is listed as allowed (with the keys a relevant statement read, if any: a Deny under a
//! condition may still stop real requests); one denied that way but whose relevant statements
//! read condition keys is listed as conditional on those keys. Operator-only: no `Caller`, no
//! authorization; never on the request path.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use trent_policy::kms::{KmsRequest, authorize};
use trent_policy::{
    ConditionValue, ConditionValues, Effect, Policy, PrincipalSpec, PrincipalType, PrincipalValue,
};

use super::{Access, Resource};
use crate::caller::{Caller, Identity};
use crate::error::{KmsError, KmsResult};
use crate::iam::entity_arn;
use crate::service::Kms;

/// The key operations analysed (the actions a key policy controls).
pub const KEY_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateMac",
    "kms:VerifyMac",
    "kms:Sign",
    "kms:Verify",
    "kms:GetPublicKey",
    "kms:DeriveSharedSecret",
    "kms:Encapsulate",
    "kms:Decapsulate",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:ListKeyPolicies",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ListResourceTags",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:UpdateKeyDescription",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:GetKeyRotationStatus",
    "kms:RotateKeyOnDemand",
    "kms:ListKeyRotations",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:GetParametersForImport",
    "kms:ImportKeyMaterial",
    "kms:DeleteImportedKeyMaterial",
];

/// One principal's access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalAccess {
    /// The principal's ARN (an account root, user, role, service name, or `*`).
    pub principal: String,
    /// `account`, `user`, `role`, `external account`, `external user`, `external role`,
    /// `service`, `anyone`.
    pub kind: &'static str,
    /// Operations allowed with no condition key present.
    pub allowed: Vec<&'static str>,
    /// Operations possible only under conditions, with the keys their statements read.
    pub conditional: Vec<(&'static str, Vec<String>)>,
    /// Condition keys read while deciding the allowed operations (a conditional Deny may still
    /// stop some requests).
    pub allowed_conditions: Vec<String>,
}

/// One grant of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantAccess {
    pub grant_id: String,
    pub grantee: String,
    pub operations: Vec<&'static str>,
    pub constrained: bool,
}

/// Something AWS warns about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `warning` or `info`.
    pub severity: &'static str,
    pub message: String,
}

/// Who can use a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAccess {
    pub key_arn: String,
    pub principals: Vec<PrincipalAccess>,
    pub grants: Vec<GrantAccess>,
    pub findings: Vec<Finding>,
}

/// How one principal's access changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessChange {
    pub principal: String,
    pub kind: &'static str,
    /// Operations allowed (with no condition key present) after the change, not before.
    pub gained: Vec<&'static str>,
    /// Operations allowed before, not after.
    pub lost: Vec<&'static str>,
    /// Operations newly possible only under conditions (with the keys read after the change).
    pub gained_conditional: Vec<(&'static str, Vec<String>)>,
    /// Operations possible under conditions before, not after (nor allowed outright).
    pub lost_conditional: Vec<&'static str>,
}

/// What a proposed key policy would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyChange {
    pub key_arn: String,
    /// Principals whose access changes, in the order the analyses list them.
    pub changes: Vec<AccessChange>,
    /// Findings the proposed policy has and the current one has not.
    pub new_findings: Vec<Finding>,
    /// Findings the current policy has and the proposed one has not.
    pub resolved_findings: Vec<Finding>,
    /// The whole analysis under the proposed policy.
    pub after: KeyAccess,
}

/// Whose IAM policies an analysis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every account's (the operator sees everything).
    Operator,
    /// Only the key's account's (for a caller of that account): principals of other accounts
    /// are asked with every identity permission, so their lists are what the key policy lets
    /// them have at most.
    Account,
}

/// What `AnalyzeKeyAccess` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerKeyAccess {
    Access(KeyAccess),
    Change(PolicyChange),
}

/// An identity policy allowing everything (`None` only if the constant failed to parse).
fn allow_everything() -> Option<Arc<Policy>> {
    static EVERYTHING: std::sync::OnceLock<Option<Arc<Policy>>> = std::sync::OnceLock::new();
    EVERYTHING
        .get_or_init(|| {
            let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
            Policy::parse_identity(text, trent_policy::IdentityPolicyType::Managed)
                .ok()
                .map(Arc::new)
        })
        .clone()
}

/// No condition key present; every key asked for is remembered.
#[derive(Default)]
struct Absent(Mutex<BTreeSet<String>>);

impl ConditionValues for Absent {
    fn value(&self, lower_key: &str) -> Option<ConditionValue<'_>> {
        if let Ok(mut asked) = self.0.lock() {
            asked.insert(lower_key.to_string());
        }
        None
    }
}

impl Absent {
    fn take(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_iter().collect())
            .unwrap_or_default()
    }
}

struct Candidate {
    principal: trent_policy::Principal,
    kind: &'static str,
    policies: Arc<Vec<Arc<Policy>>>,
}

impl Kms {
    /// Who can use the key `key` (its ARN or id), by its key policy, the IAM policies of its
    /// account (and of the other accounts its policy names) and its grants.
    pub async fn operator_key_access(&self, key: &str) -> KmsResult<KeyAccess> {
        let loaded = self.load_for_analysis(key).await?;
        let key_policy = loaded.key_policy()?;
        Ok(self.analyse(&loaded, &[key_policy], key_policy, Scope::Operator))
    }

    /// What setting `proposed` (a key policy document) on `key` would change: which principals
    /// gain or lose which operations, and which findings appear or go. The policy is parsed as
    /// PutKeyPolicy parses it; nothing is changed.
    pub async fn operator_policy_change(
        &self,
        key: &str,
        proposed: &str,
    ) -> KmsResult<PolicyChange> {
        let loaded = self.load_for_analysis(key).await?;
        let proposed = self.proposed_key_policy(proposed)?;
        let current = loaded.key_policy()?;
        // Both analyses ask the same candidates: a principal only the new policy names may
        // have had access before through its account, and the other way round.
        let both = [current, &proposed];
        let before = self.analyse(&loaded, &both, current, Scope::Operator);
        let after = self.analyse(&loaded, &both, &proposed, Scope::Operator);
        Ok(diff(before, after))
    }

    /// `AnalyzeKeyAccess` (a Trent extension of the KMS API): [`Kms::operator_key_access`]
    /// for a caller, on a key of its own account, or with `proposed` the dry run of that key
    /// policy. The caller must be able to read everything the analysis reads: the key policy
    /// (`kms:GetKeyPolicy`), the grants (`kms:ListGrants`) and its account's IAM policies
    /// (`iam:GetAccountAuthorizationDetails`); other accounts' IAM policies are not read (see
    /// [`Scope::Account`]).
    pub async fn analyze_key_access(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        proposed: Option<&str>,
    ) -> KmsResult<CallerKeyAccess> {
        let key_id = crate::validate::required("keyId", key_id)?;
        crate::validate::length("keyId", key_id, 1, 2048)?;
        let loaded = self
            .resolve(caller, key_id, crate::ids::KeyIdForms::KeyOrAlias)
            .await?;
        for action in ["kms:GetKeyPolicy", "kms:ListGrants"] {
            self.check(
                caller,
                Access::new(action, Resource::Key(&loaded)).named_as(key_id),
            )?;
        }
        if loaded.record.account_id != caller.account {
            // Unreachable today (neither permission is ever given across accounts); kept so
            // another account's IAM is never analysed for a caller.
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:GetKeyPolicy on resource: {}",
                caller.principal_arn,
                loaded.arn()
            )));
        }
        // Reading every IAM policy of the account is what this IAM action allows.
        let details = "iam:GetAccountAuthorizationDetails";
        let decision = self.decide_identity(caller, details, "*");
        if !decision.is_allowed() {
            let message = decision.denial_message(&caller.principal_arn, details, "*");
            caller.note_decision(decision, details, None);
            return Err(KmsError::AccessDenied(message));
        }
        let current = loaded.key_policy()?;
        Ok(match proposed {
            None => {
                CallerKeyAccess::Access(self.analyse(&loaded, &[current], current, Scope::Account))
            }
            Some(text) => {
                // PutKeyPolicy's checks (size, characters) before the analysis's own parse.
                crate::policies::check_key_policy(text)?;
                let proposed = self.proposed_key_policy(text)?;
                let both = [current, &proposed];
                let before = self.analyse(&loaded, &both, current, Scope::Account);
                let after = self.analyse(&loaded, &both, &proposed, Scope::Account);
                CallerKeyAccess::Change(diff(before, after))
            }
        })
    }

    /// A proposed key policy parsed and bound as PutKeyPolicy would bind it now, so its
    /// analysis matches what setting it would do.
    fn proposed_key_policy(&self, text: &str) -> KmsResult<Policy> {
        let kind = trent_policy::PolicyKind::KeyPolicy;
        let bindings = self.bind_policy_principals(text, kind);
        super::bindings::parse_bound(text, kind, &bindings)
            .map_err(|e| KmsError::MalformedPolicyDocument(e.aws_message()))
    }

    async fn load_for_analysis(&self, key: &str) -> KmsResult<Arc<crate::cache::LoadedKey>> {
        let key_id = key.rsplit_once(":key/").map_or(key, |(_, id)| id);
        let not_found = || KmsError::NotFound(format!("Key '{key}' does not exist"));
        // A multi-Region key exists once per Region: only its ARN names one.
        let regional;
        let key_id = if crate::ids::is_multi_region_key_id(key_id) {
            let region = key.split(':').nth(3).filter(|r| !r.is_empty());
            regional = crate::ids::regional_key_id(key_id, region.ok_or_else(not_found)?);
            regional.as_str()
        } else {
            key_id
        };
        let loaded = self.load_key(key_id).await?.ok_or_else(not_found)?;
        if loaded.phantom_not_found().is_some() {
            return Err(not_found());
        }
        Ok(loaded)
    }

    /// The analysis of `key_policy` on `loaded`, asking the principals of the key's account and
    /// those `named_by` names.
    fn analyse(
        &self,
        loaded: &crate::cache::LoadedKey,
        named_by: &[&Policy],
        key_policy: &Policy,
        scope: Scope,
    ) -> KeyAccess {
        let account = loaded.record.account_id.clone();
        let key_arn = loaded.arn().to_string();
        let mut candidates = vec![Candidate {
            principal: trent_policy::Principal::root(&account),
            kind: "account",
            policies: Arc::default(),
        }];
        let iam = self.iam.account(&account);
        for user in iam.users.values() {
            let arn = entity_arn(&account, "user", &user.path, &user.name);
            candidates.push(Candidate {
                // With its unique id, as the real caller has it (bound principals).
                principal: trent_policy::Principal::user(&account, &arn).with_unique_id(&user.id),
                kind: "user",
                policies: iam.policies_for(&Identity::User {
                    name: user.name.clone(),
                    path: user.path.clone(),
                    user_id: user.id.clone(),
                }),
            });
        }
        for role in iam.roles.values() {
            candidates.push(self.role_candidate(&account, &role.name, &role.path, "role"));
        }
        for policy in named_by {
            self.named_candidates(&account, policy, &mut candidates);
        }
        if scope == Scope::Account {
            // Other accounts' IAM policies are theirs: asked with every identity permission,
            // an external principal gets what the key policy would let it have at most.
            let everything = Arc::new(allow_everything().into_iter().collect::<Vec<_>>());
            for c in candidates
                .iter_mut()
                .filter(|c| c.kind.starts_with("external "))
            {
                c.policies = everything.clone();
            }
        }
        let mut findings = statement_findings(key_policy);
        let mut principals = Vec::new();
        for c in &candidates {
            let access = evaluate(key_policy, &key_arn, &account, c);
            let external = c.kind.starts_with("external") || c.kind == "anyone";
            if external && access.allowed.contains(&"kms:CreateGrant") {
                findings.push(Finding {
                    severity: "warning",
                    message: format!(
                        "{} ({}) may create grants on the key: it can give its permissions to any principal",
                        access.principal, c.kind
                    ),
                });
            }
            if matches!(c.kind, "user" | "role") && access.allowed.contains(&"kms:PutKeyPolicy") {
                findings.push(Finding {
                    severity: "info",
                    message: format!(
                        "{} is a key administrator: it can change the key policy (kms:PutKeyPolicy)",
                        access.principal
                    ),
                });
            }
            if !access.allowed.is_empty() || !access.conditional.is_empty() {
                principals.push(access);
            }
        }
        let mut grants: Vec<GrantAccess> = self
            .grants
            .active(&loaded.record.key_id)
            .iter()
            .map(|g| GrantAccess {
                grant_id: g.grant_id.clone(),
                grantee: g.grantee_principal.clone(),
                operations: g.operations.iter().map(|o| o.as_str()).collect(),
                constrained: g.constraints.is_some(),
            })
            .collect();
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        KeyAccess {
            key_arn,
            principals,
            grants,
            findings,
        }
    }

    /// The principals `policy` names that are not of the key's account, as candidates.
    fn named_candidates(&self, account: &str, policy: &Policy, candidates: &mut Vec<Candidate>) {
        for st in policy.statements() {
            let Some(principal) = st.principal() else {
                continue;
            };
            if st.effect() == Effect::Allow && names_everyone(principal) {
                push_unique(
                    candidates,
                    Candidate {
                        principal: trent_policy::Principal::root("000000000000"),
                        kind: "anyone",
                        policies: Arc::default(),
                    },
                );
            }
            for (ty, entry) in principal.spec().entries() {
                let candidate = match (ty, entry.value()) {
                    (PrincipalType::Aws, PrincipalValue::Account(a)) if *a != account => {
                        Some(Candidate {
                            principal: trent_policy::Principal::root(a),
                            kind: "external account",
                            policies: Arc::default(),
                        })
                    }
                    (PrincipalType::Aws, PrincipalValue::User(arn)) => {
                        let a = arn_account(arn);
                        (a != account).then(|| {
                            let other = self.iam.account(a);
                            let name = arn.rsplit('/').next().unwrap_or_default();
                            let policies = other.users.get(name).map_or_else(Arc::default, |u| {
                                other.policies_for(&Identity::User {
                                    name: u.name.clone(),
                                    path: u.path.clone(),
                                    user_id: u.id.clone(),
                                })
                            });
                            let mut principal = trent_policy::Principal::user(a, arn);
                            principal.unique_id = other.unique_id_of(a, arn);
                            Candidate {
                                principal,
                                kind: "external user",
                                policies,
                            }
                        })
                    }
                    (PrincipalType::Aws, PrincipalValue::Role(arn)) => {
                        let a = arn_account(arn);
                        (a != account).then(|| {
                            let name = arn.rsplit('/').next().unwrap_or_default();
                            // The path is the one the policy names, never looked up in the
                            // other account (AnalyzeKeyAccess would reveal its roles' paths).
                            let path = arn
                                .split_once(":role/")
                                .and_then(|(_, rest)| rest.rsplit_once('/'))
                                .map_or_else(|| "/".to_string(), |(p, _)| format!("/{p}/"));
                            self.role_candidate(a, name, &path, "external role")
                        })
                    }
                    (PrincipalType::Service, PrincipalValue::Service(name)) => Some(Candidate {
                        principal: trent_policy::Principal::service(name),
                        kind: "service",
                        policies: Arc::default(),
                    }),
                    _ => None,
                };
                if let Some(c) = candidate {
                    push_unique(candidates, c);
                }
            }
        }
    }

    fn role_candidate(
        &self,
        account: &str,
        name: &str,
        path: &str,
        kind: &'static str,
    ) -> Candidate {
        let role_arn = entity_arn(account, "role", path, name);
        let session = format!("arn:aws:sts::{account}:assumed-role/{name}/access-analysis");
        let other = self.iam.account(account);
        let mut principal = trent_policy::Principal::assumed_role(account, &session, &role_arn);
        principal.unique_id = other.unique_id_of(account, &role_arn);
        let policies = other.roles.get(name).map_or_else(Arc::default, |r| {
            other.policies_for(&Identity::AssumedRole {
                role_name: r.name.clone(),
                role_path: r.path.clone(),
                role_id: r.id.clone(),
                session_name: "access-analysis".into(),
            })
        });
        Candidate {
            principal,
            kind,
            policies,
        }
    }
}

fn evaluate(key_policy: &Policy, key_arn: &str, account: &str, c: &Candidate) -> PrincipalAccess {
    let mut access = PrincipalAccess {
        principal: match &c.principal.kind {
            trent_policy::PrincipalKind::AssumedRole { role_arn } => role_arn.clone(),
            _ if c.kind == "anyone" => "*".to_string(),
            _ => c.principal.arn.clone(),
        },
        kind: c.kind,
        allowed: Vec::new(),
        conditional: Vec::new(),
        allowed_conditions: Vec::new(),
    };
    let mut read_when_allowed = BTreeSet::new();
    for action in KEY_ACTIONS {
        let absent = Absent::default();
        let request = KmsRequest {
            principal: &c.principal,
            action,
            key_arn,
            key_account: account,
            context: &absent,
        };
        let answer = authorize(key_policy, c.policies.as_slice(), false, &request);
        let asked = absent.take();
        if answer.is_allowed() {
            access.allowed.push(action);
            read_when_allowed.extend(asked);
        } else if !asked.is_empty() && answer.decision != trent_policy::Decision::ExplicitDeny {
            access.conditional.push((action, asked));
        }
    }
    access.allowed_conditions = read_when_allowed.into_iter().collect();
    access
}

fn diff(before: KeyAccess, after: KeyAccess) -> PolicyChange {
    let empty = |p: &PrincipalAccess| PrincipalAccess {
        principal: p.principal.clone(),
        kind: p.kind,
        allowed: Vec::new(),
        conditional: Vec::new(),
        allowed_conditions: Vec::new(),
    };
    let find = |list: &[PrincipalAccess], p: &PrincipalAccess| {
        list.iter()
            .find(|x| x.principal == p.principal && x.kind == p.kind)
            .cloned()
            .unwrap_or_else(|| empty(p))
    };
    let mut order: Vec<&PrincipalAccess> = before.principals.iter().collect();
    for p in &after.principals {
        if !order
            .iter()
            .any(|x| x.principal == p.principal && x.kind == p.kind)
        {
            order.push(p);
        }
    }
    let mut changes = Vec::new();
    for p in order {
        let (old, new) = (find(&before.principals, p), find(&after.principals, p));
        let conditional =
            |a: &PrincipalAccess, action: &str| a.conditional.iter().any(|(x, _)| *x == action);
        let change = AccessChange {
            principal: p.principal.clone(),
            kind: p.kind,
            gained: new
                .allowed
                .iter()
                .filter(|a| !old.allowed.contains(a))
                .copied()
                .collect(),
            lost: old
                .allowed
                .iter()
                .filter(|a| !new.allowed.contains(a))
                .copied()
                .collect(),
            gained_conditional: new
                .conditional
                .iter()
                .filter(|(a, _)| !conditional(&old, a) && !old.allowed.contains(a))
                .cloned()
                .collect(),
            lost_conditional: old
                .conditional
                .iter()
                .map(|(a, _)| *a)
                .filter(|a| !conditional(&new, a) && !new.allowed.contains(a))
                .collect(),
        };
        if !(change.gained.is_empty()
            && change.lost.is_empty()
            && change.gained_conditional.is_empty()
            && change.lost_conditional.is_empty())
        {
            changes.push(change);
        }
    }
    let new_findings = after
        .findings
        .iter()
        .filter(|f| !before.findings.contains(f))
        .cloned()
        .collect();
    let resolved_findings = before
        .findings
        .iter()
        .filter(|f| !after.findings.contains(f))
        .cloned()
        .collect();
    PolicyChange {
        key_arn: after.key_arn.clone(),
        changes,
        new_findings,
        resolved_findings,
        after,
    }
}

/// Findings about single statements of `policy`: an unconditioned Allow to everyone, service
/// principals.
fn statement_findings(policy: &Policy) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, st) in policy.statements().iter().enumerate() {
        let Some(principal) = st.principal() else {
            continue;
        };
        let label = statement_label(index, st.sid());
        if st.effect() == Effect::Allow
            && !principal.is_negated()
            && names_everyone(principal)
            && st.conditions().is_empty()
        {
            findings.push(Finding {
                severity: "warning",
                message: format!(
                    "{label} allows everyone (Principal \"*\") without conditions: any principal of any account whose IAM policies allow it can use the key"
                ),
            });
        }
        for (ty, entry) in principal.spec().entries() {
            if let (PrincipalType::Service, PrincipalValue::Service(name)) = (ty, entry.value()) {
                findings.push(Finding {
                    severity: "info",
                    message: format!(
                        "{label} names the service principal {name}: the service acts with its own identity"
                    ),
                });
            }
        }
    }
    findings
}

fn names_everyone(principal: &trent_policy::PrincipalElement) -> bool {
    matches!(principal.spec(), PrincipalSpec::Everyone)
        || principal
            .spec()
            .entries()
            .any(|(_, e)| *e.value() == PrincipalValue::Everyone)
}

fn push_unique(candidates: &mut Vec<Candidate>, c: Candidate) {
    if !candidates.iter().any(|x| x.principal == c.principal) {
        candidates.push(c);
    }
}

fn arn_account(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

fn statement_label(index: usize, sid: Option<&str>) -> String {
    match sid {
        Some(sid) => format!(
            "key policy statement {} (Sid {sid:?})",
            index.saturating_add(1)
        ),
        None => format!("key policy statement {}", index.saturating_add(1)),
    }
}
