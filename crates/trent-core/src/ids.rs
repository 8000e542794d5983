//! Identifiers: key ids, ARNs, alias names, and parsing what callers pass as `KeyId`.
//!
//! A caller may name a key four ways — key id, key ARN, alias name, alias ARN — and each
//! operation accepts a subset ([`KeyIdForms`]). A bare key id or alias name always resolves in the
//! caller's own account and the request's region; only an ARN can reach another account.
//!
//! **Multi-Region keys.** Related multi-Region keys share one public key id (`mrk-` and 32 hex
//! digits) across Regions, but each is its own record: the domain and the store name a
//! multi-Region key by its *regional* id, `mrk-…@<region>` ([`regional_key_id`]), and every
//! answer shows the public id ([`public_key_id`]). A single-Region key's id is both.

use uuid::Uuid;

use crate::error::{KmsError, KmsResult};

/// The partition every ARN uses.
pub const PARTITION: &str = "aws";

/// The key ARN; `key_id` may be a regional id (its Region suffix is not part of the ARN).
pub fn key_arn(region: &str, account: &str, key_id: &str) -> String {
    let key_id = public_key_id(key_id);
    format!("arn:{PARTITION}:kms:{region}:{account}:key/{key_id}")
}

/// The id a caller sees: a multi-Region key's regional id without its Region suffix.
pub fn public_key_id(key_id: &str) -> &str {
    key_id.split_once('@').map_or(key_id, |(public, _)| public)
}

/// How the domain and the store name the multi-Region key `public_id` (`mrk-…`) of `region`.
pub fn regional_key_id(public_id: &str, region: &str) -> String {
    format!("{public_id}@{region}")
}

/// The 16 bytes a key id (regional or public) spells, as ciphertext blobs carry them: a UUID's,
/// or a multi-Region key id's hex digits.
pub fn raw_key_id(key_id: &str) -> Option<[u8; 16]> {
    let public = public_key_id(key_id);
    multi_region_raw(public).or_else(|| Uuid::parse_str(public).ok().map(|u| *u.as_bytes()))
}

/// The public id of a multi-Region key whose raw id (as in a ciphertext blob) is `raw`.
pub fn multi_region_key_id(raw: &[u8; 16]) -> String {
    format!("mrk-{}", hex::encode(raw))
}

pub fn alias_arn(region: &str, account: &str, alias_name: &str) -> String {
    format!("arn:{PARTITION}:kms:{region}:{account}:{alias_name}")
}

/// A parsed key identifier, not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// A key, by id, in `account`/`region`. A multi-Region key id (`mrk-` and 32 hex digits)
    /// is held as the 16 bytes its hex digits spell, with `multi_region` set.
    Key {
        account: &'a str,
        region: &'a str,
        key_id: Uuid,
        multi_region: bool,
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
            if let Some(raw) = multi_region_raw(id) {
                return Ok(KeyRef::Key {
                    account: arn_account,
                    region: arn_region,
                    key_id: Uuid::from_bytes(raw),
                    multi_region: true,
                });
            }
            let key_id = Uuid::parse_str(id).map_err(|_| invalid())?;
            return Ok(KeyRef::Key {
                account: arn_account,
                region: arn_region,
                key_id,
                multi_region: false,
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
    if let Some(raw) = multi_region_raw(input) {
        return Ok(KeyRef::Key {
            account,
            region,
            key_id: Uuid::from_bytes(raw),
            multi_region: true,
        });
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
        multi_region: false,
    })
}

/// A multi-Region key id: `mrk-` and 32 lowercase hex digits (AWS's form; a malformed one such
/// as `mrk-fake-key-id` is an invalid key id).
pub fn is_multi_region_key_id(s: &str) -> bool {
    multi_region_raw(s).is_some()
}

/// The 16 bytes a well-formed multi-Region key id spells.
fn multi_region_raw(s: &str) -> Option<[u8; 16]> {
    let hex_digits = s.strip_prefix("mrk-")?;
    let lower = hex_digits
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if hex_digits.len() != 32 || !lower {
        return None;
    }
    let mut raw = [0u8; 16];
    hex::decode_to_slice(hex_digits, &mut raw).ok()?;
    Some(raw)
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
    fn multi_region_ids_parse_and_map_to_regional_ids() {
        let id = "mrk-1234abcd12ab34cd56ef1234567890ab";
        let k = parse_key_ref(id, KeyIdForms::KeyOnly, "111122223333", "us-east-1").unwrap();
        let KeyRef::Key {
            key_id,
            multi_region,
            ..
        } = k
        else {
            panic!("not a key ref");
        };
        assert!(multi_region);
        assert_eq!(multi_region_key_id(key_id.as_bytes()), id);
        let regional = regional_key_id(id, "eu-west-1");
        assert_eq!(public_key_id(&regional), id);
        assert_eq!(
            key_arn("eu-west-1", "111122223333", &regional),
            format!("arn:aws:kms:eu-west-1:111122223333:key/{id}")
        );
        for bad in ["mrk-fake-key-id", "mrk-1234ABCD12ab34cd56ef1234567890ab"] {
            assert!(parse_key_ref(bad, KeyIdForms::KeyOnly, "111122223333", "us-east-1").is_err());
        }
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
