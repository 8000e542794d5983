//! Operator actions on accounts: list them, create one, rotate an account's root access key.
//!
//! These are not AWS API calls and take no [`crate::Caller`]: they bypass IAM and key policies
//! because the operator owns the machine (and with it the database and the root key). The edge
//! that exposes them (`trent-server`'s loopback admin endpoints, `admin.rs`) authenticates the
//! operator by the token in `<data_dir>/admin.token`; nothing reachable with AWS credentials
//! calls them. Like every write, each goes to the store first and then to the in-memory
//! registries (accounts, credentials), under the node's write lock, so a running server sees
//! its own changes at once and a rotated key stops authenticating with the next request.

use zeroize::Zeroizing;

use crate::credentials::{Credential, CredentialIdentity};
use crate::error::{KmsError, KmsResult};
use crate::model::{AccessKeyRecord, AccountRecord, secret_aad};
use crate::service::{Kms, NewAccount, random_access_key_id, random_account_id, random_secret};

/// One account as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub account_id: String,
    pub created_ms: i64,
    /// Active root access key ids, in id order.
    pub root_access_key_ids: Vec<String>,
}

/// A rotated root access key: the new credentials and the key ids that were deleted.
pub struct RotatedRootKey {
    pub credentials: NewAccount,
    pub deleted_access_key_ids: Vec<String>,
}

/// Checks an operator-given account id: 12 decimal digits.
pub fn check_account_id(account_id: &str) -> KmsResult<()> {
    if crate::ids::is_account_id(account_id) {
        Ok(())
    } else {
        Err(KmsError::Validation(format!(
            "account id `{account_id}` must be 12 decimal digits"
        )))
    }
}

fn root_arn(account_id: &str) -> String {
    format!("arn:aws:iam::{account_id}:root")
}

impl Kms {
    /// Every account with its active root access key ids, in account id order.
    pub async fn operator_list_accounts(&self) -> KmsResult<Vec<AccountSummary>> {
        let mut accounts: Vec<AccountSummary> = self
            .store
            .accounts()
            .await?
            .into_iter()
            .map(|a| AccountSummary {
                account_id: a.account_id,
                created_ms: a.created_ms,
                root_access_key_ids: Vec::new(),
            })
            .collect();
        accounts.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        let mut keys = self.store.access_keys().await?;
        keys.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        for key in keys {
            if !key.active || key.principal_arn != root_arn(&key.account_id) {
                continue;
            }
            if let Some(a) = accounts.iter_mut().find(|a| a.account_id == key.account_id) {
                a.root_access_key_ids.push(key.access_key_id);
            }
        }
        Ok(accounts)
    }

    /// Creates an account (the given id, or 12 random digits) with a random root access key.
    /// An id that exists already is `AlreadyExists`; a malformed one `Validation`.
    pub async fn operator_create_account(&self, account_id: Option<&str>) -> KmsResult<NewAccount> {
        if let Some(id) = account_id {
            check_account_id(id)?;
        }
        let _guard = self.writes.lock().await;
        let existing: std::collections::HashSet<String> = self
            .store
            .accounts()
            .await?
            .into_iter()
            .map(|a| a.account_id)
            .collect();
        let account_id = match account_id {
            Some(id) if existing.contains(id) => {
                return Err(KmsError::AlreadyExists(format!(
                    "account {id} already exists"
                )));
            }
            Some(id) => id.to_string(),
            None => loop {
                let id = random_account_id()?;
                if !existing.contains(&id) {
                    break id;
                }
            },
        };
        self.store
            .put_account(&AccountRecord {
                account_id: account_id.clone(),
                created_ms: self.clock.now_ms(),
            })
            .await?;
        self.remember_account(&account_id);
        let (access_key_id, secret_access_key) = self.add_root_key(&account_id).await?;
        Ok(NewAccount {
            account_id,
            access_key_id,
            secret_access_key,
        })
    }

    /// Gives `account_id` a new random root access key and deletes its previous ones (they stop
    /// authenticating at once). The new key is stored before the old ones are deleted, so a
    /// failure in between leaves both valid, never none.
    pub async fn operator_rotate_root_key(&self, account_id: &str) -> KmsResult<RotatedRootKey> {
        check_account_id(account_id)?;
        let _guard = self.writes.lock().await;
        if !self
            .store
            .accounts()
            .await?
            .iter()
            .any(|a| a.account_id == account_id)
        {
            return Err(KmsError::NotFound(format!(
                "account {account_id} does not exist"
            )));
        }
        let old: Vec<String> = self
            .store
            .access_keys()
            .await?
            .into_iter()
            .filter(|k| k.account_id == account_id && k.principal_arn == root_arn(account_id))
            .map(|k| k.access_key_id)
            .collect();
        let (access_key_id, secret_access_key) = self.add_root_key(account_id).await?;
        for id in &old {
            self.store.delete_access_key(id).await?;
            self.credentials.remove(id);
        }
        Ok(RotatedRootKey {
            credentials: NewAccount {
                account_id: account_id.to_string(),
                access_key_id,
                secret_access_key,
            },
            deleted_access_key_ids: old,
        })
    }

