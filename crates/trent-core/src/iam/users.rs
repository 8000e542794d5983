//! IAM users, their access keys, tags and inline policies; plus the shared write path and
//! validation helpers used by every IAM operation.

use trent_policy::{IdentityPolicyType, Policy};

use super::directory::AccountIam;
use super::entity_arn;
use super::error::{IamError, IamResult};
use super::records::{IamRecord, User};
use crate::caller::{Caller, Identity};
use crate::credentials::{Credential, CredentialIdentity};
use std::collections::HashMap;

use crate::model::{AccessKeyRecord, IamDocument, secret_aad};
use crate::service::{Kms, random_access_key_id, random_secret};
use crate::store::IamWrite;

/// How many times [`Kms::iam_apply`] applies a change that keeps meeting another node's.
const IAM_WRITE_ATTEMPTS: usize = 8;

/// A change an IAM write makes to the store.
pub(crate) enum Change {
    Put(IamDocument),
    Delete(&'static str, String),
}

/// A created access key; the secret is shown once.
pub struct NewAccessKey {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: zeroize::Zeroizing<String>,
    pub created_ms: i64,
}

/// Access key metadata (ListAccessKeys).
pub struct AccessKeyInfo {
    pub user_name: String,
    pub access_key_id: String,
    pub active: bool,
    pub created_ms: i64,
}

pub(crate) fn put<R: IamRecord>(account: &str, record: &R) -> IamResult<Change> {
    Ok(Change::Put(record.to_document(account)?))
}

/// IAM entity names: 1..=max of `[\w+=,.@-]`.
pub(crate) fn check_name(field: &str, name: &str, max: usize) -> IamResult<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )))
    }
}

/// IAM paths: `/` or `/segments/`.
pub(crate) fn check_path(path: &str) -> IamResult<()> {
    let ok = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && path.chars().all(|c| ('\u{21}'..='\u{7E}').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(format!(
            "1 validation error detected: Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)"
        )))
    }
}

/// Checks an identity policy document for an entity of `ty`.
pub(crate) fn check_identity_policy(doc: &str, ty: IdentityPolicyType) -> IamResult<()> {
    Policy::parse_identity(doc, ty)
        .map(|_| ())
        .map_err(|e| IamError::MalformedPolicyDocument(e.aws_message()))
}

/// Checks a role trust policy (a resource policy: Principal required).
pub(crate) fn check_trust_policy(doc: &str) -> IamResult<()> {
    crate::sts::parse_trust_policy(doc)
        .map(|_| ())
        .map_err(|e| IamError::MalformedPolicyDocument(e.aws_message()))
}

pub(crate) fn no_such(kind: &str, name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The {kind} with name {name} cannot be found."))
}

/// A unique id as AWS makes them (AIDA…, AROA…): prefix plus 17 characters.
pub(crate) fn unique_id(prefix: &str) -> IamResult<String> {
    Ok(crate::service::random_id(prefix, 17)?)
}

impl Kms {
    /// Applies an IAM change to `account` under the write lock: store first, then the snapshot.
    /// On a store other nodes write, `change` may run more than once (see [`Kms::iam_apply`]).
    pub(crate) async fn iam_write<T>(
        &self,
        account: &str,
        change: impl FnMut(&mut AccountIam) -> IamResult<(T, Vec<Change>)>,
    ) -> IamResult<T> {
        let guard = self.writes.lock().await;
        self.iam_apply(&guard, account, change).await
    }

