//! Identifiers: key ids, ARNs, alias names, and parsing what callers pass as `KeyId`.
//!
//! A caller may name a key four ways — key id, key ARN, alias name, alias ARN — and each
//! operation accepts a subset ([`KeyIdForms`]). A bare key id or alias name always resolves in the
//! caller's own account and the request's region; only an ARN can reach another account.

use uuid::Uuid;

use crate::error::{KmsError, KmsResult};

/// The partition every ARN uses.
pub const PARTITION: &str = "aws";

pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    format!("arn:{PARTITION}:kms:{region}:{account}:key/{key_id}")
}

pub fn alias_arn(region: &str, account: &str, alias_name: &str) -> String {
    format!("arn:{PARTITION}:kms:{region}:{account}:{alias_name}")
}

/// A parsed key identifier, not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// A key, by id, in `account`/`region`.
    Key {
        account: &'a str,
        region: &'a str,
        key_id: Uuid,
    },
    /// An alias, by name (`alias/...`), in `account`/`region`.
    Alias {
        account: &'a str,
        region: &'a str,
        name: &'a str,
    },
}

/// Which identifier forms an operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyIdForms {
    /// Key id, key ARN, alias name or alias ARN (cryptographic operations, DescribeKey).
    KeyOrAlias,
    /// Key id or key ARN only (management operations).
    KeyOnly,
}

/// Parses `input` as the caller in `account`/`region` would mean it.
pub fn parse_key_ref<'a>(
    input: &'a str,
    forms: KeyIdForms,
    account: &'a str,
    region: &'a str,
) -> KmsResult<KeyRef<'a>> {
    let invalid = || KmsError::NotFound(format!("Invalid keyId '{input}'"));
    if let Some(rest) = input.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        let (Some(partition), Some(service), Some(arn_region), Some(arn_account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(KmsError::NotFound(format!("Invalid arn {input}")));
        };
        if partition != PARTITION || service != "kms" || !is_account_id(arn_account) {
            return Err(KmsError::NotFound(format!("Invalid arn {input}")));
        }
        if let Some(id) = resource.strip_prefix("key/") {
            if is_multi_region_key_id(id) {
                return Err(no_multi_region_key(arn_region, arn_account, id, region));
            }
            let key_id = Uuid::parse_str(id).map_err(|_| invalid())?;
            return Ok(KeyRef::Key {
                account: arn_account,
                region: arn_region,
                key_id,
            });
        }
        if resource.starts_with("alias/") && forms == KeyIdForms::KeyOrAlias {
            return Ok(KeyRef::Alias {
                account: arn_account,
                region: arn_region,
                name: resource,
            });
        }
        return Err(invalid());
    }
    if input.starts_with("alias/") {
        if forms == KeyIdForms::KeyOrAlias {
            return Ok(KeyRef::Alias {
                account,
                region,
                name: input,
            });
        }
        return Err(invalid());
    }
    if is_multi_region_key_id(input) {
        return Err(no_multi_region_key(region, account, input, region));
    }
    let key_id = Uuid::parse_str(input).map_err(|_| invalid())?;
    // Uuid::parse_str also accepts braced/urn/simple forms; KMS key ids are the hyphenated form.
    let mut canonical = [0u8; uuid::fmt::Hyphenated::LENGTH];
    if !key_id
        .hyphenated()
        .encode_lower(&mut canonical)
        .eq_ignore_ascii_case(input)
    {
        return Err(invalid());
    }
    Ok(KeyRef::Key {
        account,
        region,
        key_id,
    })
}

/// A multi-Region key id: `mrk-` and 32 lowercase hex digits (AWS's form; a malformed one such
/// as `mrk-fake-key-id` is an invalid key id).
fn is_multi_region_key_id(s: &str) -> bool {
    s.strip_prefix("mrk-").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Trent has no multi-Region keys, so a well-formed `mrk-` id names nothing: AWS's NotFound for
/// a key that does not exist (`Key '<key ARN>' does not exist`), or, for an ARN of another
/// Region than the request's, AWS's `Invalid arn <Region>`.
fn no_multi_region_key(region: &str, account: &str, id: &str, caller_region: &str) -> KmsError {
    if region != caller_region {
        return KmsError::NotFound(format!("Invalid arn {region}"));
    }
    KmsError::NotFound(format!(
        "Key '{}' does not exist",
        key_arn(region, account, id)
    ))
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn all_four_forms_parse() {
        let k = parse_key_ref(ID, KeyIdForms::KeyOrAlias, "111122223333", "us-east-1").unwrap();
        assert!(matches!(k, KeyRef::Key { account, .. } if account == "111122223333"));
        let arn = format!("arn:aws:kms:eu-west-1:444455556666:key/{ID}");
        let k = parse_key_ref(&arn, KeyIdForms::KeyOnly, "111122223333", "us-east-1").unwrap();
        assert!(
            matches!(k, KeyRef::Key { account, region, .. } if account == "444455556666" && region == "eu-west-1")
        );
        let a = parse_key_ref(
            "alias/x",
            KeyIdForms::KeyOrAlias,
            "111122223333",
            "us-east-1",
        )
        .unwrap();
        assert_eq!(
            a,
            KeyRef::Alias {
                account: "111122223333",
                region: "us-east-1",
                name: "alias/x"
            }
        );
        let a = parse_key_ref(
            "arn:aws:kms:us-east-1:444455556666:alias/x",
            KeyIdForms::KeyOrAlias,
            "111122223333",
            "us-east-1",
        )
        .unwrap();
        assert!(matches!(a, KeyRef::Alias { account, .. } if account == "444455556666"));
    }

    #[test]
    fn aliases_refused_where_only_keys_allowed_and_garbage_refused() {
        for bad in [
            "alias/x",
            "arn:aws:kms:us-east-1:444455556666:alias/x",
            "not-a-key",
            "arn:aws:kms:us-east-1:12:key/x",
            "arn:aws:s3:::bucket",
            "{1234abcd-12ab-34cd-56ef-1234567890ab}",
        ] {
            assert!(
                matches!(
                    parse_key_ref(bad, KeyIdForms::KeyOnly, "111122223333", "us-east-1"),
                    Err(KmsError::NotFound(_))
                ),
                "{bad}"
            );
        }
    }
}
