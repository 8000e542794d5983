//! AWS KMS's quotas: request rates per account, Region and quota (answered with
//! `ThrottlingException`) and resource counts (answered with `LimitExceededException`).
//!
//! **Request rates.** Each request counts once against one [`RateQuota`] of the *calling*
//! account (cross-account requests count against the caller, as AWS does) in the request's
//! Region, in fixed windows of one second (of `period_secs` seconds for AWS's fractional rates,
//! such as GetParametersForImport's 1 in 4 seconds). Cryptographic operations share a quota
//! chosen by the key they use (symmetric and HMAC, RSA, ECC, ML-DSA); the rest have one quota
//! per operation, with AWS's default values (docs/decisions.md, "Quotas").
//!
//! The counters hang off the caller's [`Principal`](crate::Principal): one [`AccountRates`]
//! per account, shared by every principal of it, resolved when the principal is built (not per
//! request). Its Regions are slots numbered by the service's Region-name registry, the number
//! carried on the [`Caller`]; each Region's windows are allocated the first time the account
//! calls there. So a request costs a clock read and one or two atomic operations on a word
//! that packs (window number, count): no lock, no allocation, no map lookup.
//!
//! **Resource quotas** ([`ResourceQuotas`]) are read where resources are created (keys, aliases,
//! grants); their counts come from the store or the grant cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use trent_crypto::spec::{DataKeyPairSpec, KeySpec};

use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::service::Kms;

/// What a throttled request is told: the text of AWS's documented ThrottlingException
/// (AWS KMS developer guide, "Request quotas", until 2021; docs/decisions.md).
pub const THROTTLING_MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// A permitted rate: `count` requests in each window of `period_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period_secs: u32,
}

impl Rate {
    pub const fn per_second(count: u32) -> Self {
        Self {
            count,
            period_secs: 1,
        }
    }

    /// One request in each `secs`-second window (AWS's 0.5, 0.25, 0.1 per second).
    pub const fn one_per(secs: u32) -> Self {
        Self {
            count: 1,
            period_secs: secs,
        }
    }

    /// A rate in requests per second as a config file writes it: at least 1 is rounded to a
    /// whole count per second, below 1 becomes one request per `round(1 / rate)` seconds.
    /// `None` for zero, negative, non-finite or absurd values.
    pub fn from_per_second(rate: f64) -> Option<Self> {
        if !rate.is_finite() || rate <= 0.0 {
            return None;
        }
        if rate >= 1.0 {
            let count = rate.round();
            (count <= f64::from(u32::MAX / 2)).then(|| Self::per_second(count as u32))
        } else {
            let secs = (1.0 / rate).round();
            (secs <= 86_400.0).then(|| Self::one_per(secs as u32))
        }
    }
}

macro_rules! rate_quotas {
    ($($variant:ident => $name:literal, $aws:literal;)*) => {
        /// One AWS KMS request-rate quota: requests counted against it share its windows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum RateQuota { $($variant,)* }

        impl RateQuota {
            /// Every quota, in declaration order (`self as usize` indexes this list).
            pub const ALL: &'static [RateQuota] = &[$(RateQuota::$variant,)*];

            /// The name a config file uses for this quota (`[quotas.rates]`).
            pub fn config_name(self) -> &'static str {
                match self { $(RateQuota::$variant => $name,)* }
            }

            /// AWS's Service Quotas name of this quota.
            pub fn aws_name(self) -> &'static str {
                match self { $(RateQuota::$variant => $aws,)* }
            }
        }
    };
}

