//! Custom key stores of the EXTERNAL_KEY_STORE type (XKS): CreateCustomKeyStore with the
//! `XksProxy*` parameters, `XksProxyConfiguration` in DescribeCustomKeyStores, and
//! ConnectCustomKeyStore running the proxy's GetHealthStatus. The other store operations
//! (Describe's paging, Disconnect, Delete) are the shared ones in `custom_key_stores.rs`.
//!
//! The proxy is reached through `trent_crypto::custody::xks::XksProvider` (implemented by
//! `trent-custody-xks`): the domain never speaks HTTP. A failed proxy call carries the KMS
//! error for each context as the XKS spec maps them; this module only picks the context.
//!
//! Persistence: an XKS store uses the same `custom_key_stores` row as a CloudHSM one. The
//! proxy configuration (connectivity, endpoint, path, access key id) is kept as JSON in the
//! row's certificate column, and the credential's secret wrapped under the root key in its
//! password column (AAD naming the store), so no migration was needed while others were
//! adding theirs. See `docs/custom-key-stores.md`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use trent_crypto::custody::xks::{
    XksFailure, XksProvider, XksProxy, XksProxyLocation, XksRequestContext,
};
use trent_crypto::{EncryptionContext, MaterialId};
use zeroize::Zeroizing;

use crate::authz::Resource;
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::custom_key_stores::{CONNECTED, DISCONNECTED, FAILED, MAX_CUSTOM_KEY_STORES};
use crate::error::{KmsError, KmsResult};
use crate::material::Material;
use crate::model::{
    CustomKeyStoreRecord, KeyCustody, KeyRecord, StoreHeld, StoredMaterial, custom_key_store_aad,
    material_aad,
};
use crate::service::Kms;
use crate::store::StoreError;

/// The store type.
pub const EXTERNAL_KEY_STORE: &str = "EXTERNAL_KEY_STORE";
const PUBLIC_ENDPOINT: &str = "PUBLIC_ENDPOINT";
const VPC_ENDPOINT_SERVICE: &str = "VPC_ENDPOINT_SERVICE";

/// CreateCustomKeyStore's `XksProxy*` members. Not `Debug`: it holds the secret.
#[derive(Default, Clone)]
pub struct XksStoreInput {
    pub uri_endpoint: Option<String>,
    pub uri_path: Option<String>,
    pub connectivity: Option<String>,
    pub vpc_endpoint_service_name: Option<String>,
    pub vpc_endpoint_service_owner: Option<String>,
    /// `XksProxyAuthenticationCredential`, when given: both halves (each may be missing).
    pub credential: Option<XksCredentialInput>,
}

/// `XksProxyAuthenticationCredential`. Not `Debug`: it holds the secret.
#[derive(Default, Clone)]
pub struct XksCredentialInput {
    pub access_key_id: Option<String>,
    pub raw_secret_access_key: Option<Zeroizing<String>>,
}

/// What DescribeCustomKeyStores shows of an XKS store (`XksProxyConfiguration`); the
/// secret is never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct XksProxyConfiguration {
    pub connectivity: String,
    pub access_key_id: String,
    pub uri_endpoint: String,
    pub uri_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_service_owner: Option<String>,
}

/// The proxy custodian and this node's clients, by store id.
#[derive(Default)]
pub(crate) struct XksCustody {
    provider: Option<Arc<dyn XksProvider>>,
    proxies: RwLock<HashMap<String, Arc<dyn XksProxy>>>,
    /// The last background health check of each connected store, on this node.
    health: RwLock<HashMap<String, XksStoreHealth>>,
}

/// The outcome of the last periodic health check of a connected XKS store on this node
/// (`Kms::check_external_key_stores`). **Decision** (AWS: "A CONNECTED state does not
/// indicate that external key store or its supporting components are operating"): it never
/// changes the store's `ConnectionState`; it is logged, and kept here for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksStoreHealth {
    /// `None`: the proxy answered GetHealthStatus with a usable EKM; else the
    /// `ConnectionErrorCode` a connect would record now (`XKS_PROXY_NOT_REACHABLE`, …).
    pub error_code: Option<&'static str>,
    /// When the check finished (the service clock, milliseconds).
    pub checked_ms: i64,
}

/// The proxy configuration of an XKS store's row; `None` for other stores.
pub fn configuration(record: &CustomKeyStoreRecord) -> Option<XksProxyConfiguration> {
    if record.store_type != EXTERNAL_KEY_STORE {
        return None;
    }
    serde_json::from_str(&record.trust_anchor_certificate).ok()
}

fn violation(detail: String) -> KmsError {
    KmsError::Validation(format!("1 validation error detected: {detail}"))
}

