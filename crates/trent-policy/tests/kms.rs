//! The KMS authorization algorithm (§1.5): explicit deny, the cross-account
//! gate, direct key-policy allows, delegation to IAM, grants, root user.

mod common;
use common::*;
use trent_policy::kms::{KmsRequest, authorize, authorize_without_key, cross_account_permitted};
use trent_policy::{
    Authorization, ConditionContext, Decision, DenyCause, Policy, PolicyType, Principal,
};

const DEFAULT_KP: &str = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn decide(
    kp: &Policy,
    iam: &[&Policy],
    grants: bool,
    who: &Principal,
    action: &str,
    c: &ConditionContext,
) -> Authorization {
    authorize(
        kp,
        iam,
        grants,
        &KmsRequest {
            principal: who,
            action,
            key_arn: KEY_ARN,
            key_account: ACCT,
            context: c,
        },
    )
}

fn allow_all_kms() -> Policy {
    identity(r#"{"Statement":{"Sid":"AllowKms","Effect":"Allow","Action":"kms:*","Resource":"*"}}"#)
}

#[test]
fn default_key_policy_delegates_to_iam() {
    let kp = key_policy(DEFAULT_KP);
    let none = ConditionContext::new();
    let iam = allow_all_kms();
    // Root: implicit identity permissions.
    assert!(
        decide(
            &kp,
            &[],
            false,
            &Principal::root(ACCT),
            "kms:PutKeyPolicy",
            &none
        )
        .is_allowed()
    );
    // A user needs an IAM allow.
    let a = decide(&kp, &[&iam], false, &alice(), "kms:Decrypt", &none);
    assert!(a.is_allowed());
    let sids: Vec<_> = a
        .reasons
        .iter()
        .map(|r| (r.policy_type, r.sid.as_deref()))
        .collect();
    assert_eq!(
        sids,
        [
            (
                PolicyType::ResourceBased,
                Some("Enable IAM User Permissions")
            ),
            (PolicyType::IdentityBased, Some("AllowKms"))
        ]
    );
    let a = decide(&kp, &[], false, &alice(), "kms:Decrypt", &none);
    assert_eq!(a.decision, Decision::ImplicitDeny);
    assert_eq!(a.deny_cause, Some(DenyCause::NoIdentityPolicyAllows));
    assert!(
        a.access_denied_message(USER_ARN, "kms:Decrypt", KEY_ARN)
            .unwrap()
            .ends_with("because no identity-based policy allows the kms:Decrypt action")
    );
    // An IAM deny wins over everything, grants included.
    let deny = identity(
        r#"{"Statement":{"Sid":"NoDecrypt","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}}"#,
    );
    let a = decide(&kp, &[&iam, &deny], true, &alice(), "kms:Decrypt", &none);
    assert_eq!(a.decision, Decision::ExplicitDeny);
    assert_eq!(
        a.deny_cause,
        Some(DenyCause::ExplicitDeny(PolicyType::IdentityBased))
    );
    assert_eq!(a.reasons[0].sid.as_deref(), Some("NoDecrypt"));
    assert_eq!(a.reasons[0].policy_index, 1);
}

#[test]
fn without_root_statement_iam_is_ineffective() {
    let kp = key_policy(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*"}}"#,
    );
    let none = ConditionContext::new();
    let iam = allow_all_kms();
    assert!(decide(&kp, &[], false, &alice(), "kms:Decrypt", &none).is_allowed());
    let a = decide(&kp, &[&iam], false, &alice(), "kms:Encrypt", &none);
    assert_eq!(a.deny_cause, Some(DenyCause::NoResourcePolicyAllows));
    // Even the root user is locked out.
    assert!(
        !decide(
            &kp,
            &[],
            false,
            &Principal::root(ACCT),
            "kms:PutKeyPolicy",
            &none
        )
        .is_allowed()
    );
    // Grants still work.
    assert!(decide(&kp, &[], true, &alice(), "kms:Encrypt", &none).is_allowed());
    let g = decide(&kp, &[], true, &alice(), "kms:Encrypt", &none);
    assert_eq!(g.reasons[0].policy_type, PolicyType::Grant);
}

#[test]
fn key_policy_deny_wins_and_account_principal_covers_everyone() {
    let kp = key_policy(
        r#"{"Statement":[
        {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
        {"Sid":"NoDelete","Effect":"Deny","Principal":{"AWS":"111122223333"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}]}"#,
    );
    let none = ConditionContext::new();
    let iam = allow_all_kms();
    let a = decide(
        &kp,
        &[&iam],
        true,
        &alice(),
        "kms:ScheduleKeyDeletion",
        &none,
    );
    assert_eq!(a.decision, Decision::ExplicitDeny);
    assert_eq!(
        a.deny_cause,
        Some(DenyCause::ExplicitDeny(PolicyType::ResourceBased))
    );
    assert!(
        a.access_denied_message(USER_ARN, "kms:ScheduleKeyDeletion", KEY_ARN)
            .unwrap()
            .ends_with("with an explicit deny in a resource-based policy")
    );
    assert_eq!(
        decide(
            &kp,
            &[],
            false,
            &Principal::root(ACCT),
            "kms:ScheduleKeyDeletion",
            &none
        )
        .decision,
        Decision::ExplicitDeny
    );
    assert!(decide(&kp, &[&iam], false, &admin_session(), "kms:Decrypt", &none).is_allowed());
}

#[test]
fn principal_star_with_caller_account_condition() {
    let kp = key_policy(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
        "Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","kms:ViaService":"ec2.us-east-1.amazonaws.com"}}}}"#,
    );
    let via = ctx(&[
        ("kms:CallerAccount", ACCT),
        ("kms:ViaService", "ec2.us-east-1.amazonaws.com"),
    ]);
    let direct = ctx(&[("kms:CallerAccount", ACCT)]);
    assert!(decide(&kp, &[], false, &alice(), "kms:Decrypt", &via).is_allowed());
    assert!(!decide(&kp, &[], false, &alice(), "kms:Decrypt", &direct).is_allowed());
    assert!(!decide(&kp, &[], false, &alice(), "kms:Sign", &via).is_allowed());
}

