//! Robustness of the KMS request-body parser (`parse`) on untrusted bytes: arbitrary bytes,
//! JSON-token soup and mutated valid bodies never panic, and every failure is the typed
//! `ApiError::Serialization` (the wire's `SerializationException`).

use proptest::prelude::*;
use serde::de::DeserializeOwned;

use super::parse;
use crate::kms::error::ApiError;
use crate::kms::shapes::{
    CreateKeyRequest, DecryptRequest, EncryptRequest, GenerateDataKeyRequest, ReEncryptRequest,
};

const VALID: &str = r#"{"KeyId":"alias/a","Plaintext":"eA==","CiphertextBlob":"AQE=","EncryptionContext":{"app":"billing"},"GrantTokens":["dG9rZW4="],"NumberOfBytes":32,"KeySpec":"AES_256","DryRun":false,"Tags":[{"TagKey":"k","TagValue":"v"}],"Policy":"{}"}"#;

fn check<T: DeserializeOwned + Default>(body: &[u8]) {
    match parse::<T>(body) {
        Ok(_) | Err(ApiError::Serialization(_)) => {}
        Err(_) => panic!("a body parse failed with something other than a serialization error"),
    }
}

fn all_shapes(body: &[u8]) {
    check::<EncryptRequest>(body);
    check::<DecryptRequest>(body);
    check::<ReEncryptRequest>(body);
    check::<GenerateDataKeyRequest>(body);
    check::<CreateKeyRequest>(body);
}

#[test]
fn the_valid_body_parses_into_every_shape() {
    // Otherwise the mutation test would only ever mutate an already-rejected body.
    let body = VALID.as_bytes();
    assert!(parse::<EncryptRequest>(body).is_ok());
    assert!(parse::<DecryptRequest>(body).is_ok());
    assert!(parse::<ReEncryptRequest>(body).is_ok());
    assert!(parse::<GenerateDataKeyRequest>(body).is_ok());
    assert!(parse::<CreateKeyRequest>(body).is_ok());
}

fn json_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("\"KeyId\"".to_owned()),
        Just("\"Plaintext\"".to_owned()),
        Just("\"CiphertextBlob\"".to_owned()),
        Just("\"EncryptionContext\"".to_owned()),
        Just("\"GrantTokens\"".to_owned()),
        Just("\"NumberOfBytes\"".to_owned()),
        Just("\"eA==\"".to_owned()),
        Just("\"===\"".to_owned()),
        Just("null".to_owned()),
        Just("-1e999".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        "\"[ -~]{0,8}\"",
        "[0-9]{1,4}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_fail_typed(body in prop::collection::vec(any::<u8>(), 0..256)) {
        all_shapes(&body);
    }

    #[test]
    fn json_token_soup_fails_typed(body in json_soup()) {
        all_shapes(body.as_bytes());
    }

    #[test]
    fn mutated_valid_bodies_fail_typed(
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(&['{', '}', '[', ']', '"', ',', ':', '\\', '0', 'x', '='][..]),
        delete in any::<bool>(),
    ) {
        all_shapes(VALID.as_bytes());
        let mut chars: Vec<char> = VALID.chars().collect();
        let i = at.index(chars.len());
        if delete {
            chars.remove(i);
        } else if let Some(c) = chars.get_mut(i) {
            *c = with;
        }
        all_shapes(chars.into_iter().collect::<String>().as_bytes());
    }
}