rate_quotas! {
    Symmetric => "symmetric", "Cryptographic operations (symmetric) request rate";
    Rsa => "rsa", "Cryptographic operations (RSA) request rate";
    Ecc => "ecc", "Cryptographic operations (ECC) request rate";
    MlDsa => "ml_dsa", "Cryptographic operations (ML-DSA) request rate";
    DataKeyPairEccNistP256 => "data_key_pair_ecc_nist_p256", "GenerateDataKeyPair (ECC_NIST_P256) request rate";
    DataKeyPairEccNistP384 => "data_key_pair_ecc_nist_p384", "GenerateDataKeyPair (ECC_NIST_P384) request rate";
    DataKeyPairEccNistP521 => "data_key_pair_ecc_nist_p521", "GenerateDataKeyPair (ECC_NIST_P521) request rate";
    DataKeyPairEccSecgP256k1 => "data_key_pair_ecc_secg_p256k1", "GenerateDataKeyPair (ECC_SECG_P256K1) request rate";
    DataKeyPairEccNistEdwards25519 => "data_key_pair_ecc_nist_edwards25519", "GenerateDataKeyPair (ECC_NIST_EDWARDS25519) request rate";
    DataKeyPairSm2 => "data_key_pair_sm2", "GenerateDataKeyPair (SM2) request rate";
    DataKeyPairRsa2048 => "data_key_pair_rsa_2048", "GenerateDataKeyPair (RSA_2048) request rate";
    DataKeyPairRsa3072 => "data_key_pair_rsa_3072", "GenerateDataKeyPair (RSA_3072) request rate";
    DataKeyPairRsa4096 => "data_key_pair_rsa_4096", "GenerateDataKeyPair (RSA_4096) request rate";
    CancelKeyDeletion => "CancelKeyDeletion", "CancelKeyDeletion request rate";
    CreateAlias => "CreateAlias", "CreateAlias request rate";
    CreateGrant => "CreateGrant", "CreateGrant request rate";
    CreateKey => "CreateKey", "CreateKey request rate";
    DeleteAlias => "DeleteAlias", "DeleteAlias request rate";
    DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial", "DeleteImportedKeyMaterial request rate";
    DescribeKey => "DescribeKey", "DescribeKey request rate";
    DisableKey => "DisableKey", "DisableKey request rate";
    DisableKeyRotation => "DisableKeyRotation", "DisableKeyRotation request rate";
    EnableKey => "EnableKey", "EnableKey request rate";
    EnableKeyRotation => "EnableKeyRotation", "EnableKeyRotation request rate";
    GetKeyPolicy => "GetKeyPolicy", "GetKeyPolicy request rate";
    GetKeyRotationStatus => "GetKeyRotationStatus", "GetKeyRotationStatus request rate";
    GetParametersForImport => "GetParametersForImport", "GetParametersForImport request rate";
    GetPublicKey => "GetPublicKey", "GetPublicKey request rate";
    ImportKeyMaterial => "ImportKeyMaterial", "ImportKeyMaterial request rate";
    ListAliases => "ListAliases", "ListAliases request rate";
    ListGrants => "ListGrants", "ListGrants request rate";
    ListKeyPolicies => "ListKeyPolicies", "ListKeyPolicies request rate";
    ListKeyRotations => "ListKeyRotations", "ListKeyRotations request rate";
    ListKeys => "ListKeys", "ListKeys request rate";
    ListResourceTags => "ListResourceTags", "ListResourceTags request rate";
    ListRetirableGrants => "ListRetirableGrants", "ListRetirableGrants request rate";
    PutKeyPolicy => "PutKeyPolicy", "PutKeyPolicy request rate";
    ReplicateKey => "ReplicateKey", "ReplicateKey request rate";
    RetireGrant => "RetireGrant", "RetireGrant request rate";
    RevokeGrant => "RevokeGrant", "RevokeGrant request rate";
    RotateKeyOnDemand => "RotateKeyOnDemand", "RotateKeyOnDemand request rate";
    ScheduleKeyDeletion => "ScheduleKeyDeletion", "ScheduleKeyDeletion request rate";
    TagResource => "TagResource", "TagResource request rate";
    UntagResource => "UntagResource", "UntagResource request rate";
    UpdateAlias => "UpdateAlias", "UpdateAlias request rate";
    UpdateKeyDescription => "UpdateKeyDescription", "UpdateKeyDescription request rate";
    UpdatePrimaryRegion => "UpdatePrimaryRegion", "UpdatePrimaryRegion request rate";
    GetKeyLastUsage => "GetKeyLastUsage", "GetKeyLastUsage request rate";
    // CloudTrail's, not KMS's: Trent answers `LookupEvents` from its audit trail.
    LookupEvents => "LookupEvents", "CloudTrail LookupEvents request rate";
    // Per custom key store, not per account: every cryptographic call that uses a key of
    // the store (its proxy or token), shared by all its keys (`admit_custom_key_store`).
    CustomKeyStore => "custom_key_store", "Custom key store request rate";
}

