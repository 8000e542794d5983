//! What the grants benchmarks share: a service over `MemoryStore` with throttling off (what is
//! measured is finding the grant, far above any request-rate quota), IAM user alice whose only
//! permission will be grants, a role whose sessions stand in for other grantees (a grant's
//! principal must exist), and CreateGrant as the account root.

use std::collections::BTreeMap;
use std::sync::Arc;

use trent_core::crypto::EncryptInput;
use trent_core::grants::CreateGrantInput;
use trent_core::iam::CreateRoleInput;
use trent_core::keys::CreateKeyInput;
use trent_core::memory_store::MemoryStore;
use trent_core::quotas::QuotaSettings;
use trent_core::{Caller, Kms, SystemClock};
use trent_crypto::RootKey;
use zeroize::Zeroizing;

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "us-east-1";
const ROOT_ACCESS_KEY: &str = "AKIAROOTBENCH0000000";
/// Grants to others beside alice's on the busy key: AWS allows 50,000 per key.
pub const EXTRA_GRANTS: usize = 49_999;

pub fn root() -> Caller {
    Caller::root(ACCOUNT, ROOT_ACCESS_KEY, REGION)
}

/// The service and alice's caller.
pub async fn service_and_alice() -> (Kms, Caller) {
    let (root_key, _) = RootKey::generate().expect("root key");
    let kms = Kms::open(
        Arc::new(MemoryStore::default()),
        root_key,
        Arc::new(SystemClock::default()),
    )
    .await
    .expect("kms")
    .with_quotas(QuotaSettings {
        throttling: false,
        ..Default::default()
    });
    kms.ensure_account(ACCOUNT, ROOT_ACCESS_KEY, "secret")
        .await
        .expect("account");
    kms.iam_create_user(&root(), "alice", None, Vec::new())
        .await
        .expect("user");
    let access_key = kms
        .iam_create_access_key(&root(), Some("alice"))
        .await
        .expect("access key");
    kms.iam_create_role(
        &root(),
        CreateRoleInput {
            name: "other".into(),
            trust_policy: format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ),
            ..Default::default()
        },
    )
    .await
    .expect("role");
    let credential = kms
        .credentials
        .lookup(&access_key.access_key_id)
        .expect("lookup");
    let alice = kms.caller_for(&credential, None, REGION).expect("caller");
    (kms, alice)
}

/// A symmetric key with the default key policy (delegation to IAM; alice has no IAM policy).
pub async fn key(kms: &Kms) -> String {
    kms.create_key(&root(), CreateKeyInput::default())
        .await
        .expect("key")
        .key_id
}

/// An Encrypt and Decrypt grant on `key_id` to `grantee`.
pub async fn grant(kms: &Kms, key_id: &str, grantee: String) {
    kms.create_grant(
        &root(),
        CreateGrantInput {
            key_id: Some(key_id.to_string()),
            grantee_principal: Some(grantee),
            operations: Some(vec!["Encrypt".into(), "Decrypt".into()]),
            ..Default::default()
        },
    )
    .await
    .expect("grant");
}

pub async fn grant_to_alice(kms: &Kms, key_id: &str) {
    grant(kms, key_id, format!("arn:aws:iam::{ACCOUNT}:user/alice")).await;
}

/// [`EXTRA_GRANTS`] grants on `key_id` to sessions of the stand-in role.
pub async fn grants_to_others(kms: &Kms, key_id: &str) {
    for i in 0..EXTRA_GRANTS {
        grant(
            kms,
            key_id,
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/other/session-{i}"),
        )
        .await;
    }
}

pub fn encrypt_input(key_id: &str) -> EncryptInput {
    EncryptInput {
        key_id: Some(key_id.to_string()),
        plaintext: Some(Zeroizing::new(vec![0x42; 64])),
        encryption_context: BTreeMap::new(),
        ..Default::default()
    }
}
