//! The custom key store operations on the wire: CreateCustomKeyStore,
//! DescribeCustomKeyStores, UpdateCustomKeyStore, DeleteCustomKeyStore,
//! ConnectCustomKeyStore, DisconnectCustomKeyStore (`trent_core::custom_key_stores`).
//! `KeyStorePassword` goes from the request straight into a zeroizing string and is never
//! echoed.

use serde::{Deserialize, Serialize};
use trent_core::custom_key_stores::{
    CreateCustomKeyStoreInput, CustomKeyStoreEntry, UpdateCustomKeyStoreInput,
};
use trent_core::external_key_stores::{XksCredentialInput, XksProxyConfiguration, XksStoreInput};
use trent_core::{Caller, Kms, KmsError};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::operation::Operation;
use super::operations::{empty, parse, to_json};
use super::shapes::epoch_seconds;

type ApiResult = Result<Vec<u8>, ApiError>;

/// Answers the custom key store operations; `None` for any other.
pub async fn dispatch(
    kms: &Kms,
    caller: &Caller,
    operation: Operation,
    body: &[u8],
) -> Option<ApiResult> {
    Some(match operation {
        Operation::CreateCustomKeyStore => create(kms, caller, body).await,
        Operation::DescribeCustomKeyStores => describe(kms, caller, body).await,
        Operation::UpdateCustomKeyStore => update(kms, caller, body).await,
        Operation::DeleteCustomKeyStore => {
            match parse::<StoreIdRequest>(body)
                .and_then(|r| required("customKeyStoreId", r.custom_key_store_id))
            {
                Ok(id) => match kms.delete_custom_key_store(caller, &id).await {
                    Ok(()) => empty(),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            }
        }
        Operation::ConnectCustomKeyStore => {
            match parse::<StoreIdRequest>(body)
                .and_then(|r| required("customKeyStoreId", r.custom_key_store_id))
            {
                Ok(id) => match kms.connect_custom_key_store(caller, &id).await {
                    Ok(()) => empty(),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            }
        }
        Operation::DisconnectCustomKeyStore => {
            match parse::<StoreIdRequest>(body)
                .and_then(|r| required("customKeyStoreId", r.custom_key_store_id))
            {
                Ok(id) => match kms.disconnect_custom_key_store(caller, &id).await {
                    Ok(()) => empty(),
                    Err(e) => Err(e.into()),
                },
                Err(e) => Err(e),
            }
        }
        _ => return None,
    })
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::Domain(KmsError::Validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        )))
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct StoreIdRequest {
    custom_key_store_id: Option<String>,
}

/// The `XksProxy*` members. The credential's secret goes straight into a zeroizing string.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct XksMembers {
    xks_proxy_uri_endpoint: Option<String>,
    xks_proxy_uri_path: Option<String>,
    xks_proxy_vpc_endpoint_service_name: Option<String>,
    xks_proxy_vpc_endpoint_service_owner: Option<String>,
    xks_proxy_authentication_credential: Option<XksCredential>,
    xks_proxy_connectivity: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct XksCredential {
    access_key_id: Option<String>,
    raw_secret_access_key: Option<Zeroizing<String>>,
}

impl XksMembers {
    fn any(&self) -> bool {
        self.xks_proxy_uri_endpoint.is_some()
            || self.xks_proxy_uri_path.is_some()
            || self.xks_proxy_vpc_endpoint_service_name.is_some()
            || self.xks_proxy_vpc_endpoint_service_owner.is_some()
            || self.xks_proxy_authentication_credential.is_some()
            || self.xks_proxy_connectivity.is_some()
    }

    fn input(self) -> XksStoreInput {
        XksStoreInput {
            uri_endpoint: self.xks_proxy_uri_endpoint,
            uri_path: self.xks_proxy_uri_path,
            connectivity: self.xks_proxy_connectivity,
            vpc_endpoint_service_name: self.xks_proxy_vpc_endpoint_service_name,
            vpc_endpoint_service_owner: self.xks_proxy_vpc_endpoint_service_owner,
            credential: self
                .xks_proxy_authentication_credential
                .map(|c| XksCredentialInput {
                    access_key_id: c.access_key_id,
                    raw_secret_access_key: c.raw_secret_access_key,
                }),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateRequest {
    custom_key_store_name: Option<String>,
    custom_key_store_type: Option<String>,
    cloud_hsm_cluster_id: Option<String>,
    trust_anchor_certificate: Option<String>,
    key_store_password: Option<Zeroizing<String>>,
    #[serde(flatten)]
    xks: XksMembers,
}

async fn create(kms: &Kms, caller: &Caller, body: &[u8]) -> ApiResult {
    let r: CreateRequest = parse(body)?;
    let name = required("customKeyStoreName", r.custom_key_store_name)?;
    let id = kms
        .create_custom_key_store(
            caller,
            CreateCustomKeyStoreInput {
                custom_key_store_name: name,
                custom_key_store_type: r.custom_key_store_type,
                cloud_hsm_cluster_id: r.cloud_hsm_cluster_id,
                trust_anchor_certificate: r.trust_anchor_certificate,
                key_store_password: r.key_store_password,
                xks_parameters: r.xks.any(),
                xks: r.xks.input(),
            },
        )
        .await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        custom_key_store_id: String,
    }
    to_json(&Response {
        custom_key_store_id: id,
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DescribeRequest {
    custom_key_store_id: Option<String>,
    custom_key_store_name: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Entry<'a> {
    custom_key_store_id: &'a str,
    custom_key_store_name: &'a str,
    custom_key_store_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud_hsm_cluster_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_anchor_certificate: Option<&'a str>,
    connection_state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_error_code: Option<&'a str>,
    creation_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    xks_proxy_configuration: Option<&'a XksProxyConfiguration>,
}

fn entry(e: &CustomKeyStoreEntry) -> Entry<'_> {
    Entry {
        custom_key_store_id: &e.custom_key_store_id,
        custom_key_store_name: &e.custom_key_store_name,
        custom_key_store_type: &e.custom_key_store_type,
        // Only CloudHSM stores have these (an XKS store's are empty).
        cloud_hsm_cluster_id: Some(e.cloud_hsm_cluster_id.as_str()).filter(|s| !s.is_empty()),
        trust_anchor_certificate: Some(e.trust_anchor_certificate.as_str())
            .filter(|s| !s.is_empty()),
        connection_state: &e.connection_state,
        connection_error_code: e.connection_error_code.as_deref(),
        creation_date: epoch_seconds(e.creation_date_ms),
        xks_proxy_configuration: e.xks_proxy_configuration.as_ref(),
    }
}

async fn describe(kms: &Kms, caller: &Caller, body: &[u8]) -> ApiResult {
    let r: DescribeRequest = parse(body)?;
    let list = kms
        .describe_custom_key_stores(
            caller,
            r.custom_key_store_id.as_deref(),
            r.custom_key_store_name.as_deref(),
            r.limit,
            r.marker.as_deref(),
        )
        .await?;
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response<'a> {
        custom_key_stores: Vec<Entry<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_marker: Option<&'a str>,
        truncated: bool,
    }
    to_json(&Response {
        custom_key_stores: list.custom_key_stores.iter().map(entry).collect(),
        next_marker: list.next_marker.as_deref(),
        truncated: list.next_marker.is_some(),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateRequest {
    custom_key_store_id: Option<String>,
    new_custom_key_store_name: Option<String>,
    key_store_password: Option<Zeroizing<String>>,
    cloud_hsm_cluster_id: Option<String>,
    #[serde(flatten)]
    xks: XksMembers,
}

async fn update(kms: &Kms, caller: &Caller, body: &[u8]) -> ApiResult {
    let r: UpdateRequest = parse(body)?;
    let id = required("customKeyStoreId", r.custom_key_store_id)?;
    kms.update_custom_key_store(
        caller,
        UpdateCustomKeyStoreInput {
            custom_key_store_id: id,
            new_custom_key_store_name: r.new_custom_key_store_name,
            key_store_password: r.key_store_password,
            cloud_hsm_cluster_id: r.cloud_hsm_cluster_id,
            xks_parameters: r.xks.any(),
            xks: r.xks.input(),
        },
    )
    .await?;
    empty()
}
