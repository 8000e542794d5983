//! Custom key stores of the AWS_CLOUDHSM type: CreateCustomKeyStore, DescribeCustomKeyStores,
//! UpdateCustomKeyStore, DeleteCustomKeyStore, ConnectCustomKeyStore and
//! DisconnectCustomKeyStore.
//!
//! There is no CloudHSM here: the operator declares HSM clusters (`[[hsm_cluster]]` in the
//! config → [`HsmCluster`]), each a PKCS#11 module and token label plus the cluster's trust
//! anchor certificate. A store names one declared cluster; its `KeyStorePassword` is the
//! token's user PIN (CloudHSM's `kmsuser` password), kept only wrapped under the root key and
//! checked at connect, not at create, as AWS does.
//!
//! The token is reached through `trent_crypto::custody::HsmProvider` (the PKCS#11 custodian
//! is `trent-custody-pkcs11`): the domain never sees cryptoki. Connections are per node and
//! in memory ([`KeyStoreCustody`]); the store row holds the last persisted state
//! (`CONNECTED`, `DISCONNECTED`, `FAILED` with its `ConnectionErrorCode`). A node that finds a
//! store persisted `CONNECTED` without a connection of its own (after a restart, or another
//! node connected it) opens one when it first needs it ([`Kms::store_connection`]).
//!
//! Connect is answered once the attempt is over (AWS answers at once and connects in the
//! background; a token login takes milliseconds, so the transient `CONNECTING` is only seen
//! by a Describe racing the Connect). See `docs/custom-key-stores.md`.
//!
//! No token call (connect, login, key generation, destroying a key, logout) is made while the
//! service's write lock is held: state is checked under the lock, the token is called without
//! it, and the outcome is recorded under it again only if the store's entry on this node has
//! not changed meanwhile (`Slot`'s generation). Token keys that could not be destroyed when
//! their KMS key went (store disconnected, CreateKey failed after the token) are recorded in
//! the store and destroyed at the store's next connect.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use trent_crypto::MaterialId;
use trent_crypto::custody::{
    CustodyError, HsmConnectError, HsmConnection, HsmProvider, HsmTokenLocation,
};

use crate::authz::Resource;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::material::Material;
use crate::model::{
    CustomKeyStoreRecord, KeyCustody, KeyRecord, StoreHeld, StoredMaterial, custom_key_store_aad,
    material_aad,
};
use crate::service::Kms;
use crate::store::StoreError;
use crate::validate;

/// AWS's quota: custom key stores per account and Region.
pub const MAX_CUSTOM_KEY_STORES: usize = 10;

/// KMS keys per AWS_CLOUDHSM store when its cluster declares no `max_keys`: AWS bounds them
/// by the cluster's key capacity, 3,300 keys for CloudHSM's hsm1.medium.
pub const DEFAULT_MAX_KEYS_PER_CLUSTER: usize = 3_300;

/// The one store type implemented so far.
pub const AWS_CLOUDHSM: &str = "AWS_CLOUDHSM";
use crate::external_key_stores::EXTERNAL_KEY_STORE;

pub const CONNECTED: &str = "CONNECTED";
pub const CONNECTING: &str = "CONNECTING";
pub const DISCONNECTED: &str = "DISCONNECTED";
pub const DISCONNECTING: &str = "DISCONNECTING";
pub const FAILED: &str = "FAILED";

/// An HSM cluster the operator declared: what a `CloudHsmClusterId` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmCluster {
    /// `cluster-` and 11–16 characters of `[2-7a-zA-Z]`, as CloudHSM's ids.
    pub id: String,
    pub token: HsmTokenLocation,
    /// The PEM text of the cluster's trust anchor (the file `trust_anchor_certificate` names).
    pub trust_anchor_certificate: String,
    /// How many KMS keys a store on this cluster may hold (the token's capacity; AWS's
    /// bound is the cluster's). [`DEFAULT_MAX_KEYS_PER_CLUSTER`] unless configured.
    pub max_keys: usize,
}

/// The HSM clusters, the custodian that opens their tokens, and this node's connections.
#[derive(Default)]
pub(crate) struct KeyStoreCustody {
    clusters: Vec<HsmCluster>,
    provider: Option<Arc<dyn HsmProvider>>,
    /// This node's view of each store it has touched, by store id. Bounded by the stores
    /// this process has touched (at most 10 per account and Region exist at once; a deleted
    /// store's entry stays, empty, so a token call that started before the deletion cannot
    /// bring its connection back).
    live: RwLock<HashMap<String, Slot>>,
    /// Store-held keys deleted under the write lock whose token keys are destroyed once it
    /// is released (`Kms::destroy_deleted_held_keys`); drained at the end of every run of
    /// due work, so it holds at most the keys one run deleted.
    deleted: std::sync::Mutex<Vec<KeyRecord>>,
    /// The XKS proxy custodian and clients (`external_key_stores.rs`).
    pub(crate) xks: crate::external_key_stores::XksCustody,
}

/// One store's entry: its connection on this node and a generation that every change of it
/// bumps. Token calls run without the write lock, so an outcome is recorded only if the
/// entry is still the one the call started from.
#[derive(Clone, Default)]
struct Slot {
    live: Option<Live>,
    generation: u64,
}

/// A store's connection on this node.
#[derive(Clone)]
enum Live {
    Connecting,
    Connected(Arc<dyn HsmConnection>),
    Disconnecting,
    /// Persisted CONNECTED, but this node could not open the token; tried again (by the next
    /// use of the store or of one of its keys) from `retry_at_ms` on.
    Unreachable {
        retry_at_ms: i64,
    },
}

/// How long a node waits before trying again to open the token of a store persisted
/// CONNECTED that it could not open (**decision**: a down HSM is not hammered by every
/// request, and a key that was Unavailable because of it recovers within this time).
pub const TOKEN_RETRY_MS: i64 = 5_000;

impl KeyStoreCustody {
    fn cluster(&self, id: &str) -> Option<&HsmCluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    fn live(&self, store_id: &str) -> Option<Live> {
        self.slot(store_id).live
    }

    fn slot(&self, store_id: &str) -> Slot {
        self.live
            .read()
            .ok()
            .and_then(|m| m.get(store_id).cloned())
            .unwrap_or_default()
    }

    /// Sets the store's entry; returns its new generation.
    fn set_live(&self, store_id: &str, live: Option<Live>) -> u64 {
        let Ok(mut map) = self.live.write() else {
            return 0;
        };
        let slot = map.entry(store_id.to_string()).or_default();
        slot.generation = slot.generation.wrapping_add(1);
        slot.live = live;
        slot.generation
    }

