//! Request validation with AWS's messages (`1 validation error detected: Value ... at '...'
//! failed to satisfy constraint: ...`).
//!
//! Field names are the lower-camel-case member names AWS uses in these messages. Sensitive
//! members (plaintext and the like) are reported without their value, as AWS does.

use std::collections::BTreeMap;

use trent_crypto::spec::WireEnum;

use crate::error::{KmsError, KmsResult};

/// The most characters an encryption context may hold, counting every key and value and one
/// separator per pair (AWS's developer guide: "up to 8151 characters, including the `=` or `:`
/// separator").
pub const MAX_ENCRYPTION_CONTEXT_CHARS: usize = 8151;
/// The most pairs a grant constraint's encryption context may hold (AWS: "up to 8").
pub const MAX_CONSTRAINT_PAIRS: usize = 8;
/// The most characters a grant constraint's encryption context may hold, counted as for
/// [`MAX_ENCRYPTION_CONTEXT_CHARS`] (AWS: "cannot exceed 384 characters").
pub const MAX_CONSTRAINT_CHARS: usize = 384;

const ONE_VIOLATION: &str = "1 validation error detected: ";

fn violation(detail: String) -> KmsError {
    KmsError::Validation(format!("{ONE_VIOLATION}{detail}"))
}

/// Every member violation of a request at once, as AWS's model validation reports them
/// (`2 validation errors detected: …; …`), in the order they were checked (the members' order
/// in the API model). Other errors met while checking wait until there is no member violation:
/// AWS validates the model before anything else.
#[derive(Default)]
pub struct Violations {
    details: Vec<String>,
    other: Option<KmsError>,
}

impl Violations {
    /// The value of a check that passed; `None` (and the error kept) for one that failed.
    pub fn take<T>(&mut self, result: KmsResult<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(KmsError::Validation(message)) if message.starts_with(ONE_VIOLATION) => {
                self.details
                    .push(message.get(ONE_VIOLATION.len()..).unwrap_or("").to_string());
                None
            }
            Err(e) => {
                self.other.get_or_insert(e);
                None
            }
        }
    }

    /// Fails with every member violation in one message, else with the first other error.
    pub fn finish(self) -> KmsResult<()> {
        match self.details.len() {
            0 => self.other.map_or(Ok(()), Err),
            1 => Err(violation(self.details.concat())),
            n => Err(KmsError::Validation(format!(
                "{n} validation errors detected: {}",
                self.details.join("; ")
            ))),
        }
    }

    /// For the values of checks [`Self::finish`] found passed: `None` here would be a bug in the
    /// caller, answered as an internal error rather than a panic.
    pub fn checked() -> KmsError {
        KmsError::Internal("a validated member is missing".into())
    }
}

