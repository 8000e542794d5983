//! Evaluating one policy for one request: which statements apply, and how
//! their principal matched. Combining several policies is `decision.rs`.
//!
//! A statement applies iff its principal (key policies only), action,
//! resource and every condition match (policy-semantics §1.4).

use std::sync::Arc;

use smallvec::SmallVec;

use crate::ast::{
    ActionElement, Effect, Policy, PolicyKind, ResourceElement, ResourceMatcher, Statement,
};
use crate::context::RequestContext;
use crate::pattern::{ARN_PARTS, Pattern};
use crate::principal::PrincipalMatch;
use crate::variables::Lookup;

/// A statement that applied to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedStatement {
    /// Position in the policy's statement list.
    pub index: usize,
    /// The statement's `Sid`, if any.
    pub sid: Option<Arc<str>>,
    /// Its effect.
    pub effect: Effect,
    /// How its principal matched the caller.
    pub principal: PrincipalMatch,
}

/// The result of evaluating one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOutcome {
    /// Some applicable statement denies.
    pub explicit_deny: bool,
    /// Some applicable statement allows.
    pub allow: bool,
    /// Every applicable statement, in document order (held inline for the usual one or two).
    pub matched: SmallVec<[MatchedStatement; 2]>,
}

impl PolicyOutcome {
    /// Applicable Allow statements.
    pub fn allows(&self) -> impl Iterator<Item = &MatchedStatement> {
        self.matched.iter().filter(|m| m.effect == Effect::Allow)
    }

    /// Applicable Deny statements.
    pub fn denies(&self) -> impl Iterator<Item = &MatchedStatement> {
        self.matched.iter().filter(|m| m.effect == Effect::Deny)
    }
}

impl Policy {
    /// Evaluate this one policy for a request.
    #[must_use]
    pub fn evaluate(&self, req: &RequestContext<'_>) -> PolicyOutcome {
        self.evaluate_lowered(&req.action.to_ascii_lowercase(), req)
    }

    /// As [`evaluate`](Self::evaluate) with the action already lower-cased,
    /// so that callers evaluating several policies fold it once.
    pub(crate) fn evaluate_lowered(&self, action: &str, req: &RequestContext<'_>) -> PolicyOutcome {
        let lookup = Lookup {
            ctx: req.context,
            key_policy: self.kind == PolicyKind::KeyPolicy,
        };
        let mut out = PolicyOutcome::default();
        for (index, st) in self.statements.iter().enumerate() {
            if let Some(principal) = st.applies(action, req, lookup) {
                match st.effect {
                    Effect::Allow => out.allow = true,
                    Effect::Deny => out.explicit_deny = true,
                }
                out.matched.push(MatchedStatement {
                    index,
                    sid: st.sid.clone(),
                    effect: st.effect,
                    principal,
                });
            }
        }
        out
    }
}

impl Statement {
    /// `Some(how the principal matched)` if this statement applies. The
    /// cheap, selective tests run first.
    fn applies(
        &self,
        action: &str,
        req: &RequestContext<'_>,
        lookup: Lookup<'_>,
    ) -> Option<PrincipalMatch> {
        // Key-policy statement without Resource: accepted but inert (§1.1 quirk).
        let resource = self.resource.as_ref()?;
        if !action_matches(&self.action, action)
            || !resource_matches(resource, req.resource, lookup)
        {
            return None;
        }
        let principal = match &self.principal {
            None => PrincipalMatch::Unchecked,
            Some(p) if p.negated => {
                if p.spec.excludes(req.principal) {
                    return None;
                }
                PrincipalMatch::Direct
            }
            Some(p) => p.spec.matches(req.principal)?,
        };
        self.conditions
            .iter()
            .all(|c| c.evaluate(lookup))
            .then_some(principal)
    }
}

fn action_matches(el: &ActionElement, action: &str) -> bool {
    el.items.iter().any(|i| i.pattern.matches(action)) != el.negated
}

fn resource_matches(el: &ResourceElement, resource: &str, lookup: Lookup<'_>) -> bool {
    let any = el.items.iter().any(|item| match &item.matcher {
        ResourceMatcher::Static(p) => p.matches(resource),
        ResourceMatcher::Dynamic {
            prefix,
            resource: tpl,
        } => {
            let mut parts = resource.splitn(ARN_PARTS, ':');
            prefix
                .iter()
                .all(|seg| parts.next().is_some_and(|part| seg.matches(part)))
                && parts.next().is_some_and(|last| {
                    // An unresolvable variable makes this entry match nothing.
                    tpl.resolve_tokens(lookup)
                        .is_some_and(|toks| Pattern::from_tokens(toks).matches(last))
                })
        }
    });
    any != el.negated
}
