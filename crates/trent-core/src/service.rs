//! The [`Kms`] service value: storage, root key, clock, caches; start-up and account bootstrap.

use std::collections::HashMap;
use std::sync::Arc;

use trent_crypto::{RootKey, random};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::cache::{KeyCache, LoadedKey};
use crate::clock::Clock;
use crate::credentials::{Credential, CredentialRegistry};
use crate::error::{KmsError, KmsResult};
use crate::model::{AccessKeyRecord, AccountRecord, material_aad, secret_aad};
use crate::store::Store;

/// The KMS domain service. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Kms {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) root: RootKey,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cache: KeyCache,
    /// Serializes read-modify-write of records on this node. Writes are rare next to crypto calls.
    pub(crate) writes: tokio::sync::Mutex<()>,
    pub credentials: CredentialRegistry,
}

/// Root credentials generated for a new account.
pub struct NewAccount {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
}

impl Kms {
    /// Opens the service over `store`, loading every access key into memory.
    pub async fn open(
        store: Arc<dyn Store>,
        root: RootKey,
        clock: Arc<dyn Clock>,
    ) -> KmsResult<Self> {
        let kms = Self {
            store,
            root,
            clock,
            cache: KeyCache::default(),
            writes: tokio::sync::Mutex::new(()),
            credentials: CredentialRegistry::default(),
        };
        for record in kms.store.access_keys().await? {
            if record.active {
                let secret = kms
                    .root
                    .unwrap(&record.wrapped_secret, &secret_aad(&record.access_key_id))?;
                let secret = String::from_utf8(secret.to_vec())
                    .map_err(|_| KmsError::Internal("stored secret is not UTF-8".into()))?;
                kms.credentials.insert(Credential {
                    access_key_id: record.access_key_id,
                    secret_access_key: Zeroizing::new(secret),
                    account_id: record.account_id,
                    principal_arn: record.principal_arn,
                });
            }
        }
        Ok(kms)
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Number of accounts in the store.
    pub async fn account_count(&self) -> KmsResult<usize> {
        Ok(self.store.accounts().await?.len())
    }

    /// Creates `account_id` if missing and sets its root access key (operator-declared accounts).
    pub async fn ensure_account(
        &self,
        account_id: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> KmsResult<()> {
        if !crate::ids::is_account_id(account_id) {
            return Err(KmsError::Validation(format!(
                "account id `{account_id}` must be 12 digits"
            )));
        }
        let now = self.clock.now_ms();
        self.store
            .put_account(&AccountRecord {
                account_id: account_id.into(),
                created_ms: now,
            })
            .await?;
        let principal_arn = format!("arn:aws:iam::{account_id}:root");
        self.store
            .put_access_key(&AccessKeyRecord {
                access_key_id: access_key_id.into(),
                account_id: account_id.into(),
                principal_arn: principal_arn.clone(),
                wrapped_secret: self
                    .root
                    .wrap(secret_access_key.as_bytes(), &secret_aad(access_key_id))?,
                active: true,
                created_ms: now,
            })
            .await?;
        self.credentials.insert(Credential {
            access_key_id: access_key_id.into(),
            secret_access_key: Zeroizing::new(secret_access_key.into()),
            account_id: account_id.into(),
            principal_arn,
        });
        Ok(())
    }

    /// Creates an account with a random id and random root credentials.
    pub async fn create_random_account(&self) -> KmsResult<NewAccount> {
        let digits = random::array::<12>()?;
        let account_id: String = digits.iter().map(|b| char::from(b'0' + b % 10)).collect();
        let access_key_id = random_access_key_id("AKIA")?;
        let secret = random_secret()?;
        self.ensure_account(&account_id, &access_key_id, &secret)
            .await?;
        Ok(NewAccount {
            account_id,
            access_key_id,
            secret_access_key: secret,
        })
    }

    /// The key with `key_id`, from the cache or else the store (unwrapping its material).
    pub(crate) async fn load_key(&self, key_id: &str) -> KmsResult<Option<Arc<LoadedKey>>> {
        if let Some(k) = self.cache.key(key_id) {
            return Ok(Some(k));
        }
        let Some((record, stored)) = self.store.key(key_id).await? else {
            return Ok(None);
        };
        let uuid = Uuid::parse_str(&record.key_id)
            .map_err(|_| KmsError::Internal("stored key id is not a UUID".into()))?;
        let mut materials = HashMap::new();
        for m in stored {
            let raw = self
                .root
                .unwrap(&m.wrapped, &material_aad(&m.key_id, &m.material_id))?;
            let key =
                crate::asymmetric_ops::parse_material(record.key_spec, record.key_usage, &raw)?;
            materials.insert(m.material_id, Arc::new(key));
        }
        let loaded = Arc::new(LoadedKey::new(record, *uuid.as_bytes(), materials));
        self.cache.put_key(loaded.clone());
        Ok(Some(loaded))
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An AWS-looking access key id: prefix plus 16 base32 characters.
pub fn random_access_key_id(prefix: &str) -> KmsResult<String> {
    let bytes = random::array::<16>()?;
    let tail: String = bytes
        .iter()
        .map(|b| char::from(BASE32.get(usize::from(b % 32)).copied().unwrap_or(b'A')))
        .collect();
    Ok(format!("{prefix}{tail}"))
}

/// A 40-character secret access key.
pub fn random_secret() -> KmsResult<Zeroizing<String>> {
    use base64::Engine;
    let bytes = random::secret_bytes(30)?;
    Ok(Zeroizing::new(
        base64::engine::general_purpose::STANDARD.encode(bytes.as_slice()),
    ))
}
