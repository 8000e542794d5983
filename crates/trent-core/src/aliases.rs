//! Alias operations: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.
//!
//! An alias lives in one account and region and points at one customer managed key of the same
//! account and region. Names start with `alias/`; `alias/aws/` is reserved for AWS managed keys.

use crate::authz::Resource;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::ids::{KeyIdForms, alias_arn};
use crate::model::AliasRecord;
use crate::service::Kms;
use crate::store::{Page, StoreError};
use crate::validate;

const ALIAS_PATTERN: &str = "^[a-zA-Z0-9:/_-]+$";

/// A page of ListAliases.
#[derive(Debug, Clone)]
pub struct AliasList {
    pub aliases: Vec<AliasRecord>,
    pub next_marker: Option<String>,
}

impl Kms {
    pub async fn create_alias(
        &self,
        caller: &Caller,
        alias_name: Option<&str>,
        target_key_id: Option<&str>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::CreateAlias)?;
        let name = validate::required("aliasName", alias_name)?;
        let target = validate::required("targetKeyId", target_key_id)?;
        validate_alias_name(name)?;
        let key = self.resolve(caller, target, KeyIdForms::KeyOnly).await?;
        // Alias permission (IAM) on the alias ARN, and key permission on the key.
        self.authorize(
            caller,
            "kms:CreateAlias",
            Resource::Alias(&alias_arn(&caller.region, &caller.account, name)),
        )?;
        self.authorize(caller, "kms:CreateAlias", Resource::Key(&key))?;
        if key.record.account_id != caller.account {
            return Err(KmsError::NotFound(format!(
                "Key '{}' does not exist",
                key.arn()
            )));
        }
        crate::key_state::check(crate::key_state::Op::Manage, &key.record)?;
        let _guard = self.writes.lock().await;
        self.check_alias_quota(&caller.account, &caller.region, &key.record.key_id)
            .await?;
        let now = self.clock.now_ms();
        let record = AliasRecord {
            account_id: caller.account.clone(),
            region: caller.region.to_string(),
            alias_name: name.to_string(),
            target_key_id: key.record.key_id.clone(),
            created_ms: now,
            updated_ms: now,
        };
        match self.store.insert_alias(&record).await {
            Ok(()) => {
                self.cache.put_alias(
                    &record.account_id,
                    &record.region,
                    name,
                    &record.target_key_id,
                );
                self.cache
                    .change_key_alias(&record.target_key_id, name, true);
                Ok(())
            }
            Err(StoreError::AlreadyExists) => Err(KmsError::AlreadyExists(format!(
                "An alias with the name {} already exists",
                record.arn()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn update_alias(
        &self,
        caller: &Caller,
        alias_name: Option<&str>,
        target_key_id: Option<&str>,
    ) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::UpdateAlias)?;
        let name = validate::required("aliasName", alias_name)?;
        let target = validate::required("targetKeyId", target_key_id)?;
        validate_alias_name(name)?;
        let _guard = self.writes.lock().await;
        let mut alias = self.existing_alias(caller, name).await?;
        let old_key = self.load_key(&alias.target_key_id).await?;
        let new_key = self.resolve(caller, target, KeyIdForms::KeyOnly).await?;
        // UpdateAlias needs the alias, the current key and the new key.
        self.authorize(caller, "kms:UpdateAlias", Resource::Alias(&alias.arn()))?;
        if let Some(old) = &old_key {
            self.authorize(caller, "kms:UpdateAlias", Resource::Key(old))?;
        }
        self.authorize(caller, "kms:UpdateAlias", Resource::Key(&new_key))?;
        if new_key.record.account_id != caller.account {
            return Err(KmsError::NotFound(format!(
                "Key '{}' does not exist",
                new_key.arn()
            )));
        }
        crate::key_state::check(crate::key_state::Op::Manage, &new_key.record)?;
        if let Some(old) = &old_key
            && (old.record.key_spec != new_key.record.key_spec
                || old.record.key_usage != new_key.record.key_usage)
        {
            return Err(KmsError::Validation(format!(
                "{} key usage or key spec does not match the current target key of {}",
                new_key.arn(),
                alias.arn()
            )));
        }
        if alias.target_key_id != new_key.record.key_id {
            self.check_alias_quota(&caller.account, &caller.region, &new_key.record.key_id)
                .await?;
        }
        let previous_target =
            std::mem::replace(&mut alias.target_key_id, new_key.record.key_id.clone());
        alias.updated_ms = self.clock.now_ms();
        match self.store.update_alias(&alias).await {
            // Deleted (by another node) since it was read above.
            Err(StoreError::NotFound) => {
                return Err(KmsError::NotFound(format!(
                    "Alias '{}' is not found.",
                    alias.arn()
                )));
            }
            r => r?,
        }
        self.cache
            .put_alias(&alias.account_id, &alias.region, name, &alias.target_key_id);
        self.cache.change_key_alias(&previous_target, name, false);
        self.cache
            .change_key_alias(&alias.target_key_id, name, true);
        Ok(())
    }

    pub async fn delete_alias(&self, caller: &Caller, alias_name: Option<&str>) -> KmsResult<()> {
        self.admit(caller, crate::quotas::RateQuota::DeleteAlias)?;
        let name = validate::required("aliasName", alias_name)?;
        validate_alias_name(name)?;
        let _guard = self.writes.lock().await;
        let alias = self.existing_alias(caller, name).await?;
        self.authorize(caller, "kms:DeleteAlias", Resource::Alias(&alias.arn()))?;
        if let Some(key) = self.load_key(&alias.target_key_id).await? {
            self.authorize(caller, "kms:DeleteAlias", Resource::Key(&key))?;
        }
        self.store
            .delete_alias(&alias.account_id, &alias.region, name)
            .await?;
        self.cache
            .remove_alias(&alias.account_id, &alias.region, name);
        self.cache
            .change_key_alias(&alias.target_key_id, name, false);
        Ok(())
    }

    pub async fn list_aliases(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<AliasList> {
        self.admit(caller, crate::quotas::RateQuota::ListAliases)?;
        let limit = validate::limit(limit, 1000, 100)?;
        if let Some(m) = marker {
            validate::length("marker", m, 1, 1024)?;
            if !m.starts_with("alias/") {
                return Err(KmsError::InvalidMarker("Invalid marker".into()));
            }
        }
        self.authorize(caller, "kms:ListAliases", Resource::Any)?;
        let key_filter = match key_id {
            Some(k) => {
                let key = self.resolve(caller, k, KeyIdForms::KeyOnly).await?;
                if key.record.account_id != caller.account {
                    return Err(KmsError::NotFound(format!(
                        "Key '{}' does not exist",
                        key.arn()
                    )));
                }
                Some(key.record.key_id.clone())
            }
            None => None,
        };
        let mut aliases = self
            .store
            .list_aliases(
                &caller.account,
                &caller.region,
                key_filter.as_deref(),
                Page {
                    after: marker,
                    limit: limit + 1,
                },
            )
            .await?;
        let next_marker = if aliases.len() > limit {
            aliases.truncate(limit);
            aliases.last().map(|a| a.alias_name.clone())
        } else {
            None
        };
        Ok(AliasList {
            aliases,
            next_marker,
        })
    }

    async fn existing_alias(&self, caller: &Caller, name: &str) -> KmsResult<AliasRecord> {
        self.store
            .alias(&caller.account, &caller.region, name)
            .await?
            .ok_or_else(|| {
                KmsError::NotFound(format!(
                    "Alias '{}' is not found.",
                    alias_arn(&caller.region, &caller.account, name)
                ))
            })
    }
}

pub(crate) fn validate_alias_name(name: &str) -> KmsResult<()> {
    validate::length("aliasName", name, 1, 256)?;
    validate::pattern("aliasName", name, ALIAS_PATTERN, |c| {
        c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-')
    })?;
    if !name.starts_with("alias/") || name.len() == "alias/".len() {
        return Err(KmsError::Validation("Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into()));
    }
    // Reserved whatever the case of `aws` (`alias/AWS/…` too), as in AWS.
    if name
        .get("alias/".len().."alias/aws/".len())
        .is_some_and(|p| p.eq_ignore_ascii_case("aws/"))
    {
        return Err(KmsError::NotAuthorized(format!(
            "{name} is reserved for AWS managed keys."
        )));
    }
    Ok(())
}
