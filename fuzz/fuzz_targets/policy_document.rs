//! Fuzz target: `Policy::parse` (key policy and identity policy) on arbitrary text, and for
//! documents that parse: evaluation against a fixed request, and the serializer round trip
//! (`to_json` output must parse again to the same JSON).

#![no_main]

use libfuzzer_sys::fuzz_target;
use trent_policy::kms::{KmsRequest, authorize};
use trent_policy::{ConditionContext, Policy, PolicyError, PolicyKind, Principal, RequestContext};

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let alice = Principal::user("111122223333", "arn:aws:iam::111122223333:user/alice");
    let ctx = ConditionContext::new()
        .with("kms:CallerAccount", "111122223333")
        .with("kms:EncryptionContext:app", "billing")
        .with_multi("kms:EncryptionContextKeys", ["app"])
        .with("aws:SecureTransport", "true")
        .with("aws:SourceIp", "10.1.2.3")
        .with("aws:CurrentTime", "2026-11-23T01:00:00Z")
        .with("aws:EpochTime", "1795395600");

    for kind in [PolicyKind::KeyPolicy, PolicyKind::Identity] {
        let policy = match Policy::parse(text, kind) {
            Ok(policy) => policy,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        for action in ["kms:Decrypt", "kms:Encrypt", "kms:CreateGrant"] {
            let _ = policy.evaluate(&RequestContext {
                action,
                resource: KEY_ARN,
                principal: &alice,
                context: &ctx,
            });
        }
        if kind == PolicyKind::KeyPolicy {
            let req = KmsRequest {
                principal: &alice,
                action: "kms:Decrypt",
                key_arn: KEY_ARN,
                key_account: "111122223333",
                context: &ctx,
            };
            let no_identity_policies: [&Policy; 0] = [];
            let _ = authorize(&policy, &no_identity_policies, true, &req);
        }
        let json = policy.to_json();
        match Policy::parse(&json, kind) {
            Ok(again) => assert_eq!(again.to_json(), json, "serializer round trip is not stable"),
            // The canonical form may be longer than the input (escapes, added brackets).
            Err(PolicyError::TooLarge { .. }) => {}
            Err(e) => panic!("to_json output does not parse again: {e}\n{json}"),
        }
    }
});
