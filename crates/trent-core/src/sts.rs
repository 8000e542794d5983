//! STS: GetCallerIdentity, AssumeRole and GetSessionToken, and turning credentials into callers.
//!
//! Temporary credentials are an ASIA access key, a secret, and a random session token. Trent
//! keeps the secret wrapped under the root key and only the SHA-256 of the token; a request
//! signed with temporary keys must present the exact token (compared in constant time) before
//! the expiry.

use std::sync::Arc;

use base64::Engine;
use trent_policy::{Policy, PolicyKind};
use zeroize::Zeroizing;

use crate::caller::{Caller, Identity, Principal};
use crate::credentials::{Credential, CredentialIdentity, SessionInfo};
use crate::iam::{AccountIam, IamError, IamResult, entity_arn};
use crate::model::{SessionRecord, secret_aad};
use crate::service::{Kms, random_access_key_id, random_secret};

/// Temporary credentials as STS returns them.
pub struct TemporaryCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    pub expires_ms: i64,
}

/// AssumeRole's result.
pub struct AssumedRole {
    pub credentials: TemporaryCredentials,
    pub assumed_role_id: String,
    pub arn: String,
}

/// Why credentials did not authenticate.
#[derive(Debug, PartialEq, Eq)]
pub enum CredentialProblem {
    /// Unknown key, wrong or missing token, or a principal that no longer exists.
    Invalid,
    /// The temporary credentials have expired.
    Expired,
}

impl Kms {
    /// Checks the session token of `credential` and builds the caller it authenticates.
    pub fn caller_for(
        &self,
        credential: &Credential,
        session_token: Option<&str>,
        region: &str,
    ) -> Result<Caller, CredentialProblem> {
        match (&credential.session, session_token) {
            (None, None) => {}
            (Some(session), Some(token)) => {
                let hash = trent_crypto::hash::sha256(token.as_bytes());
                if !trent_crypto::hash::constant_time_eq(&hash, &session.token_sha256) {
                    return Err(CredentialProblem::Invalid);
                }
                if session.expires_ms <= self.clock.now_ms() {
                    return Err(CredentialProblem::Expired);
                }
            }
            _ => return Err(CredentialProblem::Invalid),
        }
        let (region, slot) = self.regions.name(region);
        Ok(Caller::new(self.principal_of(credential)?, region).with_region_slot(slot))
    }

    /// The principal `credential` authenticates: cached on the credential, rebuilt when the
    /// account's IAM snapshot has changed since (the user or role may be gone or different).
    fn principal_of(&self, credential: &Credential) -> Result<Arc<Principal>, CredentialProblem> {
        let iam = self.iam.account(&credential.account_id);
        if let Ok(cached) = credential.cached_principal.read()
            && let Some(p) = cached.as_ref()
            && p.iam_generation == iam.generation
        {
            return Ok(p.clone());
        }
        let principal = build_principal(credential, &iam)?;
        let _ = principal
            .rates
            .set(self.quotas.account(&credential.account_id));
        let principal = Arc::new(principal);
        if let Ok(mut cached) = credential.cached_principal.write() {
            *cached = Some(principal.clone());
        }
        Ok(principal)
    }

    /// GetCallerIdentity: (UserId, Account, Arn). Needs no permission.
    pub fn sts_get_caller_identity(&self, caller: &Caller) -> (String, String, String) {
        (
            caller.user_id().to_string(),
            caller.account.clone(),
            caller.principal_arn.clone(),
        )
    }