    /// Sets the store's entry only if it is still at `generation` (nothing changed it since
    /// it was read); whether it was set.
    fn set_live_if(&self, store_id: &str, generation: u64, live: Option<Live>) -> bool {
        let Ok(mut map) = self.live.write() else {
            return false;
        };
        let slot = map.entry(store_id.to_string()).or_default();
        if slot.generation != generation {
            return false;
        }
        slot.generation = slot.generation.wrapping_add(1);
        slot.live = live;
        true
    }
}

/// Resets a store's `CONNECTING` mark if the connect that set it ends without recording its
/// outcome (its request future dropped, or an error on the way).
struct ConnectingMark<'a> {
    custody: &'a KeyStoreCustody,
    store_id: &'a str,
    generation: u64,
}

impl Drop for ConnectingMark<'_> {
    fn drop(&mut self) {
        self.custody
            .set_live_if(self.store_id, self.generation, None);
    }
}

/// Releases a token connection off the async threads (closing a PKCS#11 session is a token
/// call). Dropping, not `close`: a connection that lost a race shares its login with the
/// winner, and a logout would end both.
async fn release(conn: Arc<dyn HsmConnection>) {
    let _ = tokio::task::spawn_blocking(move || drop(conn)).await;
}

/// CreateCustomKeyStore's input (the CloudHSM form; XKS fields are refused for now). Not
/// `Debug`: it holds the password.
#[derive(Default, Clone)]
pub struct CreateCustomKeyStoreInput {
    pub custom_key_store_name: String,
    pub custom_key_store_type: Option<String>,
    pub cloud_hsm_cluster_id: Option<String>,
    pub trust_anchor_certificate: Option<String>,
    /// The token's user PIN; never logged or put in an error.
    pub key_store_password: Option<zeroize::Zeroizing<String>>,
    /// Whether any `XksProxy*` parameter was given.
    pub xks_parameters: bool,
    /// The `XksProxy*` parameters, for an EXTERNAL_KEY_STORE store.
    pub xks: crate::external_key_stores::XksStoreInput,
}

/// UpdateCustomKeyStore's input. Not `Debug`: it may hold the password.
#[derive(Default, Clone)]
pub struct UpdateCustomKeyStoreInput {
    pub custom_key_store_id: String,
    pub new_custom_key_store_name: Option<String>,
    pub key_store_password: Option<zeroize::Zeroizing<String>>,
    pub cloud_hsm_cluster_id: Option<String>,
    pub xks_parameters: bool,
    /// The `XksProxy*` parameters to change, for an EXTERNAL_KEY_STORE store.
    pub xks: crate::external_key_stores::XksStoreInput,
}

/// One DescribeCustomKeyStores entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomKeyStoreEntry {
    pub custom_key_store_id: String,
    pub custom_key_store_name: String,
    pub custom_key_store_type: String,
    pub cloud_hsm_cluster_id: String,
    pub trust_anchor_certificate: String,
    pub connection_state: String,
    pub connection_error_code: Option<String>,
    pub creation_date_ms: i64,
    /// An EXTERNAL_KEY_STORE store's proxy configuration (never its secret).
    pub xks_proxy_configuration: Option<crate::external_key_stores::XksProxyConfiguration>,
}

/// DescribeCustomKeyStores' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomKeyStoreList {
    pub custom_key_stores: Vec<CustomKeyStoreEntry>,
    pub next_marker: Option<String>,
}

/// PEM text compared as AWS would compare certificates: by content, not by line endings or
/// surrounding whitespace.
fn same_certificate(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String { s.split_whitespace().collect() };
    norm(a) == norm(b)
}

fn not_found(id: &str) -> KmsError {
    KmsError::CustomKeyStoreNotFound(format!(
        "Custom key store {id} does not exist in this account and Region."
    ))
}

fn cluster_not_found(id: &str) -> KmsError {
    KmsError::CloudHsmClusterNotFound(format!(
        "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: {id}."
    ))
}

fn validate_cluster_id(id: &str) -> KmsResult<()> {
    validate::length("cloudHsmClusterId", id, 19, 24)
}

fn validate_password(p: &str) -> KmsResult<()> {
    // The message names the field, never the value (a secret).
    let n = p.chars().count();
    if !(7..=32).contains(&n) {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'keyStorePassword' failed to satisfy constraint: Member must have length between 7 and 32"
                .into(),
        ));
    }
    Ok(())
}

/// The `ConnectionErrorCode` of a failed connect.
fn error_code(e: &HsmConnectError) -> &'static str {
    match e {
        HsmConnectError::InvalidCredentials => "INVALID_CREDENTIALS",
        HsmConnectError::ClusterNotFound(_) => "CLUSTER_NOT_FOUND",
        HsmConnectError::Network(_) => "NETWORK_ERRORS",
        HsmConnectError::UserLoggedIn => "USER_LOGGED_IN",
    }
}

impl Kms {
    /// The same service with these declared HSM clusters, whose tokens `provider` opens. Set
    /// before serving.
    pub fn with_hsm_clusters(
        mut self,
        clusters: Vec<HsmCluster>,
        provider: Arc<dyn HsmProvider>,
    ) -> Self {
        self.key_stores = KeyStoreCustody {
            clusters,
            provider: Some(provider),
            live: RwLock::default(),
            deleted: std::sync::Mutex::default(),
            xks: std::mem::take(&mut self.key_stores.xks),
        };
        self
    }

    async fn account_stores(&self, caller: &Caller) -> KmsResult<Vec<CustomKeyStoreRecord>> {
        Ok(self
            .store
            .custom_key_stores(&caller.account, &caller.region)
            .await?)
    }