    /// [`Kms::iam_write`] for a caller that already holds the write lock (`_held`), because it
    /// had to check the store under it first.
    ///
    /// On a store other nodes write, this node's snapshot may lack another node's change, and
    /// writing whole documents computed from it would undo that change: so the documents are
    /// written only if the stored ones are still those the change was computed from
    /// (`Store::write_iam_if`); otherwise the account is read again from the store and the
    /// change applied again, so two nodes changing one entity never lose either change.
    pub(crate) async fn iam_apply<T>(
        &self,
        _held: &tokio::sync::MutexGuard<'_, ()>,
        account: &str,
        mut change: impl FnMut(&mut AccountIam) -> IamResult<(T, Vec<Change>)>,
    ) -> IamResult<T> {
        if !self.store.shared() {
            let mut next = (*self.iam.account(account)).clone();
            let (out, changes) = change(&mut next)?;
            for c in changes {
                match c {
                    Change::Put(doc) => self.store.put_iam_document(&doc).await?,
                    Change::Delete(kind, name) => {
                        self.store.delete_iam_document(account, kind, &name).await?
                    }
                }
            }
            self.iam.replace(account, next);
            return Ok(out);
        }
        // After a conflict: the documents as stored, whose bodies are then what is expected
        // (a body an older version wrote need not match this version's serialization).
        let mut stored: Option<HashMap<(String, String), String>> = None;
        for _ in 0..IAM_WRITE_ATTEMPTS {
            let before = self.iam.account(account);
            let mut next = (*before).clone();
            let (out, changes) = change(&mut next)?;
            let mut writes: Vec<IamWrite> = Vec::new();
            for c in changes {
                let (kind, name, body) = match c {
                    Change::Put(doc) => (doc.kind, doc.name, Some(doc.body)),
                    Change::Delete(kind, name) => (kind.to_string(), name, None),
                };
                let expected = match &stored {
                    Some(docs) => docs.get(&(kind.clone(), name.clone())).cloned(),
                    None => before.document(account, &kind, &name)?,
                };
                // One write an entity: a later change to it replaces an earlier one.
                writes.retain(|w| !(w.kind == kind && w.name == name));
                writes.push(IamWrite {
                    account_id: account.to_string(),
                    kind,
                    name,
                    expected,
                    body,
                });
            }
            if writes.is_empty() || self.store.write_iam_if(&writes).await? {
                self.iam.replace(account, next);
                return Ok(out);
            }
            let docs = self.reload_iam_account_held(account).await?;
            stored = Some(
                docs.into_iter()
                    .map(|d| ((d.kind, d.name), d.body))
                    .collect(),
            );
        }
        Err(IamError::ServiceFailure(format!(
            "IAM entities of {account} kept changing under {IAM_WRITE_ATTEMPTS} attempts to change them"
        )))
    }