    pub async fn sts_assume_role(
        &self,
        caller: &Caller,
        role_arn: &str,
        session_name: &str,
        duration_seconds: Option<i64>,
    ) -> IamResult<AssumedRole> {
        let name_ok = (2..=64).contains(&session_name.chars().count())
            && session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !name_ok {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            )));
        }
        let denied = || {
            IamError::AccessDenied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.principal_arn
            ))
        };
        let role_account = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split(':').next())
            .unwrap_or_default()
            .to_string();
        let role_name = role_arn.rsplit('/').next().unwrap_or_default();
        let target = self.iam.account(&role_account);
        let role = target
            .roles
            .get(role_name)
            .filter(|r| entity_arn(&role_account, "role", &r.path, &r.name) == role_arn)
            .cloned()
            .ok_or_else(denied)?;
        // A service-linked role is assumed by its service only, whatever its trust policy says
        // (customers cannot edit it, but a role written before this rule might differ).
        if let Some(service) = role
            .path
            .strip_prefix("/aws-service-role/")
            .and_then(|p| p.strip_suffix('/'))
            && caller.service_name() != Some(service)
        {
            return Err(denied());
        }
        let mut trust = parse_trust_policy(&role.trust_policy).map_err(|_| denied())?;
        // Its users and roles match by the unique ids bound when it was set (as AWS does).
        if !role.trust_principals.is_empty() {
            trust.bind_principals(|arn| role.trust_principals.get(arn).cloned());
        }
        if !self
            .decide_assume_role(caller, role_arn, &role_account, &trust)
            .is_allowed()
        {
            return Err(denied());
        }
        // Role chaining (a role session assuming a role) is capped at one hour, as in AWS.
        let max = if matches!(caller.identity, Identity::AssumedRole { .. }) {
            3600
        } else {
            role.max_session_duration
        };
        let duration = duration_seconds.unwrap_or(3600.min(max));
        if duration < 900 {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            )));
        }
        if duration > max {
            return Err(IamError::Validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                    .into(),
            ));
        }
        let credentials = self
            .issue_session(
                &role_account,
                CredentialIdentity::RoleSession {
                    role_name: role.name.clone(),
                    session_name: session_name.to_string(),
                },
                &role.id,
                duration,
            )
            .await?;
        Ok(AssumedRole {
            credentials,
            assumed_role_id: format!("{}:{session_name}", role.id),
            arn: format!(
                "arn:aws:sts::{role_account}:assumed-role/{}/{session_name}",
                role.name
            ),
        })
    }

    pub async fn sts_get_session_token(
        &self,
        caller: &Caller,
        duration_seconds: Option<i64>,
    ) -> IamResult<TemporaryCredentials> {
        self.check_get_session_token(caller)?;
        let (identity, max) = match &caller.identity {
            Identity::Root => (CredentialIdentity::Root, 3600),
            Identity::User { name, .. } => (CredentialIdentity::User(name.clone()), 129_600),
            // Refused above: sessions cannot make sessions.
            Identity::AssumedRole { .. } => return Err(session_credentials_refused()),
            // A service acts as its roles or for its callers, never with sessions of its own.
            Identity::Service { .. } => {
                return Err(IamError::AccessDenied(
                    "Service credentials cannot call GetSessionToken".into(),
                ));
            }
        };
        let duration = duration_seconds.unwrap_or(43_200.min(max));
        if !(900..=max).contains(&duration) {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and {max}"
            )));
        }
        let principal_id = match &caller.identity {
            Identity::User { user_id, .. } => user_id.clone(),
            _ => caller.account.clone(),
        };
        self.issue_session(&caller.account, identity, &principal_id, duration)
            .await
    }

    async fn issue_session(
        &self,
        account: &str,
        identity: CredentialIdentity,
        principal_id: &str,
        duration_seconds: i64,
    ) -> IamResult<TemporaryCredentials> {
        let access_key_id = random_access_key_id("ASIA")?;
        let secret = random_secret()?;
        let token_bytes = trent_crypto::random::secret_bytes(64)?;
        let token = Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(token_bytes.as_slice()),
        );
        let token_sha256 = trent_crypto::hash::sha256(token.as_bytes());
        let now = self.clock.now_ms();
        let expires_ms = now.saturating_add(duration_seconds.saturating_mul(1000));
        self.store
            .insert_session(&SessionRecord {
                access_key_id: access_key_id.clone(),
                account_id: account.to_string(),
                identity: format!("{}#{principal_id}", encode_identity(&identity)),
                wrapped_secret: self
                    .root
                    .wrap(secret.as_bytes(), &secret_aad(&access_key_id))?,
                token_sha256: token_sha256.to_vec(),
                expires_ms,
                created_ms: now,
            })
            .await?;
        self.credentials.insert(Credential {
            cached_principal: Default::default(),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret.clone(),
            account_id: account.to_string(),
            identity,
            session: Some(SessionInfo {
                token_sha256,
                expires_ms,
                created_ms: now,
                principal_id: principal_id.to_string(),
            }),
            user_id: None,
        });
        Ok(TemporaryCredentials {
            access_key_id,
            secret_access_key: secret,
            session_token: token,
            expires_ms,
        })
    }
}

