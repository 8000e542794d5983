//! The grant operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant and
//! RevokeGrant. Who may perform them is decided in `authz`; retired and revoked grants stay in
//! storage as tombstones.

use std::sync::Arc;

use trent_crypto::random;
use trent_crypto::spec::{KeyUsage, WireEnum};

use super::cache::Known;
use super::model::{Grant, GrantConstraints, GrantOperation};
use crate::authz::{Access, Resource};
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::KeyIdForms;
use crate::model::{GrantRow, KeyRecord};
use crate::service::Kms;
use crate::validate;

/// CreateGrant input.
#[derive(Debug, Default, Clone)]
pub struct CreateGrantInput {
    pub key_id: Option<String>,
    pub grantee_principal: Option<String>,
    pub retiring_principal: Option<String>,
    /// A grant to an integrated service (needs a `SourceArn` constraint and a retiring
    /// principal); exclusive with `grantee_principal`.
    pub grantee_service_principal: Option<String>,
    /// Exclusive with `retiring_principal`.
    pub retiring_service_principal: Option<String>,
    pub operations: Option<Vec<String>>,
    pub constraints: Option<GrantConstraints>,
    pub grant_tokens: Vec<String>,
    pub name: Option<String>,
    pub dry_run: bool,
}

/// ListGrants input.
#[derive(Debug, Default, Clone, Copy)]
pub struct ListGrantsInput<'a> {
    pub key_id: Option<&'a str>,
    pub limit: Option<i64>,
    pub marker: Option<&'a str>,
    pub grant_id: Option<&'a str>,
    pub grantee_principal: Option<&'a str>,
    /// Only grants to this service principal (for callers that are that service).
    pub grantee_service_principal: Option<&'a str>,
    pub grant_tokens: &'a [String],
}

/// A page of grants.
pub struct GrantList {
    pub grants: Vec<Arc<Grant>>,
    pub next_marker: Option<String>,
}