/// A required member that is absent.
pub fn required<T>(field: &str, value: Option<T>) -> KmsResult<T> {
    value.ok_or_else(|| {
        violation(format!(
            "Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// String length in characters within `min..=max`.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> KmsResult<()> {
    let n = value.chars().count();
    if n < min {
        return Err(violation(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if n > max {
        return Err(violation(format!(
            "Value '{}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}",
            truncate_for_message(value)
        )));
    }
    Ok(())
}

/// Blob length within `min..=max`; the value is never echoed.
pub fn blob_length(field: &str, value: &[u8], min: usize, max: usize) -> KmsResult<()> {
    blob_size(field, value.len(), min, max)
}

/// A blob (or a secret string) of `n` bytes (characters) within `min..=max`, in AWS's words
/// for members whose value is never echoed (`Value at 'plaintext' failed …`).
pub fn blob_size(field: &str, n: usize, min: usize, max: usize) -> KmsResult<()> {
    if n < min {
        return Err(violation(format!(
            "Value at '{field}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if n > max {
        return Err(violation(format!(
            "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
}

/// A sensitive string of `chars` characters within `min..=max` (the value is never echoed).
pub fn secret_length(field: &str, chars: usize, min: usize, max: usize) -> KmsResult<()> {
    blob_size(field, chars, min, max)
}

/// A list of `n` items within `min..=max` (the list is not echoed).
pub fn list_size(field: &str, n: usize, min: usize, max: usize) -> KmsResult<()> {
    blob_size(field, n, min, max)
}

/// Integer within `min..=max`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> KmsResult<()> {
    if value < min {
        return Err(violation(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
        )));
    }
    if value > max {
        return Err(violation(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: Member must have value less than or equal to {max}"
        )));
    }
    Ok(())
}

/// A member that must be one of an enum's wire names.
pub fn enum_value<E: WireEnum>(field: &str, value: &str) -> KmsResult<E> {
    E::parse(value).ok_or_else(|| enum_violation(field, value, &E::allowed()))
}

/// The violation of a value outside an enum whose values are `allowed` (`[A, B]`).
pub fn enum_message(field: &str, value: &str, allowed: &str) -> KmsResult<()> {
    Err(enum_violation(field, value, allowed))
}

fn enum_violation(field: &str, value: &str, allowed: &str) -> KmsError {
    violation(format!(
        "Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: {allowed}"
    ))
}

/// The violation of an item of the list `field` outside its enum (`allowed`), in the form AWS
/// uses for list members (`Value '[X]' at 'operations' failed to satisfy constraint: Member must
/// satisfy constraint: [Member must satisfy enum value set: […]]`).
pub fn enum_item(field: &str, value: &str, allowed: &str) -> KmsResult<()> {
    Err(violation(format!(
        "Value '[{value}]' at '{field}' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: {allowed}]"
    )))
}

/// The violation of a model pattern (`pattern` as AWS prints it); `shown` is the value, `None`
/// for a sensitive member.
pub fn pattern_text(field: &str, shown: Option<&str>, pattern: &str) -> KmsResult<()> {
    let value = match shown {
        Some(v) => format!("Value '{}' at", truncate_for_message(v)),
        None => "Value at".to_string(),
    };
    Err(violation(format!(
        "{value} '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
    )))
}

/// A string matching a character class, described by `pattern` in the message.
pub fn pattern(
    field: &str,
    value: &str,
    pattern: &str,
    ok: impl Fn(char) -> bool,
) -> KmsResult<()> {
    if value.chars().all(ok) {
        Ok(())
    } else {
        Err(violation(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
        )))
    }
}

/// The common `GrantTokens` member: at most 10 tokens of 1..8192 characters.
pub fn grant_tokens(tokens: &[String]) -> KmsResult<()> {
    if tokens.len() > 10 {
        return Err(violation(
            "Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10".into(),
        ));
    }
    for t in tokens {
        length("grantTokens", t, 1, 8192)?;
    }
    Ok(())
}

/// An encryption context member (`field` is its lower-camel-case name): no empty key, and at
/// most [`MAX_ENCRYPTION_CONTEXT_CHARS`] characters in all. Every operation that takes an
/// encryption context checks it before anything else is looked up.
pub fn encryption_context(field: &str, context: &BTreeMap<String, String>) -> KmsResult<()> {
    context_within(field, context, usize::MAX, MAX_ENCRYPTION_CONTEXT_CHARS)
}

/// A grant constraint's encryption context: the rules of [`encryption_context`], at most
/// [`MAX_CONSTRAINT_PAIRS`] pairs and [`MAX_CONSTRAINT_CHARS`] characters.
pub fn constraint_context(field: &str, context: &BTreeMap<String, String>) -> KmsResult<()> {
    context_within(field, context, MAX_CONSTRAINT_PAIRS, MAX_CONSTRAINT_CHARS)
}

fn context_within(
    field: &str,
    context: &BTreeMap<String, String>,
    max_pairs: usize,
    max_chars: usize,
) -> KmsResult<()> {
    let invalid = |why: String| KmsError::Validation(format!("Invalid EncryptionContext: {why}"));
    // Keys are sorted, so an empty key would be the first.
    if context.keys().next().is_some_and(String::is_empty) {
        return Err(invalid(format!("'{field}' has an empty key.")));
    }
    if context.len() > max_pairs {
        return Err(invalid(format!(
            "'{field}' has {} pairs; at most {max_pairs} are allowed.",
            context.len()
        )));
    }
    // Bytes bound characters from above, so characters are counted only past the byte bound
    // (never, for the contexts real clients send).
    let size = |len: fn(&str) -> usize| {
        context
            .iter()
            .fold(0usize, |n, (k, v)| n.saturating_add(len(k) + 1 + len(v)))
    };
    if size(str::len) > max_chars {
        let chars = size(|s| s.chars().count());
        if chars > max_chars {
            return Err(invalid(format!(
                "'{field}' holds {chars} characters (keys and values, one separator per pair); at most {max_chars} are allowed."
            )));
        }
    }
    Ok(())
}

/// `Limit` for list operations: 1..=`max`, defaulting to `default`.
pub fn limit(value: Option<i64>, max: i64, default: usize) -> KmsResult<usize> {
    match value {
        None => Ok(default),
        Some(v) => {
            range("limit", v, 1, 1000)?;
            Ok(usize::try_from(v.min(max)).unwrap_or(default))
        }
    }
}

/// The longest value a validation message echoes whole. AWS echoes the whole value (a
/// 257-character tag value comes back in full); past every KMS string limit but the policy's,
/// Trent cuts it rather than echo a 100 KiB value (docs/decisions.md, "AWS fidelity").
const MAX_ECHOED_CHARS: usize = 8192;

fn truncate_for_message(value: &str) -> String {
    if value.chars().count() > MAX_ECHOED_CHARS {
        let head: String = value.chars().take(MAX_ECHOED_CHARS).collect();
        format!("{head}...")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trent_crypto::spec::DataKeySpec;

    #[test]
    fn messages_have_aws_shape() {
        assert_eq!(
            required::<u8>("keyId", None).unwrap_err(),
            KmsError::Validation("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null".into())
        );
        assert_eq!(
            enum_value::<DataKeySpec>("keySpec", "AES_512").unwrap_err(),
            KmsError::Validation("1 validation error detected: Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]".into())
        );
        assert!(range("numberOfBytes", 0, 1, 1024).is_err());
        assert!(range("numberOfBytes", 1024, 1, 1024).is_ok());
        let KmsError::Validation(m) = blob_length("plaintext", &[0; 4097], 1, 4096).unwrap_err()
        else {
            panic!()
        };
        assert!(
            m.starts_with("1 validation error detected: Value at 'plaintext'"),
            "{m}"
        );
    }

    #[test]
    fn violations_are_reported_together_after_other_errors_wait() {
        let mut v = Violations::default();
        assert_eq!(v.take(range("numberOfBytes", 5, 1, 1024)), Some(()));
        assert!(v.finish().is_ok());

        let mut v = Violations::default();
        v.take(required::<u8>("keyId", None));
        v.take(Err::<(), _>(KmsError::NotFound("later".into())));
        v.take(enum_value::<DataKeySpec>("keySpec", "AES_512"));
        assert_eq!(
            v.finish().unwrap_err(),
            KmsError::Validation("2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value 'AES_512' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]".into())
        );

        let mut v = Violations::default();
        v.take(enum_value::<DataKeySpec>("keySpec", "AES_512"));
        assert_eq!(
            v.finish().unwrap_err(),
            enum_value::<DataKeySpec>("keySpec", "AES_512").unwrap_err()
        );

        let mut v = Violations::default();
        v.take(Err::<(), _>(KmsError::NotFound("first".into())));
        v.take(Err::<(), _>(KmsError::NotFound("second".into())));
        assert_eq!(v.finish().unwrap_err(), KmsError::NotFound("first".into()));
    }

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn encryption_context_limits() {
        assert!(encryption_context("encryptionContext", &ctx(&[])).is_ok());
        assert!(encryption_context("encryptionContext", &ctx(&[("a", "")])).is_ok());
        let Err(KmsError::Validation(m)) =
            encryption_context("encryptionContext", &ctx(&[("", "x")]))
        else {
            panic!()
        };
        assert_eq!(
            m,
            "Invalid EncryptionContext: 'encryptionContext' has an empty key."
        );
        // Exactly at the limit: one pair of 8150 characters (key, value) plus its separator.
        let value = "v".repeat(MAX_ENCRYPTION_CONTEXT_CHARS - 2);
        assert!(encryption_context("encryptionContext", &ctx(&[("k", &value)])).is_ok());
        let value = "v".repeat(MAX_ENCRYPTION_CONTEXT_CHARS - 1);
        assert!(encryption_context("encryptionContext", &ctx(&[("k", &value)])).is_err());
        // Characters, not bytes: 8149 two-byte characters fit.
        let value = "é".repeat(MAX_ENCRYPTION_CONTEXT_CHARS - 2);
        assert!(encryption_context("encryptionContext", &ctx(&[("k", &value)])).is_ok());
        // Many small pairs count their separators.
        let many: BTreeMap<String, String> = (0..3000)
            .map(|i| (format!("{i:04}"), String::new()))
            .collect();
        assert!(encryption_context("encryptionContext", &many).is_err());
    }

    #[test]
    fn constraint_context_limits() {
        let eight: BTreeMap<String, String> =
            (0..8).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(constraint_context("constraints.encryptionContextEquals", &eight).is_ok());
        let nine: BTreeMap<String, String> =
            (0..9).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(constraint_context("constraints.encryptionContextEquals", &nine).is_err());
        let value = "v".repeat(MAX_CONSTRAINT_CHARS - 2);
        assert!(constraint_context("c", &ctx(&[("k", &value)])).is_ok());
        let value = "v".repeat(MAX_CONSTRAINT_CHARS - 1);
        assert!(constraint_context("c", &ctx(&[("k", &value)])).is_err());
        assert!(constraint_context("c", &ctx(&[("", "v")])).is_err());
    }
}
