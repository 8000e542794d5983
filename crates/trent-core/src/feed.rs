//! The change feed: what other nodes on a shared database wrote, applied to this node's caches.
//!
//! The store appends one change row per written row in the writing transaction (PostgreSQL:
//! triggers, `migrations.rs` version 5), each with an increasing id and the writer's node.
//! Every node reads the ids above the last one it applied ([`spawn`]: when woken by the
//! trigger's `NOTIFY`, and every [`FEED_INTERVAL`] in case a notification was lost) and drops or reloads what each names: the key (with its alias list),
//! an alias, a key's grants, an access key or session, an account's IAM snapshot, the clock
//! offset. The request path never waits for the feed: it reads the caches, and a dropped entry
//! is one store read away (read-through), so a change made on node A is seen on node B within
//! one notification (or at worst one poll) plus one store read.
//!
//! Ids are assigned when a transaction writes and become visible when it commits, so a later
//! commit may carry a smaller id: an id skipped over is remembered as a gap and looked for
//! again for [`GAP_WAIT`] (a rolled-back transaction leaves a gap that never fills).
//!
//! Two things the feed cannot replay make a node drop every cache instead (keys, aliases,
//! grants, stored credentials; IAM snapshots and the clock offset read again): changes pruned
//! before it applied them (it could not replay for longer than [`FEED_RETENTION`]: the oldest
//! change the store kept is past its position), and a write of its own whose outcome it never
//! learnt (the store answered its caller `Unavailable` and the write finished later:
//! `take_late_outcomes`), since the feed skips a node's own changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::KmsResult;
use crate::model::Change;
use crate::service::Kms;

/// How often a node on a shared store polls the feed when no notification woke it first.
pub const FEED_INTERVAL: Duration = Duration::from_millis(250);
/// How long an id skipped over (a transaction not yet committed) is looked for again.
pub const GAP_WAIT: Duration = Duration::from_secs(10);
/// Changes are kept this long, then pruned (a node away longer must restart).
pub const FEED_RETENTION: Duration = Duration::from_secs(3600);
/// Changes read per store call.
const BATCH: usize = 1000;
/// How often a replay failing round after round is logged again.
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Gaps remembered at most (a sequence jump after a server crash is not a thousand writers).
const MAX_GAPS: i64 = 1000;

/// Where this node is in the feed.
#[derive(Debug, Default)]
pub(crate) struct FeedCursor {
    last: i64,
    gaps: BTreeMap<i64, Instant>,
    /// Accounts whose IAM snapshot must be rebuilt (changed, not yet reloaded).
    pending_iam: BTreeSet<String>,
    /// Every cache must be dropped (changes were pruned unseen, or a write's outcome was
    /// learnt late); stays set until a reload succeeds.
    reload_all: bool,
}

impl FeedCursor {
    pub(crate) fn at(last: i64) -> Self {
        Self {
            last,
            ..Self::default()
        }
    }

    /// Where to read from: before the oldest gap (a commit may since have filled it).
    fn start(&self) -> i64 {
        self.gaps
            .keys()
            .next()
            .map_or(self.last, |g| (g - 1).min(self.last))
    }

    /// Whether change `id` has not been applied yet (above the last one, or a gap).
    fn is_new(&self, id: i64) -> bool {
        id > self.last || self.gaps.contains_key(&id)
    }

    /// Records change `id` as applied: fills its gap, or moves past it remembering the ids
    /// skipped over (at most [`MAX_GAPS`]).
    fn applied(&mut self, id: i64, now: Instant) {
        self.gaps.remove(&id);
        if id > self.last {
            for missing in (self.last + 1).max(id - MAX_GAPS)..id {
                self.gaps.insert(missing, now);
            }
            self.last = id;
        }
    }

    /// Forgets gaps older than [`GAP_WAIT`] at `now` (rolled-back transactions).
    fn expire_gaps(&mut self, now: Instant) {
        self.gaps
            .retain(|_, at| now.saturating_duration_since(*at) < GAP_WAIT);
    }
}

