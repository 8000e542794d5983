//! Who is calling: the authenticated principal and the request facts authorization needs.

use std::net::IpAddr;

/// The kind of principal behind a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The account root (`arn:aws:iam::ACCOUNT:root`).
    Root,
    /// An IAM user.
    User {
        name: String,
        path: String,
        user_id: String,
    },
    /// A session of an assumed role (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    AssumedRole {
        role_name: String,
        role_path: String,
        role_id: String,
        session_name: String,
    },
}

/// An authenticated caller. Built after SigV4 verification from the credential and the IAM
/// directory.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub principal_arn: String,
    pub identity: Identity,
    pub access_key_id: String,
    /// The region of the request's SigV4 credential scope: the region the call is served in.
    pub region: String,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
    /// Principal tags (users and roles; session tags are not modelled yet).
    pub tags: Vec<(String, String)>,
    /// Whether the credentials are temporary (STS).
    pub temporary: bool,
    /// Grants carried by the request's `GrantTokens` (already opened and authenticated).
    pub token_grants: Vec<std::sync::Arc<crate::grants::Grant>>,
}

impl Caller {
    /// The account root of `account`, calling in `region` with long-term credentials.
    pub fn root(account: &str, access_key_id: &str, region: &str) -> Self {
        Self {
            account: account.to_string(),
            principal_arn: format!("arn:aws:iam::{account}:root"),
            identity: Identity::Root,
            access_key_id: access_key_id.to_string(),
            region: region.to_string(),
            source_ip: None,
            secure_transport: false,
            tags: Vec::new(),
            temporary: false,
            token_grants: Vec::new(),
        }
    }

    /// The principal as the policy evaluator sees it.
    pub fn policy_principal(&self) -> trent_policy::Principal {
        match &self.identity {
            Identity::Root => trent_policy::Principal::root(&self.account),
            Identity::User { .. } => {
                trent_policy::Principal::user(&self.account, &self.principal_arn)
            }
            Identity::AssumedRole { .. } => trent_policy::Principal::assumed_role(
                &self.account,
                &self.principal_arn,
                &self.principal_role_arn(),
            ),
        }
    }

    /// `aws:PrincipalArn`: for a role session, the role's ARN (with its path).
    pub fn principal_role_arn(&self) -> String {
        match &self.identity {
            Identity::AssumedRole {
                role_name,
                role_path,
                ..
            } => {
                format!(
                    "arn:aws:iam::{}:role{}{}",
                    self.account, role_path, role_name
                )
            }
            _ => self.principal_arn.clone(),
        }
    }

    /// `aws:userid`.
    pub fn user_id(&self) -> String {
        match &self.identity {
            Identity::Root => self.account.clone(),
            Identity::User { user_id, .. } => user_id.clone(),
            Identity::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
        }
    }

    /// `aws:PrincipalType`.
    pub fn principal_type(&self) -> &'static str {
        match self.identity {
            Identity::Root => "Account",
            Identity::User { .. } => "User",
            Identity::AssumedRole { .. } => "AssumedRole",
        }
    }
}
