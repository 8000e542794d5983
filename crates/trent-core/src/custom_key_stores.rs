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
    /// This node's view of each store it has touched, by store id.
    live: RwLock<HashMap<String, Live>>,
    /// The XKS proxy custodian and clients (`external_key_stores.rs`).
    pub(crate) xks: crate::external_key_stores::XksCustody,
}

/// A store's connection on this node.
#[derive(Clone)]
enum Live {
    Connecting,
    Connected(Arc<dyn HsmConnection>),
    Disconnecting,
}

impl KeyStoreCustody {
    fn cluster(&self, id: &str) -> Option<&HsmCluster> {
        self.clusters.iter().find(|c| c.id == id)
    }

    fn live(&self, store_id: &str) -> Option<Live> {
        self.live.read().ok()?.get(store_id).cloned()
    }

    fn set_live(&self, store_id: &str, live: Option<Live>) {
        if let Ok(mut map) = self.live.write() {
            match live {
                Some(l) => {
                    map.insert(store_id.to_string(), l);
                }
                None => {
                    map.remove(store_id);
                }
            }
        }
    }
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
    fn connection_state(&self, record: &CustomKeyStoreRecord) -> &'static str {
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
                return Err(KmsError::UnsupportedOperation(
                    "This Trent server cannot change an external key store's XksProxy parameters yet: create a new store"
                        .into(),
                ));
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
        Ok(())
    }

    pub async fn connect_custom_key_store(&self, caller: &Caller, id: &str) -> KmsResult<()> {
        validate::length("customKeyStoreId", id, 1, 64)?;
        self.authorize(caller, "kms:ConnectCustomKeyStore", Resource::Any)?;
        let _w = self.writes.lock().await;
        let mut record = self.find_store(caller, id).await?;
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
            return self.connect_external_key_store(record).await;
        }
        self.key_stores.set_live(id, Some(Live::Connecting));
        let outcome = self.open_connection(&record).await;
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
            if let Ok(conn) = &outcome {
                conn.close();
            }
            self.key_stores.set_live(id, None);
            return Err(e.into());
        }
        self.key_stores
            .set_live(id, outcome.ok().map(Live::Connected));
        self.forget_store_keys(id).await;
        Ok(())
    }

    pub async fn disconnect_custom_key_store(&self, caller: &Caller, id: &str) -> KmsResult<()> {
        validate::length("customKeyStoreId", id, 1, 64)?;
        self.authorize(caller, "kms:DisconnectCustomKeyStore", Resource::Any)?;
        let _w = self.writes.lock().await;
        let mut record = self.find_store(caller, id).await?;
        let state = self.connection_state(&record);
        if state == DISCONNECTED || state == DISCONNECTING {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {id} is in the {state} connection state and cannot be disconnected"
            )));
        }
        let previous = self.key_stores.live(id);
        self.key_stores.set_live(id, Some(Live::Disconnecting));
        record.connection_state = DISCONNECTED.into();
        record.connection_error_code = None;
        if let Err(e) = self.store.update_custom_key_store(&record).await {
            self.key_stores.set_live(id, previous);
            return Err(e.into());
        }
        if let Some(Live::Connected(conn)) = previous {
            conn.close();
        }
        self.key_stores.set_live(id, None);
        self.forget_store_keys(id).await;
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
    /// connected or the token cannot be opened.
    pub(crate) async fn store_connection(
        &self,
        record: &CustomKeyStoreRecord,
    ) -> Option<Arc<dyn HsmConnection>> {
        if record.connection_state != CONNECTED {
            return None;
        }
        if let Some(Live::Connected(conn)) = self.key_stores.live(&record.id) {
            return Some(conn);
        }
        let conn = self.open_connection(record).await.ok()?;
        self.key_stores
            .set_live(&record.id, Some(Live::Connected(conn.clone())));
        Some(conn)
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
                    conn.close();
                    self.forget_store_keys(&record.id).await;
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

    /// CreateKey in an AWS_CLOUDHSM store: the store must exist, be of that type, be
    /// connected and below its cluster's key quota; the key is generated in the token,
    /// labelled with the key id, and never leaves it. Call with the write lock held (the
    /// quota check and the insert that follows are one step).
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
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {store_id} is not connected. Connect it with ConnectCustomKeyStore and try again."
            )));
        };
        let max_keys = self
            .key_stores
            .cluster(&store.cluster_id)
            .map_or(DEFAULT_MAX_KEYS_PER_CLUSTER, |c| c.max_keys);
        if self.store.custom_key_store_keys(store_id).await?.len() >= max_keys {
            return Err(KmsError::LimitExceeded(format!(
                "The request was rejected because a quota was exceeded: KMS keys in custom key store {store_id} ({max_keys}, the capacity of cluster {})",
                store.cluster_id
            )));
        }
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
        let wrapped = self
            .root
            .wrap(&held_reference(key_id), &material_aad(key_id, material_id))?;
        Ok(HeldKey {
            custody: KeyCustody::CloudHsm(StoreHeld {
                custom_key_store_id: store.id.clone(),
                cloud_hsm_cluster_id: store.cluster_id.clone(),
                available: true,
            }),
            wrapped,
            material: Material::HeldSymmetric(custody),
            connection: conn,
        })
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

    /// After a store-held key is deleted: destroy its token key when the store is connected.
    /// **Decision** (AWS's best effort): a store disconnected at that moment keeps the key
    /// in its token, logged with its label (the key id) for the operator.
    pub(crate) async fn destroy_held_key(&self, record: &KeyRecord) {
        // An external key store's keys are never touched by KMS (AWS): the proxy's key stays.
        let KeyCustody::CloudHsm(held) = &record.custody else {
            return;
        };
        let store = match self
            .store
            .custom_key_stores(&record.account_id, &record.region)
            .await
        {
            Ok(stores) => stores
                .into_iter()
                .find(|s| s.id == held.custom_key_store_id),
            Err(_) => None,
        };
        let conn = match &store {
            Some(s) => self.store_connection(s).await,
            None => None,
        };
        let Some(conn) = conn else {
            tracing::warn!(key_id = %record.key_id, custom_key_store = %held.custom_key_store_id, "store not connected: the deleted key's material stays in its token (label = key id)");
            return;
        };
        let label = record.key_id.clone();
        match tokio::task::spawn_blocking(move || conn.destroy_aes_key(&label)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(key_id = %record.key_id, error = %e, "cannot destroy the deleted key's token material");
            }
            Err(e) => {
                tracing::warn!(key_id = %record.key_id, error = %e, "token destroy task failed")
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

/// A key generated in a store's token for CreateKey: what to record and cache.
pub(crate) struct HeldKey {
    pub custody: KeyCustody,
    /// The root-wrapped reference to the token key (its label), for the material row.
    pub wrapped: Vec<u8>,
    pub material: Material,
    /// The store's connection, to destroy the token key if the insert fails.
    pub connection: Arc<dyn HsmConnection>,
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

fn name_in_use(name: &str) -> KmsError {
    KmsError::CustomKeyStoreNameInUse(format!(
        "The specified custom key store name {name} is already in use in this account and Region."
    ))
}