    pub(crate) async fn find_store(
        &self,
        caller: &Caller,
        id: &str,
    ) -> KmsResult<CustomKeyStoreRecord> {
        self.account_stores(caller)
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| not_found(id))
    }

    /// The state a store is in as this node sees it: a transient state of its own first,
    /// then the persisted one.
    pub(crate) fn connection_state(&self, record: &CustomKeyStoreRecord) -> &'static str {
        match self.key_stores.live(&record.id) {
            Some(Live::Connecting) => CONNECTING,
            Some(Live::Disconnecting) => DISCONNECTING,
            _ => match record.connection_state.as_str() {
                CONNECTED => CONNECTED,
                FAILED => FAILED,
                _ => DISCONNECTED,
            },
        }
    }

    fn entry(&self, record: &CustomKeyStoreRecord) -> CustomKeyStoreEntry {
        let state = self.connection_state(record);
        CustomKeyStoreEntry {
            custom_key_store_id: record.id.clone(),
            custom_key_store_name: record.name.clone(),
            custom_key_store_type: record.store_type.clone(),
            cloud_hsm_cluster_id: record.cluster_id.clone(),
            // An XKS store's row keeps its proxy configuration in this column.
            trust_anchor_certificate: if record.store_type == EXTERNAL_KEY_STORE {
                String::new()
            } else {
                record.trust_anchor_certificate.clone()
            },
            connection_state: state.to_string(),
            connection_error_code: if state == FAILED {
                record.connection_error_code.clone()
            } else {
                None
            },
            creation_date_ms: record.created_ms,
            xks_proxy_configuration: crate::external_key_stores::configuration(record),
        }
    }

    pub async fn create_custom_key_store(
        &self,
        caller: &Caller,
        input: CreateCustomKeyStoreInput,
    ) -> KmsResult<String> {
        // Validate.
        validate::length("customKeyStoreName", &input.custom_key_store_name, 1, 256)?;
        let store_type = input
            .custom_key_store_type
            .as_deref()
            .unwrap_or(AWS_CLOUDHSM);
        match store_type {
            AWS_CLOUDHSM => {}
            EXTERNAL_KEY_STORE => {
                if input.cloud_hsm_cluster_id.is_some()
                    || input.trust_anchor_certificate.is_some()
                    || input.key_store_password.is_some()
                {
                    return Err(KmsError::Validation(
                        "CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword are valid only for an AWS_CLOUDHSM custom key store"
                            .into(),
                    ));
                }
                return self
                    .create_external_key_store(caller, &input.custom_key_store_name, input.xks)
                    .await;
            }
            other => {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'customKeyStoreType' failed to satisfy constraint: Member must satisfy enum value set: [EXTERNAL_KEY_STORE, AWS_CLOUDHSM]"
                )));
            }
        }
        if input.xks_parameters {
            return Err(KmsError::Validation(
                "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store"
                    .into(),
            ));
        }
        let missing = |what: &str| {
            KmsError::Validation(format!(
                "{what} is required for a custom key store of type AWS_CLOUDHSM"
            ))
        };
        let cluster_id = input
            .cloud_hsm_cluster_id
            .as_deref()
            .ok_or_else(|| missing("CloudHsmClusterId"))?;
        let anchor = input
            .trust_anchor_certificate
            .as_deref()
            .ok_or_else(|| missing("TrustAnchorCertificate"))?;
        let password = input
            .key_store_password
            .as_deref()
            .ok_or_else(|| missing("KeyStorePassword"))?;
        validate_cluster_id(cluster_id)?;
        validate::length("trustAnchorCertificate", anchor, 1, 5000)?;
        validate_password(password)?;

        // Authorize (an IAM-only action on `*`), then resolve the cluster.
        self.authorize(caller, "kms:CreateCustomKeyStore", Resource::Any)?;
        let cluster = self
            .key_stores
            .cluster(cluster_id)
            .ok_or_else(|| cluster_not_found(cluster_id))?;
        if !same_certificate(&cluster.trust_anchor_certificate, anchor) {
            return Err(KmsError::IncorrectTrustAnchor(format!(
                "The trust anchor certificate in the request does not match the trust anchor certificate for the specified cluster {cluster_id}."
            )));
        }

        // Seed 000: KMS creates its custom key store service-linked role with the first store
        // (before the write lock: IAM writes take it themselves). A create refused below
        // leaves the role, as a failed CreateCustomKeyStore in AWS may.
        self.ensure_service_role(caller, &crate::iam::aws_managed::CKS_ROLE)
            .await?;

        // Act: checks against the account's other stores under the write lock.
        let _w = self.writes.lock().await;
        let stores = self.account_stores(caller).await?;
        if stores.iter().any(|s| s.name == input.custom_key_store_name) {
            return Err(name_in_use(&input.custom_key_store_name));
        }
        // A cluster backs at most one store in the whole service, whichever account or
        // Region holds it: the token's login is the store's, and another account's store
        // on it would share that login (and the token's keys).
        if self
            .store
            .custom_key_stores_by_cluster(cluster_id)
            .await?
            .iter()
            .any(|s| s.store_type == AWS_CLOUDHSM)
        {
            return Err(KmsError::CloudHsmClusterInUse(format!(
                "The specified AWS CloudHSM cluster {cluster_id} is already associated with a custom key store."
            )));
        }
        if stores.len() >= MAX_CUSTOM_KEY_STORES {
            return Err(KmsError::LimitExceeded(format!(
                "Account {} already has {MAX_CUSTOM_KEY_STORES} custom key stores in {}",
                caller.account, caller.region
            )));
        }
        let id = format!(
            "cks-{}",
            hex::encode(trent_crypto::random::array::<9>()?)
                .get(..17)
                .unwrap_or_default()
        );
        let record = CustomKeyStoreRecord {
            account_id: caller.account.to_string(),
            region: caller.region.to_string(),
            id: id.clone(),
            name: input.custom_key_store_name.clone(),
            store_type: AWS_CLOUDHSM.into(),
            cluster_id: cluster_id.into(),
            trust_anchor_certificate: anchor.into(),
            wrapped_password: self
                .root
                .wrap(password.as_bytes(), &custom_key_store_aad(&id))?,
            connection_state: DISCONNECTED.into(),
            connection_error_code: None,
            created_ms: self.clock.now_ms(),
        };
        self.store
            .insert_custom_key_store(&record)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => name_in_use(&record.name),
                e => e.into(),
            })?;
        Ok(id)
    }

    pub async fn describe_custom_key_stores(
        &self,
        caller: &Caller,
        id: Option<&str>,
        name: Option<&str>,
        limit: Option<i64>,
        marker: Option<&str>,
    ) -> KmsResult<CustomKeyStoreList> {
        if let Some(id) = id {
            validate::length("customKeyStoreId", id, 1, 64)?;
        }
        if let Some(name) = name {
            validate::length("customKeyStoreName", name, 1, 256)?;
        }
        if id.is_some() && name.is_some() {
            return Err(KmsError::Validation(
                "You can specify either the CustomKeyStoreId or the CustomKeyStoreName, but not both."
                    .into(),
            ));
        }
        let limit = validate::limit(limit, 1000, 100)?;
        if let Some(m) = marker {
            validate::length("marker", m, 1, 1024)?;
        }
        self.authorize(caller, "kms:DescribeCustomKeyStores", Resource::Any)?;
        let mut stores = self.account_stores(caller).await?;
        stores.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(id) = id {
            stores.retain(|s| s.id == id);
            if stores.is_empty() {
                return Err(not_found(id));
            }
        }
        if let Some(name) = name {
            stores.retain(|s| s.name == name);
            if stores.is_empty() {
                return Err(KmsError::CustomKeyStoreNotFound(format!(
                    "Custom key store named {name} does not exist in this account and Region."
                )));
            }
        }
        // The marker is the id of the last store of the previous page (ids are sortable).
        if let Some(m) = marker {
            if !m.starts_with("cks-") {
                return Err(KmsError::InvalidMarker("Invalid marker".into()));
            }
            stores.retain(|s| s.id.as_str() > m);
        }
        let next_marker = if stores.len() > limit {
            stores.truncate(limit);
            stores.last().map(|s| s.id.clone())
        } else {
            None
        };
        Ok(CustomKeyStoreList {
            custom_key_stores: stores.iter().map(|s| self.entry(s)).collect(),
            next_marker,
        })
    }

    pub async fn update_custom_key_store(
        &self,
        caller: &Caller,
        input: UpdateCustomKeyStoreInput,
    ) -> KmsResult<()> {
        let id = input.custom_key_store_id.as_str();
        validate::length("customKeyStoreId", id, 1, 64)?;
        if let Some(n) = &input.new_custom_key_store_name {
            validate::length("newCustomKeyStoreName", n, 1, 256)?;
        }
        if let Some(p) = &input.key_store_password {
            validate_password(p)?;
        }
        if let Some(c) = &input.cloud_hsm_cluster_id {
            validate_cluster_id(c)?;
        }
        crate::external_key_stores::validate_update(&input.xks)?;
        self.authorize(caller, "kms:UpdateCustomKeyStore", Resource::Any)?;
        let _w = self.writes.lock().await;
        let stores = self.account_stores(caller).await?;
        let mut record = stores
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| not_found(id))?;
        if input.xks_parameters {
            if record.store_type == EXTERNAL_KEY_STORE {
                // `external_key_stores.rs`: it calls the proxy, so it takes the lock itself.
                drop(_w);
                return self.update_external_key_store(caller, input).await;
            }
            return Err(KmsError::Validation(
                "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store"
                    .into(),
            ));
        }
        if record.store_type == EXTERNAL_KEY_STORE
            && (input.key_store_password.is_some() || input.cloud_hsm_cluster_id.is_some())
        {
            // The row's password column holds the proxy credential's secret: never overwrite it.
            return Err(KmsError::Validation(
                "KeyStorePassword and CloudHsmClusterId are valid only for an AWS_CLOUDHSM custom key store"
                    .into(),
            ));
        }
        let state = self.connection_state(&record);
        // The name may change while CONNECTED too; password and cluster only while
        // DISCONNECTED (AWS's rule: they are what a connection is made with).
        let needs_disconnected =
            input.key_store_password.is_some() || input.cloud_hsm_cluster_id.is_some();
        let allowed = state == DISCONNECTED || (state == CONNECTED && !needs_disconnected);
        if !allowed {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {id} is in the {state} connection state: to change its {}, disconnect it first",
                if needs_disconnected {
                    "password or cluster"
                } else {
                    "name"
                }
            )));
        }
        if let Some(name) = &input.new_custom_key_store_name {
            if stores.iter().any(|s| s.id != id && &s.name == name) {
                return Err(name_in_use(name));
            }
            record.name = name.clone();
        }
        if let Some(cluster_id) = &input.cloud_hsm_cluster_id {
            let cluster = self
                .key_stores
                .cluster(cluster_id)
                .ok_or_else(|| cluster_not_found(cluster_id))?;
            // A replacement cluster must be related: here, one with the same trust anchor
            // (a cluster restored from a backup of it keeps its certificate).
            if cluster_id != &record.cluster_id {
                if !same_certificate(
                    &cluster.trust_anchor_certificate,
                    &record.trust_anchor_certificate,
                ) {
                    return Err(KmsError::CloudHsmClusterNotRelated(format!(
                        "The specified AWS CloudHSM cluster {cluster_id} does not share a backup history with the original cluster {}.",
                        record.cluster_id
                    )));
                }
                // Service-wide, as at create: another account's store counts too.
                if self
                    .store
                    .custom_key_stores_by_cluster(cluster_id)
                    .await?
                    .iter()
                    .any(|s| s.id != id && s.store_type == AWS_CLOUDHSM)
                {
                    return Err(KmsError::CloudHsmClusterInUse(format!(
                        "The specified AWS CloudHSM cluster {cluster_id} is already associated with a custom key store."
                    )));
                }
            }
            record.cluster_id = cluster_id.clone();
        }
        if let Some(password) = &input.key_store_password {
            record.wrapped_password = self
                .root
                .wrap(password.as_bytes(), &custom_key_store_aad(id))?;
        }
        self.store
            .update_custom_key_store(&record)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => name_in_use(&record.name),
                StoreError::NotFound => not_found(id),
                e => e.into(),
            })
    }

    pub async fn delete_custom_key_store(&self, caller: &Caller, id: &str) -> KmsResult<()> {
        validate::length("customKeyStoreId", id, 1, 64)?;
        self.authorize(caller, "kms:DeleteCustomKeyStore", Resource::Any)?;
        let _w = self.writes.lock().await;
        let record = self.find_store(caller, id).await?;
        let state = self.connection_state(&record);
        if state != DISCONNECTED {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {id} is in the {state} connection state: disconnect it before deleting it"
            )));
        }
        // Keys in any state count (AWS: schedule their deletion and wait it out first).
        if !self.store.custom_key_store_keys(id).await?.is_empty() {
            return Err(KmsError::CustomKeyStoreHasCmks(format!(
                "Custom key store {id} cannot be deleted because it contains KMS keys. Schedule deletion of its KMS keys and wait until they are deleted."
            )));
        }
        self.store
            .delete_custom_key_store(id)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => not_found(id),
                e => e.into(),
            })?;
        self.key_stores.set_live(id, None);
        // An XKS store's client (and the credential it holds) goes with the store.
        self.forget_xks_proxy(id);
        // Token keys still to destroy stay in the cluster with the store gone (AWS: deleting
        // a custom key store leaves the cluster's keys): named in the log for the operator.
        if let Ok(labels) = self.store.pending_token_destructions(id).await {
            for label in labels {
                tracing::warn!(custom_key_store = %id, label = %label, "custom key store deleted: a deleted key's token key stays in the cluster");
                let _ = self
                    .store
                    .remove_pending_token_destruction(id, &label)
                    .await;
            }
        }
        Ok(())
    }

    /// ConnectCustomKeyStore. The token work (module, login) runs without the write lock, so
    /// other writes never wait for an HSM; the store is marked CONNECTING meanwhile, and the
    /// outcome is recorded under the lock only if nothing changed the store's entry since
    /// (a DisconnectCustomKeyStore during CONNECTING wins: the store ends DISCONNECTED, as in
    /// AWS, and the late connection is released).
    pub async fn connect_custom_key_store(&self, caller: &Caller, id: &str) -> KmsResult<()> {
        validate::length("customKeyStoreId", id, 1, 64)?;
        self.authorize(caller, "kms:ConnectCustomKeyStore", Resource::Any)?;
        let (record, generation) = {
            let _w = self.writes.lock().await;
            let record = self.find_store(caller, id).await?;
            match self.connection_state(&record) {
                // Connecting a connected (or connecting) store is a success that does nothing.
                CONNECTED | CONNECTING => return Ok(()),
                DISCONNECTED => {}
                state => {
                    return Err(KmsError::CustomKeyStoreInvalidState(format!(
                        "Custom key store {id} is in the {state} connection state: disconnect it before connecting it again"
                    )));
                }
            }
            if record.store_type == EXTERNAL_KEY_STORE {
                // The proxy call runs without the write lock, the store CONNECTING meanwhile;
                // the outcome is recorded only if nothing (a disconnect) changed the entry.
                let generation = self.key_stores.set_live(id, Some(Live::Connecting));
                let mark = ConnectingMark {
                    custody: &self.key_stores,
                    store_id: id,
                    generation,
                };
                drop(_w);
                let outcome = self.external_connect_outcome(&record).await;
                let _w = self.writes.lock().await;
                if self.key_stores.slot(id).generation != generation {
                    return Ok(());
                }
                let record = self.find_store(caller, id).await?;
                let recorded = self.record_external_connect(record, outcome).await;
                self.key_stores.set_live(id, None);
                drop(mark);
                return recorded;
            }
            let generation = self.key_stores.set_live(id, Some(Live::Connecting));
            (record, generation)
        };
        let mark = ConnectingMark {
            custody: &self.key_stores,
            store_id: id,
            generation,
        };
        let outcome = self.open_connection(&record).await;

        let w = self.writes.lock().await;
        if self.key_stores.slot(id).generation != generation {
            // Disconnected meanwhile: that later call decided the state.
            drop(w);
            if let Ok(conn) = outcome {
                release(conn).await;
            }
            return Ok(());
        }
        // Read again: only the connection state is this call's (a rename may have happened
        // on another node while the token was being opened).
        let mut record = match self.find_store(caller, id).await {
            Ok(r) => r,
            Err(e) => {
                drop(w);
                if let Ok(conn) = outcome {
                    release(conn).await;
                }
                return Err(e);
            }
        };
        match &outcome {
            Ok(_) => {
                record.connection_state = CONNECTED.into();
                record.connection_error_code = None;
            }
            Err(code) => {
                record.connection_state = FAILED.into();
                record.connection_error_code = Some((*code).into());
            }
        }
        // Store first, then this node's connection.
        if let Err(e) = self.store.update_custom_key_store(&record).await {
            drop(w);
            drop(mark);
            if let Ok(conn) = outcome {
                release(conn).await;
            }
            return Err(e.into());
        }
        let connected = outcome.as_ref().ok().cloned();
        // A new generation: the mark's reset (when it drops) no longer applies.
        self.key_stores
            .set_live(id, outcome.ok().map(Live::Connected));
        drop(mark);
        self.forget_store_keys(id).await;
        drop(w);
        if let Some(conn) = connected {
            self.collect_token_garbage(&record, conn).await;
        }
        Ok(())
    }

    pub async fn disconnect_custom_key_store(&self, caller: &Caller, id: &str) -> KmsResult<()> {
        validate::length("customKeyStoreId", id, 1, 64)?;
        self.authorize(caller, "kms:DisconnectCustomKeyStore", Resource::Any)?;
        let w = self.writes.lock().await;
        let mut record = self.find_store(caller, id).await?;
        let state = self.connection_state(&record);
        if state == DISCONNECTED || state == DISCONNECTING {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {id} is in the {state} connection state and cannot be disconnected"
            )));
        }
        let previous = self.key_stores.slot(id);
        let generation = self.key_stores.set_live(id, Some(Live::Disconnecting));
        record.connection_state = DISCONNECTED.into();
        record.connection_error_code = None;
        if let Err(e) = self.store.update_custom_key_store(&record).await {
            self.key_stores.set_live_if(id, generation, previous.live);
            return Err(e.into());
        }
        // A connect in progress (CONNECTING) finds the entry changed and releases its own.
        self.key_stores.set_live(id, None);
        self.forget_store_keys(id).await;
        drop(w);
        // The logout is a token call: after the lock.
        if let Some(Live::Connected(conn)) = previous.live {
            let _ = tokio::task::spawn_blocking(move || conn.close()).await;
        }
        Ok(())
    }

    /// Opens the store's token with its unwrapped password, off the async threads (a token
    /// call blocks). The error is the store's `ConnectionErrorCode`; its detail is logged.
    async fn open_connection(
        &self,
        record: &CustomKeyStoreRecord,
    ) -> Result<Arc<dyn HsmConnection>, &'static str> {
        let Some(cluster) = self.key_stores.cluster(&record.cluster_id) else {
            return Err("CLUSTER_NOT_FOUND");
        };
        let Some(provider) = self.key_stores.provider.clone() else {
            return Err("CLUSTER_NOT_FOUND");
        };
        let pin = match self
            .root
            .unwrap(&record.wrapped_password, &custom_key_store_aad(&record.id))
        {
            Ok(p) => p,
            Err(_) => return Err("INTERNAL_ERROR"),
        };
        let Ok(pin) = String::from_utf8(pin.to_vec()).map(zeroize::Zeroizing::new) else {
            return Err("INTERNAL_ERROR");
        };
        let token = cluster.token.clone();
        let store_id = record.id.clone();
        let joined =
            tokio::task::spawn_blocking(move || provider.connect(&token, pin.as_str())).await;
        match joined {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => {
                // The error names the module or a return code, never the PIN.
                tracing::warn!(custom_key_store = %store_id, error = %e, "custom key store connect failed");
                Err(error_code(&e))
            }
            Err(_) => Err("INTERNAL_ERROR"),
        }
    }

    /// This node's connection to a store persisted `CONNECTED`, opened now if it has none
    /// (a restart, or another node connected the store). `None` if the store is not
    /// connected or the token cannot be opened; a token that could not be opened is tried
    /// again [`TOKEN_RETRY_MS`] later, and when it opens, the store's keys cached meanwhile
    /// (as Unavailable) are dropped so they load again through it.
    pub(crate) async fn store_connection(
        &self,
        record: &CustomKeyStoreRecord,
    ) -> Option<Arc<dyn HsmConnection>> {
        if record.connection_state != CONNECTED {
            return None;
        }
        let slot = self.key_stores.slot(&record.id);
        let now = self.clock.now_ms();
        let was_unreachable = match &slot.live {
            Some(Live::Connected(conn)) => return Some(conn.clone()),
            // This node's own connect or disconnect is under way: not usable yet.
            Some(Live::Connecting | Live::Disconnecting) => return None,
            Some(Live::Unreachable { retry_at_ms }) if now < *retry_at_ms => return None,
            Some(Live::Unreachable { .. }) => true,
            None => false,
        };
        // Claim the attempt, so concurrent uses do not all open the token.
        let retry_at_ms = now.saturating_add(TOKEN_RETRY_MS);
        if was_unreachable
            && !self.key_stores.set_live_if(
                &record.id,
                slot.generation,
                Some(Live::Unreachable { retry_at_ms }),
            )
        {
            return match self.key_stores.live(&record.id) {
                Some(Live::Connected(conn)) => Some(conn),
                _ => None,
            };
        }
        let generation = self.key_stores.slot(&record.id).generation;
        match self.open_connection(record).await {
            Ok(conn) => {
                if self.key_stores.set_live_if(
                    &record.id,
                    generation,
                    Some(Live::Connected(conn.clone())),
                ) {
                    if was_unreachable {
                        self.forget_store_keys(&record.id).await;
                    }
                    return Some(conn);
                }
                // Someone else set the entry meanwhile (a connect, a disconnect, another
                // open): theirs stands.
                release(conn).await;
                match self.key_stores.live(&record.id) {
                    Some(Live::Connected(conn)) => Some(conn),
                    _ => None,
                }
            }
            Err(_) => {
                self.key_stores.set_live_if(
                    &record.id,
                    generation,
                    Some(Live::Unreachable { retry_at_ms }),
                );
                None
            }
        }
    }

    /// Whether a cached store-held key loaded without its store's connection should be loaded
    /// again: its store has a connection on this node now, or a token that could not be
    /// opened is due to be tried again. Cheap for every other key (one match).
    pub(crate) fn held_key_stale(&self, key: &crate::cache::LoadedKey) -> bool {
        let KeyCustody::CloudHsm(held) = &key.record.custody else {
            return false;
        };
        if held.available {
            return false;
        }
        match self.key_stores.live(&held.custom_key_store_id) {
            Some(Live::Connected(_)) => true,
            Some(Live::Unreachable { retry_at_ms }) => self.clock.now_ms() >= retry_at_ms,
            _ => false,
        }
    }

    /// Another node changed a store of this account and Region (the change feed names the
    /// account and Region, not the store): follow each store's persisted state here. A
    /// connection this node holds for a store now persisted otherwise than CONNECTED is
    /// closed; keys cached while this node had no connection to a store now CONNECTED are
    /// dropped, so their next use opens one. Either way the store's keys load again.
    pub(crate) async fn custom_key_stores_changed(
        &self,
        account: &str,
        region: &str,
    ) -> KmsResult<()> {
        for record in self.store.custom_key_stores(account, region).await? {
            let live = self.key_stores.live(&record.id);
            let connected = record.connection_state == CONNECTED;
            // An XKS store has no per-node connection: its keys' availability is read from
            // the row when they load, so they simply load again.
            if record.store_type == EXTERNAL_KEY_STORE {
                self.forget_store_keys(&record.id).await;
                continue;
            }
            match live {
                Some(Live::Connected(conn)) if !connected => {
                    self.key_stores.set_live(&record.id, None);
                    let _ = tokio::task::spawn_blocking(move || conn.close()).await;
                    self.forget_store_keys(&record.id).await;
                }
                Some(Live::Unreachable { .. }) if !connected => {
                    self.key_stores.set_live(&record.id, None);
                }
                None if connected => self.forget_store_keys(&record.id).await,
                _ => {}
            }
        }
        Ok(())
    }

    /// Drops this node's cached keys of store `id`, so their next use loads them again
    /// against the store's new connection (or its absence: key state `Unavailable`).
    pub(crate) async fn forget_store_keys(&self, id: &str) {
        match self.store.custom_key_store_keys(id).await {
            Ok(keys) => {
                for key_id in keys {
                    self.cache.remove_key(&key_id);
                }
            }
            // Cached keys keep their old connection's handles, which fail as unavailable.
            Err(e) => {
                tracing::warn!(custom_key_store = %id, error = %e, "cannot list the store's keys")
            }
        }
    }

    /// CreateKey in an AWS_CLOUDHSM store, its token half: the store must exist, be of that
    /// type, be connected and below its cluster's key quota; the key is generated in the
    /// token, labelled with the key id, and never leaves it. Called **without** the write
    /// lock (key generation is a token call, tens of milliseconds on SoftHSM2); the caller
    /// then takes the lock, runs [`Kms::check_held_key_locked`] and inserts the key, and
    /// hands the key to [`Kms::discard_held_key`] if anything after this fails.
    ///
    /// Everything that can fail without the token is done before the key is generated (the
    /// root wrap of its reference first), so a failure here leaves nothing in the token.
    pub(crate) async fn create_held_key(
        &self,
        caller: &Caller,
        store_id: &str,
        key_id: &str,
        material_id: &MaterialId,
    ) -> KmsResult<HeldKey> {
        let store = self.find_store(caller, store_id).await?;
        if store.store_type != AWS_CLOUDHSM {
            return Err(KmsError::Validation(format!(
                "Origin AWS_CLOUDHSM requires a custom key store of type AWS_CLOUDHSM; {store_id} is of type {}",
                store.store_type
            )));
        }
        let Some(conn) = self.store_connection(&store).await else {
            return Err(not_connected(store_id));
        };
        self.check_store_key_quota(&store).await?;
        let wrapped = self
            .root
            .wrap(&held_reference(key_id), &material_aad(key_id, material_id))?;
        let label = key_id.to_string();
        let token = conn.clone();
        let generated = tokio::task::spawn_blocking(move || token.generate_aes_key(&label))
            .await
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let custody = match generated {
            Ok(k) => k,
            Err(CustodyError::Unavailable) => {
                return Err(KmsError::CustomKeyStoreInvalidState(format!(
                    "Custom key store {store_id} cannot reach its cluster {}. Disconnect and reconnect it.",
                    store.cluster_id
                )));
            }
            // The token refused to make the key (full, read-only, mechanism missing): the
            // cluster cannot serve KMS, AWS's configuration error.
            Err(e) => {
                tracing::warn!(custom_key_store = %store_id, error = %e, "token key generation failed");
                return Err(KmsError::CloudHsmClusterInvalidConfiguration(format!(
                    "The AWS CloudHSM cluster {} associated with custom key store {store_id} cannot create the key.",
                    store.cluster_id
                )));
            }
        };
        Ok(HeldKey {
            custody: KeyCustody::CloudHsm(StoreHeld {
                custom_key_store_id: store.id.clone(),
                cloud_hsm_cluster_id: store.cluster_id.clone(),
                available: true,
            }),
            wrapped,
            material: Material::HeldSymmetric(custody),
            connection: conn,
            label: key_id.to_string(),
        })
    }

    /// The store's key quota (its cluster's `max_keys`).
    async fn check_store_key_quota(&self, store: &CustomKeyStoreRecord) -> KmsResult<()> {
        let max_keys = self
            .key_stores
            .cluster(&store.cluster_id)
            .map_or(DEFAULT_MAX_KEYS_PER_CLUSTER, |c| c.max_keys);
        if self.store.custom_key_store_keys(&store.id).await?.len() >= max_keys {
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: KMS keys in custom key store {} ({max_keys}, the capacity of cluster {})",
                store.id, store.cluster_id
            )));
        }
        Ok(())
    }

    /// Under the write lock, before a key made by [`Kms::create_held_key`] is inserted: its
    /// store still exists, is still connected on this node, and still has room (another
    /// CreateKey may have filled it while the token was generating this key).
    pub(crate) async fn check_held_key_locked(
        &self,
        caller: &Caller,
        held: &HeldKey,
    ) -> KmsResult<()> {
        let Some(store_held) = held.custody.held() else {
            return Err(KmsError::Internal("held key without a store".into()));
        };
        let store_id = store_held.custom_key_store_id.as_str();
        let store = self.find_store(caller, store_id).await?;
        let still_connected = store.connection_state == CONNECTED
            && matches!(self.key_stores.live(store_id), Some(Live::Connected(c)) if Arc::ptr_eq(&c, &held.connection));
        if !still_connected {
            return Err(not_connected(store_id));
        }
        self.check_store_key_quota(&store).await
    }

    /// A token key made for a KMS key that was not created after all: destroyed again, off
    /// the write lock.
    pub(crate) async fn discard_held_key(&self, held: HeldKey) {
        let HeldKey {
            custody,
            connection,
            label,
            material,
            ..
        } = held;
        // The token key's handle goes before the key it names.
        drop(material);
        let store_id = custody
            .custom_key_store_id()
            .unwrap_or_default()
            .to_string();
        self.discard_token_key(&store_id, connection, &label).await;
    }

    /// Destroys token key `label` of store `store_id` through `connection`; if that fails
    /// (the store was disconnected meanwhile, the token failed), the destruction is recorded
    /// and done at the store's next connect ([`Kms::collect_token_garbage`]).
    pub(crate) async fn discard_token_key(
        &self,
        store_id: &str,
        connection: Arc<dyn HsmConnection>,
        label: &str,
    ) {
        let name = label.to_string();
        let destroyed = tokio::task::spawn_blocking(move || connection.destroy_aes_key(&name))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = destroyed {
            tracing::warn!(custom_key_store = %store_id, label = %label, error = %e, "cannot destroy the token key of a KMS key that was not created; destroying it at the next connect");
            self.record_pending_destruction(store_id, label).await;
        }
    }

    /// Records durably that token key `label` of store `store_id` is to be destroyed at the
    /// store's next connect; a failure is logged (the key then stays in the token, as AWS's
    /// best effort allows).
    async fn record_pending_destruction(&self, store_id: &str, label: &str) {
        if let Err(e) = self
            .store
            .add_pending_token_destruction(store_id, label, self.clock.now_ms())
            .await
        {
            tracing::warn!(custom_key_store = %store_id, label = %label, error = %e, "cannot record a pending token key destruction: the key stays in the token");
        }
    }

    /// The material of a store-held key being loaded, found in its store's token by the
    /// reference its material rows hold; fills in what `record.custody` says about the store
    /// on this node (its cluster, whether it is connected). A key whose store is not
    /// connected loads without material: its state reads `Unavailable`.
    pub(crate) async fn held_materials(
        &self,
        record: &mut KeyRecord,
        stored: &[StoredMaterial],
    ) -> KmsResult<HashMap<MaterialId, Arc<Material>>> {
        let mut out = HashMap::new();
        let (account, region) = (record.account_id.clone(), record.region.clone());
        let KeyCustody::CloudHsm(held) = &mut record.custody else {
            return Ok(out);
        };
        held.available = false;
        let store = self
            .store
            .custom_key_stores(&account, &region)
            .await?
            .into_iter()
            .find(|s| s.id == held.custom_key_store_id);
        let Some(store) = store else {
            return Ok(out);
        };
        held.cloud_hsm_cluster_id.clone_from(&store.cluster_id);
        let Some(conn) = self.store_connection(&store).await else {
            return Ok(out);
        };
        held.available = true;
        for m in stored {
            let raw = self
                .root
                .unwrap(&m.wrapped, &material_aad(&m.key_id, &m.material_id))?;
            let label = parse_held_reference(&raw)
                .ok_or_else(|| KmsError::Internal("stored held-key reference is not valid".into()))?
                .to_string();
            let token = conn.clone();
            let found = tokio::task::spawn_blocking(move || token.find_aes_key(&label))
                .await
                .map_err(|e| KmsError::Internal(e.to_string()))?;
            match found {
                Ok(Some(k)) => {
                    out.insert(m.material_id, Arc::new(Material::HeldSymmetric(k)));
                }
                // Destroyed in the token, or the token unreachable now: the key keeps its
                // state and its cryptographic operations fail (AWS: KMSInvalidStateException).
                Ok(None) => {
                    tracing::warn!(key_id = %m.key_id, custom_key_store = %store.id, "key material not found in the store's token");
                }
                Err(e) => {
                    tracing::warn!(key_id = %m.key_id, custom_key_store = %store.id, error = %e, "cannot look up key material in the store's token");
                }
            }
        }
        Ok(out)
    }

    /// Under the write lock, before a store-held key's row is deleted: its token key's
    /// destruction is recorded durably first, so that whatever happens next (the store is
    /// disconnected, the token fails, the process stops) it is done at the store's next
    /// connect; and it is queued to be tried as soon as the lock is released
    /// ([`Kms::destroy_deleted_held_keys`]).
    pub(crate) async fn note_held_key_deletion(&self, record: &KeyRecord) -> KmsResult<()> {
        // An external key store's keys are never touched by KMS (AWS): the proxy's key stays.
        let KeyCustody::CloudHsm(held) = &record.custody else {
            return Ok(());
        };
        self.store
            .add_pending_token_destruction(
                &held.custom_key_store_id,
                &record.key_id,
                self.clock.now_ms(),
            )
            .await?;
        if let Ok(mut q) = self.key_stores.deleted.lock() {
            q.push(record.clone());
        }
        Ok(())
    }

    /// Destroys the token keys of the store-held keys deleted since the last call. Call
    /// without the write lock.
    pub(crate) async fn destroy_deleted_held_keys(&self) {
        let records = match self.key_stores.deleted.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        for record in records {
            self.destroy_held_key(&record).await;
        }
    }

    /// After a store-held key is deleted: destroy its token key now if the store is connected
    /// on this node, and forget the pending destruction. **Decision** (AWS: a best effort):
    /// a store not connected at that moment keeps the key in its token until the store's
    /// next ConnectCustomKeyStore, which destroys it ([`Kms::collect_token_garbage`]).
    async fn destroy_held_key(&self, record: &KeyRecord) {
        let KeyCustody::CloudHsm(held) = &record.custody else {
            return;
        };
        let store_id = held.custom_key_store_id.as_str();
        let store = match self
            .store
            .custom_key_stores(&record.account_id, &record.region)
            .await
        {
            Ok(stores) => stores.into_iter().find(|s| s.id == store_id),
            Err(_) => None,
        };
        let conn = match &store {
            Some(s) => self.store_connection(s).await,
            None => None,
        };
        let Some(conn) = conn else {
            tracing::info!(key_id = %record.key_id, custom_key_store = %store_id, "store not connected: the deleted key's token key is destroyed at its next connect");
            return;
        };
        self.destroy_pending(store_id, &record.key_id, conn).await;
    }

    /// Destroys one recorded token key through `conn` and forgets it; a token failure keeps
    /// it recorded for the next connect.
    async fn destroy_pending(&self, store_id: &str, label: &str, conn: Arc<dyn HsmConnection>) {
        let name = label.to_string();
        match tokio::task::spawn_blocking(move || conn.destroy_aes_key(&name)).await {
            Ok(Ok(_)) => {
                if let Err(e) = self
                    .store
                    .remove_pending_token_destruction(store_id, label)
                    .await
                {
                    // Harmless: the next connect finds nothing to destroy and forgets it.
                    tracing::warn!(custom_key_store = %store_id, label = %label, error = %e, "cannot forget a done token key destruction");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(custom_key_store = %store_id, label = %label, error = %e, "cannot destroy a deleted key's token key; trying again at the next connect");
            }
            Err(e) => {
                tracing::warn!(custom_key_store = %store_id, label = %label, error = %e, "token destroy task failed")
            }
        }
    }

    /// After a connect (without the write lock): destroys the token keys recorded for the
    /// store, those of keys deleted while it was not connected and of CreateKeys that failed
    /// after the token made their key. A label that still names a KMS key (its deletion
    /// failed after it was recorded) is left alone, and so is one whose CreateKey's insert
    /// went unanswered less than [`LATE_INSERT_GRACE`] ago on this node: that insert may
    /// still commit, and its key would then name a destroyed token key (a later connect
    /// destroys it if no key row names it by then).
    async fn collect_token_garbage(
        &self,
        record: &CustomKeyStoreRecord,
        conn: Arc<dyn HsmConnection>,
    ) {
        let labels = match self.store.pending_token_destructions(&record.id).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(custom_key_store = %record.id, error = %e, "cannot read the store's pending token key destructions");
                return;
            }
        };
        for label in labels {
            if insert_may_still_commit(&record.id, &label) {
                tracing::info!(custom_key_store = %record.id, label = %label, "a recent CreateKey's insert may still commit: its token key is left for a later connect");
                continue;
            }
            match self.store.key(&label).await {
                Ok(None) => self.destroy_pending(&record.id, &label, conn.clone()).await,
                Ok(Some(_)) => {}
                Err(e) => {
                    tracing::warn!(custom_key_store = %record.id, label = %label, error = %e, "cannot check a pending token key destruction");
                }
            }
        }
    }

    /// GenerateRandom with `CustomKeyStoreId`: `len` bytes from the store's token.
    pub(crate) async fn custom_key_store_random(
        &self,
        caller: &Caller,
        id: &str,
        len: usize,
    ) -> KmsResult<zeroize::Zeroizing<Vec<u8>>> {
        let record = self.find_store(caller, id).await?;
        if record.store_type == EXTERNAL_KEY_STORE {
            return Err(KmsError::UnsupportedOperation(format!(
                "GenerateRandom does not support external key stores: {id} is an EXTERNAL_KEY_STORE custom key store"
            )));
        }
        let conn = self.store_connection(&record).await.ok_or_else(|| {
            KmsError::CustomKeyStoreInvalidState(format!("Custom key store {id} is not connected"))
        })?;
        tokio::task::spawn_blocking(move || conn.random(len))
            .await
            .map_err(|e| KmsError::Internal(e.to_string()))?
            .map_err(|e| KmsError::Internal(e.to_string()))
    }
}

