//! Policy principals bound to IAM unique ids, as AWS binds them (IAM User Guide, "Unique
//! identifiers"; policy-semantics §1.2): a key policy, grant or trust policy naming an IAM user
//! or role names the entity that held the ARN when it was set. Evaluation matches the bound
//! principal only for a caller with that unique id, so a user or role deleted and re-created
//! under the same name does not regain access; the policy is then shown with the old unique id
//! (`AIDA…`/`AROA…`) where the ARN was.
//!
//! The hot path does no lookup: bindings are computed once when a policy is set (here, from the
//! IAM snapshot), stored with it (`KeyRecord::policy_principals`, a role's `trust_principals`),
//! and applied to the parsed policy when it is loaded (`trent_policy::Policy::bind_principals`);
//! the caller's unique id is on its principal already. Showing a policy (GetKeyPolicy, GetRole)
//! reads the current IAM snapshot to tell which bound entities are gone.
//!
//! What was stored before bindings existed (schema version 12) is bound once, at the first
//! start-up over the store ([`Kms::bind_stored_principals`]): to the entities holding the ARNs
//! then. A principal that does not exist then stays unbound (matched and shown by ARN).

use trent_policy::{Policy, PolicyKind, PrincipalValue};

use crate::error::{KmsError, KmsResult};
use crate::grants::Grant;
use crate::model::{GrantRow, PrincipalBindings};
use crate::service::Kms;
use crate::store::Page;

/// The start-up pass binding stored policies and grants (`Store::pass_done`).
const BINDING_PASS: &str = "principal_bindings";
/// Keys listed per store read during the pass.
const PASS_PAGE: usize = 500;
/// Compare-and-write attempts on one record before the pass gives up (start-up then fails
/// with a retryable error: another node keeps changing it).
const PASS_ATTEMPTS: usize = 8;

/// The account of a principal ARN (`arn:aws:iam::ACCOUNT:…`).
fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// `text` parsed as `kind` with its user and role principals bound by `bindings`. Entries
/// without a binding stay unbound (compared by ARN: policies stored before bindings existed).
pub(crate) fn parse_bound(
    text: &str,
    kind: PolicyKind,
    bindings: &PrincipalBindings,
) -> Result<Policy, trent_policy::PolicyError> {
    let mut policy = Policy::parse(text, kind)?;
    if !bindings.is_empty() {
        policy.bind_principals(|arn| bindings.get(arn).cloned());
    }
    Ok(policy)
}

impl Kms {
    /// The unique id of the user or role named by `arn` now, if it exists in a Trent account.
    pub(crate) fn principal_unique_id(&self, arn: &str) -> Option<String> {
        let account = account_of(arn);
        self.iam.account(account).unique_id_of(account, arn)
    }

    /// The bindings of every IAM user and role principal of the policy `text` (of `kind`), from
    /// the current IAM snapshot. Principals that do not exist are left out (callers refuse
    /// them before storing: key policies and grants must name existing principals).
    pub(crate) fn bind_policy_principals(&self, text: &str, kind: PolicyKind) -> PrincipalBindings {
        match Policy::parse(text, kind) {
            Ok(policy) => self.bind_parsed_principals(&policy),
            Err(_) => PrincipalBindings::new(),
        }
    }

    /// [`Self::bind_policy_principals`] of a policy already parsed (a trust policy, which
    /// `sts::parse_trust_policy` parses its own way).
    pub(crate) fn bind_parsed_principals(&self, policy: &Policy) -> PrincipalBindings {
        let mut bindings = PrincipalBindings::new();
        for (_, entry) in policy.principal_entries() {
            if let PrincipalValue::User(arn) | PrincipalValue::Role(arn) = entry.value()
                && let Some(id) = self.principal_unique_id(arn)
            {
                bindings.insert(arn.clone(), id);
            }
        }
        bindings
    }

    /// The bindings `policy` (of `kind`) lacks for its user and role principals that exist
    /// now: what binding it at start-up adds (`None` when nothing, so nothing is written).
    pub(crate) fn missing_bindings(
        &self,
        policy: &Policy,
        bound: &PrincipalBindings,
    ) -> Option<PrincipalBindings> {
        let missing: PrincipalBindings = self
            .bind_parsed_principals(policy)
            .into_iter()
            .filter(|(arn, _)| !bound.contains_key(arn))
            .collect();
        (!missing.is_empty()).then_some(missing)
    }

