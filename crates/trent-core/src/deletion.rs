//! Scheduled key deletion: ScheduleKeyDeletion, CancelKeyDeletion, and the deletion step the
//! background task runs when a key's waiting period ends.
//!
//! Deleting is one store transaction that removes the key, all its material versions, its
//! rotation history, import parameters, aliases and grants; then the cache forgets
//! them. From then on the key answers `NotFoundException` like a key that never existed.

use trent_crypto::spec::{KeyState, Origin};

use crate::authz::Resource;
use crate::caller::Caller;
use crate::error::KmsResult;
use crate::ids::KeyIdForms;
use crate::key_state::{Op, check};
use crate::lifecycle::DAY_MS;
use crate::service::Kms;
use crate::validate;

/// PendingWindowInDays when ScheduleKeyDeletion does not give one.
pub const DEFAULT_PENDING_WINDOW_DAYS: i64 = 30;

/// ScheduleKeyDeletion output.
#[derive(Debug, Clone)]
pub struct ScheduledDeletion {
    pub key_arn: String,
    /// `None` for a primary pending replica deletion (its date is not known yet).
    pub deletion_ms: Option<i64>,
    pub key_state: KeyState,
    pub pending_window_days: i64,
}

impl Kms {
    pub async fn schedule_key_deletion(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
        pending_window_days: Option<i64>,
    ) -> KmsResult<ScheduledDeletion> {
        self.admit(caller, crate::quotas::RateQuota::ScheduleKeyDeletion)?;
        let key_id = validate::required("keyId", key_id)?;
        if let Some(days) = pending_window_days {
            // The model allows 1..365; the service accepts 7..30.
            validate::range("pendingWindowInDays", days, 7, 30)?;
        }
        let days = pending_window_days.unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        let context = crate::authz::condition_keys([(
            "kms:ScheduleKeyDeletionPendingWindowInDays",
            days.to_string(),
        )]);
        self.authorize_with(
            caller,
            "kms:ScheduleKeyDeletion",
            Resource::Key(&key),
            context,
        )?;
        let now = self.clock.now_ms();
        let deletion_ms = now.saturating_add(days.saturating_mul(DAY_MS));
        let _guard = self.writes.lock().await;
        // Read fresh: whether a primary still has replicas comes from the family's rows.
        self.cache.remove_key(&key.record.key_id);
        let record = self
            .update_key_record_locked(&key.record.key_id, |r| {
                check(Op::ScheduleKeyDeletion, r)?;
                r.lifecycle.pending_window_days = Some(days);
                if r.is_primary() && !r.lifecycle.replica_regions.is_empty() {
                    // AWS: a primary is not deleted while any replica exists; its waiting
                    // period starts when the last replica is gone.
                    r.state = KeyState::PendingReplicaDeletion;
                    r.lifecycle.deletion_ms = None;
                    r.lifecycle.transition_ms =
                        Some(now.saturating_add(crate::multi_region::REPLICA_DELETION_POLL_MS));
                } else {
                    r.state = KeyState::PendingDeletion;
                    r.lifecycle.deletion_ms = Some(deletion_ms);
                }
                Ok(())
            })
            .await?;
        Ok(ScheduledDeletion {
            key_arn: record.arn(),
            deletion_ms: record.lifecycle.deletion_ms,
            key_state: record.state,
            pending_window_days: days,
        })
    }

    /// CancelKeyDeletion: the key returns to Disabled (or to PendingImport if it is an
    /// EXTERNAL key without material), as in AWS.
    pub async fn cancel_key_deletion(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
    ) -> KmsResult<String> {
        self.admit(caller, crate::quotas::RateQuota::CancelKeyDeletion)?;
        let key_id = validate::required("keyId", key_id)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.authorize(caller, "kms:CancelKeyDeletion", Resource::Key(&key))?;
        let has_material = key.material(&key.record.current_material).is_some();
        let record = self
            .update_key_record(&key.record.key_id, |r| {
                check(Op::CancelKeyDeletion, r)?;
                r.state = if r.origin == Origin::External && !has_material {
                    KeyState::PendingImport
                } else {
                    KeyState::Disabled
                };
                r.lifecycle.deletion_ms = None;
                r.lifecycle.pending_window_days = None;
                // A primary pending replica deletion waits no more.
                r.lifecycle.transition_ms = None;
                Ok(())
            })
            .await?;
        Ok(record.arn())
    }

    /// Deletes the key for good. The caller holds the write lock and has checked it is due.
    pub(crate) async fn delete_key_locked(&self, key_id: &str) -> KmsResult<()> {
        let record = self.load_key(key_id).await?.map(|k| k.record.clone());
        // A store-held key's token key: recorded for destruction before the row goes, and
        // destroyed after the write lock is released (a token call).
        if let Some(record) = &record {
            self.note_held_key_deletion(record).await?;
        }
        let aliases = self.store.delete_key(key_id).await?;
        self.cache.remove_key(key_id);
        self.grants.forget(key_id);
        for a in aliases {
            self.cache
                .remove_alias(&a.account_id, &a.region, &a.alias_name);
        }
        tracing::info!(key_id, "deleted key at the end of its waiting period");
        if let Some(record) = record.filter(|r| r.multi_region) {
            self.after_replica_deleted_locked(&record).await?;
        }
        Ok(())
    }
}
