//! GetKeyLastUsage's data: per key, the last successful cryptographic operation, its time, its
//! trail record's event id and its request id. Kept in memory (sharded mutexes, no allocation
//! once a key is known) and written to `<audit dir>/last-usage.json` at most every few
//! seconds, never per request. After a crash the file may be that many seconds behind; the
//! trail itself has every event.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::writer::EventId;

/// Keys tracked at most; past it, new keys are not tracked until a restart (documented bound).
pub const CAPACITY: usize = 1_000_000;
const SHARDS: usize = 16;
/// How often a changed table is written out.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(5);
const FILE: &str = "last-usage.json";

/// A 36-character id (UUID form), inline.
#[derive(Clone, Copy)]
struct Id([u8; 36]);

impl Id {
    fn from_str(text: &str) -> Option<Self> {
        let bytes: [u8; 36] = text.as_bytes().try_into().ok()?;
        Some(Self(bytes))
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

#[derive(Clone, Copy)]
struct Entry {
    operation: &'static str,
    time_ms: i64,
    event_id: Id,
    request_id: Option<Id>,
}

/// A key's last use, as GetKeyLastUsage reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub operation: String,
    pub time_ms: i64,
    pub event_id: String,
    pub request_id: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Snapshot {
    tracking_start_ms: i64,
    keys: HashMap<String, Usage>,
}

/// The table. Entries loaded from the file keep their operation names as owned strings.
pub struct LastUsage {
    shards: [Mutex<HashMap<Arc<str>, Entry>>; SHARDS],
    loaded: HashMap<String, Usage>,
    tracking_start_ms: i64,
    dirty: AtomicBool,
    full: AtomicBool,
    path: PathBuf,
}

/// The operations GetKeyLastUsage tracks (`KeyLastUsageTrackingOperation`), as a list (the
/// shared trail's query asks for these event names; [`tracked_operation`] is the same set).
pub const TRACKED_OPERATIONS: &[&str] = &[
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
    "Encapsulate",
    "Decapsulate",
];

/// The operations GetKeyLastUsage tracks (`KeyLastUsageTrackingOperation`), by wire name.
pub fn tracked_operation(name: &'static str) -> Option<&'static str> {
    matches!(
        name,
        "Decrypt"
            | "DeriveSharedSecret"
            | "Encrypt"
            | "GenerateDataKey"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateMac"
            | "ReEncrypt"
            | "Sign"
            | "Verify"
            | "VerifyMac"
            | "Encapsulate"
            | "Decapsulate"
    )
    .then_some(name)
}

impl LastUsage {
    /// Loads `<directory>/last-usage.json`, or starts tracking now (`now_ms`).
    pub fn open(directory: &Path, now_ms: i64) -> Result<Self, AuditError> {
        let path = directory.join(FILE);
        let snapshot = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Snapshot>(&bytes)
                .map_err(|e| AuditError::Corrupt(format!("{FILE}: {e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot {
                tracking_start_ms: now_ms,
                keys: HashMap::new(),
            },
            Err(e) => return Err(e.into()),
        };
        let table = Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            loaded: snapshot.keys,
            tracking_start_ms: snapshot.tracking_start_ms,
            dirty: AtomicBool::new(true),
            full: AtomicBool::new(false),
            path,
        };
        table.persist()?;
        Ok(table)
    }

    /// When tracking began (the trail's first start).
    pub fn tracking_start_ms(&self) -> i64 {
        self.tracking_start_ms
    }

    fn shard(&self, key_arn: &str) -> &Mutex<HashMap<Arc<str>, Entry>> {
        let last = key_arn.as_bytes().last().copied().unwrap_or(0);
        let index = usize::from(last) % SHARDS;
        let [first, ..] = &self.shards;
        self.shards.get(index).unwrap_or(first)
    }

    /// Notes a successful tracked operation on `key_arn`.
    pub fn note(
        &self,
        key_arn: &Arc<str>,
        operation: &'static str,
        time_ms: i64,
        event_id: &EventId,
        request_id: &str,
    ) {
        let Some(event_id) = Id::from_str(event_id.as_str()) else {
            return;
        };
        let entry = Entry {
            operation,
            time_ms,
            event_id,
            request_id: Id::from_str(request_id),
        };
        let Ok(mut shard) = self.shard(key_arn).lock() else {
            return;
        };
        match shard.get_mut(&**key_arn) {
            Some(e) => *e = entry,
            None => {
                if shard.len().saturating_mul(SHARDS) >= CAPACITY {
                    if !self.full.swap(true, Ordering::Relaxed) {
                        tracing::warn!(target: "trent::audit", "GetKeyLastUsage tracks {CAPACITY} keys at most; new keys are not tracked until restart");
                    }
                    return;
                }
                shard.insert(key_arn.clone(), entry);
            }
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The last use of `key_arn` recorded, if any.
    pub fn get(&self, key_arn: &str) -> Option<Usage> {
        let live = self
            .shard(key_arn)
            .lock()
            .ok()
            .and_then(|s| s.get(key_arn).copied());
        match live {
            Some(e) => Some(Usage {
                operation: e.operation.to_string(),
                time_ms: e.time_ms,
                event_id: e.event_id.as_str().to_string(),
                request_id: e.request_id.map(|r| r.as_str().to_string()),
            }),
            None => self.loaded.get(key_arn).cloned(),
        }
    }

    /// Writes the table out if it changed since the last write (atomic replace).
    pub fn persist(&self) -> Result<(), AuditError> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let mut keys = self.loaded.clone();
        for shard in &self.shards {
            let Ok(shard) = shard.lock() else { continue };
            for (arn, e) in shard.iter() {
                keys.insert(
                    arn.to_string(),
                    Usage {
                        operation: e.operation.to_string(),
                        time_ms: e.time_ms,
                        event_id: e.event_id.as_str().to_string(),
                        request_id: e.request_id.map(|r| r.as_str().to_string()),
                    },
                );
            }
        }
        let snapshot = Snapshot {
            tracking_start_ms: self.tracking_start_ms,
            keys,
        };
        let bytes =
            serde_json::to_vec(&snapshot).map_err(|e| AuditError::Corrupt(e.to_string()))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_survive_a_persist_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let table = LastUsage::open(dir.path(), 1_000).unwrap();
        let arn: Arc<str> = Arc::from("arn:aws:kms:us-east-1:111122223333:key/k1");
        let log_dir = tempfile::tempdir().unwrap();
        let log = crate::AuditLog::open(crate::AuditSettings::new(log_dir.path().into())).unwrap();
        let id = log.event_id();
        table.note(
            &arn,
            "Encrypt",
            5_000,
            &id,
            "0123456789abcdef0123456789abcdef0123",
        );
        assert_eq!(table.get(&arn).unwrap().operation, "Encrypt");
        assert!(table.get("arn:other").is_none());
        table.persist().unwrap();
        let reopened = LastUsage::open(dir.path(), 9_999).unwrap();
        assert_eq!(reopened.tracking_start_ms(), 1_000);
        let usage = reopened.get(&arn).unwrap();
        assert_eq!(
            (usage.time_ms, usage.event_id.as_str()),
            (5_000, id.as_str())
        );
        assert_eq!(tracked_operation("Encrypt"), Some("Encrypt"));
        assert_eq!(tracked_operation("DescribeKey"), None);
        for name in TRACKED_OPERATIONS {
            assert_eq!(tracked_operation(name), Some(*name));
        }
    }
}
