//! STS decisions: `sts:AssumeRole` by a role's trust policy (its resource policy) together with
//! the caller's identity policies, under IAM's rule for role trust; and who may call
//! GetSessionToken.

use trent_policy::{
    DenyCause, Policy, PolicyOutcome, PolicyType, PrincipalMatch, Reason, Reasons, RequestContext,
};

use super::{Decision, RequestFacts};
use crate::caller::Caller;
use crate::iam::IamResult;
use crate::service::Kms;

impl Kms {
    /// GetSessionToken needs no permission, but only long-term credentials may call it.
    pub(crate) fn check_get_session_token(&self, caller: &Caller) -> IamResult<()> {
        if caller.temporary || caller.is_role_session() {
            return Err(crate::sts::session_credentials_refused());
        }
        Ok(())
    }

    /// Whether `caller` may call IAM at all. GetSessionToken credentials carry no MFA context
    /// here (Trent has no MFA), and AWS refuses every IAM call made with such credentials —
    /// answering, as IAM does, that the security token is invalid.
    /// A service's own credentials are not an IAM identity of any account: IAM does not know
    /// them either (a service manages IAM only as its roles).
    pub fn may_call_iam(&self, caller: &Caller) -> bool {
        caller.service_name().is_none() && (!caller.temporary || caller.is_role_session())
    }

    /// Whether `caller` may assume the role `role_arn` of `role_account` whose trust policy is
    /// `trust`. Any explicit deny refuses. In the role's own account a trust statement naming
    /// the caller suffices, one naming the account needs an identity-policy allow too; from
    /// another account the caller always needs both.
    pub(crate) fn decide_assume_role(
        &self,
        caller: &Caller,
        role_arn: &str,
        role_account: &str,
        trust: &Policy,
    ) -> Decision {
        let facts = RequestFacts::new(caller, self.clock.as_ref());
        let request = RequestContext {
            action: "sts:AssumeRole",
            resource: role_arn,
            principal: caller.policy_principal(),
            context: &facts,
        };
        let trusted = trust.evaluate(&request);
        let identity: Vec<PolicyOutcome> = caller
            .identity_policies
            .iter()
            .map(|p| p.evaluate(&request))
            .collect();
        let reasons = |effect| -> Reasons {
            let of = |policy_type, index, o: &PolicyOutcome| {
                o.matched
                    .iter()
                    .filter(|m| m.effect == effect)
                    .map(|m| Reason {
                        policy_type,
                        policy_index: index,
                        statement: m.index,
                        sid: m.sid.clone(),
                    })
                    .collect::<Vec<_>>()
            };
            let mut all: Reasons = of(PolicyType::ResourceBased, 0, &trusted)
                .into_iter()
                .collect();
            for (i, o) in identity.iter().enumerate() {
                all.extend(of(PolicyType::IdentityBased, i, o));
            }
            all
        };
        if trusted.explicit_deny {
            return Decision::ExplicitDeny(
                reasons(trent_policy::Effect::Deny),
                PolicyType::ResourceBased,
            );
        }
        if identity.iter().any(|o| o.explicit_deny) {
            return Decision::ExplicitDeny(
                reasons(trent_policy::Effect::Deny),
                PolicyType::IdentityBased,
            );
        }
        let direct = trusted
            .allows()
            .any(|m| m.principal == PrincipalMatch::Direct);
        let via_account = trusted
            .allows()
            .any(|m| m.principal == PrincipalMatch::Account);
        let identity_allows = caller.is_root() || identity.iter().any(|o| o.allow);
        // A service principal has no account and no identity policies: the trust policy
        // naming it is the whole permission, as for AWS's services.
        let allowed = if caller.service_name().is_some() {
            direct
        } else if caller.account == role_account {
            direct || (via_account && identity_allows)
        } else {
            (direct || via_account) && identity_allows
        };
        if allowed {
            Decision::AllowedByPolicy(reasons(trent_policy::Effect::Allow))
        } else if direct || via_account {
            Decision::ImplicitDeny(DenyCause::NoIdentityPolicyAllows)
        } else {
            Decision::ImplicitDeny(DenyCause::NoResourcePolicyAllows)
        }
    }
}
