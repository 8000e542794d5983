//! Integrated services: services (AWS's, like `autoscaling.amazonaws.com`, or a platform's
//! own, like `storage.example.internal`) that call KMS for their customers.
//!
//! An operator registers a service by its service principal name; the service gets
//! credentials derived from the root key (the same on every node sharing it, nothing stored).
//! Calls signed with them are the service's own. A service may then
//! - assume its service-linked role in a customer account (`sts.rs`: only it may) and call KMS
//!   as that role;
//! - call KMS on behalf of a customer who called the service moments before (forward access):
//!   the customer's own SigV4-signed request to the service is the proof. The edge verifies that
//!   signature with the customer's credential (so a service can only act for someone who signed
//!   a request to it, within SigV4's five-minute window) and [`Kms::forwarded_caller`] checks
//!   that the request was signed *for this service* (its credential scope names the service's
//!   signing name), so one service cannot use a request meant for another.
//!
//! The protocol is written up in `docs/integrated-services.md`.

use std::sync::Arc;

use base64::Engine;
use zeroize::Zeroizing;

use crate::caller::{Caller, ForwardedBy, Identity};
use crate::credentials::{Credential, CredentialIdentity};
use crate::error::{KmsError, KmsResult};
use crate::service::Kms;

/// An integrated service's credentials, as the operator hands them over.
pub struct ServiceCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

/// Whether `name` is a service principal name Trent accepts: DNS-like labels of lower-case
/// letters, digits and hyphens, at least two of them.
pub fn valid_service_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 128
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// The SigV4 service name a customer signs requests to the service with: the first label of
/// an `*.amazonaws.com` name (`autoscaling`), else the whole name.
pub fn signing_name(service: &str) -> &str {
    match service.strip_suffix(".amazonaws.com") {
        Some(rest) => rest.split('.').next().unwrap_or(rest),
        None => service,
    }
}

/// `kms:ViaService` of a call the service makes in `region`: `<name>.<region>.amazonaws.com`
/// for AWS's services (as AWS writes it), the registered name for others.
pub fn via_service(service: &str, region: &str) -> String {
    if service.ends_with(".amazonaws.com") {
        format!("{}.{region}.amazonaws.com", signing_name(service))
    } else {
        service.to_string()
    }
}

impl Kms {
    /// Registers the integrated service `name` on this node and returns its credentials:
    /// derived from the root key, so every node (and every restart) gives the same ones.
    pub fn register_integrated_service(&self, name: &str) -> KmsResult<ServiceCredentials> {
        if !valid_service_name(name) {
            return Err(KmsError::Validation(format!(
                "Invalid integrated service name: {name}"
            )));
        }
        // KMS's own service principals are KMS itself: registering one would let an outside
        // process assume KMS's service-linked roles.
        if name.ends_with(".kms.amazonaws.com") || name == "kms.amazonaws.com" {
            return Err(KmsError::Validation(format!(
                "{name} is AWS KMS's own service principal and cannot be registered"
            )));
        }
        let derive = |what: &str| {
            self.root
                .derive_subkey(&format!("integrated-service:{what}:{name}"))
                .map_err(|e| KmsError::Internal(e.to_string()))
        };
        const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let id_key = derive("access-key-id")?;
        let tail: String = id_key
            .expose_bytes()
            .iter()
            .take(16)
            .map(|b| char::from(BASE32.get(usize::from(b % 32)).copied().unwrap_or(b'A')))
            .collect();
        // `AKIS`: distinct from customers' AKIA keys so the two never collide.
        let access_key_id = format!("AKIS{tail}");
        let secret_key = derive("secret")?;
        let secret = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .encode(secret_key.expose_bytes().get(..30).unwrap_or_default()),
        );
        self.credentials.insert(Credential {
            cached_principal: Default::default(),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret.clone(),
            // A service belongs to no customer account.
            account_id: String::new(),
            identity: CredentialIdentity::Service(name.to_string()),
            session: None,
            user_id: None,
        });
        Ok(ServiceCredentials {
            access_key_id,
            secret_access_key: secret,
        })
    }

    /// The caller of a forward-access call: `customer` (authenticated by its own signature on
    /// the request it sent to the service, checked by the edge), acting through `service`.
    /// `signed_for` is the SigV4 service name of the customer's signature: it must be the
    /// service's, so a request the customer sent to another service proves nothing here.
    pub fn forwarded_caller(
        &self,
        service: &Caller,
        customer: Caller,
        signed_for: &str,
    ) -> KmsResult<Caller> {
        let Some(name) = service.service_name() else {
            return Err(KmsError::AccessDenied(
                "Only an integrated service's credentials may forward a caller's request".into(),
            ));
        };
        if signed_for != signing_name(name) {
            return Err(KmsError::AccessDenied(format!(
                "The forwarded request was signed for '{signed_for}', not for the service {name}"
            )));
        }
        // Forward access is one hop: a service acting for another service (or for one of its
        // service-linked sessions) would let it borrow that service's rights.
        if matches!(customer.identity, Identity::Service { .. })
            || customer.is_service_linked_session()
        {
            return Err(KmsError::AccessDenied(
                "A forwarded request must be signed by a customer principal".into(),
            ));
        }
        let forwarded_by = ForwardedBy {
            service: Arc::from(name),
            via_service: Arc::from(via_service(name, &service.region)),
        };
        let mut customer = customer.with_forwarded_by(forwarded_by);
        customer.region = service.region.clone();
        customer.source_ip = service.source_ip;
        customer.secure_transport = service.secure_transport;
        Ok(customer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_via_service() {
        assert!(valid_service_name("autoscaling.amazonaws.com"));
        assert!(valid_service_name("storage.example.internal"));
        assert!(!valid_service_name("storage"));
        assert!(!valid_service_name("Storage.example"));
        assert!(!valid_service_name("a..b"));
        assert_eq!(signing_name("ec2.amazonaws.com"), "ec2");
        assert_eq!(signing_name("mrk.kms.amazonaws.com"), "mrk");
        assert_eq!(
            signing_name("storage.example.internal"),
            "storage.example.internal"
        );
        assert_eq!(
            via_service("ec2.amazonaws.com", "us-west-2"),
            "ec2.us-west-2.amazonaws.com"
        );
        assert_eq!(
            via_service("storage.example.internal", "us-west-2"),
            "storage.example.internal"
        );
    }
}
