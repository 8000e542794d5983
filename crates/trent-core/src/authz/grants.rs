//! Grants in decisions: a grant allowing a call, CreateGrant by delegation from a grant, and
//! who may retire a grant.

use std::sync::Arc;

use super::{Access, Decision, RequestFacts};
use crate::cache::LoadedKey;
use crate::caller::Caller;
use crate::error::{KmsError, KmsResult};
use crate::grants::{Grant, GrantConstraints, GrantOperation};
use crate::service::Kms;

/// How a grant's grantee relates to a caller.
#[derive(PartialEq, Eq)]
enum GranteeMatch {
    /// The grantee names the caller (or the role of the caller's session).
    Direct,
    /// The grantee is the caller's account: its principals still need IAM permission.
    Account,
    No,
}

/// The caller's role ARN when it is a role session (what a role grantee names).
fn role_arn_of(caller: &Caller) -> Option<&str> {
    caller
        .is_role_session()
        .then(|| caller.principal_role_arn())
}

fn grantee_match(grant: &Grant, caller: &Caller) -> GranteeMatch {
    let g = grant.grantee_principal.as_str();
    // A user or role grantee bound at CreateGrant names only the entity with that unique id.
    if Grant::names(
        g,
        grant.grantee_principal_id.as_deref(),
        &caller.principal_arn,
        role_arn_of(caller),
        caller.policy_principal().unique_id.as_deref(),
    ) {
        return GranteeMatch::Direct;
    }
    if g == caller.account || g == caller.root_arn {
        return if caller.is_root() {
            GranteeMatch::Direct
        } else {
            GranteeMatch::Account
        };
    }
    GranteeMatch::No
}

/// Runs `f` over the grantee principals that can name `caller`: its ARN, its account and
/// account root, and for a role session also the role's ARN (for anyone else that is the
/// principal ARN again, not worth a second lookup).
fn with_grantees_of<T>(caller: &Caller, f: impl FnOnce(&[&str]) -> T) -> T {
    let names = [
        caller.principal_arn.as_str(),
        &caller.account,
        &caller.root_arn,
        caller.principal_role_arn(),
    ];
    let count = if caller.is_role_session() { 4 } else { 3 };
    f(names.get(..count).unwrap_or(&names))
}

impl Kms {
    /// A grant (cached, or carried by a grant token) that lets `caller` perform `access` on
    /// `key`. A grant to the caller's account needs an IAM allow as well.
    pub(super) fn grant_allowing(
        &self,
        caller: &Caller,
        key: &LoadedKey,
        access: &Access<'_>,
        facts: &RequestFacts<'_>,
    ) -> Option<Arc<Grant>> {
        let operation = GrantOperation::of_action(access.action)?;
        let empty = std::collections::BTreeMap::new();
        let context = access.facts.encryption_context.unwrap_or(&empty);
        let iam_allows = || {
            trent_policy::kms::authorize_without_key(
                caller.identity_policies.as_slice(),
                caller.policy_principal(),
                access.action,
                key.arn(),
                facts,
            )
            .is_allowed()
        };
        let usable = |g: &Grant| {
            g.allows(operation, context, caller.source_arn())
                && match grantee_match(g, caller) {
                    GranteeMatch::Direct => true,
                    GranteeMatch::Account => iam_allows(),
                    GranteeMatch::No => false,
                }
        };
        let key_id = &key.record.key_id;
        with_grantees_of(caller, |grantees| {
            self.grants.find(key_id, grantees, operation, usable)
        })
        .or_else(|| self.usable_token_grants(access, key_id).find(|g| usable(g)))
    }

