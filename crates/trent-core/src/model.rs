//! The records Trent keeps: accounts, access keys, keys, key material, aliases.
//!
//! These are domain values, not wire shapes: they are not `Serialize`, and key material appears
//! here only wrapped under the root key.

use trent_crypto::MaterialId;

pub use crate::lifecycle::{
    ExpirationModel, ImportParams, KeyLifecycle, RotationRecord, RotationType,
};
use trent_crypto::spec::{KeySpec, KeyState, KeyUsage, Origin};

/// An AWS account served by this Trent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account_id: String,
    pub created_ms: i64,
}

/// A long-term access key. The secret is stored wrapped under the root key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub account_id: String,
    pub principal_arn: String,
    /// The unique id (AIDA…) of the user the key belongs to, so that a re-created user of the
    /// same name is never authenticated by it; `None` for root keys and for keys stored before
    /// schema version 8 (bound at start-up to the user then of that name).
    pub principal_id: Option<String>,
    pub wrapped_secret: Vec<u8>,
    pub active: bool,
    pub created_ms: i64,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("principal_arn", &self.principal_arn)
            .field("principal_id", &self.principal_id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A KMS key's metadata (everything but its material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key_id: String,
    pub account_id: String,
    pub region: String,
    pub created_ms: i64,
    pub description: String,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    pub origin: Origin,
    pub state: KeyState,
    pub policy: String,
    /// The unique id (`AIDA…`/`AROA…`) each IAM user or role ARN of `policy` named when the
    /// policy was set: evaluation matches those principals by id, GetKeyPolicy shows the id of
    /// one since deleted (`authz/bindings.rs`). Stored with the policy
    /// ([`encode_principal_bindings`]); empty for policies stored before bindings existed.
    pub policy_principals: PrincipalBindings,
    /// Tags in key order.
    pub tags: Vec<Tag>,
    pub current_material: MaterialId,
    pub multi_region: bool,
    /// Rotation schedule, pending deletion and imported-material expiry (see `lifecycle.rs`).
    pub lifecycle: KeyLifecycle,
    /// Who holds the key's material: Trent, or a custom key store.
    pub custody: KeyCustody,
}

/// IAM user or role ARN → the unique id of the entity that held it when a policy was set.
pub type PrincipalBindings = std::collections::BTreeMap<String, String>;

/// The stored form of [`PrincipalBindings`] (one text column, `None` when empty): a JSON object
/// from ARN to unique id.
pub fn encode_principal_bindings(bindings: &PrincipalBindings) -> Option<String> {
    if bindings.is_empty() {
        return None;
    }
    serde_json::to_string(bindings).ok()
}

/// Parses [`encode_principal_bindings`]' form (`None`/NULL: no bindings); `None` if it is not
/// one.
pub fn decode_principal_bindings(stored: Option<&str>) -> Option<PrincipalBindings> {
    match stored {
        None => Some(PrincipalBindings::new()),
        Some(text) => serde_json::from_str(text).ok(),
    }
}

/// Who holds a key's material. Stores persist the custom key store id of a store-held key
/// (fixed at creation); the rest of [`StoreHeld`] is what this node found when it loaded the
/// key. A new kind of store-held key is a new variant, not a flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyCustody {
    /// Trent's own material, root-wrapped in the database.
    #[default]
    BuiltIn,
    /// An AWS_CLOUDHSM key store: a non-extractable AES-256 key in the store's token,
    /// labelled with the key id (Origin `AWS_CLOUDHSM`).
    CloudHsm(StoreHeld),
    /// An EXTERNAL_KEY_STORE key store (Origin `EXTERNAL_KEY_STORE`): double encryption,
    /// Trent's own AES-256 material inside, the proxy's external key outside.
    External {
        held: StoreHeld,
        /// `XksKeyId`, the proxy's key; read with the material (it is kept, root-wrapped,
        /// in the material row), so empty until the key is loaded.
        xks_key_id: String,
    },
}

