//! Who is calling: the authenticated principal and the request facts authorization needs.
//!
//! A [`Caller`] is a [`Principal`] (everything that follows from the credential and the IAM
//! directory: ARNs, ids, tags, identity policies — computed once and shared by every request
//! made with that credential until IAM changes) plus the facts of this one request (region,
//! source address, transport).

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use trent_policy::Policy;

/// The kind of principal behind a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The account root (`arn:aws:iam::ACCOUNT:root`).
    Root,
    /// An IAM user.
    User {
        name: String,
        path: String,
        user_id: String,
    },
    /// A session of an assumed role (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    AssumedRole {
        role_name: String,
        role_path: String,
        role_id: String,
        session_name: String,
    },
    /// A registered integrated service calling with its own service credentials
    /// (`docs/integrated-services.md`): its service principal name, e.g.
    /// `autoscaling.amazonaws.com`. It belongs to no customer account.
    Service { name: String },
}

/// An authenticated principal, with every fact about it that authorization reads.
#[derive(Debug)]
pub struct Principal {
    pub account: String,
    pub principal_arn: String,
    pub identity: Identity,
    pub access_key_id: String,
    /// Principal tags (users and roles; session tags are not modelled yet).
    pub tags: Vec<(String, String)>,
    /// Whether the credentials are temporary (STS).
    pub temporary: bool,
    /// When a temporary credential's session was issued (for the audit trail).
    pub session_created_ms: Option<i64>,
    /// `aws:PrincipalArn`: for a role session the role's ARN (with its path), else the ARN.
    pub role_arn: String,
    /// `aws:userid`.
    pub user_id: String,
    /// `arn:aws:iam::ACCOUNT:root`.
    pub root_arn: String,
    /// The principal as the policy evaluator sees it.
    pub(crate) policy_principal: trent_policy::Principal,
    /// The identity policies that apply (none for the root user, whose permissions are
    /// implicit), from the IAM snapshot this principal was built from.
    pub(crate) identity_policies: Arc<Vec<Arc<Policy>>>,
    /// The generation of that IAM snapshot: a principal cached on a credential is rebuilt
    /// when the account's IAM changes.
    pub(crate) iam_generation: u64,
    /// The account's request-rate windows (`quotas.rs`), set when the service builds the
    /// principal; a principal made elsewhere (tests) has them looked up per request.
    pub(crate) rates: std::sync::OnceLock<Arc<crate::quotas::AccountRates>>,
}

impl Principal {
    /// Builds the facts of a principal of `account`.
    pub(crate) fn new(
        account: &str,
        principal_arn: String,
        identity: Identity,
        access_key_id: &str,
        tags: Vec<(String, String)>,
        temporary: bool,
    ) -> Self {
        let root_arn = format!("arn:aws:iam::{account}:root");
        let (role_arn, user_id, policy_principal) = match &identity {
            Identity::Root => (
                principal_arn.clone(),
                account.to_string(),
                trent_policy::Principal::root(account),
            ),
            Identity::User { user_id, .. } => (
                principal_arn.clone(),
                user_id.clone(),
                // Bound policy principals match by unique id (`trent_policy::principal`).
                trent_policy::Principal::user(account, &principal_arn).with_unique_id(user_id),
            ),
            Identity::AssumedRole {
                role_name,
                role_path,
                role_id,
                session_name,
            } => {
                let role_arn = format!("arn:aws:iam::{account}:role{role_path}{role_name}");
                let principal =
                    trent_policy::Principal::assumed_role(account, &principal_arn, &role_arn)
                        .with_unique_id(role_id);
                (role_arn, format!("{role_id}:{session_name}"), principal)
            }
            Identity::Service { name } => (
                name.clone(),
                name.clone(),
                trent_policy::Principal::service(name),
            ),
        };
        Self {
            account: account.to_string(),
            principal_arn,
            identity,
            access_key_id: access_key_id.to_string(),
            tags,
            temporary,
            session_created_ms: None,
            role_arn,
            user_id,
            root_arn,
            policy_principal,
            identity_policies: Arc::default(),
            iam_generation: 0,
            rates: std::sync::OnceLock::new(),
        }
    }

