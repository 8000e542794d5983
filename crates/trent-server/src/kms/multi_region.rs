//! Multi-Region key operations: ReplicateKey, UpdatePrimaryRegion, and the
//! `MultiRegionConfiguration` member of `KeyMetadata`.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use trent_core::model::KeyRecord;
use trent_core::multi_region::ReplicateKeyInput;
use trent_core::{Caller, Kms};

use super::error::ApiError;
use super::operations::{key_metadata, parse, to_json};
use super::shapes::TagShape;

type ApiResult = Result<Vec<u8>, ApiError>;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReplicateKeyRequest {
    pub key_id: Option<String>,
    pub replica_region: Option<String>,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub description: Option<String>,
    pub tags: Option<Vec<TagShape>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdatePrimaryRegionRequest {
    pub key_id: Option<String>,
    pub primary_region: Option<String>,
}

pub async fn replicate_key(kms: &Kms, caller: &Caller, body: &[u8]) -> ApiResult {
    let r: ReplicateKeyRequest = parse(body)?;
    let out = kms
        .replicate_key(
            caller,
            ReplicateKeyInput {
                key_id: r.key_id,
                replica_region: r.replica_region,
                policy: r.policy,
                bypass_policy_lockout_safety_check: r.bypass_policy_lockout_safety_check,
                description: r.description,
                tags: r
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            },
        )
        .await?;
    let tags: Vec<TagShape> = out.tags.iter().map(TagShape::from).collect();
    let mut answer = json!({
        "ReplicaKeyMetadata": key_metadata(&out.replica),
        "ReplicaPolicy": out.policy,
    });
    // AWS leaves ReplicaTags out when the replica has none (recorded: test_replicate_key).
    if !tags.is_empty()
        && let Some(fields) = answer.as_object_mut()
    {
        fields.insert("ReplicaTags".into(), json!(tags));
    }
    to_json(&answer)
}

pub async fn update_primary_region(kms: &Kms, caller: &Caller, body: &[u8]) -> ApiResult {
    let r: UpdatePrimaryRegionRequest = parse(body)?;
    kms.update_primary_region(caller, r.key_id.as_deref(), r.primary_region.as_deref())
        .await?;
    to_json(&json!({}))
}

/// Adds `MultiRegionConfiguration` to a multi-Region key's `KeyMetadata`: the primary (with
/// its ARN and Region) and the replicas, as AWS shows them.
pub fn add_key_metadata(m: &mut Map<String, Value>, r: &KeyRecord) {
    if !r.multi_region {
        return;
    }
    let key = |region: &str| {
        json!({
            "Arn": trent_core::ids::key_arn(region, &r.account_id, r.public_id()),
            "Region": region,
        })
    };
    let primary_region = r.lifecycle.primary_region.as_deref().unwrap_or(&r.region);
    let replicas: Vec<Value> = r
        .lifecycle
        .replica_regions
        .iter()
        .map(|region| key(region))
        .collect();
    m.insert(
        "MultiRegionConfiguration".into(),
        json!({
            "MultiRegionKeyType": if r.is_primary() { "PRIMARY" } else { "REPLICA" },
            "PrimaryKey": key(primary_region),
            "ReplicaKeys": replicas,
        }),
    );
}
