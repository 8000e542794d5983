//! IAM entities and their stored form: versioned JSON documents (`"v": 1`), one per entity.
//!
//! These derive serde because this *is* their storage format; the wire (XML) shapes live in the
//! edge. Policy documents are kept as the caller's JSON text (IAM returns them as given).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::IamDocument;

use super::IamResult;
use super::error::IamError;

pub const KIND_USER: &str = "user";
pub const KIND_GROUP: &str = "group";
pub const KIND_ROLE: &str = "role";
pub const KIND_POLICY: &str = "policy";

fn version_1() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    #[serde(default = "version_1")]
    pub v: u32,
    pub name: String,
    pub path: String,
    pub id: String,
    pub created_ms: i64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Group {
    #[serde(default = "version_1")]
    pub v: u32,
    pub name: String,
    pub path: String,
    pub id: String,
    pub created_ms: i64,
    #[serde(default)]
    pub members: BTreeSet<String>,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Role {
    #[serde(default = "version_1")]
    pub v: u32,
    pub name: String,
    pub path: String,
    pub id: String,
    pub created_ms: i64,
    pub trust_policy: String,
    /// The unique ids the trust policy's user and role principals were bound to when it was
    /// set (ARN → `AIDA…`/`AROA…`; `authz/bindings.rs`): AssumeRole matches them by id,
    /// GetRole shows the id of one since deleted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trust_principals: BTreeMap<String, String>,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    #[serde(default)]
    pub attached: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyVersion {
    pub id: String,
    pub document: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManagedPolicy {
    #[serde(default = "version_1")]
    pub v: u32,
    pub name: String,
    pub path: String,
    pub id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
    pub next_version: u32,
}

impl ManagedPolicy {
    /// The policy's ARN in `account` (an AWS managed policy's is the same in every account).
    pub fn arn(&self, account: &str) -> String {
        let account = if super::aws_managed::is_aws_managed(self) {
            "aws"
        } else {
            account
        };
        super::entity_arn(account, "policy", &self.path, &self.name)
    }

    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.id == self.default_version)
            .map(|v| v.document.as_str())
    }
}

/// A record that is stored as one IAM document.
pub trait IamRecord: Serialize + for<'de> Deserialize<'de> {
    const KIND: &'static str;
    fn name(&self) -> &str;

    fn to_document(&self, account: &str) -> IamResult<IamDocument> {
        Ok(IamDocument {
            account_id: account.to_string(),
            kind: Self::KIND.to_string(),
            name: self.name().to_string(),
            body: serde_json::to_string(self)
                .map_err(|e| IamError::ServiceFailure(e.to_string()))?,
        })
    }
}

impl IamRecord for User {
    const KIND: &'static str = KIND_USER;
    fn name(&self) -> &str {
        &self.name
    }
}
impl IamRecord for Group {
    const KIND: &'static str = KIND_GROUP;
    fn name(&self) -> &str {
        &self.name
    }
}
impl IamRecord for Role {
    const KIND: &'static str = KIND_ROLE;
    fn name(&self) -> &str {
        &self.name
    }
}
impl IamRecord for ManagedPolicy {
    const KIND: &'static str = KIND_POLICY;
    fn name(&self) -> &str {
        &self.name
    }
}