    /// The grants the request's grant tokens carry for `key_id`, less any this node knows to
    /// be retired or revoked. A grant this node knows is taken as stored, not as the token
    /// sealed it: a token from before its principals were bound carries them unbound
    /// (`authz/bindings.rs`). One this node does not know (made on another node a moment
    /// ago, or its key's grants being reloaded) is taken as sealed, unless its user or role
    /// grantee is unbound yet exists now: CreateGrant binds a grantee that exists, so such a
    /// copy is from before bindings, and matching it by ARN could admit a user re-created
    /// under the grantee's name. Every use of token grants goes through here.
    fn usable_token_grants<'a>(
        &'a self,
        access: &'a Access<'_>,
        key_id: &'a str,
    ) -> impl Iterator<Item = Arc<Grant>> + 'a {
        access
            .grant_tokens
            .iter()
            .filter(move |g| g.key_id == key_id)
            .filter_map(move |g| match self.grants.known(key_id, &g.grant_id) {
                Some(crate::grants::Known::Retired) => None,
                Some(crate::grants::Known::Active(stored)) => Some(stored),
                None if g.grantee_principal_id.is_none()
                    && self.principal_unique_id(&g.grantee_principal).is_some() =>
                {
                    None
                }
                None => Some(g.clone()),
            })
    }

    /// CreateGrant: the policies first; failing that (but not on an explicit deny), a grant to
    /// the caller holding CreateGrant may delegate a subset of itself — no more operations and
    /// constraints at least as strict.
    pub(crate) fn decide_create_grant(
        &self,
        caller: &Caller,
        access: &Access<'_>,
        key: &LoadedKey,
        operations: &[GrantOperation],
        constraints: Option<&GrantConstraints>,
    ) -> KmsResult<Decision> {
        let decision = self.decide(caller, access)?;
        if decision.is_allowed() || decision.is_explicit_deny() {
            return Ok(decision);
        }
        let child = constraints.cloned().unwrap_or_default();
        let delegates = |p: &Grant| {
            grantee_match(p, caller) == GranteeMatch::Direct
                && p.has(GrantOperation::CreateGrant)
                && operations.iter().all(|o| p.has(*o))
                && p.constraints
                    .as_ref()
                    .is_none_or(|pc| child.at_least_as_strict_as(pc))
        };
        let key_id = &key.record.key_id;
        let parent = with_grantees_of(caller, |grantees| {
            self.grants
                .find(key_id, grantees, GrantOperation::CreateGrant, delegates)
        })
        .or_else(|| {
            self.usable_token_grants(access, key_id)
                .find(|g| delegates(g))
        });
        Ok(parent.map_or(decision, Decision::AllowedByGrant))
    }

    /// ListRetirableGrants: an IAM permission, and only for retiring principals of the
    /// caller's own account.
    pub(crate) fn check_list_retirable_grants(
        &self,
        caller: &Caller,
        retiring_principal: &str,
    ) -> KmsResult<()> {
        self.check(
            caller,
            Access::new("kms:ListRetirableGrants", super::Resource::Any),
        )?;
        let principal_account = if crate::ids::is_account_id(retiring_principal) {
            retiring_principal
        } else {
            retiring_principal.split(':').nth(4).unwrap_or_default()
        };
        if principal_account != caller.account {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:ListRetirableGrants for a retiring principal of another account",
                caller.principal_arn
            )));
        }
        Ok(())
    }

    /// RetireGrant is not controlled by the key policy: the grant's retiring principal, a
    /// grantee holding RetireGrant, or the issuing account (its root, or a principal its IAM
    /// policies allow `kms:RetireGrant`) may retire it.
    pub(crate) fn check_retire_grant(&self, caller: &Caller, grant: &Arc<Grant>) -> KmsResult<()> {
        let retiring = grant.retiring_principal.as_deref().is_some_and(|r| {
            Grant::names(
                r,
                grant.retiring_principal_id.as_deref(),
                &caller.principal_arn,
                Some(caller.principal_role_arn()),
                caller.policy_principal().unique_id.as_deref(),
            )
        });
        let grantee = grantee_match(grant, caller) == GranteeMatch::Direct
            && grant.has(GrantOperation::RetireGrant);
        let issuer = caller.account == grant.issuing_account
            && (caller.is_root()
                || self
                    .decide_identity(caller, "kms:RetireGrant", "*")
                    .is_allowed());
        if retiring || grantee || issuer {
            return Ok(());
        }
        Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: kms:RetireGrant on resource: {}",
            caller.principal_arn,
            crate::ids::key_arn(&grant.key_region, &grant.key_account, &grant.key_id)
        )))
    }
}

#[cfg(test)]
mod tests {
    //! A grant token sealed before its grant's principals were bound (schema version 12,
    //! issue 11): no public call makes one any more, so the token is sealed here from the grant
    //! as it was stored then.

    use std::sync::Arc;

    use trent_crypto::RootKey;
    use zeroize::Zeroizing;

    use crate::caller::Caller;
    use crate::clock::SystemClock;
    use crate::crypto::EncryptInput;
    use crate::error::KmsError;
    use crate::grants::{CreateGrantInput, Grant};
    use crate::memory_store::MemoryStore;
    use crate::model::GrantRow;
    use crate::service::Kms;
    use crate::store::Store;

    const ACCOUNT: &str = "111122223333";
    const ROOT_ACCESS_KEY: &str = "AKIAROOTAAAAAAAAAAAA";
    const REGION: &str = "us-east-1";
    /// The start-up binding pass (`authz/bindings.rs`).
    const BINDING_PASS: &str = "principal_bindings";

    /// A node over `store`; every node shares one root key, so one's tokens open on another.
    async fn open(store: &Arc<MemoryStore>) -> Kms {
        let store: Arc<dyn Store> = store.clone();
        Kms::open(
            store,
            RootKey::from_bytes(&[7; 32]).unwrap(),
            Arc::new(SystemClock::default()),
        )
        .await
        .unwrap()
    }

    /// Creates user `name` with an access key; returns the key's id.
    async fn create_user(kms: &Kms, root: &Caller, name: &str) -> String {
        kms.iam_create_user(root, name, None, Vec::new())
            .await
            .unwrap();
        kms.iam_create_access_key(root, Some(name))
            .await
            .unwrap()
            .access_key_id
    }

