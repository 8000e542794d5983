//! The condition keys of one request, computed only when a policy asks for them.
//!
//! The evaluator asks [`RequestFacts`] for each key a matching statement references; the
//! answer is borrowed from facts computed once elsewhere — on the caller's [`Principal`]
//! (ARNs, ids, tags), on the loaded key (spec, usage, origin, tags) — or, for the few keys
//! that vary per request (time, source address), formatted on demand. A key policy without
//! conditions costs no work here at all.
//!
//! [`Principal`]: crate::caller::Principal

use std::borrow::Cow;
use std::collections::BTreeMap;

use trent_crypto::spec::WireEnum;
use trent_policy::{ConditionContext, ConditionValue, ConditionValues};

use crate::cache::{KeyCache, LoadedKey};
use crate::caller::{Caller, Identity};
use crate::clock::Clock;

/// Request-specific condition keys an operation supplies.
#[derive(Default)]
pub struct OperationFacts<'a> {
    /// `kms:EncryptionContext:<key>` and `kms:EncryptionContextKeys`.
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    /// `kms:EncryptionAlgorithm`.
    pub algorithm: Option<&'static str>,
    /// The `KeyId` as the caller wrote it (`kms:RequestAlias` when it names an alias).
    pub key_id_input: Option<&'a str>,
    /// Every other operation-specific key (grant, tag, lifecycle keys): rare operations.
    pub other: ConditionContext,
    /// A verified `Recipient` attestation document: `kms:RecipientAttestation:*`.
    pub recipient: Option<&'a trent_crypto::nitro::Attestation>,
}

/// All condition keys of one authorization question.
pub struct RequestFacts<'a> {
    caller: &'a Caller,
    clock: &'a dyn Clock,
    key: Option<(&'a LoadedKey, &'a KeyCache)>,
    operation: Option<&'a OperationFacts<'a>>,
    /// Whether `kms:CallerAccount` is answered without a key (the alias half of alias
    /// operations, for which the Service Authorization Reference lists it).
    caller_account: bool,
}

impl<'a> RequestFacts<'a> {
    /// The global (`aws:*`) keys of `caller`'s request.
    pub fn new(caller: &'a Caller, clock: &'a dyn Clock) -> Self {
        Self {
            caller,
            clock,
            key: None,
            operation: None,
            caller_account: false,
        }
    }

    /// Answers `kms:CallerAccount` although the request is not about a key.
    pub(crate) fn with_caller_account(mut self) -> Self {
        self.caller_account = true;
        self
    }

    /// Adds the keys of the KMS key the request is about (its aliases come from `cache`).
    pub(crate) fn with_key(mut self, key: &'a LoadedKey, cache: &'a KeyCache) -> Self {
        self.key = Some((key, cache));
        self
    }

    /// Adds the operation's own keys.
    pub(crate) fn with_operation(mut self, operation: &'a OperationFacts<'a>) -> Self {
        self.operation = Some(operation);
        self
    }