/// Regions where AWS's symmetric quota is 100,000 per second.
const SYMMETRIC_100K: &[&str] = &["us-east-1", "us-west-2", "eu-west-1"];
/// Regions where it is 20,000 per second (10,000 elsewhere).
const SYMMETRIC_20K: &[&str] = &[
    "us-east-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "eu-central-1",
    "eu-west-2",
];

impl RateQuota {
    /// The quota a config file names, if any.
    pub fn from_config_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|q| q.config_name() == name)
    }

    /// AWS's default value of this quota in `region` (docs/decisions.md lists the sources).
    pub fn aws_default(self, region: &str) -> Rate {
        use RateQuota::*;
        match self {
            Symmetric if SYMMETRIC_100K.contains(&region) => Rate::per_second(100_000),
            Symmetric if SYMMETRIC_20K.contains(&region) => Rate::per_second(20_000),
            Symmetric => Rate::per_second(10_000),
            Rsa | Ecc | MlDsa => Rate::per_second(1_000),
            DataKeyPairEccNistP256
            | DataKeyPairEccSecgP256k1
            | DataKeyPairEccNistEdwards25519
            | DataKeyPairSm2 => Rate::per_second(25),
            DataKeyPairEccNistP384 => Rate::per_second(10),
            DataKeyPairEccNistP521 => Rate::per_second(5),
            DataKeyPairRsa2048 => Rate::per_second(1),
            DataKeyPairRsa3072 => Rate::one_per(2),
            DataKeyPairRsa4096 => Rate::one_per(10),
            DescribeKey | GetPublicKey | ListResourceTags => Rate::per_second(2_000),
            GetKeyPolicy | GetKeyRotationStatus => Rate::per_second(1_000),
            ListAliases | ListKeys => Rate::per_second(500),
            ListGrants | ListKeyPolicies | ListRetirableGrants | ListKeyRotations => {
                Rate::per_second(100)
            }
            CreateGrant => Rate::per_second(50),
            RetireGrant | RevokeGrant => Rate::per_second(30),
            DeleteAlias | EnableKeyRotation | PutKeyPolicy | ScheduleKeyDeletion => {
                Rate::per_second(15)
            }
            TagResource => Rate::per_second(10),
            GetParametersForImport => Rate::one_per(4),
            // Not in AWS's quota table of this snapshot: a read of one key, like
            // GetKeyRotationStatus (docs/decisions.md, "Quotas").
            GetKeyLastUsage => Rate::per_second(1_000),
            // CloudTrail: "2 requests per second per account per Region".
            LookupEvents => Rate::per_second(2),
            // AWS: 1,800 requests per second for each custom key store (CloudHSM and XKS).
            CustomKeyStore => Rate::per_second(1_800),
            CancelKeyDeletion
            | CreateAlias
            | CreateKey
            | DeleteImportedKeyMaterial
            | DisableKey
            | DisableKeyRotation
            | EnableKey
            | ImportKeyMaterial
            | RotateKeyOnDemand
            | UntagResource
            | ReplicateKey
            | UpdateAlias
            | UpdateKeyDescription
            | UpdatePrimaryRegion => Rate::per_second(5),
        }
    }

    /// The shared cryptographic quota of an operation using a key of `spec`.
    pub fn for_key(spec: KeySpec) -> Self {
        match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => RateQuota::Rsa,
            KeySpec::EccNistP256
            | KeySpec::EccNistP384
            | KeySpec::EccNistP521
            | KeySpec::EccSecgP256k1
            | KeySpec::EccNistEdwards25519
            | KeySpec::Sm2 => RateQuota::Ecc,
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => RateQuota::MlDsa,
            // Encapsulate/Decapsulate: AWS's quota table of this snapshot names no ML-KEM class;
            // the other post-quantum asymmetric class (same default rate) stands in for it.
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024 => RateQuota::MlDsa,
            // HMAC keys: AWS lists GenerateMac and VerifyMac under the symmetric quota.
            KeySpec::SymmetricDefault
            | KeySpec::Hmac224
            | KeySpec::Hmac256
            | KeySpec::Hmac384
            | KeySpec::Hmac512 => RateQuota::Symmetric,
        }
    }

    /// GenerateDataKeyPair(WithoutPlaintext)'s quota for `spec`.
    pub fn for_data_key_pair(spec: DataKeyPairSpec) -> Self {
        match spec {
            DataKeyPairSpec::Rsa2048 => RateQuota::DataKeyPairRsa2048,
            DataKeyPairSpec::Rsa3072 => RateQuota::DataKeyPairRsa3072,
            DataKeyPairSpec::Rsa4096 => RateQuota::DataKeyPairRsa4096,
            DataKeyPairSpec::EccNistP256 => RateQuota::DataKeyPairEccNistP256,
            DataKeyPairSpec::EccNistP384 => RateQuota::DataKeyPairEccNistP384,
            DataKeyPairSpec::EccNistP521 => RateQuota::DataKeyPairEccNistP521,
            DataKeyPairSpec::EccSecgP256k1 => RateQuota::DataKeyPairEccSecgP256k1,
            DataKeyPairSpec::EccNistEdwards25519 => RateQuota::DataKeyPairEccNistEdwards25519,
            // ML-KEM pairs are refused before they are counted; SM2's value is their stand-in.
            DataKeyPairSpec::Sm2
            | DataKeyPairSpec::MlKem512
            | DataKeyPairSpec::MlKem768
            | DataKeyPairSpec::MlKem1024 => RateQuota::DataKeyPairSm2,
        }
    }
}