    /// The principal as the policy evaluator sees it.
    pub fn policy_principal(&self) -> &trent_policy::Principal {
        &self.policy_principal
    }

    /// `aws:PrincipalArn`: for a role session, the role's ARN (with its path).
    pub fn principal_role_arn(&self) -> &str {
        &self.role_arn
    }

    /// `aws:userid`.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// `aws:PrincipalType`.
    pub fn principal_type(&self) -> &'static str {
        match self.identity {
            Identity::Root => "Account",
            Identity::User { .. } => "User",
            Identity::AssumedRole { .. } => "AssumedRole",
            Identity::Service { .. } => "Service",
        }
    }

    /// The service principal name when an integrated service calls with its own credentials.
    pub fn service_name(&self) -> Option<&str> {
        match &self.identity {
            Identity::Service { name } => Some(name),
            _ => None,
        }
    }

    /// Whether this is a session of a service-linked role: only the role's service can
    /// assume one (`sts.rs`), so every call made with it is made by that service.
    pub fn is_service_linked_session(&self) -> bool {
        matches!(&self.identity, Identity::AssumedRole { role_path, .. }
            if role_path.starts_with("/aws-service-role/"))
    }

    pub fn is_root(&self) -> bool {
        matches!(self.identity, Identity::Root)
    }

    pub fn is_role_session(&self) -> bool {
        matches!(self.identity, Identity::AssumedRole { .. })
    }
}

/// An authenticated caller: its principal plus the facts of this request. Built after SigV4
/// verification; dereferences to its [`Principal`].
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Arc<Principal>,
    /// The region of the request's SigV4 credential scope: the region the call is served in.
    pub region: Arc<str>,
    /// The ARN of the first key the request resolved (not a stand-in), for the request log
    /// and the audit trail; set by the domain as it finds the key.
    key_arn: std::sync::OnceLock<Arc<str>>,
    /// The first allow of the request's authorization, and the denial that answered it, for
    /// the request log (`authz/explain.rs`); set by the domain as it decides.
    allowed: std::sync::OnceLock<crate::authz::Decision>,
    denied: std::sync::OnceLock<crate::authz::explain::Denial>,
    /// The request's verified `Recipient` attestation document, for the audit trail's
    /// `additionalEventData.recipient`; set by the domain once verified.
    recipient: std::sync::OnceLock<Arc<trent_crypto::nitro::Attestation>>,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
    /// The quota slot of `region`, when the service numbered it (`Kms::caller_for`).
    region_slot: Option<usize>,
    /// A forward-access call: the integrated service that made this call on the caller's
    /// behalf (its service principal name) and the `kms:ViaService` value it gives.
    forwarded_by: Option<ForwardedBy>,
    /// `aws:SourceArn`: the resource an integrated service says it makes this call for
    /// (`Kms::with_source_arn`; never set on a customer's own call).
    source_arn: Option<Arc<str>>,
}

/// The integrated service behind a forward-access call (`Kms::forwarded_caller`).
#[derive(Debug, Clone)]
pub struct ForwardedBy {
    /// The service principal name, e.g. `ec2.amazonaws.com` (CloudTrail's `invokedBy`).
    pub service: Arc<str>,
    /// `kms:ViaService`, e.g. `ec2.us-east-1.amazonaws.com`.
    pub via_service: Arc<str>,
}

impl Caller {
    /// `principal` calling in `region`.
    pub fn new(principal: Arc<Principal>, region: Arc<str>) -> Self {
        Self {
            principal,
            region,
            key_arn: std::sync::OnceLock::new(),
            allowed: std::sync::OnceLock::new(),
            denied: std::sync::OnceLock::new(),
            recipient: std::sync::OnceLock::new(),
            source_ip: None,
            secure_transport: false,
            region_slot: None,
            forwarded_by: None,
            source_arn: None,
        }
    }

    /// `aws:SourceArn` of this call, if an integrated service named the resource it acts for.
    pub fn source_arn(&self) -> Option<&str> {
        self.source_arn.as_deref()
    }