/// A key held in a custom key store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreHeld {
    /// The store (`cks-…`); persisted.
    pub custom_key_store_id: String,
    /// The store's cluster when the key was loaded (a store's cluster may be replaced by a
    /// related one); not persisted.
    pub cloud_hsm_cluster_id: String,
    /// Whether the store was connected and the key found in it when the key was loaded on
    /// this node; not persisted. While `false` the key's state reads `Unavailable`.
    pub available: bool,
}

impl KeyCustody {
    /// The custody a store reads back: the kind from the key's origin, the store from its
    /// column. `None` when they do not fit together (a corrupt row).
    pub fn from_stored(origin: Origin, custom_key_store_id: Option<String>) -> Option<Self> {
        match (origin, custom_key_store_id) {
            (Origin::AwsCloudHsm, Some(id)) => Some(Self::CloudHsm(StoreHeld {
                custom_key_store_id: id,
                ..Default::default()
            })),
            (Origin::ExternalKeyStore, Some(id)) => Some(Self::External {
                held: StoreHeld {
                    custom_key_store_id: id,
                    ..Default::default()
                },
                xks_key_id: String::new(),
            }),
            (Origin::AwsCloudHsm | Origin::ExternalKeyStore, None) | (_, Some(_)) => None,
            (_, None) => Some(Self::BuiltIn),
        }
    }

    /// The store holding the key, if a custom key store does.
    pub fn held(&self) -> Option<&StoreHeld> {
        match self {
            Self::BuiltIn => None,
            Self::CloudHsm(held) | Self::External { held, .. } => Some(held),
        }
    }

    /// The custom key store id to persist with the key.
    pub fn custom_key_store_id(&self) -> Option<&str> {
        self.held().map(|h| h.custom_key_store_id.as_str())
    }
}

impl KeyRecord {
    pub fn arn(&self) -> String {
        crate::ids::key_arn(&self.region, &self.account_id, &self.key_id)
    }

    /// The state callers see: `Unavailable` for an Enabled or Disabled key whose custom key
    /// store is not connected (AWS's rule; PendingDeletion stays PendingDeletion so deletion
    /// can still be cancelled). The stored state is kept, so a reconnect restores it.
    pub fn effective_state(&self) -> KeyState {
        match (&self.state, self.custody.held()) {
            (KeyState::Enabled | KeyState::Disabled, Some(held)) if !held.available => {
                KeyState::Unavailable
            }
            (state, _) => *state,
        }
    }

    /// The key id callers see (a multi-Region key's without its Region suffix).
    pub fn public_id(&self) -> &str {
        crate::ids::public_key_id(&self.key_id)
    }

    /// Whether this is the primary key of a multi-Region family.
    pub fn is_primary(&self) -> bool {
        self.multi_region && self.lifecycle.primary_region.as_deref() == Some(&*self.region)
    }

    /// Whether this is a replica key of a multi-Region family.
    pub fn is_replica(&self) -> bool {
        self.multi_region && !self.is_primary()
    }

    /// The regional id of the family member in `region` (multi-Region keys only).
    pub fn related_key_id(&self, region: &str) -> String {
        crate::ids::regional_key_id(self.public_id(), region)
    }

    /// The Regions of every key in this key's multi-Region family, primary first.
    pub fn family_regions(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lifecycle.primary_region.iter().cloned().collect();
        out.extend(self.lifecycle.replica_regions.iter().cloned());
        out
    }
}

/// One version of a key's material, wrapped under the root key with AAD
/// [`material_aad`]`(key_id, material_id)`.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredMaterial {
    pub key_id: String,
    pub material_id: MaterialId,
    pub wrapped: Vec<u8>,
    pub created_ms: i64,
}

impl std::fmt::Debug for StoredMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMaterial")
            .field("key_id", &self.key_id)
            .field("material_id", &self.material_id)
            .finish_non_exhaustive()
    }
}

/// What the root-key wrap of a piece of key material is bound to, so wrapped material cannot
/// be moved to another key or version. A multi-Region key's material is bound to the family's
/// public id: related keys share their material, so the same wrapped bytes serve every Region.
pub fn material_aad(key_id: &str, material_id: &MaterialId) -> Vec<u8> {
    let key_id = crate::ids::public_key_id(key_id);
    format!("trent:key-material:v1:{key_id}:{}", material_id.to_hex()).into_bytes()
}

