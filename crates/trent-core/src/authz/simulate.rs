//! IAM's policy simulator (`SimulatePrincipalPolicy`, `SimulateCustomPolicy`) with KMS
//! semantics: hypothetical questions answered by the same evaluator and the same decision
//! order as real requests ([`trent_policy::kms::authorize`] for `kms:` actions with a key
//! policy, identity policies alone otherwise), mapped through the same typed [`Decision`].
//!
//! What is simulated: the identity policies of a user (with its groups'), group or role, or the
//! documents given (`PolicyInputList`); optionally one resource policy (`ResourcePolicy`, for
//! `kms:` actions a key policy: it must allow, directly or by delegating to the caller's
//! account, and the cross-account rules apply); optionally a permissions boundary; the condition
//! keys given (`ContextEntries`) plus those the simulated caller implies (its ARN and account).
//! As in AWS, nothing is fetched for the resources named: a key's stored policy is used only
//! when passed as `ResourcePolicy`. Grants are the exception, when asked for with the context
//! entry [`SIMULATE_GRANTS_KEY`] = `true`: then the stored grants of each key named in
//! `ResourceArns` whose grants the requester may list (`kms:ListGrants`) take part, after the
//! policies, as they do in a real request; a call a grant allows names the grant.
//!
//! Nothing here is on the request path; the simulator may allocate freely.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use trent_policy::kms::{KmsRequest, authorize, authorize_without_key};
use trent_policy::{
    ConditionContext, ConditionValue, ConditionValues, IdentityPolicyType, Policy, PolicyKind,
    PolicyType, Principal as PolicyPrincipal, PrincipalKind, RequestContext, StatementSpan,
    statement_positions,
};

use super::{Access, Decision, Resource};
use crate::caller::Caller;
use crate::grants::{Grant, GrantOperation};
use crate::iam::{AccountIam, IamError, IamResult, entity_arn};
use crate::service::Kms;

/// The context entry that asks for the named keys' grants to be simulated (a Trent extension
/// carried in `ContextEntries`, so AWS's clients send it unchanged).
pub const SIMULATE_GRANTS_KEY: &str = "trent:SimulateGrants";

/// At most this many (action, resource) pairs are evaluated in one simulation.
pub const MAX_EVALUATIONS: usize = 1000;

/// A simulation's inputs, as the API names them.
#[derive(Debug, Clone, Default)]
pub struct SimulationInput {
    /// `PolicyInputList`: identity policy documents.
    pub policy_inputs: Vec<String>,
    /// `PermissionsBoundaryPolicyInputList` (at most one).
    pub boundary_inputs: Vec<String>,
    /// `ActionNames` (no wildcards).
    pub actions: Vec<String>,
    /// `ResourceArns` (empty: `*`).
    pub resources: Vec<String>,
    /// `ResourcePolicy`: for `kms:` actions, the key policy.
    pub resource_policy: Option<String>,
    /// `ResourceOwner`: `arn:aws:iam::ACCOUNT:root`.
    pub resource_owner: Option<String>,
    /// `CallerArn`: an IAM user ARN.
    pub caller_arn: Option<String>,
    /// `ContextEntries`.
    pub context: Vec<ContextEntry>,
}

/// One `ContextEntries` member.
#[derive(Debug, Clone, Default)]
pub struct ContextEntry {
    pub name: String,
    pub values: Vec<String>,
    /// `ContextKeyType` (`string`, `stringList`, `numeric`, …).
    pub kind: Option<String>,
}

/// `SourcePolicyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySourceType {
    User,
    Group,
    Role,
    UserManaged,
    Resource,
    None,
}

impl PolicySourceType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Role => "role",
            Self::UserManaged => "user-managed",
            Self::Resource => "resource",
            Self::None => "none",
        }
    }
}

/// `EvalDecision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalDecision {
    Allowed,
    ExplicitDeny,
    ImplicitDeny,
}

impl EvalDecision {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::ExplicitDeny => "explicitDeny",
            Self::ImplicitDeny => "implicitDeny",
        }
    }

    fn of(decision: &Decision) -> Self {
        match decision {
            Decision::AllowedByPolicy(_) | Decision::AllowedByGrant(_) => Self::Allowed,
            Decision::ExplicitDeny(..) => Self::ExplicitDeny,
            Decision::ImplicitDeny(_) => Self::ImplicitDeny,
        }
    }
}