/// AWS's resource quotas Trent enforces, per account and Region unless named otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceQuotas {
    /// Customer managed keys per account and Region, in any key state (AWS: 100,000).
    pub keys_per_region: usize,
    /// Aliases per KMS key (AWS: 50).
    pub aliases_per_key: usize,
    /// Active grants per KMS key (AWS: 50,000).
    pub grants_per_key: usize,
}

impl Default for ResourceQuotas {
    fn default() -> Self {
        Self {
            keys_per_region: 100_000,
            aliases_per_key: 50,
            grants_per_key: 50_000,
        }
    }
}

/// The quota settings of a service: AWS's defaults unless configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSettings {
    /// `false`: no request is ever throttled (resource quotas still apply).
    pub throttling: bool,
    /// Rates that replace AWS's default in every Region.
    pub rate_overrides: Vec<(RateQuota, Rate)>,
    pub resources: ResourceQuotas,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self {
            throttling: true,
            rate_overrides: Vec::new(),
            resources: ResourceQuotas::default(),
        }
    }
}

impl QuotaSettings {
    fn rate(&self, quota: RateQuota, region: &str) -> Rate {
        self.rate_overrides
            .iter()
            .rev()
            .find(|(q, _)| *q == quota)
            .map_or_else(|| quota.aws_default(region), |(_, r)| *r)
    }
}

/// How many Region slots an account has: the service's Region-name registry numbers at most
/// this many names minus one; every later name shares the last slot.
pub(crate) const REGION_SLOTS: usize = crate::service::MAX_REGION_NAMES + 1;

/// One window: the window number in the high 32 bits, requests counted in it in the low 32.
struct Window {
    limit: Rate,
    state: AtomicU64,
}

const COUNT_MASK: u64 = 0xffff_ffff;

impl Window {
    /// Counts one request at `now_secs`; whether it is within the limit.
    fn admit(&self, now_secs: i64) -> bool {
        let Rate { count, period_secs } = self.limit;
        let window = (now_secs.div_euclid(i64::from(period_secs.max(1))) as u64) & COUNT_MASK;
        loop {
            let current = self.state.load(Ordering::Relaxed);
            if current >> 32 == window {
                // Full: refused without a write, so a throttled flood does not contend.
                if current & COUNT_MASK >= u64::from(count) {
                    return false;
                }
                let before = self.state.fetch_add(1, Ordering::Relaxed);
                if before >> 32 == window {
                    return (before & COUNT_MASK) < u64::from(count);
                }
                // The window turned between the two operations; count again in the new one.
                continue;
            }
            if self
                .state
                .compare_exchange_weak(
                    current,
                    (window << 32) | 1,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return count >= 1;
            }
        }
    }
}