impl Kms {
    pub async fn create_grant(
        &self,
        caller: &Caller,
        input: CreateGrantInput,
    ) -> KmsResult<(String, String)> {
        self.admit(caller, crate::quotas::RateQuota::CreateGrant)?;
        let key_id = validate::required("keyId", input.key_id.as_deref())?;
        let service_grantee = input.grantee_service_principal.as_deref();
        if input.grantee_principal.is_some() && service_grantee.is_some() {
            return Err(KmsError::Validation(
                "You must specify either GranteePrincipal or GranteeServicePrincipal, but not both."
                    .into(),
            ));
        }
        if input.retiring_principal.is_some() && input.retiring_service_principal.is_some() {
            return Err(KmsError::Validation(
                "You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
                    .into(),
            ));
        }
        let grantee = match service_grantee {
            Some(s) => s,
            None => validate::required("granteePrincipal", input.grantee_principal.as_deref())?,
        };
        let operations = validate::required("operations", input.operations.clone())?;
        if let Some(s) = service_grantee {
            check_service_principal("granteeServicePrincipal", s)?;
        } else {
            validate::length("granteePrincipal", grantee, 1, 256)?;
            check_principal(grantee)?;
        }
        if let Some(r) = &input.retiring_principal {
            validate::length("retiringPrincipal", r, 1, 256)?;
            check_principal(r)?;
        }
        if let Some(r) = &input.retiring_service_principal {
            check_service_principal("retiringServicePrincipal", r)?;
        }
        // Whoever retires the grant, as stored and matched (a service principal by name).
        let retiring = input
            .retiring_principal
            .clone()
            .or_else(|| input.retiring_service_principal.clone());
        if let Some(arn) = input
            .constraints
            .as_ref()
            .and_then(|c| c.source_arn.as_deref())
        {
            check_source_arn(arn)?;
        }
        if service_grantee.is_some() {
            if input
                .constraints
                .as_ref()
                .is_none_or(|c| c.source_arn.is_none())
            {
                return Err(KmsError::Validation(
                    "When you specify a GranteeServicePrincipal, you must also specify a SourceArn grant constraint."
                        .into(),
                ));
            }
            if retiring.is_none() {
                return Err(KmsError::Validation(
                    "When you specify a GranteeServicePrincipal, you must also specify either a RetiringPrincipal or a RetiringServicePrincipal."
                        .into(),
                ));
            }
        }
        if let Some(n) = &input.name {
            validate::length("name", n, 1, 256)?;
            validate::pattern("name", n, "^[a-zA-Z0-9:/_-]+$", |c| {
                c.is_ascii_alphanumeric() || ":/_-".contains(c)
            })?;
        }
        if operations.is_empty() {
            return Err(KmsError::Validation("1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1".into()));
        }
        let names = operations;
        let mut operations = Vec::with_capacity(names.len());
        for name in &names {
            let Some(op) = GrantOperation::parse(name) else {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '[{name}]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: {}]",
                    GrantOperation::allowed()
                )));
            };
            operations.push(op);
        }
        if let Some(c) = &input.constraints {
            if let Some(eq) = &c.encryption_context_equals {
                validate::constraint_context("constraints.encryptionContextEquals", eq)?;
            }
            if let Some(sub) = &c.encryption_context_subset {
                validate::constraint_context("constraints.encryptionContextSubset", sub)?;
            }
        }
        let tokens = self.open_grant_tokens(&input.grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;

        let constraints = input.constraints.clone().filter(|c| !c.is_empty());
        let mut context = trent_policy::ConditionContext::new();
        context.insert("kms:GranteePrincipal", grantee);
        if let Some(r) = &retiring {
            context.insert("kms:RetiringPrincipal", r.clone());
        }
        context.insert_multi("kms:GrantOperations", operations.iter().map(|o| o.as_str()));
        // True only when an integrated service creates the grant (for a resource it launches);
        // a direct call is false, so `Bool: true` conditions never match it.
        context.insert("kms:GrantIsForAWSResource", for_aws_resource(caller));
        let constraint_context = constraints
            .as_ref()
            .and_then(|c| c.context().cloned())
            .unwrap_or_default();
        if let Some(c) = &constraints {
            if let Some(kind) = c.kind() {
                context.insert("kms:GrantConstraintType", kind);
            }
            for (k, v) in &constraint_context {
                context.insert(&format!("kms:EncryptionContext:{k}"), v.clone());
            }
            if !constraint_context.is_empty() {
                context.insert_multi(
                    "kms:EncryptionContextKeys",
                    constraint_context.keys().cloned(),
                );
            }
        }
        // Policy first; failing that, a grant holding CreateGrant may delegate a subset of itself.
        let access = Access::new("kms:CreateGrant", Resource::Key(&key))
            .conditions(context)
            .grant_tokens(&tokens);
        self.decide_create_grant(caller, &access, &key, &operations, constraints.as_ref())?
            .into_result(caller, &access)?;
        // What the key is (its usage and spec) is told only to callers who may use it.
        check_operations_fit_key(&key.record, &operations, input.constraints.as_ref())?;
        // A service principal is accepted as key policies accept one (`{"Service": …}`).
        if service_grantee.is_none() {
            self.check_grant_principal(grantee)?;
        }
        if let Some(r) = &input.retiring_principal {
            self.check_grant_principal(r)?;
        }
        crate::keys::require_usable(&key.record)?;
        if input.dry_run {
            return Err(KmsError::DryRunOperation);
        }

        let _guard = self.writes.lock().await;
        let now = self.clock.now_ms();
        // Stored sorted by name, as AWS lists them.
        let mut sorted_ops = operations.clone();
        sorted_ops.sort_by_key(|o| o.as_str());
        sorted_ops.dedup();
        // A user or role grantee/retiring principal is bound to its unique id now: a user of
        // the same name created later does not use or retire the grant (`authz/bindings.rs`).
        let grantee_id = self.principal_unique_id(grantee);
        let retiring_id = retiring
            .as_deref()
            .and_then(|r| self.principal_unique_id(r));
        if let Some(name) = &input.name {
            let same = self
                .grants
                .active(&key.record.key_id)
                .into_iter()
                .find(|g| {
                    g.name.as_deref() == Some(name.as_str())
                        && g.grantee_principal == grantee
                        && g.grantee_principal_id == grantee_id
                        && g.retiring_principal_id == retiring_id
                        && g.grantee_service_principal == input.grantee_service_principal
                        && g.retiring_principal == retiring
                        && g.retiring_service_principal == input.retiring_service_principal
                        && g.operations == sorted_ops
                        && g.constraints == constraints
                });
            if let Some(existing) = same {
                return Ok((existing.grant_id.clone(), self.seal_token(&existing)?));
            }
        }
        let max_grants = self.resource_quotas().grants_per_key;
        if self.grants.active_count(&key.record.key_id) >= max_grants {
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: grants per key ({max_grants})."
            )));
        }
        let grant = Grant {
            v: 1,
            grant_id: hex::encode(random::array::<32>()?),
            key_id: key.record.key_id.clone(),
            key_account: key.record.account_id.clone(),
            key_region: key.record.region.clone(),
            name: input.name.clone(),
            grantee_principal: grantee.to_string(),
            retiring_principal: retiring,
            grantee_service_principal: input.grantee_service_principal.clone(),
            retiring_service_principal: input.retiring_service_principal.clone(),
            grantee_principal_id: grantee_id,
            retiring_principal_id: retiring_id,
            operations: sorted_ops,
            constraints,
            issuing_account: caller.account.clone(),
            created_ms: now,
        };
        let body = serde_json::to_string(&grant).map_err(|e| KmsError::Internal(e.to_string()))?;
        self.store
            .insert_grant(&GrantRow {
                grant_id: grant.grant_id.clone(),
                key_id: grant.key_id.clone(),
                retiring_principal: grant.retiring_principal.clone(),
                body,
                retired_ms: None,
            })
            .await?;
        let token = self.seal_token(&grant)?;
        let id = grant.grant_id.clone();
        let key_id = grant.key_id.clone();
        self.grants
            .update(&key_id, &id, Known::Active(Arc::new(grant)));
        Ok((id, token))
    }

    pub async fn list_grants(
        &self,
        caller: &Caller,
        input: ListGrantsInput<'_>,
    ) -> KmsResult<GrantList> {
        self.admit(caller, crate::quotas::RateQuota::ListGrants)?;
        let ListGrantsInput {
            key_id,
            limit,
            marker,
            grant_id,
            grantee_principal,
            grantee_service_principal,
            grant_tokens,
        } = input;
        let key_id = validate::required("keyId", key_id)?;
        if grantee_principal.is_some() && grantee_service_principal.is_some() {
            return Err(KmsError::Validation(
                "You can specify either GranteePrincipal or GranteeServicePrincipal, but not both."
                    .into(),
            ));
        }
        if let Some(s) = grantee_service_principal {
            check_service_principal("granteeServicePrincipal", s)?;
            if caller.service_name() != Some(s) {
                return Err(service_filter_refused(caller, "kms:ListGrants"));
            }
        }
        let limit = validate::limit(limit, 1000, 50)?;
        let tokens = self.open_grant_tokens(grant_tokens)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.check(
            caller,
            Access::new("kms:ListGrants", Resource::Key(&key))
                .condition("kms:GrantIsForAWSResource", for_aws_resource(caller))
                .grant_tokens(&tokens),
        )?;
        let mut grants: Vec<Arc<Grant>> = self
            .grants
            .active(&key.record.key_id)
            .into_iter()
            .filter(|g| {
                grant_id.is_none_or(|id| g.grant_id == id)
                    && grantee_principal.is_none_or(|p| g.grantee_principal == p)
                    && grantee_service_principal
                        .is_none_or(|s| g.grantee_service_principal.as_deref() == Some(s))
            })
            .collect();
        grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
        page(grants, marker, limit)
    }

    /// ListRetirableGrants of a retiring principal, or (for a service's own calls) of a
    /// retiring service principal.
    pub async fn list_retirable_grants(
        &self,
        caller: &Caller,
        retiring_principal: Option<&str>,
        retiring_service_principal: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<GrantList> {
        self.admit(caller, crate::quotas::RateQuota::ListRetirableGrants)?;
        let principal = match (retiring_principal, retiring_service_principal) {
            (Some(_), Some(_)) => {
                return Err(KmsError::Validation(
                    "You must specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
                        .into(),
                ));
            }
            (None, Some(s)) => {
                check_service_principal("retiringServicePrincipal", s)?;
                // A service lists the grants it may retire; nobody else may ask.
                if caller.service_name() != Some(s) {
                    return Err(service_filter_refused(caller, "kms:ListRetirableGrants"));
                }
                s
            }
            (principal, None) => {
                let principal = validate::required("retiringPrincipal", principal)?;
                validate::length("retiringPrincipal", principal, 1, 256)?;
                self.check_list_retirable_grants(caller, principal)?;
                principal
            }
        };
        let limit = validate::limit(limit, 1000, 50)?;
        let rows = self.store.grants_by_retiring_principal(principal).await?;
        let grants: Vec<Arc<Grant>> = rows
            .iter()
            .filter_map(|r| serde_json::from_str::<Grant>(&r.body).ok().map(Arc::new))
            .filter(|g| {
                // The name alone would also match an IAM principal's grant were one so named.
                retiring_service_principal.is_none()
                    || g.retiring_service_principal.as_deref() == Some(principal)
            })
            .collect();
        page(grants, marker, limit)
    }

    /// RetireGrant by token, or by key id and grant id. Not controlled by key policy: the
    /// grant says who may retire it.
    pub async fn retire_grant(
        &self,
        caller: &Caller,
        grant_token: Option<&str>,
        key_id: Option<&str>,
        grant_id: Option<&str>,
        dry_run: bool,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::RetireGrant)?;
        let grant: Arc<Grant> = match (grant_token, key_id, grant_id) {
            (Some(token), _, _) => {
                validate::length("grantToken", token, 1, 8192)?;
                let g = self.open_token(token)?;
                // A deleted key took its grants with it: the token names nothing any more.
                let key_exists = self.load_key(&g.key_id).await?.is_some();
                let retired = matches!(
                    self.grants.known(&g.key_id, &g.grant_id),
                    Some(Known::Retired)
                );
                if !key_exists || retired {
                    return Err(KmsError::NotFound(format!(
                        "Grant {} not found",
                        g.grant_id
                    )));
                }
                Arc::new(g)
            }
            (None, Some(k), Some(id)) => {
                let key = self.resolve(caller, k, KeyIdForms::KeyOnly).await?;
                self.active_grant(&key.record.key_id, id)?
            }
            _ => {
                return Err(KmsError::Validation(
                    "Either GrantToken, or both KeyId and GrantId, must be specified.".into(),
                ));
            }
        };
        self.check_retire_grant(caller, &grant)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        self.end_grant(&grant).await
    }

    pub async fn revoke_grant(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        grant_id: Option<&str>,
        dry_run: bool,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::RevokeGrant)?;
        let key_id = validate::required("keyId", key_id)?;
        let grant_id = validate::required("grantId", grant_id)?;
        validate::length("grantId", grant_id, 1, 128)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.check(
            caller,
            Access::new("kms:RevokeGrant", Resource::Key(&key))
                .condition("kms:GrantIsForAWSResource", for_aws_resource(caller)),
        )?;
        let grant = self.active_grant(&key.record.key_id, grant_id)?;
        if dry_run {
            return Err(KmsError::DryRunOperation);
        }
        self.end_grant(&grant).await
    }

    fn active_grant(&self, key_id: &str, grant_id: &str) -> KmsResult<Arc<Grant>> {
        match self.grants.known(key_id, grant_id) {
            Some(Known::Active(g)) => Ok(g.clone()),
            _ => Err(KmsError::NotFound(format!("Grant ID {grant_id} not found"))),
        }
    }

    async fn end_grant(&self, grant: &Grant) -> KmsResult<()> {
        let _guard = self.writes.lock().await;
        match self
            .store
            .retire_grant(&grant.grant_id, self.clock.now_ms())
            .await
        {
            Ok(()) | Err(crate::store::StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.grants
            .update(&grant.key_id, &grant.grant_id, Known::Retired);
        Ok(())
    }
}

fn page(grants: Vec<Arc<Grant>>, marker: Option<&str>, limit: usize) -> KmsResult<GrantList> {
    let start = match marker {
        None => 0,
        Some(m) => {
            validate::length("marker", m, 1, 1024)?;
            grants
                .iter()
                .position(|g| g.grant_id.as_str() > m)
                .unwrap_or(grants.len())
        }
    };
    let rest = grants.get(start..).unwrap_or_default();
    let page: Vec<Arc<Grant>> = rest.iter().take(limit).cloned().collect();
    let next_marker = (rest.len() > limit)
        .then(|| page.last().map(|g| g.grant_id.clone()))
        .flatten();
    Ok(GrantList {
        grants: page,
        next_marker,
    })
}

/// Grantee and retiring principals: an account id or an IAM/STS ARN.
fn check_principal(p: &str) -> KmsResult<()> {
    let arn_ok = (p.starts_with("arn:aws:iam::") || p.starts_with("arn:aws:sts::"))
        && p.split(':').nth(4).is_some_and(crate::ids::is_account_id);
    if crate::ids::is_account_id(p) || arn_ok {
        Ok(())
    } else {
        Err(KmsError::InvalidArn(format!(
            "{p} is not a valid principal"
        )))
    }
}

/// `ServicePrincipalType`: 1..128 characters, `^([A-Za-z0-9\-]+)\.([A-Za-z0-9\-]+)(\.[A-Za-z0-9\-]+)+$`.
fn check_service_principal(field: &str, value: &str) -> KmsResult<()> {
    validate::length(field, value, 1, 128)?;
    let labels: Vec<&str> = value.split('.').collect();
    let ok = labels.len() >= 3
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if ok {
        Ok(())
    } else {
        Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([A-Za-z0-9\\-]+)\\.([A-Za-z0-9\\-]+)(\\.[A-Za-z0-9\\-]+)+$"
        )))
    }
}