/// A statement that decided a simulated call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatement {
    /// The policy's name, `PolicyInputList.N`, `PermissionsBoundaryPolicyInputList.N`,
    /// `ResourcePolicy`, or `grant/GRANT-ID` for a simulated grant (no span).
    pub source_policy_id: String,
    pub source_policy_type: PolicySourceType,
    /// Where the statement is in its document (absent if it could not be located).
    pub span: Option<StatementSpan>,
}

/// The answer for one action on one resource.
#[derive(Debug, Clone)]
pub struct EvaluationResult {
    pub action: String,
    pub resource: String,
    /// The typed decision, as a real request would get it.
    pub decision: Decision,
    pub eval_decision: EvalDecision,
    /// Allowing statements, or only the denying ones for an explicit deny.
    pub matched: Vec<MatchedStatement>,
    /// Condition keys a relevant statement read that the simulation did not supply, as
    /// written in the policy.
    pub missing_context: Vec<String>,
    /// `EvalDecisionDetails`: per policy type for cross-account simulations with a resource
    /// policy; empty (present) for a named resource of the same account; `None` for `*`.
    pub details: Option<Vec<(&'static str, EvalDecision)>>,
    /// `AllowedByPermissionsBoundary`, when a boundary was simulated.
    pub boundary_allowed: Option<bool>,
    /// The resource was named in `ResourceArns` (so the result also goes into
    /// `ResourceSpecificResults`).
    pub resource_specific: bool,
}

/// One simulated policy document.
struct SimPolicy {
    policy: Arc<Policy>,
    id: String,
    source: PolicySourceType,
    spans: Vec<StatementSpan>,
}

impl SimPolicy {
    fn parse(
        text: &str,
        id: String,
        source: PolicySourceType,
        kind: PolicyKind,
    ) -> IamResult<Self> {
        let parsed = match kind {
            PolicyKind::KeyPolicy => Policy::parse(text, kind),
            PolicyKind::Identity => Policy::parse_identity(text, IdentityPolicyType::RoleInline),
        }
        .map_err(|e| IamError::InvalidInput(format!("{id} is not a valid policy document: {e}")))?;
        Ok(Self {
            policy: Arc::new(parsed),
            spans: statement_positions(text),
            id,
            source,
        })
    }

    fn matched(&self, statement: usize) -> MatchedStatement {
        MatchedStatement {
            source_policy_id: self.id.clone(),
            source_policy_type: self.source,
            span: self.spans.get(statement).copied(),
        }
    }
}

/// Everything one simulation evaluates, resolved once.
struct Simulation {
    identity: Vec<SimPolicy>,
    boundary: Vec<SimPolicy>,
    resource_policy: Option<SimPolicy>,
    principal: PolicyPrincipal,
    caller_account: String,
    owner: Option<String>,
    given: ConditionContext,
    /// Lower-cased key → as written in some simulated policy.
    spelled: BTreeMap<String, String>,
    /// Resource ARN → the grants simulated for it (only when asked for).
    grants: BTreeMap<String, Vec<Arc<Grant>>>,
    /// The simulated `kms:EncryptionContext:*` entries, which grant constraints check.
    encryption_context: BTreeMap<String, String>,
}

/// The condition keys of a simulation: the context entries, then what the simulated caller
/// implies; every key asked for and not found is remembered as missing.
struct SimContext<'a> {
    given: &'a ConditionContext,
    derived: ConditionContext,
    missing: Mutex<BTreeSet<String>>,
}

impl ConditionValues for SimContext<'_> {
    fn value(&self, lower_key: &str) -> Option<ConditionValue<'_>> {
        if let Some(v) = self
            .given
            .get_lower(lower_key)
            .or_else(|| self.derived.get_lower(lower_key))
        {
            return Some(v.borrowed());
        }
        if let Ok(mut missing) = self.missing.lock() {
            missing.insert(lower_key.to_string());
        }
        None
    }
}

const CONTEXT_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