/// How long after a CreateKey's key-row insert went unanswered (`StoreError::Unavailable`)
/// the connect-time collection leaves its token key alone: a bounded store call goes on after
/// its caller is answered, so the insert may still commit (PostgreSQL: the 6 s call bound,
/// then the pool's wait and the statement and lock timeouts, 5 s each, well within this).
pub(crate) const LATE_INSERT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The CreateKeys of this process whose insert went unanswered: (store, label) → when.
static UNANSWERED_INSERTS: std::sync::LazyLock<
    std::sync::Mutex<HashMap<(String, String), std::time::Instant>>,
> = std::sync::LazyLock::new(Default::default);

/// Notes that the key row naming token key `label` of store `store_id` may still be
/// inserted (its insert went unanswered): [`Kms::collect_token_garbage`] spares it for
/// [`LATE_INSERT_GRACE`].
pub(crate) fn note_unanswered_insert(store_id: &str, label: &str) {
    if let Ok(mut noted) = UNANSWERED_INSERTS.lock() {
        noted.retain(|_, at| at.elapsed() < LATE_INSERT_GRACE);
        noted.insert(
            (store_id.to_string(), label.to_string()),
            std::time::Instant::now(),
        );
    }
}

/// Whether `label`'s CreateKey insert went unanswered here less than [`LATE_INSERT_GRACE`]
/// ago.
fn insert_may_still_commit(store_id: &str, label: &str) -> bool {
    UNANSWERED_INSERTS.lock().map_or(true, |noted| {
        noted
            .get(&(store_id.to_string(), label.to_string()))
            .is_some_and(|at| at.elapsed() < LATE_INSERT_GRACE)
    })
}

