//! The [`Kms`] service value: storage, root key, clock, caches; start-up and account bootstrap.

use std::collections::HashMap;
use std::sync::Arc;

use trent_crypto::{RootCustodian, SymmetricKey, random};
use zeroize::Zeroizing;

use crate::cache::{KeyCache, LoadedKey};
use crate::clock::Clock;
use crate::credentials::{Credential, CredentialIdentity, CredentialRegistry, SessionInfo};
use crate::error::{KmsError, KmsResult};
use crate::iam::records::{
    Group, KIND_GROUP, KIND_POLICY, KIND_ROLE, KIND_USER, ManagedPolicy, Role, User,
};
use crate::iam::{AccountIam, IamDirectory};
use crate::model::{
    AccessKeyRecord, AccountRecord, IamDocument, SessionRecord, material_aad, secret_aad,
};
use crate::store::Store;

/// The KMS domain service. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Kms {
    pub(crate) store: Arc<dyn Store>,
    /// The root key's custodian (`trent_crypto::custody`): a `RootKey` today, any custodian
    /// (a PKCS#11 token, say) behind the same trait.
    pub(crate) root: Arc<dyn RootCustodian>,
    /// The key grant tokens are sealed under, derived from the root key once at open (a
    /// derivation is an HMAC, and with a token-held root key it would be a token call).
    pub(crate) grant_token_key: SymmetricKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cache: KeyCache,
    /// Serializes read-modify-write of records on this node. Writes are rare next to crypto calls.
    pub(crate) writes: tokio::sync::Mutex<()>,
    pub credentials: CredentialRegistry,
    pub(crate) iam: IamDirectory,
    pub(crate) grants: Arc<crate::grants::GrantCache>,
    accounts: std::sync::RwLock<std::collections::HashSet<String>>,
    pub(crate) regions: RegionNames,
    pub(crate) work_totals: crate::background::WorkTotals,
    /// Request-rate windows per account and the quota settings (`quotas.rs`).
    pub(crate) quotas: crate::quotas::Quotas,
    /// The Nitro root certificates a `Recipient` attestation document must chain to; `None`:
    /// `Recipient` is refused (`crypto/recipient.rs`).
    pub(crate) nitro_roots: Option<Arc<trent_crypto::nitro::TrustAnchors>>,
    /// Where this node is in the change feed of a shared store (`feed.rs`).
    pub(crate) feed: tokio::sync::Mutex<crate::feed::FeedCursor>,
    /// Set by the feed when another node moved the clock: run the work now due.
    pub(crate) clock_moved: std::sync::atomic::AtomicBool,
    /// Declared HSM clusters, their custodian and this node's store connections
    /// (`custom_key_stores.rs`).
    pub(crate) key_stores: crate::custom_key_stores::KeyStoreCustody,
    /// Who is told of background work (the audit trail), `service_events.rs`.
    pub(crate) service_events:
        std::sync::OnceLock<Arc<dyn crate::service_events::ServiceEventSink>>,
    /// Service-linked role deletion tasks (`iam/service_linked.rs`), bounded.
    pub(crate) slr_deletions: std::sync::Mutex<crate::iam::DeletionTasks>,
    /// Recent denials, for their callers' `ExplainDecision` (`authz/explain.rs`), bounded.
    pub(crate) denials: crate::authz::explain::RecentDenials,
}

/// Sizes of the in-memory caches and totals of background work, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceStats {
    pub cached_keys: usize,
    pub cached_aliases: usize,
    pub keys_with_cached_grants: usize,
    pub credentials: usize,
    pub accounts: usize,
    pub lifecycle_runs: u64,
    pub keys_rotated: u64,
    pub keys_deleted: u64,
    pub materials_expired: u64,
    pub lifecycle_failures: u64,
}

/// Region names callers sign for, shared: a request names its region without allocating.
/// Each kept name also has a slot number (its order of arrival), which indexes an account's
/// request-rate windows (`quotas.rs`).
#[derive(Default)]
pub(crate) struct RegionNames(std::sync::RwLock<HashMap<String, (Arc<str>, usize)>>);

/// Past this many distinct region names (garbage in credential scopes), names are not kept
/// and share one last quota slot.
pub(crate) const MAX_REGION_NAMES: usize = 64;