/// `GrantConstraintSourceArnType`: 20..512 characters,
/// `^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$`.
fn check_source_arn(value: &str) -> KmsResult<()> {
    let field = "constraints.sourceArn";
    validate::length(field, value, 20, 512)?;
    let lower = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let mut parts = value.splitn(6, ':');
    let ok = parts.next() == Some("arn")
        && parts
            .next()
            .and_then(|p| p.strip_prefix("aws"))
            .is_some_and(lower)
        && parts.next().is_some_and(|s| !s.is_empty() && lower(s))
        && parts.next().is_some_and(lower)
        && parts
            .next()
            .is_some_and(|a| a.len() == 12 && a.chars().all(|c| c.is_ascii_digit()))
        && parts.next().is_some_and(|r| !r.is_empty());
    if ok {
        Ok(())
    } else {
        Err(KmsError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{{12}}:.+$"
        )))
    }
}

/// A service-principal filter asked for by a caller that is not that service.
fn service_filter_refused(caller: &Caller, action: &str) -> KmsError {
    KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: {action} with a service principal filter: only that service principal may use it",
        caller.principal_arn
    ))
}

/// Refuses operations the key cannot perform, and constraints where they mean nothing.
fn check_operations_fit_key(
    key: &KeyRecord,
    operations: &[GrantOperation],
    constraints: Option<&GrantConstraints>,
) -> KmsResult<()> {
    use GrantOperation as G;
    use trent_crypto::spec::KeySpec;
    let allowed: &[GrantOperation] = match (key.key_usage, key.key_spec) {
        (KeyUsage::EncryptDecrypt, KeySpec::SymmetricDefault) => &[
            G::Decrypt,
            G::Encrypt,
            G::GenerateDataKey,
            G::GenerateDataKeyWithoutPlaintext,
            G::ReEncryptFrom,
            G::ReEncryptTo,
            G::GenerateDataKeyPair,
            G::GenerateDataKeyPairWithoutPlaintext,
            G::CreateGrant,
            G::RetireGrant,
            G::DescribeKey,
        ],
        (KeyUsage::EncryptDecrypt, _) => &[
            G::Decrypt,
            G::Encrypt,
            G::ReEncryptFrom,
            G::ReEncryptTo,
            G::GetPublicKey,
            G::CreateGrant,
            G::RetireGrant,
            G::DescribeKey,
        ],
        (KeyUsage::SignVerify, _) => &[
            G::Sign,
            G::Verify,
            G::GetPublicKey,
            G::CreateGrant,
            G::RetireGrant,
            G::DescribeKey,
        ],
        (KeyUsage::GenerateVerifyMac, _) => &[
            G::GenerateMac,
            G::VerifyMac,
            G::CreateGrant,
            G::RetireGrant,
            G::DescribeKey,
        ],
        (KeyUsage::KeyAgreement, _) => &[
            G::DeriveSharedSecret,
            G::GetPublicKey,
            G::CreateGrant,
            G::RetireGrant,
            G::DescribeKey,
        ],
        (KeyUsage::EncapsulateDecapsulate, _) => &[
            G::Encapsulate,
            G::Decapsulate,
            G::GetPublicKey,
            G::CreateGrant,
            G::RetireGrant,
            G::DescribeKey,
        ],
    };
    let bad: Vec<&str> = operations
        .iter()
        .filter(|o| !allowed.contains(o))
        .map(|o| o.as_str())
        .collect();
    if !bad.is_empty() {
        return Err(KmsError::Validation(format!(
            "Grant operations {} are not valid for a KMS key with KeyUsage {} and KeySpec {}",
            bad.join(", "),
            trent_crypto::spec::WireEnum::as_str(key.key_usage),
            trent_crypto::spec::WireEnum::as_str(key.key_spec)
        )));
    }
    if constraints.is_some_and(|c| c.kind().is_some()) && key.key_spec != KeySpec::SymmetricDefault
    {
        return Err(KmsError::Validation(
            "Grant constraints are supported only for symmetric encryption KMS keys.".into(),
        ));
    }
    if constraints.is_some_and(|c| {
        c.encryption_context_equals.is_some() && c.encryption_context_subset.is_some()
    }) {
        return Err(KmsError::Validation(
            "A grant can have EncryptionContextEquals or EncryptionContextSubset, not both.".into(),
        ));
    }
    Ok(())
}

/// `kms:GrantIsForAWSResource`: whether an integrated service made the call.
fn for_aws_resource(caller: &Caller) -> &'static str {
    if caller.made_by_service() {
        "true"
    } else {
        "false"
    }
}