    fn global(&self, key: &str) -> Option<ConditionValue<'a>> {
        let caller = self.caller;
        let now = || self.clock.now_ms();
        Some(match key {
            "aws:principalarn" => borrowed(caller.principal_role_arn()),
            "aws:principalaccount" => borrowed(&caller.account),
            "aws:principaltype" => borrowed(caller.principal_type()),
            "aws:userid" => borrowed(caller.user_id()),
            "aws:username" => match &caller.identity {
                Identity::User { name, .. } => borrowed(name),
                _ => return None,
            },
            "aws:sourceip" => owned(caller.source_ip?.to_string()),
            "aws:securetransport" => boolean(caller.secure_transport),
            "aws:currenttime" => owned(crate::clock::iso8601(now())),
            "aws:epochtime" => owned(now().div_euclid(1000).to_string()),
            "aws:requestedregion" => borrowed(&caller.region),
            "aws:principalisawsservice" => boolean(caller.service_name().is_some()),
            "aws:principalservicename" => borrowed(caller.service_name()?),
            "aws:viaawsservice" => boolean(caller.forwarded_by().is_some()),
            "aws:sourcearn" => borrowed(caller.source_arn()?),
            "aws:sourceaccount" => borrowed(
                caller
                    .source_arn()?
                    .split(':')
                    .nth(4)
                    .filter(|a| !a.is_empty())?,
            ),
            // Present only when an integrated service made the call for the caller.
            "kms:viaservice" => borrowed(&caller.forwarded_by()?.via_service),
            _ => {
                let tag = key.strip_prefix("aws:principaltag/")?;
                return last_folded_match(caller.tags.iter().map(|(k, v)| (k, v)), tag)
                    .map(borrowed);
            }
        })
    }

    fn key_fact(&self, key: &str) -> Option<ConditionValue<'a>> {
        let Some((loaded, cache)) = self.key else {
            return (self.caller_account && key == "kms:calleraccount")
                .then(|| borrowed(&self.caller.account));
        };
        let record = &loaded.record;
        Some(match key {
            "kms:calleraccount" => borrowed(&self.caller.account),
            "kms:keyspec" | "kms:customermasterkeyspec" => borrowed(record.key_spec.as_str()),
            "kms:keyusage" | "kms:customermasterkeyusage" => borrowed(record.key_usage.as_str()),
            "kms:keyorigin" => borrowed(record.origin.as_str()),
            "kms:multiregion" => boolean(record.multi_region),
            "kms:multiregionkeytype" if record.multi_region => borrowed(if record.is_primary() {
                "PRIMARY"
            } else {
                "REPLICA"
            }),
            "aws:resourceaccount" => borrowed(&record.account_id),
            "kms:resourcealiases" => {
                let aliases = cache
                    .key_aliases(&record.key_id)
                    .filter(|a| !a.is_empty())?;
                ConditionValue::Multi(Cow::Owned(aliases))
            }
            _ => {
                let tag = key.strip_prefix("aws:resourcetag/")?;
                return last_folded_match(record.tags.iter().map(|t| (&t.key, &t.value)), tag)
                    .map(borrowed);
            }
        })
    }

    fn operation_fact(&self, key: &str) -> Option<ConditionValue<'a>> {
        let op = self.operation?;
        if let Some(v) = op.other.get_lower(key) {
            return Some(v.borrowed());
        }
        match key {
            "kms:encryptionalgorithm" => op.algorithm.map(borrowed),
            "kms:requestalias" => request_alias(op.key_id_input?).map(borrowed),
            "kms:recipientattestation:imagesha384" => {
                op.recipient?.image_sha384_hex().map(borrowed)
            }
            "kms:encryptioncontextkeys" => {
                let context = op.encryption_context.filter(|c| !c.is_empty())?;
                Some(ConditionValue::Multi(Cow::Owned(
                    context.keys().cloned().collect(),
                )))
            }
            _ if key.starts_with("kms:recipientattestation:pcr") => {
                let index = pcr_index(key.strip_prefix("kms:recipientattestation:pcr")?)?;
                op.recipient?.pcr_hex(index).map(borrowed)
            }
            _ if key.starts_with("kms:recipientattestation:nitrotpmpcr") => {
                // A NitroTPM document's PCRs (an enclave's document has none of these keys).
                let index = pcr_index(key.strip_prefix("kms:recipientattestation:nitrotpmpcr")?)?;
                op.recipient?.nitrotpm_pcr_hex(index).map(borrowed)
            }
            _ => {
                let name = key.strip_prefix("kms:encryptioncontext:")?;
                let context = op.encryption_context?;
                last_folded_match(context.iter(), name).map(borrowed)
            }
        }
    }
}

/// The `<n>` of `PCR<n>` / `NitroTPMPCR<n>`: n in 0..99 written in decimal digits only and
/// without leading zeros (`PCR01`, `PCR+1` and `PCR` are no keys).
fn pcr_index(digits: &str) -> Option<u8> {
    if digits.is_empty()
        || digits.len() > 2
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse::<u8>().ok()
}