/// A key generated in a store's token for CreateKey: what to record and cache.
pub(crate) struct HeldKey {
    pub custody: KeyCustody,
    /// The root-wrapped reference to the token key (its label), for the material row.
    pub wrapped: Vec<u8>,
    pub material: Material,
    /// The store's connection, to destroy the token key if the insert fails.
    pub connection: Arc<dyn HsmConnection>,
    /// The token key's label (the KMS key id).
    pub label: String,
}

/// What the material row of a store-held key holds (root-wrapped like any material): a
/// reference to the token key, never key bytes.
fn held_reference(label: &str) -> Vec<u8> {
    format!("trent:held-key:v1:pkcs11-label:{label}").into_bytes()
}

fn parse_held_reference(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw)
        .ok()?
        .strip_prefix("trent:held-key:v1:pkcs11-label:")
}

fn not_connected(store_id: &str) -> KmsError {
    KmsError::CustomKeyStoreInvalidState(format!(
        "Custom key store {store_id} is not connected. Connect it with ConnectCustomKeyStore and try again."
    ))
}

fn name_in_use(name: &str) -> KmsError {
    KmsError::CustomKeyStoreNameInUse(format!(
        "The specified custom key store name {name} is already in use in this account and Region."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_unanswered_insert_spares_its_token_key() {
        assert!(!insert_may_still_commit("cks-test-1", "label-a"));
        note_unanswered_insert("cks-test-1", "label-a");
        assert!(insert_may_still_commit("cks-test-1", "label-a"));
        assert!(!insert_may_still_commit("cks-test-1", "label-b"));
        assert!(!insert_may_still_commit("cks-test-2", "label-a"));
    }
}