    /// Stores a new random root access key of `account_id` and registers it. The caller holds
    /// the write lock.
    async fn add_root_key(&self, account_id: &str) -> KmsResult<(String, Zeroizing<String>)> {
        let access_key_id = loop {
            let id = random_access_key_id("AKIA")?;
            if self.credentials.lookup(&id).is_none() {
                break id;
            }
        };
        let secret = random_secret()?;
        self.put_long_term_key(account_id, &root_arn(account_id), &access_key_id, &secret)
            .await?;
        Ok((access_key_id, secret))
    }

    /// Stores an active long-term access key of `principal_arn` (the account root or a user)
    /// and registers it for authentication.
    pub(crate) async fn put_long_term_key(
        &self,
        account_id: &str,
        principal_arn: &str,
        access_key_id: &str,
        secret: &str,
    ) -> KmsResult<()> {
        let identity = crate::service::identity_of_arn(principal_arn);
        // A user's key is bound to the user's unique id (see `AccessKeyRecord::principal_id`).
        let user_id = match &identity {
            CredentialIdentity::User(name) => Some(
                self.iam
                    .account(account_id)
                    .users
                    .get(name)
                    .filter(|u| {
                        crate::iam::entity_arn(account_id, "user", &u.path, &u.name)
                            == principal_arn
                    })
                    .map(|u| u.id.clone())
                    .ok_or_else(|| {
                        KmsError::Validation(format!("user {principal_arn} does not exist"))
                    })?,
            ),
            _ => None,
        };
        self.store
            .put_access_key(&AccessKeyRecord {
                access_key_id: access_key_id.to_string(),
                account_id: account_id.to_string(),
                principal_arn: principal_arn.to_string(),
                principal_id: user_id.clone(),
                wrapped_secret: self
                    .root
                    .wrap(secret.as_bytes(), &secret_aad(access_key_id))?,
                active: true,
                created_ms: self.clock.now_ms(),
            })
            .await?;
        self.credentials.insert(Credential {
            cached_principal: Default::default(),
            access_key_id: access_key_id.to_string(),
            secret_access_key: Zeroizing::new(secret.to_string()),
            account_id: account_id.to_string(),
            identity,
            session: None,
            user_id,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::memory_store::MemoryStore;

    async fn kms() -> Kms {
        let (root, _) = trent_crypto::RootKey::generate().unwrap();
        Kms::open(
            Arc::new(MemoryStore::default()),
            root,
            Arc::new(SystemClock::default()),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn create_list_and_rotate() {
        let kms = kms().await;
        let a = kms
            .operator_create_account(Some("123456789012"))
            .await
            .unwrap();
        assert!(kms.credentials.lookup(&a.access_key_id).is_some());
        assert!(matches!(
            kms.operator_create_account(Some("123456789012")).await,
            Err(KmsError::AlreadyExists(_))
        ));
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            assert!(matches!(
                kms.operator_create_account(Some(bad)).await,
                Err(KmsError::Validation(_))
            ));
        }
        let b = kms.operator_create_account(None).await.unwrap();
        assert!(crate::ids::is_account_id(&b.account_id));
        let list = kms.operator_list_accounts().await.unwrap();
        assert_eq!(list.len(), 2);
        let listed_a = list
            .iter()
            .find(|s| s.account_id == "123456789012")
            .unwrap();
        assert_eq!(
            listed_a.root_access_key_ids,
            std::slice::from_ref(&a.access_key_id)
        );

        let rotated = kms.operator_rotate_root_key("123456789012").await.unwrap();
        assert_eq!(
            rotated.deleted_access_key_ids,
            std::slice::from_ref(&a.access_key_id)
        );
        assert!(kms.credentials.lookup(&a.access_key_id).is_none());
        assert!(
            kms.credentials
                .lookup(&rotated.credentials.access_key_id)
                .is_some()
        );
        assert!(kms.credentials.lookup(&b.access_key_id).is_some());
        assert!(matches!(
            kms.operator_rotate_root_key("999999999999").await,
            Err(KmsError::NotFound(_))
        ));
    }
}