fn check(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    pattern: &str,
    ok: impl Fn(&str) -> bool,
    echo: bool,
) -> KmsResult<()> {
    let shown = if echo {
        format!("Value '{value}' at '{field}'")
    } else {
        format!("Value at '{field}'")
    };
    let n = value.chars().count();
    if n < min {
        return Err(violation(format!(
            "{shown} failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if n > max {
        return Err(violation(format!(
            "{shown} failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    if !ok(value) {
        return Err(violation(format!(
            "{shown} failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        )));
    }
    Ok(())
}

/// `^https://[a-zA-Z0-9.-]+$`.
fn endpoint_ok(v: &str) -> bool {
    v.strip_prefix("https://").is_some_and(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    })
}

/// `^(/[a-zA-Z0-9/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`.
fn path_ok(v: &str) -> bool {
    let Some((prefix, version)) = v.rsplit_once("/kms/xks/v") else {
        return false;
    };
    let version_ok =
        (1..=2).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_digit());
    let prefix_ok = prefix.is_empty()
        || (prefix.starts_with('/')
            && prefix.len() >= 2
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-')));
    version_ok && prefix_ok
}

fn access_key_id_ok(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

fn secret_ok(v: &str) -> bool {
    v.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='))
}

fn null(field: &str) -> KmsError {
    violation(format!(
        "Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

fn check_connectivity(connectivity: &str) -> KmsResult<()> {
    if connectivity != PUBLIC_ENDPOINT && connectivity != VPC_ENDPOINT_SERVICE {
        return Err(violation(format!(
            "Value '{connectivity}' at 'xksProxyConnectivity' failed to satisfy constraint: Member must satisfy enum value set: [VPC_ENDPOINT_SERVICE, PUBLIC_ENDPOINT]"
        )));
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> KmsResult<()> {
    check(
        "xksProxyUriEndpoint",
        endpoint,
        10,
        128,
        "^https://[a-zA-Z0-9.-]+$",
        endpoint_ok,
        true,
    )
}

fn check_path(path: &str) -> KmsResult<()> {
    check(
        "xksProxyUriPath",
        path,
        10,
        128,
        r"^(/[a-zA-Z0-9/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$",
        path_ok,
        true,
    )
}

/// Both halves of `XksProxyAuthenticationCredential`, checked (never echoed).
fn check_credential(credential: &XksCredentialInput) -> KmsResult<(&str, &str)> {
    let access_key_id = credential
        .access_key_id
        .as_deref()
        .ok_or_else(|| null("xksProxyAuthenticationCredential.accessKeyId"))?;
    check(
        "xksProxyAuthenticationCredential.accessKeyId",
        access_key_id,
        20,
        30,
        "^[A-Z2-7]+$",
        access_key_id_ok,
        false,
    )?;
    let secret = credential
        .raw_secret_access_key
        .as_deref()
        .ok_or_else(|| null("xksProxyAuthenticationCredential.rawSecretAccessKey"))?;
    check(
        "xksProxyAuthenticationCredential.rawSecretAccessKey",
        secret,
        43,
        64,
        "^[a-zA-Z0-9/+=]+$",
        secret_ok,
        false,
    )?;
    Ok((access_key_id, secret.as_str()))
}

/// UpdateCustomKeyStore's `XksProxy*` members, checked before authorization (each is
/// optional; a credential needs both halves).
pub(crate) fn validate_update(input: &XksStoreInput) -> KmsResult<()> {
    if let Some(c) = input.connectivity.as_deref() {
        check_connectivity(c)?;
    }
    if let Some(e) = input.uri_endpoint.as_deref() {
        check_endpoint(e)?;
    }
    if let Some(p) = input.uri_path.as_deref() {
        check_path(p)?;
    }
    if let Some(c) = &input.credential {
        check_credential(c)?;
    }
    Ok(())
}

fn uri_in_use(endpoint: &str, path: &str) -> KmsError {
    KmsError::ExternalKeyStore {
        code: "XksProxyUriInUseException",
        message: format!(
            "The combination of XksProxyUriEndpoint {endpoint} and XksProxyUriPath {path} is already associated with an external key store in this account and Region."
        ),
    }
}

/// The AWS error a proxy failure is in a store-management call.
fn management_error(f: &XksFailure) -> KmsError {
    KmsError::ExternalKeyStore {
        code: f.store_management.code,
        message: f.store_management.message.to_string(),
    }
}

impl Kms {
    /// The same service reaching XKS proxies through `provider`. Set before serving.
    pub fn with_xks_provider(mut self, provider: Arc<dyn XksProvider>) -> Self {
        self.key_stores.xks = XksCustody {
            provider: Some(provider),
            proxies: RwLock::default(),
            health: RwLock::default(),
        };
        self
    }

    /// This node's client of a store's proxy, made (and kept) on first use.
    fn xks_proxy(&self, record: &CustomKeyStoreRecord) -> Result<Arc<dyn XksProxy>, KmsError> {
        let custody = &self.key_stores.xks;
        if let Some(p) = custody
            .proxies
            .read()
            .ok()
            .and_then(|m| m.get(&record.id).cloned())
        {
            return Ok(p);
        }
        let provider = custody.provider.clone().ok_or_else(|| {
            KmsError::UnsupportedOperation(
                "This Trent server has no XKS proxy client configured".into(),
            )
        })?;
        let config = configuration(record).ok_or_else(|| {
            KmsError::Internal(format!("store {} has no proxy configuration", record.id))
        })?;
        let secret = self
            .root
            .unwrap(&record.wrapped_password, &custom_key_store_aad(&record.id))?;
        let secret = String::from_utf8(secret.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| KmsError::Internal("stored proxy secret is not UTF-8".into()))?;
        let proxy = provider
            .proxy(XksProxyLocation {
                uri_endpoint: config.uri_endpoint,
                uri_path: config.uri_path,
                access_key_id: config.access_key_id,
                secret_access_key: secret,
                region: record.region.clone(),
            })
            .map_err(|f| management_error(&f))?;
        if let Ok(mut m) = custody.proxies.write() {
            m.insert(record.id.clone(), proxy.clone());
        }
        Ok(proxy)
    }

    pub(crate) fn forget_xks_proxy(&self, store_id: &str) {
        if let Ok(mut m) = self.key_stores.xks.proxies.write() {
            m.remove(store_id);
        }
        if let Ok(mut m) = self.key_stores.xks.health.write() {
            m.remove(store_id);
        }
        self.quotas.forget_custom_key_store(store_id);
    }

    /// The last periodic health check of XKS store `id` on this node, if one ran since it
    /// was connected.
    pub fn xks_store_health(&self, id: &str) -> Option<XksStoreHealth> {
        self.key_stores.xks.health.read().ok()?.get(id).cloned()
    }

    /// The periodic health check (AWS: kmsOperation `KmsHealthCheck`, every few minutes):
    /// GetHealthStatus of every XKS store persisted CONNECTED, concurrently, with no lock
    /// held across the calls; then each outcome is recorded only if the store still exists
    /// and is still CONNECTED with the same proxy configuration (a disconnect or update
    /// meanwhile wins). A change of health is logged. `trent serve` runs it every
    /// `[xks_client] health_check_interval_s`. Returns the outcomes recorded.
    pub async fn check_external_key_stores(&self) -> Vec<(String, XksStoreHealth)> {
        let Ok(stores) = self.store.custom_key_stores_by_cluster("").await else {
            return Vec::new();
        };
        let connected: Vec<CustomKeyStoreRecord> = stores
            .into_iter()
            .filter(|s| s.store_type == EXTERNAL_KEY_STORE && s.connection_state == CONNECTED)
            .collect();
        let checks = connected.iter().map(|record| async move {
            let outcome = match self.xks_proxy(record) {
                Ok(proxy) => proxy
                    .health(&XksRequestContext {
                        kms_request_id: uuid::Uuid::new_v4().to_string(),
                        kms_operation: "KmsHealthCheck".into(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|f| {
                        tracing::debug!(custom_key_store = %record.id, error = %f.detail, "XKS health check failed");
                        f.connection_error_code
                    }),
                Err(_) => Err("XKS_PROXY_INVALID_CONFIGURATION"),
            };
            (record, outcome.err())
        });
        let outcomes = futures_join_all(checks).await;
        let mut recorded = Vec::new();
        for (record, error_code) in outcomes {
            // Re-read: only a store unchanged since the call gets its outcome.
            let current = self
                .store
                .custom_key_stores(&record.account_id, &record.region)
                .await
                .ok()
                .and_then(|all| all.into_iter().find(|s| s.id == record.id));
            let unchanged = current.is_some_and(|c| {
                c.connection_state == CONNECTED
                    && c.trust_anchor_certificate == record.trust_anchor_certificate
                    && c.wrapped_password == record.wrapped_password
            });
            if !unchanged {
                continue;
            }
            let health = XksStoreHealth {
                error_code,
                checked_ms: self.clock.now_ms(),
            };
            let Ok(mut map) = self.key_stores.xks.health.write() else {
                continue;
            };
            let before = map.insert(record.id.clone(), health.clone());
            drop(map);
            let was = before.map(|b| b.error_code);
            if was != Some(error_code) {
                match error_code {
                    Some(code) => {
                        tracing::warn!(custom_key_store = %record.id, code, "XKS proxy health check failed: its keys' cryptographic operations fail until it recovers")
                    }
                    None if was.is_some() => {
                        tracing::info!(custom_key_store = %record.id, "XKS proxy healthy again")
                    }
                    None => {}
                }
            }
            recorded.push((record.id.clone(), health));
        }
        recorded
    }

    /// CreateCustomKeyStore of type EXTERNAL_KEY_STORE (validated name; the CloudHSM
    /// members already refused by the caller).
    pub(crate) async fn create_external_key_store(
        &self,
        caller: &Caller,
        name: &str,
        input: XksStoreInput,
    ) -> KmsResult<String> {
        // Validate, in the order of the members (the same checks as UpdateCustomKeyStore's).
        let connectivity = input
            .connectivity
            .as_deref()
            .ok_or_else(|| null("xksProxyConnectivity"))?;
        check_connectivity(connectivity)?;
        let endpoint = input
            .uri_endpoint
            .as_deref()
            .ok_or_else(|| null("xksProxyUriEndpoint"))?;
        check_endpoint(endpoint)?;
        let path = input
            .uri_path
            .as_deref()
            .ok_or_else(|| null("xksProxyUriPath"))?;
        check_path(path)?;
        let credential = input
            .credential
            .as_ref()
            .ok_or_else(|| null("xksProxyAuthenticationCredential"))?;
        let (access_key_id, secret) = check_credential(credential)?;
        if connectivity == VPC_ENDPOINT_SERVICE {
            // There is no VPC here: a VPC endpoint service can never be found.
            return Err(KmsError::ExternalKeyStore {
                code: "XksProxyVpcEndpointServiceNotFoundException",
                message: "Trent has no Amazon VPC endpoint services: use XksProxyConnectivity PUBLIC_ENDPOINT".into(),
            });
        }
        if input.vpc_endpoint_service_name.is_some() || input.vpc_endpoint_service_owner.is_some() {
            return Err(KmsError::Validation(
                "XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE".into(),
            ));
        }

        // Authorize (an IAM-only action on `*`).
        self.authorize(caller, "kms:CreateCustomKeyStore", Resource::Any)?;

        // Act: the account's other stores under the write lock, then the proxy's health (a
        // PUBLIC_ENDPOINT store's proxy must answer at create, as in AWS).
        let _w = self.writes.lock().await;
        let stores = self
            .store
            .custom_key_stores(&caller.account, &caller.region)
            .await?;
        if stores.iter().any(|s| s.name == name) {
            return Err(name_in_use(name));
        }
        let others: Vec<XksProxyConfiguration> = stores.iter().filter_map(configuration).collect();
        if others
            .iter()
            .any(|c| c.uri_endpoint == endpoint && c.uri_path == path)
        {
            return Err(KmsError::ExternalKeyStore {
                code: "XksProxyUriInUseException",
                message: format!(
                    "The combination of XksProxyUriEndpoint {endpoint} and XksProxyUriPath {path} is already associated with an external key store in this account and Region."
                ),
            });
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
        let config = XksProxyConfiguration {
            connectivity: connectivity.into(),
            access_key_id: access_key_id.into(),
            uri_endpoint: endpoint.into(),
            uri_path: path.into(),
            vpc_endpoint_service_name: None,
            vpc_endpoint_service_owner: None,
        };
        let record = CustomKeyStoreRecord {
            account_id: caller.account.to_string(),
            region: caller.region.to_string(),
            id: id.clone(),
            name: name.into(),
            store_type: EXTERNAL_KEY_STORE.into(),
            cluster_id: String::new(),
            trust_anchor_certificate: serde_json::to_string(&config)
                .map_err(|e| KmsError::Internal(e.to_string()))?,
            wrapped_password: self
                .root
                .wrap(secret.as_bytes(), &custom_key_store_aad(&id))?,
            connection_state: DISCONNECTED.into(),
            connection_error_code: None,
            created_ms: self.clock.now_ms(),
        };
        let proxy = self.xks_proxy(&record)?;
        let checked = proxy
            .health(&XksRequestContext {
                kms_request_id: uuid::Uuid::new_v4().to_string(),
                kms_operation: "CreateCustomKeyStore".into(),
                ..Default::default()
            })
            .await;
        if let Err(f) = checked {
            self.forget_xks_proxy(&id);
            tracing::warn!(error = %f.detail, "XKS proxy health check failed at CreateCustomKeyStore");
            return Err(management_error(&f));
        }
        self.store
            .insert_custom_key_store(&record)
            .await
            .map_err(|e| {
                self.forget_xks_proxy(&id);
                match e {
                    StoreError::AlreadyExists => name_in_use(name),
                    e => e.into(),
                }
            })?;
        Ok(id)
    }

    /// ConnectCustomKeyStore's network part for an XKS store: the proxy's GetHealthStatus
    /// (kmsOperation `ConnectCustomKeyStore`), giving the spec's `ConnectionErrorCode` on
    /// failure. Called **without** the write lock (the store is marked CONNECTING); the
    /// outcome is recorded by [`Kms::record_external_connect`] under it.
    pub(crate) async fn external_connect_outcome(
        &self,
        record: &CustomKeyStoreRecord,
    ) -> Result<(), &'static str> {
        match self.xks_proxy(record) {
            Ok(proxy) => proxy
                .health(&XksRequestContext {
                    kms_request_id: uuid::Uuid::new_v4().to_string(),
                    kms_operation: "ConnectCustomKeyStore".into(),
                    ..Default::default()
                })
                .await
                .map_err(|f| {
                    tracing::warn!(custom_key_store = %record.id, error = %f.detail, "XKS proxy health check failed at connect");
                    f.connection_error_code
                }),
            Err(KmsError::Internal(detail)) => {
                tracing::warn!(custom_key_store = %record.id, %detail, "XKS store unusable");
                Err("INTERNAL_ERROR")
            }
            Err(_) => Err("XKS_PROXY_INVALID_CONFIGURATION"),
        }
    }

    /// Records a connect's outcome on `record` (read again under the write lock, which the
    /// caller holds): CONNECTED, or FAILED with its code.
    pub(crate) async fn record_external_connect(
        &self,
        mut record: CustomKeyStoreRecord,
        outcome: Result<(), &'static str>,
    ) -> KmsResult<()> {
        match outcome {
            Ok(()) => {
                record.connection_state = CONNECTED.into();
                record.connection_error_code = None;
            }
            Err(code) => {
                record.connection_state = FAILED.into();
                record.connection_error_code = Some(code.into());
            }
        }
        self.store.update_custom_key_store(&record).await?;
        if let Ok(mut health) = self.key_stores.xks.health.write() {
            health.remove(&record.id);
        }
        // Keys cached while the store was disconnected read Unavailable: load them again.
        self.forget_store_keys(&record.id).await;
        Ok(())
    }

    /// UpdateCustomKeyStore of an XKS store with `XksProxy*` parameters (validated, and
    /// authorized by the caller, which holds no lock). AWS's rules: the name, the URI path
    /// and the credential may change while CONNECTED; the endpoint, connectivity and VPC
    /// endpoint service only while DISCONNECTED (`CustomKeyStoreInvalidStateException`).
    /// The new configuration must be unique (`XksProxyUriInUseException`) and its proxy
    /// must answer GetHealthStatus (the store-management errors), checked without the write
    /// lock; the change is written only if the store is still as it was read.
    pub(crate) async fn update_external_key_store(
        &self,
        caller: &Caller,
        input: crate::custom_key_stores::UpdateCustomKeyStoreInput,
    ) -> KmsResult<()> {
        let id = input.custom_key_store_id.as_str();
        let x = &input.xks;
        if x.vpc_endpoint_service_name.is_some() || x.vpc_endpoint_service_owner.is_some() {
            if x.connectivity.as_deref() == Some(VPC_ENDPOINT_SERVICE) {
                return Err(vpc_not_found());
            }
            return Err(KmsError::Validation(
                "XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE".into(),
            ));
        }
        if x.connectivity.as_deref() == Some(VPC_ENDPOINT_SERVICE) {
            return Err(vpc_not_found());
        }
        if input.key_store_password.is_some() || input.cloud_hsm_cluster_id.is_some() {
            return Err(KmsError::Validation(
                "KeyStorePassword and CloudHsmClusterId are valid only for an AWS_CLOUDHSM custom key store"
                    .into(),
            ));
        }
        let credential = x.credential.as_ref().map(check_credential).transpose()?;
        let wrapped_secret = credential
            .map(|(_, secret)| self.root.wrap(secret.as_bytes(), &custom_key_store_aad(id)))
            .transpose()?;

        // The change as it applies to the store now; computed again after the proxy call.
        let plan = |stores: &[CustomKeyStoreRecord]| -> KmsResult<CustomKeyStoreRecord> {
            let record = stores.iter().find(|s| s.id == id).ok_or_else(|| {
                KmsError::CustomKeyStoreNotFound(format!(
                    "Custom key store {id} does not exist in this account and Region."
                ))
            })?;
            let state = self.connection_state(record);
            let needs_disconnected = x.uri_endpoint.is_some() || x.connectivity.is_some();
            if !(state == DISCONNECTED || (state == CONNECTED && !needs_disconnected)) {
                return Err(KmsError::CustomKeyStoreInvalidState(format!(
                    "Custom key store {id} is in the {state} connection state: {}",
                    if needs_disconnected {
                        "to change its XksProxyUriEndpoint or XksProxyConnectivity, disconnect it first"
                    } else {
                        "only a CONNECTED or DISCONNECTED store can be updated"
                    }
                )));
            }
            let mut config = configuration(record).ok_or_else(|| {
                KmsError::Internal(format!("store {id} has no proxy configuration"))
            })?;
            if let Some(e) = &x.uri_endpoint {
                config.uri_endpoint.clone_from(e);
            }
            if let Some(p) = &x.uri_path {
                config.uri_path.clone_from(p);
            }
            if let Some(c) = &x.connectivity {
                config.connectivity.clone_from(c);
            }
            if let Some((akid, _)) = credential {
                config.access_key_id = akid.to_string();
            }
            if stores
                .iter()
                .filter(|s| s.id != id)
                .filter_map(configuration)
                .any(|c| c.uri_endpoint == config.uri_endpoint && c.uri_path == config.uri_path)
            {
                return Err(uri_in_use(&config.uri_endpoint, &config.uri_path));
            }
            let mut updated = record.clone();
            if let Some(name) = &input.new_custom_key_store_name {
                if stores.iter().any(|s| s.id != id && &s.name == name) {
                    return Err(name_in_use(name));
                }
                updated.name.clone_from(name);
            }
            updated.trust_anchor_certificate =
                serde_json::to_string(&config).map_err(|e| KmsError::Internal(e.to_string()))?;
            if let Some(w) = &wrapped_secret {
                updated.wrapped_password.clone_from(w);
            }
            Ok(updated)
        };

        let (before, updated) = {
            let _w = self.writes.lock().await;
            let stores = self
                .store
                .custom_key_stores(&caller.account, &caller.region)
                .await?;
            let updated = plan(&stores)?;
            let before = stores.into_iter().find(|s| s.id == id);
            (before, updated)
        };

        // The proxy, as the new configuration reaches it (a fresh client: the cached one
        // has the old configuration), without the lock.
        let provider = self.key_stores.xks.provider.clone().ok_or_else(|| {
            KmsError::UnsupportedOperation(
                "This Trent server has no XKS proxy client configured".into(),
            )
        })?;
        let config = configuration(&updated)
            .ok_or_else(|| KmsError::Internal(format!("store {id} has no proxy configuration")))?;
        let secret = self
            .root
            .unwrap(&updated.wrapped_password, &custom_key_store_aad(id))?;
        let secret = String::from_utf8(secret.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| KmsError::Internal("stored proxy secret is not UTF-8".into()))?;
        let proxy = provider
            .proxy(XksProxyLocation {
                uri_endpoint: config.uri_endpoint,
                uri_path: config.uri_path,
                access_key_id: config.access_key_id,
                secret_access_key: secret,
                region: updated.region.clone(),
            })
            .map_err(|f| management_error(&f))?;
        proxy
            .health(&XksRequestContext {
                kms_request_id: uuid::Uuid::new_v4().to_string(),
                kms_operation: "UpdateCustomKeyStore".into(),
                ..Default::default()
            })
            .await
            .map_err(|f| {
                tracing::warn!(custom_key_store = %id, error = %f.detail, "XKS proxy health check failed at UpdateCustomKeyStore");
                management_error(&f)
            })?;

        let _w = self.writes.lock().await;
        let stores = self
            .store
            .custom_key_stores(&caller.account, &caller.region)
            .await?;
        let current = stores.iter().find(|s| s.id == id).cloned();
        if current != before {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {id} was changed by another request while it was being updated: try again"
            )));
        }
        let updated = plan(&stores)?;
        self.store
            .update_custom_key_store(&updated)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => name_in_use(&updated.name),
                e => e.into(),
            })?;
        // The next call reaches the proxy with the new configuration.
        if let Ok(mut m) = self.key_stores.xks.proxies.write() {
            m.insert(id.to_string(), proxy);
        }
        if let Ok(mut m) = self.key_stores.xks.health.write() {
            m.remove(id);
        }
        Ok(())
    }

    /// CreateKey in an XKS store: the store must be of that type and connected, the
    /// external key not used by another KMS key of the store, and usable by KMS as the
    /// proxy's GetKeyMetadata describes it. The KMS key's own material (the inner layer of
    /// double encryption) is made here, and its material row holds it with `xks_key_id`.
    /// Call with the write lock held.
    pub(crate) async fn create_external_key(
        &self,
        caller: &Caller,
        store_id: &str,
        xks_key_id: &str,
        key_arn: &str,
        material_aad: &[u8],
    ) -> KmsResult<(KeyCustody, Vec<u8>, Material)> {
        let store = self.find_store(caller, store_id).await?;
        if store.store_type != EXTERNAL_KEY_STORE {
            return Err(KmsError::Validation(format!(
                "Origin EXTERNAL_KEY_STORE requires a custom key store of type EXTERNAL_KEY_STORE; {store_id} is of type {}",
                store.store_type
            )));
        }
        if store.connection_state != CONNECTED {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {store_id} is not connected. Connect it with ConnectCustomKeyStore and try again."
            )));
        }
        for key_id in self.store.custom_key_store_keys(store_id).await? {
            let Some(key) = self.load_key(&key_id).await? else {
                continue;
            };
            if let KeyCustody::External {
                xks_key_id: used, ..
            } = &key.record.custody
                && used == xks_key_id
            {
                return Err(KmsError::ExternalKeyStore {
                    code: "XksKeyAlreadyInUseException",
                    message: format!(
                        "The external key {xks_key_id} is already associated with KMS key {} in custom key store {store_id}.",
                        key.record.key_id
                    ),
                });
            }
        }
        let proxy = self.xks_proxy(&store)?;
        let ctx = XksRequestContext {
            kms_request_id: uuid::Uuid::new_v4().to_string(),
            kms_operation: "CreateKey".into(),
            aws_principal_arn: Some(caller.principal_arn.clone()),
            kms_key_arn: Some(key_arn.to_string()),
        };
        let info = proxy.key_metadata(xks_key_id, &ctx).await.map_err(|f| {
            tracing::warn!(custom_key_store = %store_id, error = %f.detail, "XKS GetKeyMetadata failed at CreateKey");
            KmsError::ExternalKeyStore {
                code: f.create_key.code,
                message: f.create_key.message.to_string(),
            }
        })?;
        if !info.usable_by_kms() {
            return Err(KmsError::ExternalKeyStore {
                code: "XksKeyInvalidConfigurationException",
                message: format!(
                    "The external key {xks_key_id} must be an AES_256 key enabled for ENCRYPT and DECRYPT; the proxy reports {} {} {}.",
                    info.key_spec,
                    info.key_usage.join(","),
                    info.key_status
                ),
            });
        }
        let (raw, material) = crate::material::generate_material(
            trent_crypto::spec::KeySpec::SymmetricDefault,
            trent_crypto::spec::KeyUsage::EncryptDecrypt,
        )?;
        let wrapped = self
            .root
            .wrap(&external_material(xks_key_id, &raw), material_aad)?;
        Ok((
            KeyCustody::External {
                held: StoreHeld {
                    custom_key_store_id: store.id.clone(),
                    cloud_hsm_cluster_id: String::new(),
                    available: true,
                },
                xks_key_id: xks_key_id.to_string(),
            },
            wrapped,
            material,
        ))
    }

    /// The material of an XKS key being loaded (Trent's own, unwrapped from its rows) and
    /// its external key id; the key is available while its store is persisted CONNECTED.
    pub(crate) async fn external_materials(
        &self,
        record: &mut KeyRecord,
        stored: &[StoredMaterial],
    ) -> KmsResult<HashMap<MaterialId, Arc<Material>>> {
        let mut out = HashMap::new();
        let (account, region) = (record.account_id.clone(), record.region.clone());
        let (key_spec, key_usage) = (record.key_spec, record.key_usage);
        let KeyCustody::External { held, xks_key_id } = &mut record.custody else {
            return Ok(out);
        };
        let connected = self
            .store
            .custom_key_stores(&account, &region)
            .await?
            .into_iter()
            .any(|s| s.id == held.custom_key_store_id && s.connection_state == CONNECTED);
        held.available = connected;
        for m in stored {
            let raw = self
                .root
                .unwrap(&m.wrapped, &material_aad(&m.key_id, &m.material_id))?;
            let (id, key) = parse_external_material(&raw).ok_or_else(|| {
                KmsError::Internal("stored external key material is not valid".into())
            })?;
            id.clone_into(xks_key_id);
            let material = crate::material::parse_material(key_spec, key_usage, key)?;
            out.insert(m.material_id, Arc::new(material));
        }
        Ok(out)
    }

    /// Double encryption's outer layer: `inner` (an ordinary blob under the key's own
    /// material) encrypted by the store's proxy under the external key.
    pub(crate) async fn external_seal(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        context: &BTreeMap<String, String>,
        inner: &[u8],
    ) -> KmsResult<Vec<u8>> {
        let (proxy, xks_key_id, ctx) = self.external_call(caller, key, "Encrypt").await?;
        let canonical = EncryptionContext::borrowed(context).canonical_bytes();
        proxy
            .seal(&xks_key_id, &ctx, key.uuid, &canonical, inner)
            .await
            .map_err(|f| crypto_error(key, &f))
    }

    /// The inner blob of an outer one, decrypted by the store's proxy.
    pub(crate) async fn external_open(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        context: &BTreeMap<String, String>,
        outer: &[u8],
    ) -> KmsResult<Zeroizing<Vec<u8>>> {
        let (proxy, xks_key_id, ctx) = self.external_call(caller, key, "Decrypt").await?;
        let canonical = EncryptionContext::borrowed(context).canonical_bytes();
        proxy
            .open(&xks_key_id, &ctx, &canonical, outer)
            .await
            .map_err(|f| crypto_error(key, &f))
    }

    async fn external_call(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        operation: &str,
    ) -> KmsResult<(Arc<dyn XksProxy>, String, XksRequestContext)> {
        let KeyCustody::External { held, xks_key_id } = &key.record.custody else {
            return Err(KmsError::Internal("not an external key store key".into()));
        };
        let store = self
            .store
            .custom_key_stores(&key.record.account_id, &key.record.region)
            .await?
            .into_iter()
            .find(|s| s.id == held.custom_key_store_id)
            .filter(|s| s.connection_state == CONNECTED)
            .ok_or_else(|| KmsError::InvalidState(format!("{} is unavailable.", key.arn())))?;
        // The store's shared request quota (AWS: per custom key store, all its keys).
        self.admit_custom_key_store(&store.id, &store.region)?;
        let proxy = self.xks_proxy(&store)?;
        Ok((
            proxy,
            xks_key_id.clone(),
            XksRequestContext {
                kms_request_id: uuid::Uuid::new_v4().to_string(),
                kms_operation: operation.into(),
                aws_principal_arn: Some(caller.principal_arn.clone()),
                kms_key_arn: Some(key.arn().to_string()),
            },
        ))
    }
}

/// Runs `futures` concurrently and returns their outputs in order (a `join_all` without a
/// new dependency: the checks are few, one per connected store).
async fn futures_join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// A proxy failure during a cryptographic operation: always `KMSInvalidStateException` with
/// the spec's fixed message for the outcome (a ciphertext the proxy cannot authenticate
/// too); the proxy's own detail only goes to the log.
fn crypto_error(key: &LoadedKey, f: &XksFailure) -> KmsError {
    tracing::warn!(key_id = %key.record.key_id, error = %f.detail, "XKS proxy call failed");
    KmsError::InvalidState(f.crypto.message.to_string())
}

const EXTERNAL_MATERIAL_PREFIX: &[u8] = b"trent:xks-key:v1:";

/// What an XKS key's material row holds (root-wrapped like any material): the external
/// key's id (length-prefixed) and the KMS key's own AES-256 key.
fn external_material(xks_key_id: &str, raw: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        EXTERNAL_MATERIAL_PREFIX.len() + 1 + xks_key_id.len() + raw.len(),
    ));
    out.extend_from_slice(EXTERNAL_MATERIAL_PREFIX);
    // XksKeyId is 1–128 characters (validated), so its length fits a byte.
    out.push(u8::try_from(xks_key_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(xks_key_id.as_bytes());
    out.extend_from_slice(raw);
    out
}

fn parse_external_material(raw: &[u8]) -> Option<(&str, &[u8])> {
    let rest = raw.strip_prefix(EXTERNAL_MATERIAL_PREFIX)?;
    let (len, rest) = rest.split_first()?;
    let len = usize::from(*len);
    let id = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some((id, rest.get(len..)?))
}

fn vpc_not_found() -> KmsError {
    KmsError::ExternalKeyStore {
        code: "XksProxyVpcEndpointServiceNotFoundException",
        message:
            "Trent has no Amazon VPC endpoint services: use XksProxyConnectivity PUBLIC_ENDPOINT"
                .into(),
    }
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
    fn parameter_patterns() {
        assert!(endpoint_ok("https://localhost"));
        assert!(endpoint_ok("https://xks.example.com"));
        assert!(!endpoint_ok("https://xks.example.com:8443"));
        assert!(!endpoint_ok("https://xks.example.com/path"));
        assert!(!endpoint_ok("http://xks.example.com"));
        assert!(path_ok("/kms/xks/v1"));
        assert!(path_ok("/tenant-a/kms/xks/v1"));
        assert!(path_ok("/a/b_c/kms/xks/v12"));
        assert!(!path_ok("/kms/xks/v123"));
        assert!(!path_ok("/kms/xks/v"));
        assert!(!path_ok("kms/xks/v1"));
        assert!(!path_ok("/ten ant/kms/xks/v1"));
        assert!(access_key_id_ok("AKIAXKSPROXYTESTKEY2345"));
        assert!(!access_key_id_ok("AKIAXKSPROXYTESTKEY2389"));
        assert!(secret_ok("K7gm0U1p5fKZC7mXxSV9o8bR8T2wXQ0hZ7R7mNn4gXs="));
        assert!(!secret_ok("with space"));
    }
}
