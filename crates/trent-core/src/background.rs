//! Lifecycle work that happens on its own: automatic rotation, deletion at the end of the
//! waiting period, expiry of imported material, and forgetting expired import parameters.
//!
//! [`Kms::run_due_work`] asks the store which keys have a due date at or before now and runs
//! one step per key, each step a single store transaction that also clears or moves the due date
//! it acted on. So the work is durable and idempotent: after a crash or downtime the next run
//! (at start-up, then periodically) finds exactly the steps not yet done, and none twice.
//! Steps update the cache like any other write, so the hot path sees them at once.
//!
//! Time is [`Kms::clock`]; [`Kms::advance_clock`] moves it for tests and drills and persists
//! the offset so a restart keeps it.

use std::sync::Arc;
use std::time::Duration;

use trent_crypto::spec::KeyState;

use crate::error::KmsResult;
use crate::model::RotationType;
use crate::service::Kms;

/// Lifecycle work done since the process started, for metrics.
#[derive(Debug, Default)]
pub struct WorkTotals {
    pub runs: std::sync::atomic::AtomicU64,
    pub rotated: std::sync::atomic::AtomicU64,
    pub deleted: std::sync::atomic::AtomicU64,
    pub expired: std::sync::atomic::AtomicU64,
    pub failed_steps: std::sync::atomic::AtomicU64,
}

impl WorkTotals {
    fn add(&self, done: &WorkDone, failed: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
        self.runs.fetch_add(1, Relaxed);
        self.rotated.fetch_add(n(done.rotated), Relaxed);
        self.deleted.fetch_add(n(done.deleted), Relaxed);
        self.expired.fetch_add(n(done.expired), Relaxed);
        self.failed_steps.fetch_add(n(failed), Relaxed);
    }
}

/// How long an expired session is still known (and answers ExpiredToken) before it is
/// forgotten.
const SESSION_GRACE_MS: i64 = 7 * 86_400_000;

/// What one run of due work did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkDone {
    pub rotated: usize,
    pub deleted: usize,
    pub expired: usize,
}

impl Kms {
    /// Runs every lifecycle step due now. A step that fails is logged and retried on the next
    /// run; it does not hold up the other keys' steps.
    pub async fn run_due_work(&self) -> KmsResult<WorkDone> {
        let now = self.clock.now_ms();
        let mut done = WorkDone::default();
        let mut failed = 0usize;
        for key_id in self.store.keys_due(now).await? {
            if let Err(e) = self.run_step(&key_id, now, &mut done).await {
                tracing::warn!(key_id, error = %e, "lifecycle step failed; will retry");
                failed += 1;
            }
        }
        // Token keys of the store-held keys deleted above, now that the lock is released.
        self.destroy_deleted_held_keys().await;
        self.work_totals.add(&done, failed);
        self.store.delete_expired_import_params(now).await?;
        // Temporary credentials a week past their expiry are forgotten (until then they answer
        // ExpiredToken), so the sessions held are bounded by the rate they are issued at times
        // their lifetime, not by every session ever issued (docs/decisions.md, "Quotas").
        let forget_before = now.saturating_sub(SESSION_GRACE_MS);
        self.credentials.remove_expired(forget_before);
        self.store.delete_expired_sessions(forget_before).await?;
        if failed > 0 {
            return Err(crate::KmsError::Internal(format!(
                "{failed} lifecycle steps failed"
            )));
        }
        Ok(done)
    }

    /// The one step due for `key_id`, re-checked under the write lock (a request may have
    /// changed the key since the store was asked).
    ///
    /// On a shared store the step is first claimed in the store ([`crate::Store::claim_step`],
    /// keyed by the due date it acts on), so of several nodes exactly one does it; the
    /// claimant then reads the key from the store again, not from its cache, which may predate
    /// another node's step (the feed has not delivered it yet).
    async fn run_step(&self, key_id: &str, now: i64, done: &mut WorkDone) -> KmsResult<()> {
        let _guard = self.writes.lock().await;
        let Some(mut key) = self.load_key(key_id).await? else {
            return Ok(());
        };
        if self.store.shared() {
            let Some(due) = due_step_ms(&key.record, now) else {
                return Ok(());
            };
            if !self.store.claim_step(key_id, due).await? {
                return Ok(()); // another node has it
            }
            self.cache.remove_key(key_id);
            key = match self.load_key(key_id).await? {
                Some(k) => k,
                None => return Ok(()),
            };
        }
        let l = &key.record.lifecycle;
        if l.transition_ms.is_some_and(|t| t <= now) {
            self.finish_transition_locked(key_id, now).await?;
            tracing::info!(key_id, "finished a multi-Region key transition");
        } else if key.record.state == KeyState::PendingDeletion
            && l.deletion_ms.is_some_and(|t| t <= now)
        {
            self.delete_key_locked(key_id).await?;
            self.report_service_event("DeleteKey", &key, now);
            done.deleted += 1;
        } else if l.valid_to_ms.is_some_and(|t| t <= now) {
            self.expire_materials_locked(key_id, now).await?;
            self.report_service_event("DeleteExpiredKeyMaterial", &key, now);
            tracing::info!(key_id, "imported key material expired");
            done.expired += 1;
        } else if key.record.state == KeyState::Enabled
            && l.next_rotation_ms.is_some_and(|t| t <= now)
        {
            self.rotate_locked(key_id, RotationType::Automatic, now)
                .await?;
            self.report_service_event("RotateKey", &key, now);
            tracing::info!(key_id, "rotated key material on schedule");
            done.rotated += 1;
        }
        Ok(())
    }

    /// Moves the service clock forward by `by_ms` (persisted), then runs the work now due.
    /// Reachable only through the operator's clock control, never through the KMS API.
    pub async fn advance_clock(&self, by_ms: i64) -> KmsResult<(i64, WorkDone)> {
        if by_ms < 0 {
            // Due dates already acted on would not be undone; time only moves forward.
            return Err(crate::KmsError::Validation(
                "the clock only moves forward".into(),
            ));
        }
        let offset = {
            let _guard = self.writes.lock().await;
            let offset = self.clock.offset_ms().saturating_add(by_ms);
            self.store.set_clock_offset_ms(offset).await?;
            if !self.clock.set_offset_ms(offset) {
                return Err(crate::KmsError::UnsupportedOperation(
                    "this clock cannot be moved".into(),
                ));
            }
            offset
        };
        let done = self.run_due_work().await?;
        Ok((offset, done))
    }
}

/// The due date of the step [`Kms::run_due_work`] would take on `record` at `now`, if any
/// (the same order as `run_step`: multi-Region transition, deletion, material expiry,
/// rotation).
fn due_step_ms(record: &crate::model::KeyRecord, now: i64) -> Option<i64> {
    let l = &record.lifecycle;
    if let Some(t) = l.transition_ms.filter(|t| *t <= now) {
        return Some(t);
    }
    if record.state == KeyState::PendingDeletion
        && let Some(t) = l.deletion_ms.filter(|t| *t <= now)
    {
        return Some(t);
    }
    if let Some(t) = l.valid_to_ms.filter(|t| *t <= now) {
        return Some(t);
    }
    if record.state == KeyState::Enabled {
        return l.next_rotation_ms.filter(|t| *t <= now);
    }
    None
}

/// Runs [`Kms::run_due_work`] now and then every `every` until the runtime shuts down.
/// Failures are logged and retried on the next tick.
pub fn spawn(kms: Arc<Kms>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = kms.run_due_work().await {
                tracing::warn!(error = %e, "lifecycle background work failed; retrying");
            }
        }
    })
}
