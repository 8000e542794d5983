//! Who is calling: the authenticated principal and the request facts authorization needs.

use std::net::IpAddr;

/// The kind of principal behind a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root (`arn:aws:iam::ACCOUNT:root`).
    Root,
}

/// An authenticated caller. Built by the edge after SigV4 verification.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub principal_arn: String,
    pub kind: PrincipalKind,
    pub access_key_id: String,
    /// The region of the request's SigV4 credential scope: the region the call is served in.
    pub region: String,
    pub source_ip: Option<IpAddr>,
    pub secure_transport: bool,
}

impl Caller {
    /// The account root of `account`, calling in `region`.
    pub fn root(account: &str, access_key_id: &str, region: &str) -> Self {
        Self {
            account: account.to_string(),
            principal_arn: format!("arn:aws:iam::{account}:root"),
            kind: PrincipalKind::Root,
            access_key_id: access_key_id.to_string(),
            region: region.to_string(),
            source_ip: None,
            secure_transport: false,
        }
    }
}