    /// Binds, once per store, what was stored before bindings existed: every key policy,
    /// grant and trust policy naming an existing user or role it has no binding for. Each
    /// record is compared and written (`Store::update_key_if`, `update_grant_if`,
    /// `write_iam_if`), so a second node running the pass at the same time finds it bound
    /// and changes nothing; the pass is recorded done only once it has finished, so one
    /// interrupted runs again whole at the next start-up (binding what is left).
    pub(crate) async fn bind_stored_principals(&self) -> KmsResult<()> {
        if self.store.pass_done(BINDING_PASS).await? {
            return Ok(());
        }
        for account in self.store.accounts().await? {
            let account = account.account_id;
            self.bind_stored_trust_policies(&account)
                .await
                .map_err(|e| KmsError::Internal(format!("binding trust policies: {e}")))?;
            for region in self.store.regions_in_use(&account).await? {
                let mut after: Option<String> = None;
                loop {
                    let page = Page {
                        after: after.as_deref(),
                        limit: PASS_PAGE,
                    };
                    let ids = self.store.list_keys(&account, &region, page).await?;
                    for key_id in &ids {
                        self.bind_stored_key_policy(key_id).await?;
                        self.bind_stored_grants(key_id).await?;
                    }
                    if ids.len() < PASS_PAGE {
                        break;
                    }
                    after = ids.last().cloned();
                }
            }
        }
        self.store.set_pass_done(BINDING_PASS, true).await?;
        Ok(())
    }

    /// The pass on one key's policy: read, bind what is missing, write over what was read.
    async fn bind_stored_key_policy(&self, key_id: &str) -> KmsResult<()> {
        for _ in 0..PASS_ATTEMPTS {
            let Some((stored, _)) = self.store.key(key_id).await? else {
                return Ok(()); // deleted meanwhile
            };
            // A policy that does not parse is refused when the key loads; nothing to bind.
            let Ok(policy) = Policy::parse(&stored.policy, PolicyKind::KeyPolicy) else {
                return Ok(());
            };
            let Some(missing) = self.missing_bindings(&policy, &stored.policy_principals) else {
                return Ok(());
            };
            let mut bound = stored.clone();
            bound.policy_principals.extend(missing);
            if self.store.update_key_if(&stored, &bound).await? {
                return Ok(());
            }
        }
        Err(KmsError::DependencyTimeout(format!(
            "key {key_id} kept changing while its policy was being bound"
        )))
    }

    /// The pass on one key's active grants: a user or role grantee or retiring principal
    /// without its unique id gets the one of the entity holding the ARN now.
    async fn bind_stored_grants(&self, key_id: &str) -> KmsResult<()> {
        for _ in 0..PASS_ATTEMPTS {
            let mut changed_meanwhile = false;
            for row in self.store.grants_for_key(key_id).await? {
                let Some(bound) = self.bound_grant_row(&row)? else {
                    continue;
                };
                if !self.store.update_grant_if(&row, &bound).await? {
                    changed_meanwhile = true;
                }
            }
            // A grant another node changed or retired meanwhile: read them again (a retired
            // one is then skipped, a bound one left as it is).
            if !changed_meanwhile {
                return Ok(());
            }
        }
        Err(KmsError::DependencyTimeout(format!(
            "the grants of key {key_id} kept changing while they were being bound"
        )))
    }

    /// `row` with its grantee and retiring principal bound, if the pass has anything to bind.
    fn bound_grant_row(&self, row: &GrantRow) -> KmsResult<Option<GrantRow>> {
        if row.retired_ms.is_some() {
            return Ok(None);
        }
        let Ok(mut grant) = serde_json::from_str::<Grant>(&row.body) else {
            return Ok(None); // unreadable: the cache treats it as retired
        };
        let mut changed = false;
        // A service principal grantee is a name, never an IAM entity.
        if grant.grantee_principal_id.is_none() && grant.grantee_service_principal.is_none() {
            grant.grantee_principal_id = self.principal_unique_id(&grant.grantee_principal);
            changed |= grant.grantee_principal_id.is_some();
        }
        if grant.retiring_principal_id.is_none() && grant.retiring_service_principal.is_none() {
            grant.retiring_principal_id = grant
                .retiring_principal
                .as_deref()
                .and_then(|r| self.principal_unique_id(r));
            changed |= grant.retiring_principal_id.is_some();
        }
        if !changed {
            return Ok(None);
        }
        let body = serde_json::to_string(&grant).map_err(|e| KmsError::Internal(e.to_string()))?;
        Ok(Some(GrantRow {
            body,
            ..row.clone()
        }))
    }

    /// What a principal bound as `arn` → `id` is shown as now: `None` while the entity with
    /// that id still has that ARN; else its current ARN (renamed), or the bare unique id
    /// (deleted, possibly re-created under the same name with a new id), as AWS shows it.
    pub(crate) fn shown_principal(&self, arn: &str, id: &str) -> Option<String> {
        if self.principal_unique_id(arn).as_deref() == Some(id) {
            return None;
        }
        let account = account_of(arn);
        Some(
            self.iam
                .account(account)
                .arn_of_unique_id(account, id)
                .unwrap_or_else(|| id.to_string()),
        )
    }

    /// A stored policy as GetKeyPolicy / GetRole show it: the text as set, with each bound
    /// principal whose entity is gone written as its unique id (only the principal values;
    /// everything else as written).
    pub(crate) fn show_bound_policy(&self, text: &str, bindings: &PrincipalBindings) -> String {
        let shown: PrincipalBindings = bindings
            .iter()
            .filter_map(|(arn, id)| Some((arn.clone(), self.shown_principal(arn, id)?)))
            .collect();
        if shown.is_empty() {
            return text.to_string();
        }
        trent_policy::rewrite_principal_values(text, |value| shown.get(value).cloned())
    }
}