impl Kms {
    /// Applies the changes other nodes made since the last call; returns how many it applied.
    /// A store only this process writes has no feed: nothing to do.
    pub async fn replay_changes(&self) -> KmsResult<usize> {
        if !self.store.shared() {
            return Ok(0);
        }
        let mut cursor = self.feed.lock().await;
        if self.store.take_late_outcomes() {
            tracing::warn!(
                "a write finished after its caller was answered (the database did not answer \
                 in time): reloading every cache"
            );
            cursor.reload_all = true;
        }
        // Ids skipped by rolled-back transactions make this err on the side of reloading
        // (a node that lagged behind a prune), never of missing a change.
        if let Some(oldest) = self.store.oldest_change().await?
            && oldest > cursor.last.saturating_add(1)
        {
            tracing::warn!(
                oldest,
                last_applied = cursor.last,
                "changes were pruned before this node applied them: reloading every cache"
            );
            cursor.reload_all = true;
        }
        if cursor.reload_all {
            // Where to go on from, read first: what commits after it is replayed as usual,
            // what committed before it is read from the store once the caches are empty.
            let last = self.store.last_change().await?;
            self.reload_everything().await?;
            *cursor = FeedCursor::at(last);
            tracing::warn!(from = last, "every cache reloaded; the feed goes on");
        }
        let mut applied = 0;
        // From the oldest gap (a commit may since have filled it), then on from each batch.
        let mut from = cursor.start();
        loop {
            let changes = self.store.changes_after(from, BATCH).await?;
            let full = changes.len() == BATCH;
            for change in changes {
                from = change.id;
                if !cursor.is_new(change.id) {
                    continue; // applied before
                }
                if !change.own {
                    // On failure the cursor stays before this change: the next round retries.
                    let mut reload = std::mem::take(&mut cursor.pending_iam);
                    let result = self.apply_change(&change, &mut reload).await;
                    cursor.pending_iam = reload;
                    result?;
                    applied += 1;
                }
                cursor.applied(change.id, Instant::now());
            }
            // IAM snapshots are rebuilt once per account per round; one that fails stays
            // pending for the next round.
            while let Some(account) = cursor.pending_iam.first().cloned() {
                self.reload_iam_account(&account).await?;
                cursor.pending_iam.remove(&account);
            }
            cursor.expire_gaps(Instant::now());
            if !full {
                return Ok(applied);
            }
        }
    }

    /// Drops every cache the feed keeps current and reloads what is not read through: the
    /// IAM snapshots of every account, the accounts, the clock offset.
    async fn reload_everything(&self) -> KmsResult<()> {
        // Grants first: a key load finishing in between is then refused by the cache (its
        // grants are gone) or cleared with it, never left cached without its grants.
        self.grants.invalidate_all();
        self.cache.clear();
        self.credentials.forget_stored();
        let _writes = self.writes.lock().await;
        let accounts = self.store.accounts().await?;
        let docs = self.store.iam_documents().await?;
        // An account left with no IAM entity gets an empty snapshot; the others theirs.
        for account in &accounts {
            self.remember_account(&account.account_id);
            if !docs.iter().any(|d| d.account_id == account.account_id) {
                self.iam
                    .replace(&account.account_id, crate::iam::AccountIam::default());
            }
        }
        self.load_iam(docs)?;
        self.clock
            .set_offset_ms(self.store.clock_offset_ms().await?);
        Ok(())
    }