/// One account's windows in one Region.
struct RegionRates {
    windows: Box<[Window]>,
}

impl RegionRates {
    fn new(settings: &QuotaSettings, region: &str) -> Self {
        Self {
            windows: RateQuota::ALL
                .iter()
                .map(|q| Window {
                    limit: settings.rate(*q, region),
                    state: AtomicU64::new(0),
                })
                .collect(),
        }
    }
}

/// One account's request-rate windows, by Region slot. Shared by every principal of the account.
pub struct AccountRates {
    regions: Box<[OnceLock<RegionRates>]>,
}

impl std::fmt::Debug for AccountRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRates").finish_non_exhaustive()
    }
}

impl AccountRates {
    fn new() -> Self {
        Self {
            regions: (0..REGION_SLOTS).map(|_| OnceLock::new()).collect(),
        }
    }
}

/// The service's quota state: settings and each account's windows.
pub(crate) struct Quotas {
    pub(crate) settings: QuotaSettings,
    /// Each custom key store's window (`RateQuota::CustomKeyStore`), by store id; an entry
    /// goes when the store is deleted (`forget_custom_key_store`).
    stores: RwLock<HashMap<String, Arc<Window>>>,
    /// One entry per account that has called (bounded by the accounts Trent hosts: callers
    /// are authenticated, and only hosted accounts have credentials).
    accounts: RwLock<HashMap<String, Arc<AccountRates>>>,
}

impl Default for Quotas {
    fn default() -> Self {
        Self::new(QuotaSettings::default())
    }
}

impl Quotas {
    pub(crate) fn new(settings: QuotaSettings) -> Self {
        Self {
            settings,
            stores: RwLock::default(),
            accounts: RwLock::default(),
        }
    }

    /// The window of custom key store `id` in `region` (made on first use).
    fn store(&self, id: &str, region: &str) -> Arc<Window> {
        if let Ok(stores) = self.stores.read()
            && let Some(w) = stores.get(id)
        {
            return w.clone();
        }
        let make = || {
            Arc::new(Window {
                limit: self.settings.rate(RateQuota::CustomKeyStore, region),
                state: AtomicU64::new(0),
            })
        };
        let Ok(mut stores) = self.stores.write() else {
            return make();
        };
        stores.entry(id.to_string()).or_insert_with(make).clone()
    }

    pub(crate) fn forget_custom_key_store(&self, id: &str) {
        if let Ok(mut stores) = self.stores.write() {
            stores.remove(id);
        }
    }

    /// The windows of `account` (made on first use). Called when a principal is built.
    pub(crate) fn account(&self, account: &str) -> Arc<AccountRates> {
        if let Ok(accounts) = self.accounts.read()
            && let Some(rates) = accounts.get(account)
        {
            return rates.clone();
        }
        let Ok(mut accounts) = self.accounts.write() else {
            return Arc::new(AccountRates::new());
        };
        accounts
            .entry(account.to_string())
            .or_insert_with(|| Arc::new(AccountRates::new()))
            .clone()
    }
}

impl Kms {
    /// Counts this request of `caller` against `quota`; `ThrottlingException` past it. Public
    /// for the operations the edge answers itself (GetKeyLastUsage, CloudTrail's LookupEvents).
    pub fn admit(&self, caller: &Caller, quota: RateQuota) -> KmsResult<()> {
        let settings = &self.quotas.settings;
        if !settings.throttling {
            return Ok(());
        }
        // Only requests that arrived authenticated (`Kms::caller_for`) are counted; callers
        // made in process (the seed file, tools, tests) have no windows.
        let (Some(slot), Some(rates)) = (caller.region_slot(), caller.principal().rates.get())
        else {
            return Ok(());
        };
        let Some(region) = rates.regions.get(slot.min(REGION_SLOTS - 1)) else {
            return Ok(());
        };
        let region = region.get_or_init(|| RegionRates::new(settings, &caller.region));
        let Some(window) = region.windows.get(quota as usize) else {
            return Ok(());
        };
        if window.admit(self.clock.now_secs()) {
            Ok(())
        } else {
            Err(KmsError::Throttling(THROTTLING_MESSAGE.into()))
        }
    }