/// A role trust policy as a resource policy. Trust policies name no `Resource` (the role is
/// implied); the key-policy rules would make such statements inert, so `"Resource": "*"` is
/// supplied where a statement has neither `Resource` nor `NotResource`.
pub fn parse_trust_policy(document: &str) -> Result<Policy, trent_policy::PolicyError> {
    let with_resource = serde_json::from_str::<serde_json::Value>(document)
        .ok()
        .map(|mut doc| {
            let add = |s: &mut serde_json::Value| {
                if let Some(obj) = s.as_object_mut()
                    && !obj.contains_key("Resource")
                    && !obj.contains_key("NotResource")
                {
                    obj.insert("Resource".into(), serde_json::Value::String("*".into()));
                }
            };
            match doc.get_mut("Statement") {
                Some(serde_json::Value::Array(list)) => list.iter_mut().for_each(add),
                Some(one) => add(one),
                None => {}
            }
            doc.to_string()
        });
    Policy::parse(
        with_resource.as_deref().unwrap_or(document),
        PolicyKind::KeyPolicy,
    )
}

/// The stored form of a credential's identity.
pub(crate) fn encode_identity(identity: &CredentialIdentity) -> String {
    match identity {
        CredentialIdentity::Root => "root".into(),
        CredentialIdentity::User(name) => format!("user:{name}"),
        CredentialIdentity::RoleSession {
            role_name,
            session_name,
        } => format!("role:{role_name}:{session_name}"),
        CredentialIdentity::Service(name) => format!("service:{name}"),
    }
}

/// Decodes a stored session identity `<identity>#<principal id>`.
pub(crate) fn decode_session_identity(s: &str) -> Option<(CredentialIdentity, String)> {
    let (identity, id) = s.rsplit_once('#')?;
    Some((decode_identity(identity)?, id.to_string()))
}

pub(crate) fn decode_identity(s: &str) -> Option<CredentialIdentity> {
    if s == "root" {
        return Some(CredentialIdentity::Root);
    }
    if let Some(name) = s.strip_prefix("user:") {
        return Some(CredentialIdentity::User(name.to_string()));
    }
    let (role, session) = s.strip_prefix("role:")?.split_once(':')?;
    Some(CredentialIdentity::RoleSession {
        role_name: role.to_string(),
        session_name: session.to_string(),
    })
}

/// The principal of `credential` in the IAM snapshot `iam` of its account.
fn build_principal(
    credential: &Credential,
    iam: &AccountIam,
) -> Result<Principal, CredentialProblem> {
    let account = &credential.account_id;
    let temporary = credential.session.is_some();
    // A session is bound to its role's or user's unique id, a long-term user key to its user's.
    let session_is_for = |id: &str| {
        credential
            .session
            .as_ref()
            .is_none_or(|s| s.principal_id == id)
            && credential
                .user_id
                .as_deref()
                .is_none_or(|bound| bound == id)
    };
    let (arn, identity, tags) = match &credential.identity {
        CredentialIdentity::Root => (
            format!("arn:aws:iam::{account}:root"),
            Identity::Root,
            Vec::new(),
        ),
        CredentialIdentity::User(name) => {
            let user = iam.users.get(name).ok_or(CredentialProblem::Invalid)?;
            if !session_is_for(&user.id) {
                return Err(CredentialProblem::Invalid);
            }
            let identity = Identity::User {
                name: user.name.clone(),
                path: user.path.clone(),
                user_id: user.id.clone(),
            };
            (
                entity_arn(account, "user", &user.path, &user.name),
                identity,
                user.tags.clone(),
            )
        }
        CredentialIdentity::RoleSession {
            role_name,
            session_name,
        } => {
            let role = iam.roles.get(role_name).ok_or(CredentialProblem::Invalid)?;
            if !session_is_for(&role.id) {
                return Err(CredentialProblem::Invalid);
            }
            let identity = Identity::AssumedRole {
                role_name: role.name.clone(),
                role_path: role.path.clone(),
                role_id: role.id.clone(),
                session_name: session_name.clone(),
            };
            (
                format!(
                    "arn:aws:sts::{account}:assumed-role/{}/{session_name}",
                    role.name
                ),
                identity,
                role.tags.clone(),
            )
        }
        CredentialIdentity::Service(name) => (
            name.clone(),
            Identity::Service { name: name.clone() },
            Vec::new(),
        ),
    };
    let mut principal = Principal::new(
        account,
        arn,
        identity,
        &credential.access_key_id,
        tags,
        temporary,
    );
    principal.identity_policies = iam.policies_for(&principal.identity);
    principal.iam_generation = iam.generation;
    principal.session_created_ms = credential.session.as_ref().map(|s| s.created_ms);
    Ok(principal)
}

/// GetSessionToken called with temporary credentials, in STS's words.
pub(crate) fn session_credentials_refused() -> IamError {
    IamError::AccessDenied("Cannot call GetSessionToken with session credentials".into())
}