impl Kms {
    /// `SimulatePrincipalPolicy`: the identity policies of the user (with its groups'), group
    /// or role `policy_source_arn`, plus `input`'s documents. Authorized by
    /// `iam:SimulatePrincipalPolicy` on that ARN.
    pub async fn simulate_principal_policy(
        &self,
        caller: &Caller,
        policy_source_arn: &str,
        input: &SimulationInput,
    ) -> IamResult<Vec<EvaluationResult>> {
        self.authorize_iam(caller, "iam:SimulatePrincipalPolicy", policy_source_arn)?;
        let (account, kind, name) = parse_entity_arn(policy_source_arn)
            .ok_or_else(|| IamError::InvalidInput(format!("Invalid ARN: {policy_source_arn}")))?;
        let no_such =
            || IamError::NoSuchEntity(format!("The {kind} with name {name} cannot be found."));
        if account != caller.account {
            return Err(no_such());
        }
        let iam = self.iam.account(account);
        let mut identity = Vec::new();
        let default_principal = match kind {
            "user" => {
                let user = iam.users.get(name).ok_or_else(no_such)?;
                let arn = entity_arn(account, "user", &user.path, &user.name);
                inline(&mut identity, &user.inline, PolicySourceType::User)?;
                managed(&mut identity, &iam, account, user.attached.iter())?;
                for group in iam.groups.values().filter(|g| g.members.contains(name)) {
                    inline(&mut identity, &group.inline, PolicySourceType::Group)?;
                    managed(&mut identity, &iam, account, group.attached.iter())?;
                }
                // With its unique id, so bound principals match as in real evaluation.
                Some(PolicyPrincipal::user(account, &arn).with_unique_id(&user.id))
            }
            "group" => {
                let group = iam.groups.get(name).ok_or_else(no_such)?;
                inline(&mut identity, &group.inline, PolicySourceType::Group)?;
                managed(&mut identity, &iam, account, group.attached.iter())?;
                None
            }
            "role" => {
                let role = iam.roles.get(name).ok_or_else(no_such)?;
                let arn = entity_arn(account, "role", &role.path, &role.name);
                inline(&mut identity, &role.inline, PolicySourceType::Role)?;
                managed(&mut identity, &iam, account, role.attached.iter())?;
                if input.resource_policy.is_some() && input.caller_arn.is_none() {
                    return Err(IamError::InvalidInput(
                        "CallerArn is required when a ResourcePolicy is simulated for a role."
                            .into(),
                    ));
                }
                Some(PolicyPrincipal {
                    arn: arn.clone(),
                    account: account.to_string(),
                    kind: PrincipalKind::AssumedRole { role_arn: arn },
                    unique_id: Some(role.id.clone()),
                })
            }
            _ => {
                return Err(IamError::InvalidInput(format!(
                    "Invalid ARN: {policy_source_arn}: not a user, group or role"
                )));
            }
        };
        if kind == "group" && input.resource_policy.is_some() && input.caller_arn.is_none() {
            return Err(IamError::InvalidInput(
                "CallerArn is required when a ResourcePolicy is simulated for a group.".into(),
            ));
        }
        for (i, text) in input.policy_inputs.iter().enumerate() {
            identity.push(SimPolicy::parse(
                text,
                format!("PolicyInputList.{}", i + 1),
                PolicySourceType::None,
                PolicyKind::Identity,
            )?);
        }
        let mut sim = self.prepare(caller, identity, default_principal, input)?;
        self.simulated_grants(caller, &mut sim, input).await;
        Ok(self.run(&sim, input))
    }

