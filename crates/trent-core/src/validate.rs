//! Request validation with AWS's messages (`1 validation error detected: Value ... at '...'
//! failed to satisfy constraint: ...`).
//!
//! Field names are the lower-camel-case member names AWS uses in these messages. Sensitive
//! members (plaintext and the like) are reported without their value, as AWS does.

use trent_crypto::spec::WireEnum;

use crate::error::{KmsError, KmsResult};

fn violation(detail: String) -> KmsError {
    KmsError::Validation(format!("1 validation error detected: {detail}"))
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
    if value.len() < min {
        return Err(violation(format!(
            "Value at '{field}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if value.len() > max {
        return Err(violation(format!(
            "Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
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
    E::parse(value).ok_or_else(|| {
        violation(format!(
            "Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: {}",
            E::allowed()
        ))
    })
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

fn truncate_for_message(value: &str) -> String {
    // Echoing a 100 KiB value back is unhelpful; AWS also elides long values.
    if value.chars().count() > 256 {
        let head: String = value.chars().take(256).collect();
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
}