    /// Counts one cryptographic call with a key of custom key store `store_id` against the
    /// store's shared request quota (AWS: per store, whoever calls); `ThrottlingException`
    /// past it. In-process callers count too: the quota protects the store's backend.
    pub(crate) fn admit_custom_key_store(&self, store_id: &str, region: &str) -> KmsResult<()> {
        if !self.quotas.settings.throttling {
            return Ok(());
        }
        if self
            .quotas
            .store(store_id, region)
            .admit(self.clock.now_secs())
        {
            Ok(())
        } else {
            Err(KmsError::Throttling(THROTTLING_MESSAGE.into()))
        }
    }

    /// Counts a cryptographic operation with a key of `spec`.
    pub(crate) fn admit_key(&self, caller: &Caller, spec: KeySpec) -> KmsResult<()> {
        self.admit(caller, RateQuota::for_key(spec))
    }

    pub(crate) fn resource_quotas(&self) -> &ResourceQuotas {
        &self.quotas.settings.resources
    }

    /// `LimitExceededException` when `account` has its quota of keys in `region` already
    /// (keys in every state count, as in AWS). Call with the write lock held.
    pub(crate) async fn check_key_quota(&self, account: &str, region: &str) -> KmsResult<()> {
        let quota = self.resource_quotas().keys_per_region;
        let page = crate::store::Page {
            after: None,
            limit: quota,
        };
        if self.store.list_keys(account, region, page).await?.len() >= quota {
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: KMS keys per account and Region ({quota})."
            )));
        }
        Ok(())
    }

    /// `LimitExceededException` when the key `key_id` has its quota of aliases already.
    /// Call with the write lock held.
    pub(crate) async fn check_alias_quota(
        &self,
        account: &str,
        region: &str,
        key_id: &str,
    ) -> KmsResult<()> {
        let quota = self.resource_quotas().aliases_per_key;
        let page = crate::store::Page {
            after: None,
            limit: quota,
        };
        let aliases = self
            .store
            .list_aliases(account, region, Some(key_id), page)
            .await?;
        if aliases.len() >= quota {
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: aliases per KMS key ({quota})."
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_and_turn() {
        let w = Window {
            limit: Rate::per_second(3),
            state: AtomicU64::new(0),
        };
        assert!(w.admit(100) && w.admit(100) && w.admit(100));
        assert!(!w.admit(100));
        assert!(!w.admit(100));
        assert!(w.admit(101));
        let slow = Window {
            limit: Rate::one_per(4),
            state: AtomicU64::new(0),
        };
        assert!(slow.admit(100));
        assert!(!slow.admit(101) && !slow.admit(103));
        assert!(slow.admit(104));
    }

    #[test]
    fn config_rates() {
        assert_eq!(Rate::from_per_second(0.25), Some(Rate::one_per(4)));
        assert_eq!(Rate::from_per_second(20.0), Some(Rate::per_second(20)));
        assert_eq!(Rate::from_per_second(0.0), None);
        assert_eq!(Rate::from_per_second(f64::NAN), None);
        for q in RateQuota::ALL {
            assert_eq!(RateQuota::from_config_name(q.config_name()), Some(*q));
            assert_eq!(RateQuota::ALL.get(*q as usize), Some(q));
        }
    }

    #[test]
    fn regional_defaults() {
        assert_eq!(
            RateQuota::Symmetric.aws_default("us-east-1"),
            Rate::per_second(100_000)
        );
        assert_eq!(
            RateQuota::Symmetric.aws_default("eu-west-2"),
            Rate::per_second(20_000)
        );
        assert_eq!(
            RateQuota::Symmetric.aws_default("sa-east-1"),
            Rate::per_second(10_000)
        );
    }
}
