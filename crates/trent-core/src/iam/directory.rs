//! The in-memory IAM directory: one immutable [`AccountIam`] snapshot per account.
//!
//! Readers take an `Arc` snapshot (no lock held while evaluating); a write builds a new snapshot
//! with every principal's effective identity policies parsed once, then swaps it in.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use trent_policy::{IdentityPolicyType, Policy};

use super::records::{Group, ManagedPolicy, Role, User};
use crate::caller::Identity;

/// All IAM entities of one account, plus each principal's parsed identity policies.
#[derive(Default, Clone)]
pub struct AccountIam {
    pub users: BTreeMap<String, User>,
    pub groups: BTreeMap<String, Group>,
    pub roles: BTreeMap<String, Role>,
    pub policies: BTreeMap<String, ManagedPolicy>,
    /// `user/NAME` or `role/NAME` → the identity policies that apply to it.
    effective: HashMap<String, Arc<Vec<Arc<Policy>>>>,
    /// Distinct for every snapshot the directory installs (0: the empty snapshot), so facts
    /// derived from one snapshot can tell when they are stale.
    pub(crate) generation: u64,
}

impl AccountIam {
    /// Managed policy by ARN (`arn:aws:iam::ACCOUNT:policy/PATH/NAME`).
    pub fn policy_by_arn(&self, account: &str, arn: &str) -> Option<&ManagedPolicy> {
        if let Some(p) = super::aws_managed::policy(arn) {
            return Some(p);
        }
        let name = arn.rsplit('/').next()?;
        let p = self.policies.get(name)?;
        (super::entity_arn(account, "policy", &p.path, &p.name) == arn).then_some(p)
    }

    /// The unique id (`AIDA…`/`AROA…`) of the user or role whose ARN is `arn`, if one exists:
    /// what a policy principal naming `arn` is bound to when the policy is set.
    pub fn unique_id_of(&self, account: &str, arn: &str) -> Option<String> {
        let resource = arn.strip_prefix(&format!("arn:aws:iam::{account}:"))?;
        let name = resource.rsplit('/').next()?;
        if resource.starts_with("user/") {
            let u = self.users.get(name)?;
            (super::entity_arn(account, "user", &u.path, &u.name) == arn).then(|| u.id.clone())
        } else if resource.starts_with("role/") {
            let r = self.roles.get(name)?;
            (super::entity_arn(account, "role", &r.path, &r.name) == arn).then(|| r.id.clone())
        } else {
            None
        }
    }

    /// The current ARN of the user or role with unique id `id` (a scan: only for showing a
    /// policy, never on the request path).
    pub fn arn_of_unique_id(&self, account: &str, id: &str) -> Option<String> {
        if let Some(u) = self.users.values().find(|u| u.id == id) {
            return Some(super::entity_arn(account, "user", &u.path, &u.name));
        }
        self.roles
            .values()
            .find(|r| r.id == id)
            .map(|r| super::entity_arn(account, "role", &r.path, &r.name))
    }

    /// The identity policies that apply to a principal of this account (none for the root
    /// user, whose permissions are implicit).
    pub fn policies_for(&self, identity: &Identity) -> Arc<Vec<Arc<Policy>>> {
        let key = match identity {
            // The root's permissions are implicit; a service has no identity policies.
            Identity::Root | Identity::Service { .. } => return Arc::default(),
            Identity::User { name, .. } => format!("user/{name}"),
            Identity::AssumedRole { role_name, .. } => format!("role/{role_name}"),
        };
        self.effective.get(&key).cloned().unwrap_or_default()
    }

    /// The stored document body of entity `kind`/`name` as this snapshot has it (`None`: no
    /// such entity): what a write computed from this snapshot expects the store to hold.
    pub(crate) fn document(
        &self,
        account: &str,
        kind: &str,
        name: &str,
    ) -> super::error::IamResult<Option<String>> {
        use super::records::{IamRecord, KIND_GROUP, KIND_POLICY, KIND_ROLE, KIND_USER};
        fn body<R: IamRecord>(
            r: Option<&R>,
            account: &str,
        ) -> super::error::IamResult<Option<String>> {
            r.map(|r| r.to_document(account).map(|d| d.body))
                .transpose()
        }
        match kind {
            KIND_USER => body(self.users.get(name), account),
            KIND_GROUP => body(self.groups.get(name), account),
            KIND_ROLE => body(self.roles.get(name), account),
            KIND_POLICY => body(self.policies.get(name), account),
            _ => Ok(None),
        }
    }

    /// Recomputes every principal's effective policies from the records.
    fn compile(&mut self, account: &str) {
        let mut parsed: HashMap<String, Option<Arc<Policy>>> = HashMap::new();
        let mut parse = |text: &str| -> Option<Arc<Policy>> {
            parsed
                .entry(text.to_string())
                // Documents were validated when written; one that no longer parses grants nothing.
                .or_insert_with(|| {
                    Policy::parse_identity(text, IdentityPolicyType::Managed)
                        .ok()
                        .map(Arc::new)
                })
                .clone()
        };
        let managed = |arns: &mut dyn Iterator<Item = &String>, out: &mut Vec<String>| {
            for arn in arns {
                if let Some(doc) = self
                    .policy_by_arn(account, arn)
                    .and_then(|p| p.default_document())
                {
                    out.push(doc.to_string());
                }
            }
        };
        let mut effective = HashMap::new();
        for user in self.users.values() {
            let mut docs: Vec<String> = user.inline.values().cloned().collect();
            managed(&mut user.attached.iter(), &mut docs);
            for group in self
                .groups
                .values()
                .filter(|g| g.members.contains(&user.name))
            {
                docs.extend(group.inline.values().cloned());
                managed(&mut group.attached.iter(), &mut docs);
            }
            let list: Vec<Arc<Policy>> = docs.iter().filter_map(|d| parse(d)).collect();
            effective.insert(format!("user/{}", user.name), Arc::new(list));
        }
        for role in self.roles.values() {
            let mut docs: Vec<String> = role.inline.values().cloned().collect();
            managed(&mut role.attached.iter(), &mut docs);
            let list: Vec<Arc<Policy>> = docs.iter().filter_map(|d| parse(d)).collect();
            effective.insert(format!("role/{}", role.name), Arc::new(list));
        }
        self.effective = effective;
    }
}

#[derive(Default)]
pub struct IamDirectory {
    accounts: RwLock<HashMap<String, Arc<AccountIam>>>,
    /// The snapshot of every account without IAM entities (shared, never rebuilt).
    empty: Arc<AccountIam>,
    generations: AtomicU64,
}

impl IamDirectory {
    /// The current snapshot of `account` (empty if it has no IAM entities).
    pub fn account(&self, account: &str) -> Arc<AccountIam> {
        self.accounts
            .read()
            .ok()
            .and_then(|m| m.get(account).cloned())
            .unwrap_or_else(|| self.empty.clone())
    }

    /// Replaces `account`'s snapshot with `next`, recompiling effective policies.
    pub fn replace(&self, account: &str, mut next: AccountIam) {
        next.compile(account);
        next.generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut m) = self.accounts.write() {
            m.insert(account.to_string(), Arc::new(next));
        }
    }
}
