//! GetKeyLastUsage's domain part: which key, and whether the caller may ask. The usage itself
//! is kept at the edge beside the audit trail (the event id it reports is a trail record's),
//! per key in memory, so a cryptographic call costs no store write.

use crate::authz::{Access, Resource};
use crate::caller::Caller;
use crate::error::KmsResult;
use crate::ids::KeyIdForms;
use crate::model::KeyRecord;
use crate::service::Kms;
use crate::validate;

impl Kms {
    /// The key GetKeyLastUsage asks about (key id or key ARN), once `kms:GetKeyLastUsage` on
    /// it is allowed.
    pub async fn key_for_last_usage(
        &self,
        caller: &Caller,
        key_id: Option<&str>,
    ) -> KmsResult<KeyRecord> {
        let key_id = validate::required("keyId", key_id)?;
        let key = self.resolve(caller, key_id, KeyIdForms::KeyOnly).await?;
        self.check(
            caller,
            Access::new("kms:GetKeyLastUsage", Resource::Key(&key)).named_as(key_id),
        )?;
        Ok(key.record.clone())
    }
}