    async fn apply_change(
        &self,
        change: &Change,
        reload_iam: &mut BTreeSet<String>,
    ) -> KmsResult<()> {
        let key_id = change.key_id.as_deref();
        match change.source.as_str() {
            // The key's record, material or alias list changed: read it again on next use.
            "keys" | "key_materials" => {
                if let Some(k) = key_id {
                    self.cache.remove_key(k);
                    // A multi-Region key: its relatives list the family's Regions, which
                    // this change may have changed (a replica created or deleted, a new
                    // primary), so they are read again too.
                    let public = crate::ids::public_key_id(k);
                    if public != k {
                        self.cache.remove_family(public);
                    }
                }
            }
            "aliases" => {
                if let (Some(account), Some(region), Some(name)) = (
                    change.account_id.as_deref(),
                    change.region.as_deref(),
                    change.name.as_deref(),
                ) {
                    self.cache.remove_alias(account, region, name);
                }
                if let Some(k) = key_id {
                    self.cache.remove_key(k);
                }
            }
            // Grants are loaded with their key: drop both, the next use reads both again.
            "grants" => {
                if let Some(k) = key_id {
                    self.grants.invalidate(k);
                    self.cache.remove_key(k);
                }
            }
            "access_keys" | "sessions" => {
                if let Some(id) = change.name.as_deref() {
                    self.credentials.forget(id);
                }
            }
            // Another node connected or disconnected a store: follow it here.
            "custom_key_stores" => {
                if let (Some(account), Some(region)) =
                    (change.account_id.as_deref(), change.region.as_deref())
                {
                    self.custom_key_stores_changed(account, region).await?;
                }
            }
            "iam_entities" => {
                if let Some(account) = &change.account_id {
                    reload_iam.insert(account.clone());
                }
            }
            "accounts" => {
                if let Some(account) = change.account_id.as_deref() {
                    self.remember_account(account);
                }
            }
            // The operator moved the clock (on another node): move this node's too, and let
            // the feed's task run the work now due, as `advance_clock` does on that node.
            "service_settings" => {
                self.clock
                    .set_offset_ms(self.store.clock_offset_ms().await?);
                self.clock_moved
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Replays the feed (when the store is shared) whenever the store signals a change
/// (`Store::wait_for_changes`: PostgreSQL's `LISTEN`) and at least every [`FEED_INTERVAL`],
/// and prunes old changes now and then; failures are logged and retried on the next round.
pub fn spawn(kms: Arc<Kms>) -> Option<tokio::task::JoinHandle<()>> {
    if !kms.store.shared() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut last_prune = Instant::now();
        // While the database is away every round fails: one warning when that starts, then one
        // every FAILURE_LOG_INTERVAL, and one line when it works again.
        let mut failing: Option<Instant> = None;
        loop {
            kms.store.wait_for_changes(FEED_INTERVAL).await;
            match kms.replay_changes().await {
                Ok(_) => {
                    if failing.take().is_some() {
                        tracing::warn!("change feed replay works again");
                    }
                }
                Err(e) => {
                    if failing.is_none_or(|at| at.elapsed() >= FAILURE_LOG_INTERVAL) {
                        tracing::warn!(error = %e, "change feed replay failed; retrying");
                        failing = Some(Instant::now());
                    }
                }
            }
            if kms
                .clock_moved
                .swap(false, std::sync::atomic::Ordering::SeqCst)
                && let Err(e) = kms.run_due_work().await
            {
                tracing::warn!(error = %e, "lifecycle work after a clock move failed; retrying");
            }
            if last_prune.elapsed() > Duration::from_secs(600) {
                last_prune = Instant::now();
                let retention = i64::try_from(FEED_RETENTION.as_millis()).unwrap_or(i64::MAX);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                if let Err(e) = kms.store.prune_changes(now - retention).await {
                    tracing::warn!(error = %e, "pruning the change feed failed");
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_id_is_looked_for_again_until_it_fills_or_expires() {
        let t0 = Instant::now();
        let mut c = FeedCursor::at(10);
        assert_eq!(c.start(), 10);
        assert!(!c.is_new(10) && c.is_new(11));
        // 13 commits before 11 and 12: both are gaps, read again from 10.
        c.applied(13, t0);
        assert_eq!(c.last, 13);
        assert_eq!(c.start(), 10);
        assert!(c.is_new(11) && c.is_new(12) && !c.is_new(13));
        // 12 commits: its gap fills; 11 is still looked for.
        c.applied(12, t0);
        assert!(!c.is_new(12));
        assert_eq!(c.start(), 10);
        // 11 never commits (rolled back): forgotten after GAP_WAIT, reading resumes at 13.
        c.expire_gaps(t0 + GAP_WAIT / 2);
        assert!(c.is_new(11));
        c.expire_gaps(t0 + GAP_WAIT);
        assert!(!c.is_new(11));
        assert_eq!(c.start(), 13);
    }

    #[test]
    fn a_sequence_jump_remembers_a_bounded_number_of_gaps() {
        let mut c = FeedCursor::at(0);
        c.applied(1_000_000, Instant::now());
        assert_eq!(c.last, 1_000_000);
        assert_eq!(i64::try_from(c.gaps.len()).unwrap_or(i64::MAX), MAX_GAPS);
        assert!(!c.is_new(5), "ids far below the jump are not waited for");
        assert!(c.is_new(999_999));
    }
}