impl ConditionValues for RequestFacts<'_> {
    fn value(&self, lower_key: &str) -> Option<ConditionValue<'_>> {
        self.operation_fact(lower_key)
            .or_else(|| self.key_fact(lower_key))
            .or_else(|| self.global(lower_key))
    }
}

fn borrowed(s: &str) -> ConditionValue<'_> {
    ConditionValue::Single(Cow::Borrowed(s))
}

fn owned(s: String) -> ConditionValue<'static> {
    ConditionValue::Single(Cow::Owned(s))
}

fn boolean(b: bool) -> ConditionValue<'static> {
    ConditionValue::Single(Cow::Borrowed(if b { "true" } else { "false" }))
}

/// The value of the last pair whose name, lower-cased, is `lower_name`. Condition keys are
/// case-insensitive, names included; of two names differing only in case the later one
/// answers, as a map keyed by the lower-cased name would.
fn last_folded_match<'a, I>(pairs: I, lower_name: &str) -> Option<&'a str>
where
    I: Iterator<Item = (&'a String, &'a String)>,
{
    pairs
        .filter(|(k, _)| {
            k.chars()
                .flat_map(char::to_lowercase)
                .eq(lower_name.chars())
        })
        .last()
        .map(|(_, v)| v.as_str())
}

/// `kms:RequestAlias`: the alias name when the request named the key by alias.
fn request_alias(key_id_input: &str) -> Option<&str> {
    if key_id_input.starts_with("alias/") {
        return Some(key_id_input);
    }
    key_id_input
        .strip_prefix("arn:")
        .and_then(|rest| rest.splitn(5, ':').nth(4))
        .filter(|r| r.starts_with("alias/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn value(facts: &RequestFacts<'_>, key: &str) -> Option<String> {
        match facts.value(key)? {
            ConditionValue::Single(v) => Some(v.into_owned()),
            ConditionValue::Multi(vs) => Some(vs.join(",")),
        }
    }

    #[test]
    fn global_keys_come_from_the_caller() {
        let clock = SystemClock::default();
        let mut caller = Caller::root("111122223333", "AKIAEXAMPLE", "eu-west-1");
        caller.secure_transport = true;
        let facts = RequestFacts::new(&caller, &clock);
        assert_eq!(
            value(&facts, "aws:principalarn").as_deref(),
            Some("arn:aws:iam::111122223333:root")
        );
        assert_eq!(
            value(&facts, "aws:principaltype").as_deref(),
            Some("Account")
        );
        assert_eq!(value(&facts, "aws:userid").as_deref(), Some("111122223333"));
        assert_eq!(
            value(&facts, "aws:requestedregion").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            value(&facts, "aws:securetransport").as_deref(),
            Some("true")
        );
        assert_eq!(value(&facts, "aws:username"), None, "root has no user name");
        assert_eq!(value(&facts, "aws:sourceip"), None);
        assert_eq!(value(&facts, "kms:keyspec"), None, "no key in this request");
        let epoch: i64 = value(&facts, "aws:epochtime").unwrap().parse().unwrap();
        assert!((epoch - clock.now_secs()).abs() <= 1);
    }

    #[test]
    fn via_service_is_present_only_for_a_forwarded_call() {
        let clock = SystemClock::default();
        let direct = Caller::root("111122223333", "AKIAEXAMPLE", "us-east-1");
        let facts = RequestFacts::new(&direct, &clock);
        assert_eq!(value(&facts, "kms:viaservice"), None);
        assert_eq!(value(&facts, "aws:viaawsservice").as_deref(), Some("false"));
        assert_eq!(
            value(&facts, "aws:principalisawsservice").as_deref(),
            Some("false")
        );
        assert!(!direct.made_by_service());
        let forwarded = direct
            .clone()
            .with_forwarded_by(crate::caller::ForwardedBy {
                service: "ec2.amazonaws.com".into(),
                via_service: "ec2.us-east-1.amazonaws.com".into(),
            });
        let facts = RequestFacts::new(&forwarded, &clock);
        assert_eq!(
            value(&facts, "kms:viaservice").as_deref(),
            Some("ec2.us-east-1.amazonaws.com")
        );
        assert_eq!(value(&facts, "aws:viaawsservice").as_deref(), Some("true"));
        assert_eq!(
            value(&facts, "aws:principalarn").as_deref(),
            Some("arn:aws:iam::111122223333:root"),
            "the caller is still the customer"
        );
        assert!(forwarded.made_by_service());
    }

    #[test]
    fn operation_keys_fold_case_and_prefer_the_later_name() {
        let clock = SystemClock::default();
        let caller = Caller::root("111122223333", "AKIAEXAMPLE", "us-east-1");
        let context: BTreeMap<String, String> = [("App", "one"), ("app", "two"), ("Team", "x")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let operation = OperationFacts {
            encryption_context: Some(&context),
            algorithm: Some("SYMMETRIC_DEFAULT"),
            key_id_input: Some("arn:aws:kms:us-east-1:111122223333:alias/billing"),
            other: ConditionContext::new().with("kms:GrantIsForAWSResource", "false"),
            recipient: None,
        };
        let facts = RequestFacts::new(&caller, &clock).with_operation(&operation);
        assert_eq!(
            value(&facts, "kms:encryptioncontext:app").as_deref(),
            Some("two")
        );
        assert_eq!(
            value(&facts, "kms:encryptioncontext:team").as_deref(),
            Some("x")
        );
        assert_eq!(value(&facts, "kms:encryptioncontext:missing"), None);
        assert_eq!(
            value(&facts, "kms:encryptioncontextkeys").as_deref(),
            Some("App,Team,app")
        );
        assert_eq!(
            value(&facts, "kms:requestalias").as_deref(),
            Some("alias/billing")
        );
        assert_eq!(
            value(&facts, "kms:encryptionalgorithm").as_deref(),
            Some("SYMMETRIC_DEFAULT")
        );
        assert_eq!(
            value(&facts, "kms:grantisforawsresource").as_deref(),
            Some("false")
        );
    }

    #[test]
    fn pcr_keys_are_decimal_digits_without_sign_or_leading_zeros() {
        use trent_crypto::nitro::TrustAnchors;
        use trent_crypto::nitro::test_pki::{Document, TestPki};
        let now = 1_790_000_000_000i64;
        let pki = TestPki::new(now);
        let rsa = aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .unwrap();
        let spki = aws_lc_rs::encoding::AsDer::as_der(&rsa.public_key())
            .unwrap()
            .as_ref()
            .to_vec();
        let document = pki.document(&Document::new(Some(spki), now as u64));
        let attestation = TrustAnchors::parse(pki.root.pem().as_bytes())
            .unwrap()
            .verify(&document, now)
            .unwrap();
        let clock = SystemClock::default();
        let caller = Caller::root("111122223333", "AKIAEXAMPLE", "us-east-1");
        let operation = OperationFacts {
            recipient: Some(&attestation),
            ..Default::default()
        };
        let facts = RequestFacts::new(&caller, &clock).with_operation(&operation);
        // Document::new: PCRn is 48 bytes of n + 1.
        let pcr = |n: u8| Some(hex::encode([n + 1; 48]));
        assert_eq!(value(&facts, "kms:recipientattestation:pcr0"), pcr(0));
        assert_eq!(value(&facts, "kms:recipientattestation:pcr1"), pcr(1));
        assert_eq!(value(&facts, "kms:recipientattestation:pcr15"), pcr(15));
        for not_a_key in [
            "pcr+1", "pcr01", "pcr00", "pcr", "pcr-0", "pcr 1", "pcr1 ", "pcr001",
        ] {
            assert_eq!(
                value(&facts, &format!("kms:recipientattestation:{not_a_key}")),
                None,
                "{not_a_key}"
            );
        }
    }
}
