//! Work Trent does on its own (scheduled rotation, deletion at the end of the waiting period,
//! expiry of imported material), reported to whoever records it — the audit trail writes
//! each as the `AwsServiceEvent` AWS KMS writes (RotateKey, DeleteKey,
//! DeleteExpiredKeyMaterial). The domain knows nothing of the record format; it only says
//! what it did, after the step is in the store.

use std::sync::Arc;

use crate::cache::LoadedKey;
use crate::service::Kms;

/// One piece of background work done on a key.
#[derive(Debug, Clone, Copy)]
pub struct ServiceEvent<'a> {
    /// `RotateKey`, `DeleteKey` or `DeleteExpiredKeyMaterial`.
    pub name: &'static str,
    pub account: &'a str,
    pub region: &'a str,
    pub key_arn: &'a str,
    /// When the step was done, by the service clock (ms since the epoch).
    pub time_ms: i64,
}

/// Receives background work as it is done. Must not block: it is called from the
/// lifecycle task, under the write lock.
pub trait ServiceEventSink: Send + Sync {
    fn record(&self, event: ServiceEvent<'_>);
}

impl Kms {
    /// Reports background work to `sink` from now on (set once; later calls are ignored).
    pub fn set_service_event_sink(&self, sink: Arc<dyn ServiceEventSink>) {
        let _ = self.service_events.set(sink);
    }

    /// Tells the sink, if any, that `name` was done to `key` at `now`.
    pub(crate) fn report_service_event(&self, name: &'static str, key: &LoadedKey, now: i64) {
        if let Some(sink) = self.service_events.get() {
            sink.record(ServiceEvent {
                name,
                account: &key.record.account_id,
                region: &key.record.region,
                key_arn: key.shared_arn(),
                time_ms: now,
            });
        }
    }
}