    /// User `name`, once `caller` may perform `action` on it. A caller without the permission
    /// learns nothing about whether the user exists: a missing user is checked as
    /// `user/NAME` (no path) and is `NoSuchEntity` only to a caller allowed that.
    fn visible_user<'a>(
        &self,
        caller: &Caller,
        iam: &'a AccountIam,
        action: &str,
        name: &str,
    ) -> IamResult<&'a User> {
        let user = iam.users.get(name);
        let arn = match user {
            Some(u) => entity_arn(&caller.account, "user", &u.path, &u.name),
            None => entity_arn(&caller.account, "user", "/", name),
        };
        self.authorize_iam(caller, action, &arn)?;
        user.ok_or_else(|| no_such("user", name))
    }

    /// The user a caller means: the named one, or the caller itself when it is a user.
    fn target_user(&self, caller: &Caller, user_name: Option<&str>) -> IamResult<String> {
        match (user_name, &caller.identity) {
            (Some(n), _) => Ok(n.to_string()),
            (None, Identity::User { name, .. }) => Ok(name.clone()),
            (None, _) => Err(IamError::Validation(
                "Must specify userName when calling with non-User credentials".into(),
            )),
        }
    }

    /// The user a caller means (see [`Kms::target_user`]) and its ARN; the user must exist.
    fn target_user_arn(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> IamResult<(String, String, String)> {
        let name = self.target_user(caller, user_name)?;
        let iam = self.iam.account(&caller.account);
        let user = iam.users.get(&name).ok_or_else(|| no_such("user", &name))?;
        let arn = entity_arn(&caller.account, "user", &user.path, &user.name);
        Ok((name, arn, user.id.clone()))
    }

    pub async fn iam_create_user(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        tags: Vec<(String, String)>,
    ) -> IamResult<User> {
        check_name("userName", name, 64)?;
        let path = path.unwrap_or("/");
        check_path(path)?;
        self.authorize_iam(
            caller,
            "iam:CreateUser",
            &entity_arn(&caller.account, "user", path, name),
        )?;
        let user = User {
            v: 1,
            name: name.to_string(),
            path: path.to_string(),
            id: unique_id("AIDA")?,
            created_ms: self.clock.now_ms(),
            tags,
            inline: Default::default(),
            attached: Default::default(),
        };
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            if iam.users.keys().any(|k| k.eq_ignore_ascii_case(name)) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "User with name {name} already exists."
                )));
            }
            super::check_quota(iam.users.len(), super::USERS_PER_ACCOUNT, "UsersPerAccount")?;
            iam.users.insert(name.to_string(), user.clone());
            Ok((user.clone(), vec![put(&account, &user)?]))
        })
        .await
    }

    pub async fn iam_get_user(&self, caller: &Caller, name: Option<&str>) -> IamResult<User> {
        let name = self.target_user(caller, name)?;
        let iam = self.iam.account(&caller.account);
        let user = self.visible_user(caller, &iam, "iam:GetUser", &name)?;
        Ok(user.clone())
    }

    pub async fn iam_list_users(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> IamResult<Vec<User>> {
        self.authorize_iam(
            caller,
            "iam:ListUsers",
            &entity_arn(&caller.account, "user", "/", "*"),
        )?;
        let iam = self.iam.account(&caller.account);
        Ok(iam
            .users
            .values()
            .filter(|u| u.path.starts_with(path_prefix.unwrap_or("/")))
            .cloned()
            .collect())
    }

    pub async fn iam_delete_user(&self, caller: &Caller, name: &str) -> IamResult<()> {
        let iam = self.iam.account(&caller.account);
        let user = self.visible_user(caller, &iam, "iam:DeleteUser", name)?;
        let arn = entity_arn(&caller.account, "user", &user.path, &user.name);
        if !user.inline.is_empty()
            || !user.attached.is_empty()
            || iam.groups.values().any(|g| g.members.contains(name))
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        // Under the write lock, which CreateAccessKey also holds: no key can appear between
        // this check and the deletion.
        let guard = self.writes.lock().await;
        if self
            .store
            .access_keys()
            .await?
            .iter()
            .any(|k| key_of_user(k, &arn, &user.id))
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        let name = name.to_string();
        self.iam_apply(&guard, &caller.account, |iam| {
            // Re-checked under the write lock: a concurrent write may have changed them.
            let busy = iam
                .users
                .get(&name)
                .is_some_and(|u| !u.inline.is_empty() || !u.attached.is_empty())
                || iam.groups.values().any(|g| g.members.contains(&name));
            if busy {
                return Err(IamError::DeleteConflict(
                    "Cannot delete entity, must delete policies first.".into(),
                ));
            }
            iam.users.remove(&name);
            Ok((
                (),
                vec![Change::Delete(super::records::KIND_USER, name.clone())],
            ))
        })
        .await
    }

    pub async fn iam_tag_user(
        &self,
        caller: &Caller,
        name: &str,
        tags: Vec<(String, String)>,
        untag: Vec<String>,
    ) -> IamResult<()> {
        let action = if untag.is_empty() {
            "iam:TagUser"
        } else {
            "iam:UntagUser"
        };
        let user = self
            .iam
            .account(&caller.account)
            .users
            .get(name)
            .cloned()
            .ok_or_else(|| no_such("user", name))?;
        self.authorize_iam(
            caller,
            action,
            &entity_arn(&caller.account, "user", &user.path, &user.name),
        )?;
        let account = caller.account.clone();
        self.iam_write(&caller.account, |iam| {
            let user = iam
                .users
                .get_mut(name)
                .ok_or_else(|| no_such("user", name))?;
            merge_tags(&mut user.tags, tags.clone(), &untag)?;
            Ok(((), vec![put(&account, &*user)?]))
        })
        .await
    }

    pub async fn iam_create_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> IamResult<NewAccessKey> {
        let (name, arn, user_id) = self.target_user_arn(caller, user_name)?;
        self.authorize_iam(caller, "iam:CreateAccessKey", &arn)?;
        // The quota check, the user's existence and the insert happen under the write lock
        // DeleteUser takes, so a key cannot outlive its user.
        let _guard = self.writes.lock().await;
        let still_there = self
            .iam
            .account(&caller.account)
            .users
            .get(&name)
            .is_some_and(|u| {
                u.id == user_id && entity_arn(&caller.account, "user", &u.path, &u.name) == arn
            });
        if !still_there {
            return Err(no_such("user", &name));
        }
        if self
            .store
            .access_keys()
            .await?
            .iter()
            .filter(|k| key_of_user(k, &arn, &user_id))
            .count()
            >= 2
        {
            return Err(IamError::LimitExceeded(
                "Cannot exceed quota for AccessKeysPerUser: 2".into(),
            ));
        }
        let access_key_id = random_access_key_id("AKIA")?;
        let secret = random_secret()?;
        let now = self.clock.now_ms();
        self.store
            .put_access_key(&AccessKeyRecord {
                access_key_id: access_key_id.clone(),
                account_id: caller.account.clone(),
                principal_arn: arn,
                principal_id: Some(user_id.clone()),
                wrapped_secret: self
                    .root
                    .wrap(secret.as_bytes(), &secret_aad(&access_key_id))?,
                active: true,
                created_ms: now,
            })
            .await?;
        self.credentials.insert(Credential {
            cached_principal: Default::default(),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret.clone(),
            account_id: caller.account.clone(),
            identity: CredentialIdentity::User(name.clone()),
            session: None,
            user_id: Some(user_id),
        });
        Ok(NewAccessKey {
            user_name: name,
            access_key_id,
            secret_access_key: secret,
            created_ms: now,
        })
    }

    pub async fn iam_list_access_keys(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> IamResult<Vec<AccessKeyInfo>> {
        let (name, arn, user_id) = self.target_user_arn(caller, user_name)?;
        self.authorize_iam(caller, "iam:ListAccessKeys", &arn)?;
        Ok(self
            .store
            .access_keys()
            .await?
            .into_iter()
            .filter(|k| key_of_user(k, &arn, &user_id))
            .map(|k| AccessKeyInfo {
                user_name: name.clone(),
                access_key_id: k.access_key_id,
                active: k.active,
                created_ms: k.created_ms,
            })
            .collect())
    }

    /// UpdateAccessKey (`active` = Some) or DeleteAccessKey (`active` = None).
    pub async fn iam_change_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        access_key_id: &str,
        active: Option<bool>,
    ) -> IamResult<()> {
        let (name, arn, user_id) = self.target_user_arn(caller, user_name)?;
        let action = if active.is_some() {
            "iam:UpdateAccessKey"
        } else {
            "iam:DeleteAccessKey"
        };
        self.authorize_iam(caller, action, &arn)?;
        let _guard = self.writes.lock().await;
        let mut record = self
            .store
            .access_keys()
            .await?
            .into_iter()
            .find(|k| k.access_key_id == access_key_id && key_of_user(k, &arn, &user_id))
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The Access Key with id {access_key_id} cannot be found."
                ))
            })?;
        match active {
            Some(active) => {
                record.active = active;
                self.store.put_access_key(&record).await?;
                if active {
                    let secret = self
                        .root
                        .unwrap(&record.wrapped_secret, &secret_aad(access_key_id))?;
                    let secret = String::from_utf8(secret.to_vec()).map_err(|_| {
                        IamError::ServiceFailure("stored secret is not UTF-8".into())
                    })?;
                    self.credentials.insert(Credential {
                        cached_principal: Default::default(),
                        access_key_id: access_key_id.to_string(),
                        secret_access_key: zeroize::Zeroizing::new(secret),
                        account_id: caller.account.clone(),
                        identity: CredentialIdentity::User(name),
                        session: None,
                        user_id: record.principal_id.clone(),
                    });
                } else {
                    self.credentials.remove(access_key_id);
                }
            }
            None => {
                self.store.delete_access_key(access_key_id).await?;
                self.credentials.remove(access_key_id);
            }
        }
        Ok(())
    }
}

/// Whether `key` is an access key of the user `arn` with unique id `user_id` (a key bound to
/// a deleted user of the same name is not: it is inert and listed for no one).
fn key_of_user(key: &AccessKeyRecord, arn: &str, user_id: &str) -> bool {
    key.principal_arn == arn && key.principal_id.as_deref().is_none_or(|id| id == user_id)
}

/// Adds `tags` (replacing values of existing keys) and removes `untag` keys; at most 50 tags.
pub(crate) fn merge_tags(
    existing: &mut Vec<(String, String)>,
    tags: Vec<(String, String)>,
    untag: &[String],
) -> IamResult<()> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(IamError::InvalidInput(format!("Invalid tag: {k}")));
        }
        match existing.iter_mut().find(|(ek, _)| *ek == k) {
            Some(slot) => slot.1 = v,
            None => existing.push((k, v)),
        }
    }
    existing.retain(|(k, _)| !untag.contains(k));
    if existing.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".into(),
        ));
    }
    Ok(())
}