impl RegionNames {
    /// The shared name of `region` and its quota slot.
    pub(crate) fn name(&self, region: &str) -> (Arc<str>, usize) {
        if let Ok(names) = self.0.read()
            && let Some(name) = names.get(region)
        {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(region);
        if let Ok(mut names) = self.0.write() {
            if let Some(known) = names.get(region) {
                return known.clone();
            }
            let slot = names.len();
            if slot < MAX_REGION_NAMES {
                names.insert(region.to_string(), (name.clone(), slot));
                return (name, slot);
            }
        }
        (name, MAX_REGION_NAMES)
    }

    /// Every region name kept so far.
    pub(crate) fn all(&self) -> Vec<String> {
        self.0
            .read()
            .map(|names| names.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Root credentials generated for a new account.
pub struct NewAccount {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

impl Kms {
    /// Opens the service over `store`, loading every access key into memory. `root` is the
    /// root key's custodian (a `trent_crypto::RootKey`, or anything implementing the trait).
    pub async fn open<R: RootCustodian + 'static>(
        store: Arc<dyn Store>,
        root: R,
        clock: Arc<dyn Clock>,
    ) -> KmsResult<Self> {
        Self::open_with_custodian(store, Arc::new(root), clock).await
    }

    /// [`Kms::open`] with a shared root-key custodian.
    pub async fn open_with_custodian(
        store: Arc<dyn Store>,
        root: Arc<dyn RootCustodian>,
        clock: Arc<dyn Clock>,
    ) -> KmsResult<Self> {
        let grant_token_key = root.derive_subkey(crate::grants::GRANT_TOKEN_LABEL)?;
        // An operator-moved clock stays moved across restarts (see `background.rs`).
        clock.set_offset_ms(store.clock_offset_ms().await?);
        // Read before the state is loaded: a change made meanwhile is then replayed, not lost.
        let feed_start = store.last_change().await?;
        let grants = Arc::new(crate::grants::GrantCache::default());
        let kms = Self {
            store,
            root,
            grant_token_key,
            clock,
            cache: KeyCache::new(crate::cache::DEFAULT_KEY_CACHE_CAPACITY, grants.clone()),
            writes: tokio::sync::Mutex::new(()),
            credentials: CredentialRegistry::default(),
            iam: IamDirectory::default(),
            grants,
            accounts: Default::default(),
            regions: RegionNames::default(),
            work_totals: Default::default(),
            quotas: Default::default(),
            nitro_roots: None,
            feed: tokio::sync::Mutex::new(crate::feed::FeedCursor::at(feed_start)),
            clock_moved: Default::default(),
            key_stores: Default::default(),
            service_events: Default::default(),
            slr_deletions: Default::default(),
            denials: Default::default(),
        };
        for account in kms.store.accounts().await? {
            kms.remember_account(&account.account_id);
        }
        kms.load_iam(kms.store.iam_documents().await?)?;
        for mut record in kms.store.access_keys().await? {
            kms.bind_legacy_access_key(&mut record).await?;
            kms.load_access_key(&record)?;
        }
        for session in kms.store.sessions(kms.clock.now_ms()).await? {
            kms.load_session(&session)?;
        }
        // Policies and grants stored before principals were bound, bound once per store.
        kms.bind_stored_principals().await?;
        Ok(kms)
    }

    /// Loads a stored access key into the registry if it is active; returns it.
    fn load_access_key(&self, record: &AccessKeyRecord) -> KmsResult<Option<Arc<Credential>>> {
        if !record.active {
            return Ok(None);
        }
        let identity = identity_of_arn(&record.principal_arn);
        let credential = self.load_credential(
            &record.access_key_id,
            &record.wrapped_secret,
            record.account_id.clone(),
            identity,
            None,
            record.principal_id.clone(),
        )?;
        Ok(Some(credential))
    }

    /// A user's key stored before keys carried their user's unique id (schema version 8) is
    /// bound, once, to the user of that name now: from then on a re-created user of the same
    /// name is not authenticated by it.
    async fn bind_legacy_access_key(&self, record: &mut AccessKeyRecord) -> KmsResult<()> {
        if record.principal_id.is_some() {
            return Ok(());
        }
        let CredentialIdentity::User(name) = identity_of_arn(&record.principal_arn) else {
            return Ok(());
        };
        let Some(id) = self
            .iam
            .account(&record.account_id)
            .users
            .get(&name)
            .filter(|u| {
                crate::iam::entity_arn(&record.account_id, "user", &u.path, &u.name)
                    == record.principal_arn
            })
            .map(|u| u.id.clone())
        else {
            return Ok(());
        };
        record.principal_id = Some(id);
        self.store.put_access_key(record).await?;
        Ok(())
    }

    /// Loads a stored session into the registry (one whose identity does not decode is
    /// skipped); returns it.
    fn load_session(&self, session: &SessionRecord) -> KmsResult<Option<Arc<Credential>>> {
        let Some((identity, principal_id)) = crate::sts::decode_session_identity(&session.identity)
        else {
            return Ok(None);
        };
        let token_sha256: [u8; 32] = session
            .token_sha256
            .as_slice()
            .try_into()
            .map_err(|_| KmsError::Internal("stored token hash has the wrong length".into()))?;
        let info = SessionInfo {
            token_sha256,
            expires_ms: session.expires_ms,
            created_ms: session.created_ms,
            principal_id,
        };
        self.load_credential(
            &session.access_key_id,
            &session.wrapped_secret,
            session.account_id.clone(),
            identity,
            Some(info),
            None,
        )
        .map(Some)
    }

    /// The credential `access_key_id` names: from memory, else read through from the store (an
    /// access key or session made by another node) and cached. An id the store does not know
    /// is answered `None` without asking again for [`crate::credentials::MISS_TTL`]; at most
    /// [`crate::credentials::MAX_CONCURRENT_LOOKUPS`] store reads run at once. Store failures
    /// are errors (the caller answers a retryable internal error, not "unknown key").
    pub async fn find_credential(&self, access_key_id: &str) -> KmsResult<Option<Arc<Credential>>> {
        if let Some(c) = self.credentials.lookup(access_key_id) {
            return Ok(Some(c));
        }
        // AWS access key ids are at most 128 characters: a longer one is never stored.
        let plausible = (1..=128).contains(&access_key_id.len());
        if !plausible || self.credentials.recently_missed(access_key_id) {
            return Ok(None);
        }
        let _permit = self
            .credentials
            .lookups
            .acquire()
            .await
            .map_err(|_| KmsError::Internal("credential lookups closed".into()))?;
        // Another request may have looked it up while this one waited.
        if let Some(c) = self.credentials.lookup(access_key_id) {
            return Ok(Some(c));
        }
        if self.credentials.recently_missed(access_key_id) {
            return Ok(None);
        }
        let found = match self.store.access_key(access_key_id).await? {
            Some(record) => self.load_access_key(&record)?,
            None => match self
                .store
                .session(access_key_id, self.clock.now_ms())
                .await?
            {
                Some(session) => self.load_session(&session)?,
                None => None,
            },
        };
        if found.is_none() {
            self.credentials.note_miss(access_key_id);
        }
        Ok(found)
    }

    fn load_credential(
        &self,
        access_key_id: &str,
        wrapped_secret: &[u8],
        account_id: String,
        identity: CredentialIdentity,
        session: Option<SessionInfo>,
        user_id: Option<String>,
    ) -> KmsResult<Arc<Credential>> {
        let secret = self
            .root
            .unwrap(wrapped_secret, &secret_aad(access_key_id))?;
        let secret = String::from_utf8(secret.to_vec())
            .map_err(|_| KmsError::Internal("stored secret is not UTF-8".into()))?;
        let credential = Arc::new(Credential {
            cached_principal: Default::default(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: Zeroizing::new(secret),
            account_id,
            identity,
            session,
            user_id,
        });
        self.credentials.insert_shared(credential.clone());
        Ok(credential)
    }

    /// Rebuilds `account`'s IAM snapshot from the store (another node changed an entity).
    pub(crate) async fn reload_iam_account(&self, account: &str) -> KmsResult<()> {
        let _writes = self.writes.lock().await;
        self.reload_iam_account_held(account).await.map(|_| ())
    }

    /// [`Kms::reload_iam_account`] for a caller that holds the write lock; returns the
    /// account's documents as stored.
    pub(crate) async fn reload_iam_account_held(
        &self,
        account: &str,
    ) -> KmsResult<Vec<IamDocument>> {
        let docs: Vec<IamDocument> = self
            .store
            .iam_documents()
            .await?
            .into_iter()
            .filter(|d| d.account_id == account)
            .collect();
        if docs.is_empty() {
            self.iam.replace(account, AccountIam::default());
            return Ok(docs);
        }
        self.load_iam(docs.clone())?;
        Ok(docs)
    }

    pub(crate) fn load_iam(&self, docs: Vec<IamDocument>) -> KmsResult<()> {
        let mut accounts: HashMap<String, AccountIam> = HashMap::new();
        let bad = |d: &IamDocument| {
            KmsError::Internal(format!(
                "stored IAM {} `{}` does not decode",
                d.kind, d.name
            ))
        };
        for d in docs {
            let iam = accounts.entry(d.account_id.clone()).or_default();
            match d.kind.as_str() {
                KIND_USER => {
                    let u: User = serde_json::from_str(&d.body).map_err(|_| bad(&d))?;
                    iam.users.insert(u.name.clone(), u);
                }
                KIND_GROUP => {
                    let g: Group = serde_json::from_str(&d.body).map_err(|_| bad(&d))?;
                    iam.groups.insert(g.name.clone(), g);
                }
                KIND_ROLE => {
                    let r: Role = serde_json::from_str(&d.body).map_err(|_| bad(&d))?;
                    iam.roles.insert(r.name.clone(), r);
                }
                KIND_POLICY => {
                    let p: ManagedPolicy = serde_json::from_str(&d.body).map_err(|_| bad(&d))?;
                    iam.policies.insert(p.name.clone(), p);
                }
                _ => return Err(bad(&d)),
            }
        }
        for (account, iam) in accounts {
            self.iam.replace(&account, iam);
        }
        Ok(())
    }

    pub(crate) fn remember_account(&self, account_id: &str) {
        if let Ok(mut a) = self.accounts.write() {
            a.insert(account_id.to_string());
        }
    }

    /// The same service with `settings` for its quotas (AWS's defaults otherwise). Set before
    /// serving: an account's windows take their limits when first used.
    pub fn with_quotas(mut self, settings: crate::quotas::QuotaSettings) -> Self {
        self.quotas = crate::quotas::Quotas::new(settings);
        self
    }

    /// The same service caching at most `capacity` keys (and alias names); the default is
    /// [`crate::DEFAULT_KEY_CACHE_CAPACITY`]. Set before serving.
    pub fn with_key_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = KeyCache::new(capacity, self.grants.clone());
        self
    }

    /// Cache sizes and background-work totals (cheap: a read lock per cache, no store access).
    pub fn stats(&self) -> ServiceStats {
        use std::sync::atomic::Ordering::Relaxed;
        let (cached_keys, cached_aliases) = self.cache.sizes();
        let t = &self.work_totals;
        ServiceStats {
            cached_keys,
            cached_aliases,
            keys_with_cached_grants: self.grants.keys_cached(),
            credentials: self.credentials.len(),
            accounts: self.accounts.read().map(|a| a.len()).unwrap_or(0),
            lifecycle_runs: t.runs.load(Relaxed),
            keys_rotated: t.rotated.load(Relaxed),
            keys_deleted: t.deleted.load(Relaxed),
            materials_expired: t.expired.load(Relaxed),
            lifecycle_failures: t.failed_steps.load(Relaxed),
        }
    }

    /// Whether the store answers (readiness): one cheap read.
    pub async fn store_reachable(&self) -> KmsResult<()> {
        self.store.accounts().await.map(|_| ())?;
        Ok(())
    }

    /// Whether Trent serves `account_id`.
    pub fn known_account(&self, account_id: &str) -> bool {
        self.accounts.read().is_ok_and(|a| a.contains(account_id))
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Number of accounts in the store.
    pub async fn account_count(&self) -> KmsResult<usize> {
        Ok(self.store.accounts().await?.len())
    }

    /// Creates `account_id` if missing and sets its root access key (operator-declared accounts).
    pub async fn ensure_account(
        &self,
        account_id: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> KmsResult<()> {
        if !crate::ids::is_account_id(account_id) {
            return Err(KmsError::Validation(format!(
                "account id `{account_id}` must be 12 digits"
            )));
        }
        let now = self.clock.now_ms();
        self.store
            .put_account(&AccountRecord {
                account_id: account_id.into(),
                created_ms: now,
            })
            .await?;
        self.remember_account(account_id);
        let principal_arn = format!("arn:aws:iam::{account_id}:root");
        self.store
            .put_access_key(&AccessKeyRecord {
                access_key_id: access_key_id.into(),
                account_id: account_id.into(),
                principal_arn: principal_arn.clone(),
                principal_id: None,
                wrapped_secret: self
                    .root
                    .wrap(secret_access_key.as_bytes(), &secret_aad(access_key_id))?,
                active: true,
                created_ms: now,
            })
            .await?;
        self.credentials.insert(Credential {
            cached_principal: Default::default(),
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            account_id: account_id.into(),
            identity: CredentialIdentity::Root,
            session: None,
            user_id: None,
        });
        Ok(())
    }

    /// Creates an account with a random id and random root credentials.
    pub async fn create_random_account(&self) -> KmsResult<NewAccount> {
        let account_id = random_account_id()?;
        let access_key_id = random_access_key_id("AKIA")?;
        let secret = random_secret()?;
        self.ensure_account(&account_id, &access_key_id, &secret)
            .await?;
        Ok(NewAccount {
            account_id,
            access_key_id,
            secret_access_key: secret,
        })
    }

    /// The key with `key_id`, from the cache or else the store (unwrapping its material).
    pub(crate) async fn load_key(&self, key_id: &str) -> KmsResult<Option<Arc<LoadedKey>>> {
        loop {
            if let Some(k) = self.cache.key(key_id) {
                if !self.held_key_stale(&k) {
                    return Ok(Some(k));
                }
                // Loaded while its store's token could not be used; it can be now.
                self.cache.remove_key(key_id);
            }
            let removals = self.cache.removals();
            let Some(loaded) = self.read_key(key_id).await? else {
                return Ok(None);
            };
            if let Some(k) = self.cache.put_loaded_key(loaded, removals) {
                return Ok(Some(k));
            }
            // A key was removed while this one was read: read it again (it may be gone now).
        }
    }

    /// Reads a key, its aliases and grants from the store and unwraps its material.
    async fn read_key(&self, key_id: &str) -> KmsResult<Option<Arc<LoadedKey>>> {
        let Some((mut record, stored)) = self.store.key(key_id).await? else {
            return Ok(None);
        };
        let aliases = self
            .store
            .list_aliases(
                &record.account_id,
                &record.region,
                Some(&record.key_id),
                crate::store::Page {
                    after: None,
                    limit: 10_000,
                },
            )
            .await?;
        self.cache.set_key_aliases(
            &record.key_id,
            aliases.into_iter().map(|a| a.alias_name).collect(),
        );
        // Grants are loaded only for keys that exist, so probing unknown ids caches nothing.
        while !self.grants.is_loaded(key_id) {
            let epoch = self.grants.epoch();
            let rows = self.store.grants_for_key(key_id).await?;
            if self.grants.load(key_id, rows, epoch) {
                break;
            }
        }
        let uuid = crate::ids::raw_key_id(&record.key_id)
            .ok_or_else(|| KmsError::Internal("stored key id is not a key id".into()))?;
        let mut materials = HashMap::new();
        match record.custody {
            crate::model::KeyCustody::BuiltIn => {
                for m in stored {
                    let raw = self
                        .root
                        .unwrap(&m.wrapped, &material_aad(&m.key_id, &m.material_id))?;
                    let key =
                        crate::material::parse_material(record.key_spec, record.key_usage, &raw)?;
                    materials.insert(m.material_id, Arc::new(key));
                }
            }
            // Held in a custom key store: handles to the store's keys, if it is connected.
            crate::model::KeyCustody::CloudHsm(_) => {
                materials = self.held_materials(&mut record, &stored).await?;
            }
            // Trent's own material with the external key's id; available while the store is.
            crate::model::KeyCustody::External { .. } => {
                materials = self.external_materials(&mut record, &stored).await?;
            }
        }
        Ok(Some(Arc::new(LoadedKey::new(record, uuid, materials))))
    }
}

/// 12 random decimal digits.
pub(crate) fn random_account_id() -> KmsResult<String> {
    let digits = random::array::<12>()?;
    Ok(digits.iter().map(|b| char::from(b'0' + b % 10)).collect())
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An AWS-looking access key id: prefix plus 16 base32 characters.
pub fn random_access_key_id(prefix: &str) -> KmsResult<String> {
    random_id(prefix, 16)
}

/// `prefix` plus `n` (at most 32) random base32 characters.
pub fn random_id(prefix: &str, n: usize) -> KmsResult<String> {
    let bytes = random::array::<32>()?;
    let tail: String = bytes
        .iter()
        .take(n)
        .map(|b| char::from(BASE32.get(usize::from(b % 32)).copied().unwrap_or(b'A')))
        .collect();
    Ok(format!("{prefix}{tail}"))
}

/// Whom a long-term access key's principal ARN names.
pub(crate) fn identity_of_arn(arn: &str) -> CredentialIdentity {
    if arn.ends_with(":root") {
        CredentialIdentity::Root
    } else {
        CredentialIdentity::User(arn.rsplit('/').next().unwrap_or_default().to_string())
    }
}

/// A 40-character secret access key.
pub fn random_secret() -> KmsResult<Zeroizing<String>> {
    use base64::Engine;
    let bytes = random::secret_bytes(30)?;
    Ok(Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()),
    ))
}