    /// `SimulateCustomPolicy`: only the documents of `input`. Authorized by
    /// `iam:SimulateCustomPolicy` (resource `*`).
    pub async fn simulate_custom_policy(
        &self,
        caller: &Caller,
        input: &SimulationInput,
    ) -> IamResult<Vec<EvaluationResult>> {
        self.authorize_iam(caller, "iam:SimulateCustomPolicy", "*")?;
        if input.policy_inputs.is_empty() {
            return Err(IamError::Validation(
                "1 validation error detected: Value null at 'policyInputList' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
        if input.resource_policy.is_some() && input.caller_arn.is_none() {
            return Err(IamError::InvalidInput(
                "CallerArn is required when a ResourcePolicy is simulated.".into(),
            ));
        }
        let mut identity = Vec::new();
        for (i, text) in input.policy_inputs.iter().enumerate() {
            identity.push(SimPolicy::parse(
                text,
                format!("PolicyInputList.{}", i + 1),
                PolicySourceType::None,
                PolicyKind::Identity,
            )?);
        }
        let mut sim = self.prepare(caller, identity, None, input)?;
        self.simulated_grants(caller, &mut sim, input).await;
        Ok(self.run(&sim, input))
    }

    /// Validates the rest of `input` and resolves who calls and who owns the resources.
    fn prepare(
        &self,
        caller: &Caller,
        identity: Vec<SimPolicy>,
        default_principal: Option<PolicyPrincipal>,
        input: &SimulationInput,
    ) -> IamResult<Simulation> {
        if input.actions.is_empty() {
            return Err(IamError::Validation(
                "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null".into(),
            ));
        }
        for action in &input.actions {
            let valid = (3..=128).contains(&action.len())
                && !action.contains('*')
                && !action.contains('?')
                && action
                    .split_once(':')
                    .is_some_and(|(s, a)| !s.is_empty() && !a.is_empty());
            if !valid {
                return Err(IamError::InvalidInput(format!(
                    "Invalid action name: {action}. Each action names its service (e.g. kms:Encrypt) and has no wildcard."
                )));
            }
        }
        let evaluations = input
            .actions
            .len()
            .saturating_mul(input.resources.len().max(1));
        if evaluations > MAX_EVALUATIONS {
            return Err(IamError::InvalidInput(format!(
                "The simulation asks for {evaluations} evaluations (actions × resources); at most {MAX_EVALUATIONS} are allowed."
            )));
        }
        if input.boundary_inputs.len() > 1 {
            return Err(IamError::InvalidInput(
                "You can input only one permissions boundary.".into(),
            ));
        }
        let principal = match &input.caller_arn {
            Some(arn) => {
                let (account, _, _) = parse_entity_arn(arn)
                    .filter(|(_, kind, _)| *kind == "user")
                    .ok_or_else(|| {
                        IamError::InvalidInput(format!(
                            "Invalid CallerArn: {arn}. Only the ARN of an IAM user can be the simulated caller."
                        ))
                    })?;
                let user = PolicyPrincipal::user(account, arn);
                match self.principal_unique_id(arn) {
                    Some(id) => user.with_unique_id(&id),
                    None => user,
                }
            }
            // No known caller: a principal no policy names, never the account root (whose
            // implicit permissions would allow everything).
            None => default_principal.unwrap_or(PolicyPrincipal {
                arn: String::new(),
                account: caller.account.clone(),
                kind: PrincipalKind::User,
                unique_id: None,
            }),
        };
        let owner = match &input.resource_owner {
            Some(arn) => Some(
                arn.strip_prefix("arn:aws:iam::")
                    .and_then(|rest| rest.strip_suffix(":root"))
                    .filter(|a| is_account(a))
                    .ok_or_else(|| {
                        IamError::InvalidInput(format!(
                            "Invalid ResourceOwner: {arn}. Use arn:aws:iam::ACCOUNT-ID:root."
                        ))
                    })?
                    .to_string(),
            ),
            None => None,
        };
        let boundary = input
            .boundary_inputs
            .iter()
            .enumerate()
            .map(|(i, text)| {
                SimPolicy::parse(
                    text,
                    format!("PermissionsBoundaryPolicyInputList.{}", i + 1),
                    PolicySourceType::None,
                    PolicyKind::Identity,
                )
            })
            .collect::<IamResult<Vec<_>>>()?;
        let resource_policy = input
            .resource_policy
            .as_deref()
            .map(|text| {
                SimPolicy::parse(
                    text,
                    "ResourcePolicy".into(),
                    PolicySourceType::Resource,
                    PolicyKind::KeyPolicy,
                )
            })
            .transpose()?;
        let mut given = ConditionContext::new();
        for entry in &input.context {
            if !(5..=256).contains(&entry.name.len()) || !entry.name.contains(':') {
                return Err(IamError::InvalidInput(format!(
                    "Invalid context key name: {}",
                    entry.name
                )));
            }
            let kind = entry.kind.as_deref().unwrap_or("string");
            if !CONTEXT_TYPES.contains(&kind) {
                return Err(IamError::InvalidInput(format!(
                    "Invalid context key type: {kind}"
                )));
            }
            if kind.ends_with("List") || entry.values.len() > 1 {
                given.insert_multi(&entry.name, entry.values.iter().cloned());
            } else if let Some(v) = entry.values.first() {
                given.insert(&entry.name, v.clone());
            }
        }
        let mut spelled = BTreeMap::new();
        for p in identity
            .iter()
            .chain(&boundary)
            .chain(resource_policy.iter())
        {
            for st in p.policy.statements() {
                for block in st.conditions() {
                    for entry in block.entries() {
                        spelled
                            .entry(entry.key().to_lowercase())
                            .or_insert_with(|| entry.key().to_string());
                    }
                }
            }
        }
        let caller_account = if principal.arn.is_empty() {
            caller.account.clone()
        } else {
            principal.account.clone()
        };
        let encryption_context = input
            .context
            .iter()
            .filter_map(|e| {
                let prefix = e.name.get(..22)?;
                let value = e.values.first()?;
                prefix
                    .eq_ignore_ascii_case("kms:EncryptionContext:")
                    .then(|| {
                        (
                            e.name.get(22..).unwrap_or_default().to_string(),
                            value.clone(),
                        )
                    })
            })
            .collect();
        Ok(Simulation {
            identity,
            boundary,
            resource_policy,
            principal,
            caller_account,
            owner,
            given,
            spelled,
            grants: BTreeMap::new(),
            encryption_context,
        })
    }

    /// When the simulation asks for grants: the active grants of each named key the requester
    /// may list grants of. Keys that do not exist, and keys whose grants the requester may not
    /// list, take part without grants, so the simulator tells nobody which keys exist or what
    /// their grants are.
    async fn simulated_grants(
        &self,
        caller: &Caller,
        sim: &mut Simulation,
        input: &SimulationInput,
    ) {
        let asked = sim
            .given
            .get(SIMULATE_GRANTS_KEY)
            .is_some_and(|v| v.values().iter().any(|v| v.eq_ignore_ascii_case("true")));
        if !asked {
            return;
        }
        for arn in &input.resources {
            let Some((_, key_id)) = arn.split_once(":key/") else {
                continue;
            };
            let Ok(Some(key)) = self.load_key(key_id).await else {
                continue;
            };
            if key.phantom_not_found().is_some() || key.arn() != arn {
                continue;
            }
            let may_list = self
                .decide(caller, &Access::new("kms:ListGrants", Resource::Key(&key)))
                .is_ok_and(|d| d.is_allowed());
            if may_list {
                sim.grants
                    .insert(arn.clone(), self.grants.active(&key.record.key_id));
            }
        }
    }

    fn run(&self, sim: &Simulation, input: &SimulationInput) -> Vec<EvaluationResult> {
        let star = ["*".to_string()];
        let (resources, specific) = if input.resources.is_empty() {
            (&star[..], false)
        } else {
            (&input.resources[..], true)
        };
        let mut out = Vec::with_capacity(input.actions.len().saturating_mul(resources.len()));
        for action in &input.actions {
            for resource in resources {
                out.push(evaluate(sim, action, resource, specific));
            }
        }
        out
    }
}

/// One action on one resource.
fn evaluate(sim: &Simulation, action: &str, resource: &str, specific: bool) -> EvaluationResult {
    let owner = resource_account(resource)
        .or(sim.owner.as_deref())
        .unwrap_or(&sim.caller_account)
        .to_string();
    let mut derived = ConditionContext::new();
    if !sim.principal.arn.is_empty() {
        derived.insert("aws:PrincipalArn", sim.principal.arn.clone());
        derived.insert("aws:PrincipalAccount", sim.principal.account.clone());
        derived.insert("kms:CallerAccount", sim.principal.account.clone());
        if let PrincipalKind::User = sim.principal.kind {
            derived.insert("aws:PrincipalType", "User");
            if let Some(name) = sim.principal.arn.rsplit('/').next() {
                derived.insert("aws:username", name);
            }
        }
    }
    if resource != "*" {
        derived.insert("aws:ResourceAccount", owner.clone());
    }
    let context = SimContext {
        given: &sim.given,
        derived,
        missing: Mutex::new(BTreeSet::new()),
    };
    let iam: Vec<&Policy> = sim.identity.iter().map(|p| p.policy.as_ref()).collect();
    let is_kms = action
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("kms:"));
    let rc = RequestContext {
        action,
        resource,
        principal: &sim.principal,
        context: &context,
    };
    // The decision, and how its reasons' policy indices map to the simulated documents.
    let (mut decision, resource_first) = match &sim.resource_policy {
        Some(kp) if is_kms => {
            let request = KmsRequest {
                principal: &sim.principal,
                action,
                key_arn: resource,
                key_account: &owner,
                context: &context,
            };
            (
                Decision::from_policies(authorize(&kp.policy, &iam, false, &request)),
                false,
            )
        }
        Some(rp) => {
            let resource_outcome = rp.policy.evaluate(&rc);
            let outcomes: Vec<_> = iam.iter().map(|p| p.evaluate(&rc)).collect();
            let mut all = vec![(PolicyType::ResourceBased, &resource_outcome)];
            all.extend(outcomes.iter().map(|o| (PolicyType::IdentityBased, o)));
            (Decision::from_policies(trent_policy::combine(&all)), true)
        }
        None => (
            Decision::from_policies(authorize_without_key(
                &iam,
                &sim.principal,
                action,
                resource,
                &context,
            )),
            false,
        ),
    };
    let mut matched = matched_statements(sim, &decision, resource_first);
    if let Decision::ImplicitDeny(_) = decision
        && is_kms
        && let Some(grant) = simulated_grant(sim, action, resource, &owner, &iam, &context)
    {
        matched = vec![MatchedStatement {
            source_policy_id: format!("grant/{}", grant.grant_id),
            source_policy_type: PolicySourceType::Resource,
            span: None,
        }];
        decision = Decision::AllowedByGrant(grant);
    }
    let mut boundary_allowed = None;
    if !sim.boundary.is_empty() {
        let bounds: Vec<&Policy> = sim.boundary.iter().map(|p| p.policy.as_ref()).collect();
        let bound = Decision::from_policies(authorize_without_key(
            &bounds,
            &sim.principal,
            action,
            resource,
            &context,
        ));
        boundary_allowed = Some(bound.is_allowed());
        if let Decision::ExplicitDeny(reasons, _) = &bound
            && !decision.is_explicit_deny()
        {
            matched = reasons
                .iter()
                .filter_map(|r| sim.boundary.get(r.policy_index))
                .zip(reasons.iter())
                .map(|(p, r)| p.matched(r.statement))
                .collect();
            decision = bound;
        } else if decision.is_allowed() && !bound.is_allowed() {
            matched.clear();
            decision = Decision::ImplicitDeny(trent_policy::DenyCause::NoIdentityPolicyAllows);
        }
    }
    let details = if resource == "*" {
        None
    } else if let Some(rp) = sim
        .resource_policy
        .as_ref()
        .filter(|_| owner != sim.caller_account)
    {
        let identity_side = Decision::from_policies(authorize_without_key(
            &iam,
            &sim.principal,
            action,
            resource,
            &context,
        ));
        let outcome = rp.policy.evaluate(&rc);
        let resource_side = if outcome.explicit_deny {
            EvalDecision::ExplicitDeny
        } else if outcome.allow {
            EvalDecision::Allowed
        } else {
            EvalDecision::ImplicitDeny
        };
        Some(vec![
            ("IAM Policy", EvalDecision::of(&identity_side)),
            ("Resource Policy", resource_side),
        ])
    } else {
        Some(Vec::new())
    };
    let missing = context
        .missing
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|k| sim.spelled.get(&k).cloned().unwrap_or(k))
        .collect();
    EvaluationResult {
        action: action.to_string(),
        resource: resource.to_string(),
        eval_decision: EvalDecision::of(&decision),
        decision,
        matched,
        missing_context: missing,
        details,
        boundary_allowed,
        resource_specific: specific,
    }
}

/// A simulated grant of `resource` allowing `action` to the simulated caller, by KMS's rules
/// for real requests (`authz/grants.rs`): the grant has the operation and its constraints hold
/// for the simulated encryption context; it names the caller (or the role of a session) or the
/// caller's account, which then needs an IAM allow too; the cross-account gate applies; and
/// CreateGrant through a grant is delegation, not simulated.
fn simulated_grant(
    sim: &Simulation,
    action: &str,
    resource: &str,
    owner: &str,
    iam: &[&Policy],
    context: &SimContext<'_>,
) -> Option<Arc<Grant>> {
    let grants = sim.grants.get(resource)?;
    let operation = GrantOperation::of_action(action)?;
    if operation == GrantOperation::CreateGrant
        || (sim.principal.account != owner && !trent_policy::kms::cross_account_permitted(action))
    {
        return None;
    }
    let p = &sim.principal;
    let root_arn = format!("arn:aws:iam::{}:root", p.account);
    let source_arn = sim
        .given
        .get("aws:SourceArn")
        .and_then(|v| v.values().first())
        .map(String::as_str);
    let iam_allows = || authorize_without_key(iam, p, action, resource, context).is_allowed();
    grants
        .iter()
        .find(|g| {
            let grantee = g.grantee_principal.as_str();
            let role_arn = match &p.kind {
                PrincipalKind::AssumedRole { role_arn } => Some(role_arn.as_str()),
                _ => None,
            };
            // As real evaluation: a grantee bound to a unique id names only that entity.
            let direct = !p.arn.is_empty()
                && Grant::names(
                    grantee,
                    g.grantee_principal_id.as_deref(),
                    &p.arn,
                    role_arn,
                    p.unique_id.as_deref(),
                );
            let account = grantee == p.account || grantee == root_arn;
            g.allows(operation, &sim.encryption_context, source_arn)
                && (direct || (account && iam_allows()))
        })
        .cloned()
}

/// The statements behind `decision`, as the simulator names them. For `combine` (generic
/// resource policies) index 0 is the resource policy and the identity policies follow; for
/// KMS's order the resource-based index is the key policy and identity indices are direct.
fn matched_statements(
    sim: &Simulation,
    decision: &Decision,
    resource_first: bool,
) -> Vec<MatchedStatement> {
    let reasons = match decision {
        Decision::AllowedByPolicy(r) | Decision::ExplicitDeny(r, _) => r,
        Decision::AllowedByGrant(_) | Decision::ImplicitDeny(_) => return Vec::new(),
    };
    reasons
        .iter()
        .filter_map(|r| {
            let policy = match (r.policy_type, resource_first) {
                (PolicyType::ResourceBased, _) => sim.resource_policy.as_ref(),
                (PolicyType::IdentityBased, false) => sim.identity.get(r.policy_index),
                (PolicyType::IdentityBased, true) => r
                    .policy_index
                    .checked_sub(1)
                    .and_then(|i| sim.identity.get(i)),
                (PolicyType::Grant, _) => None,
            }?;
            Some(policy.matched(r.statement))
        })
        .collect()
}

fn inline(
    out: &mut Vec<SimPolicy>,
    documents: &BTreeMap<String, String>,
    source: PolicySourceType,
) -> IamResult<()> {
    for (name, text) in documents {
        out.push(SimPolicy::parse(
            text,
            name.clone(),
            source,
            PolicyKind::Identity,
        )?);
    }
    Ok(())
}

fn managed<'a>(
    out: &mut Vec<SimPolicy>,
    iam: &AccountIam,
    account: &str,
    arns: impl Iterator<Item = &'a String>,
) -> IamResult<()> {
    for arn in arns {
        if let Some(p) = iam.policy_by_arn(account, arn)
            && let Some(text) = p.default_document()
        {
            out.push(SimPolicy::parse(
                text,
                p.name.clone(),
                PolicySourceType::UserManaged,
                PolicyKind::Identity,
            )?);
        }
    }
    Ok(())
}

/// `arn:aws:iam::ACCOUNT:KIND/PATH/NAME` → (account, kind, name).
fn parse_entity_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let (kind, path_and_name) = resource.split_once('/')?;
    let name = path_and_name.rsplit('/').next()?;
    (is_account(account) && !name.is_empty()).then_some((account, kind, name))
}

/// The account of an ARN that names one (`arn:PARTITION:SERVICE:REGION:ACCOUNT:…`).
fn resource_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    (parts.next()? == "arn").then_some(())?;
    let account = parts.nth(3)?;
    is_account(account).then_some(account)
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_taken_apart() {
        assert_eq!(
            parse_entity_arn("arn:aws:iam::111122223333:user/ops/alice"),
            Some(("111122223333", "user", "alice"))
        );
        assert_eq!(parse_entity_arn("arn:aws:iam::1111:user/alice"), None);
        assert_eq!(parse_entity_arn("arn:aws:iam::111122223333:root"), None);
        assert_eq!(
            resource_account("arn:aws:kms:us-east-1:444455556666:key/k"),
            Some("444455556666")
        );
        assert_eq!(resource_account("*"), None);
        assert_eq!(resource_account("arn:aws:s3:::bucket"), None);
    }
}