#[test]
fn cross_account() {
    let kp = key_policy(
        r#"{"Statement":[
        {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {"Sid":"External","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"},
        {"Sid":"Bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:user/bob"},"Action":"kms:*","Resource":"*"}]}"#,
    );
    let none = ConditionContext::new();
    let ext_alice = Principal::user(OTHER, "arn:aws:iam::444455556666:user/alice");
    let ext_bob = Principal::user(OTHER, "arn:aws:iam::444455556666:user/bob");
    let iam = allow_all_kms();
    assert!(decide(&kp, &[&iam], false, &ext_alice, "kms:Decrypt", &none).is_allowed());
    assert!(!decide(&kp, &[], false, &ext_alice, "kms:Decrypt", &none).is_allowed());
    // Named directly, still needs its own account's IAM allow.
    assert!(!decide(&kp, &[], false, &ext_bob, "kms:Decrypt", &none).is_allowed());
    assert!(decide(&kp, &[&iam], false, &ext_bob, "kms:Decrypt", &none).is_allowed());
    // The gate: never for management operations.
    let a = decide(
        &kp,
        &[&iam],
        true,
        &ext_bob,
        "kms:ScheduleKeyDeletion",
        &none,
    );
    assert_eq!(a.decision, Decision::ImplicitDeny);
    assert!(
        decide(
            &kp,
            &[&iam],
            false,
            &Principal::root(OTHER),
            "kms:CreateGrant",
            &none
        )
        .is_allowed()
    );
    assert!(
        !decide(
            &kp,
            &[&iam],
            false,
            &Principal::root(OTHER),
            "kms:PutKeyPolicy",
            &none
        )
        .is_allowed()
    );
    // Grants work cross-account without IAM.
    assert!(
        decide(
            &kp,
            &[],
            true,
            &Principal::user(OTHER, "arn:aws:iam::444455556666:user/eve"),
            "kms:Decrypt",
            &none
        )
        .is_allowed()
    );
    assert!(cross_account_permitted("KMS:GenerateDataKeyPair"));
    assert!(!cross_account_permitted("kms:TagResource"));
}

#[test]
fn service_principal_and_iam_only_operations() {
    let kp = key_policy(
        r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:Encrypt*","Resource":"*"}}"#,
    );
    let svc = Principal::service("logs.amazonaws.com");
    let none = ConditionContext::new();
    assert!(decide(&kp, &[], false, &svc, "kms:Encrypt", &none).is_allowed());
    assert!(!decide(&kp, &[], false, &svc, "kms:Decrypt", &none).is_allowed());

    let iam = identity(
        r#"{"Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*"},{"Effect":"Deny","Action":"kms:GenerateRandom","Resource":"*"}]}"#,
    );
    let run =
        |who: &Principal, action: &str| authorize_without_key(&[&iam], who, action, "*", &none);
    assert!(run(&alice(), "kms:CreateKey").is_allowed());
    assert_eq!(
        run(&alice(), "kms:ListKeys").deny_cause,
        Some(DenyCause::NoIdentityPolicyAllows)
    );
    assert_eq!(
        run(&alice(), "kms:GenerateRandom").decision,
        Decision::ExplicitDeny
    );
    assert!(run(&Principal::root(ACCT), "kms:ListKeys").is_allowed());
}

#[test]
fn lockout_check_is_an_ordinary_evaluation() {
    // New policy with a root statement, caller's IAM lacks PutKeyPolicy: would lock out.
    let new_kp = key_policy(DEFAULT_KP);
    let iam = identity(r#"{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}"#);
    let none = ConditionContext::new();
    assert!(!decide(&new_kp, &[&iam], false, &alice(), "kms:PutKeyPolicy", &none).is_allowed());
    assert!(
        decide(
            &new_kp,
            &[&allow_all_kms()],
            false,
            &alice(),
            "kms:PutKeyPolicy",
            &none
        )
        .is_allowed()
    );
}