    fn caller(kms: &Kms, access_key_id: &str) -> Caller {
        let credential = kms.credentials.lookup(access_key_id).unwrap();
        kms.caller_for(&credential, None, REGION).unwrap()
    }

    async fn encrypt(
        kms: &Kms,
        caller: &Caller,
        key_id: &str,
        token: &str,
    ) -> Result<(), KmsError> {
        kms.encrypt(
            caller,
            EncryptInput {
                key_id: Some(key_id.to_string()),
                plaintext: Some(Zeroizing::new(b"attack at dawn".to_vec())),
                grant_tokens: vec![token.to_string()],
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
    }

    /// The stored grant on `key_id` (there is one).
    async fn stored_grant(store: &MemoryStore, key_id: &str) -> (GrantRow, Grant) {
        let rows = store.grants_for_key(key_id).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = rows.into_iter().next().unwrap();
        let grant = serde_json::from_str(&row.body).unwrap();
        (row, grant)
    }

    /// The token's copy of its grant is unbound; the stored grant is bound at start-up. The
    /// stored one decides: a user re-created under the grantee's name, presenting the old
    /// token, is refused (the token's copy alone would name it by ARN).
    #[tokio::test]
    async fn a_token_sealed_before_its_grant_was_bound_is_judged_by_the_bound_grant() {
        let store = Arc::new(MemoryStore::new());
        let kms = open(&store).await;
        kms.ensure_account(ACCOUNT, ROOT_ACCESS_KEY, "root-secret-of-the-account")
            .await
            .unwrap();
        let root = Caller::root(ACCOUNT, ROOT_ACCESS_KEY, REGION);
        let alice_key = create_user(&kms, &root, "alice").await;
        let alice = caller(&kms, &alice_key);
        let alice_id = kms.iam_get_user(&root, Some("alice")).await.unwrap().id;
        // The default key policy: alice (no IAM policies) may use the key only by grant.
        let key = kms.create_key(&root, Default::default()).await.unwrap();
        let (grant_id, _) = kms
            .create_grant(
                &root,
                CreateGrantInput {
                    key_id: Some(key.key_id.clone()),
                    grantee_principal: Some(alice.principal_arn.clone()),
                    operations: Some(vec!["Encrypt".into()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();

        // The store as one written before bindings: the grant row without the grantee's id,
        // the pass not yet run, and a token sealed from that grant.
        let (row, mut legacy) = stored_grant(&store, &key.key_id).await;
        assert_eq!(
            legacy.grantee_principal_id.as_deref(),
            Some(alice_id.as_str())
        );
        legacy.grantee_principal_id = None;
        let unbound = GrantRow {
            body: serde_json::to_string(&legacy).unwrap(),
            ..row.clone()
        };
        assert!(store.update_grant_if(&row, &unbound).await.unwrap());
        store.set_pass_done(BINDING_PASS, false).await.unwrap();
        let token = kms.seal_token(&legacy).unwrap();
        let opened = kms.open_token(&token).unwrap();
        assert_eq!(
            (
                opened.grant_id.as_str(),
                opened.grantee_principal_id.as_deref()
            ),
            (grant_id.as_str(), None)
        );

        // Start-up binds the stored grant to the alice of then.
        let kms = open(&store).await;
        assert!(store.pass_done(BINDING_PASS).await.unwrap());
        let (_, bound) = stored_grant(&store, &key.key_id).await;
        assert_eq!(
            bound.grantee_principal_id.as_deref(),
            Some(alice_id.as_str())
        );
        encrypt(&kms, &caller(&kms, &alice_key), &key.key_id, &token)
            .await
            .expect("the grantee with its token may encrypt");

        // Deleted and re-created under the same name: the old token admits no one.
        kms.iam_change_access_key(&root, Some("alice"), &alice_key, None)
            .await
            .unwrap();
        kms.iam_delete_user(&root, "alice").await.unwrap();
        let again_key = create_user(&kms, &root, "alice").await;
        let again = caller(&kms, &again_key);
        assert_eq!(again.principal_arn, alice.principal_arn);
        assert_ne!(
            again.policy_principal().unique_id.as_deref(),
            Some(alice_id.as_str())
        );
        let denied = encrypt(&kms, &again, &key.key_id, &token)
            .await
            .unwrap_err();
        assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");

        // While the key's grants are being reloaded (another node changed them: the feed
        // drops them before the key), the node does not know the grant and has only the
        // token's unbound copy: still no one is admitted by it.
        kms.grants.invalidate(&key.key_id);
        let denied = encrypt(&kms, &again, &key.key_id, &token)
            .await
            .unwrap_err();
        assert!(matches!(denied, KmsError::AccessDenied(_)), "{denied:?}");
    }
}