    /// This caller, making the call for the resource `arn` (an integrated service's call:
    /// refused for anyone else, who could otherwise satisfy a grant's `SourceArn` at will).
    pub fn with_source_arn(mut self, arn: &str) -> Result<Self, crate::KmsError> {
        if !self.made_by_service() {
            return Err(crate::KmsError::AccessDenied(
                "Only an integrated service may name the resource a call is made for \
                 (X-Trent-Source-Arn)"
                    .into(),
            ));
        }
        if arn.is_empty() || arn.len() > 2048 || !arn.starts_with("arn:") {
            return Err(crate::KmsError::Validation(format!(
                "X-Trent-Source-Arn `{arn}` is not an ARN"
            )));
        }
        self.source_arn = Some(Arc::from(arn));
        Ok(self)
    }

    /// This caller, acting through the integrated service `forwarded_by`.
    pub(crate) fn with_forwarded_by(mut self, forwarded_by: ForwardedBy) -> Self {
        self.forwarded_by = Some(forwarded_by);
        self
    }

    /// The integrated service that made this call on the caller's behalf, if any.
    pub fn forwarded_by(&self) -> Option<&ForwardedBy> {
        self.forwarded_by.as_ref()
    }

    /// The service that made this call (CloudTrail's `invokedBy`): the forwarding service,
    /// the service of a service-linked session, or the service calling as itself.
    pub fn invoked_by(&self) -> Option<&str> {
        if let Some(f) = &self.forwarded_by {
            return Some(&f.service);
        }
        match &self.identity {
            Identity::AssumedRole { role_path, .. } => role_path
                .strip_prefix("/aws-service-role/")
                .and_then(|p| p.strip_suffix('/')),
            Identity::Service { name } => Some(name),
            _ => None,
        }
    }

    /// Whether an integrated service made this call: with its own credentials, as its
    /// service-linked role, or on behalf of a customer (`kms:GrantIsForAWSResource`).
    pub fn made_by_service(&self) -> bool {
        self.forwarded_by.is_some()
            || self.service_name().is_some()
            || self.is_service_linked_session()
    }

    /// This caller, with the quota slot the service gave its region.
    pub(crate) fn with_region_slot(mut self, slot: usize) -> Self {
        self.region_slot = Some(slot);
        self
    }

    pub(crate) fn region_slot(&self) -> Option<usize> {
        self.region_slot
    }

    /// The account root of `account`, calling in `region` with long-term credentials.
    pub fn root(account: &str, access_key_id: &str, region: &str) -> Self {
        let arn = format!("arn:aws:iam::{account}:root");
        let principal = Principal::new(account, arn, Identity::Root, access_key_id, vec![], false);
        Self::new(Arc::new(principal), Arc::from(region))
    }

    /// Records the key this request is about (the first one wins: ReEncrypt's source).
    pub(crate) fn note_key(&self, arn: &Arc<str>) {
        let _ = self.key_arn.set(arn.clone());
    }

    /// Records the request's verified `Recipient` document (the first one wins).
    pub(crate) fn note_recipient(&self, attestation: Arc<trent_crypto::nitro::Attestation>) {
        let _ = self.recipient.set(attestation);
    }

    /// The request's verified `Recipient` attestation document, if it had one.
    pub fn recipient(&self) -> Option<&trent_crypto::nitro::Attestation> {
        self.recipient.get().map(|a| &**a)
    }

    /// The ARN of the first key the request resolved, if any.
    pub fn key_arn(&self) -> Option<&Arc<str>> {
        self.key_arn.get()
    }

    /// Records an authorization decision of this request: the first allow, and a denial.
    /// `key_account`: the account of the key the decision was about, if any.
    pub(crate) fn note_decision(
        &self,
        decision: crate::authz::Decision,
        action: &str,
        key_account: Option<&str>,
    ) {
        if decision.is_allowed() {
            let _ = self.allowed.set(decision);
        } else {
            let never_cross_account = key_account.is_some_and(|a| a != self.account)
                && !trent_policy::kms::cross_account_permitted(action);
            let _ = self.denied.set(crate::authz::explain::Denial {
                decision,
                action: action.into(),
                never_cross_account,
            });
        }
    }

    pub(crate) fn allowed_decision(&self) -> Option<&crate::authz::Decision> {
        self.allowed.get()
    }

    pub(crate) fn denied_decision(&self) -> Option<&crate::authz::explain::Denial> {
        self.denied.get()
    }

    /// The shared principal behind this caller.
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }
}

impl Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}