/// What the root-key wrap of an access key's secret is bound to.
pub fn secret_aad(access_key_id: &str) -> Vec<u8> {
    format!("trent:access-key-secret:v1:{access_key_id}").into_bytes()
}

/// An alias: a friendly name for one key in one account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRecord {
    pub account_id: String,
    pub region: String,
    pub alias_name: String,
    pub target_key_id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl AliasRecord {
    pub fn arn(&self) -> String {
        crate::ids::alias_arn(&self.region, &self.account_id, &self.alias_name)
    }
}

/// A document-shaped IAM entity (user, group, role, managed policy) as stored: the domain owns
/// its JSON encoding (`iam::records`), the store keeps it opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamDocument {
    pub account_id: String,
    pub kind: String,
    pub name: String,
    pub body: String,
}

/// Temporary credentials issued by STS. The secret is wrapped under the root key; only the
/// SHA-256 of the session token is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub access_key_id: String,
    pub account_id: String,
    /// `root`, `user:<name>` or `role:<role name>:<session name>`.
    pub identity: String,
    pub wrapped_secret: Vec<u8>,
    pub token_sha256: Vec<u8>,
    pub expires_ms: i64,
    pub created_ms: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("identity", &self.identity)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// A stored grant: its id, key, retiring principal (for ListRetirableGrants), the domain-owned
/// JSON body (`grants::Grant`), and when it was retired or revoked (kept as a tombstone so a
/// grant token of a retired grant is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub grant_id: String,
    pub key_id: String,
    pub retiring_principal: Option<String>,
    pub body: String,
    pub retired_ms: Option<i64>,
}

/// One row of the change feed: a write to table `source` another node may hold in a cache
/// (see `feed.rs`). Written by the store in the same transaction as the write itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Increasing, assigned at write time (a later commit may carry a smaller id).
    pub id: i64,
    /// The table written: `keys`, `key_materials`, `aliases`, `grants`, `access_keys`,
    /// `sessions`, `iam_entities`, `accounts`, `service_settings`.
    pub source: String,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// The key concerned (an alias's target).
    pub key_id: Option<String>,
    /// The row's own name: alias name, access key id, grant id, IAM entity or setting name.
    pub name: Option<String>,
    /// Whether this store handle (this node) made the change: its caches already have it.
    pub own: bool,
}

/// A custom key store (`custom_key_stores.rs`): an AWS_CLOUDHSM-type store backed by an HSM
/// cluster the operator declared. `connection_state` is the last persisted state
/// (`CONNECTED`, `DISCONNECTED` or `FAILED`; the transient ones live only in memory).
#[derive(Clone, PartialEq, Eq)]
pub struct CustomKeyStoreRecord {
    pub account_id: String,
    pub region: String,
    /// `cks-` and 17 hexadecimal digits.
    pub id: String,
    /// Unique per account and Region.
    pub name: String,
    /// `AWS_CLOUDHSM`.
    pub store_type: String,
    pub cluster_id: String,
    pub trust_anchor_certificate: String,
    /// The key store password (the token's user PIN), wrapped under the root key with
    /// [`custom_key_store_aad`].
    pub wrapped_password: Vec<u8>,
    pub connection_state: String,
    /// AWS's `ConnectionErrorCode`, only with `FAILED`.
    pub connection_error_code: Option<String>,
    pub created_ms: i64,
}

impl std::fmt::Debug for CustomKeyStoreRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomKeyStoreRecord")
            .field("account_id", &self.account_id)
            .field("region", &self.region)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("cluster_id", &self.cluster_id)
            .field("connection_state", &self.connection_state)
            .finish_non_exhaustive()
    }
}

/// The AAD a custom key store's password is wrapped with: it names the store, so a wrapped
/// password copied onto another store does not unwrap.
pub fn custom_key_store_aad(id: &str) -> Vec<u8> {
    format!("trent:custom-key-store-password:v1:{id}").into_bytes()
}
