//! Robustness of the ciphertext blob parser on untrusted bytes (the stable-toolchain companion
//! of `fuzz/fuzz_targets/ciphertext_blob.rs`, run by CI): arbitrary bytes and mutated valid
//! blobs never panic, fail with the typed [`BlobError`], and a blob with any byte changed never
//! authenticates.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use trent_crypto::blob::{ALG_AES_256_GCM, FORMAT_V1, FORMAT_V2_MULTI_REGION, OVERHEAD};
use trent_crypto::{BlobError, CiphertextBlob, EncryptionContext, MaterialId, SymmetricKey};

const KEY_ID: [u8; 16] = [0x11; 16];
const MATERIAL: MaterialId = MaterialId([0x22; 32]);

fn key() -> SymmetricKey {
    SymmetricKey::from_bytes(&[7u8; 32]).unwrap()
}

fn context() -> EncryptionContext<'static> {
    EncryptionContext::new(BTreeMap::from([("k".to_owned(), "v".to_owned())]))
}

fn sealed(plaintext: &[u8]) -> Vec<u8> {
    CiphertextBlob::seal(KEY_ID, MATERIAL, &key(), &context(), plaintext).unwrap()
}

/// Arbitrary bytes, half of them with a well-formed version and algorithm so `parse` succeeds
/// often enough for `open` to be exercised.
fn blob_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(|mut v| {
            if v.len() >= 2 {
                v[0] = FORMAT_V1;
                v[1] = ALG_AES_256_GCM;
            }
            v
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_parse_or_fail_typed(bytes in blob_like()) {
        match CiphertextBlob::parse(&bytes) {
            Ok(blob) => {
                prop_assert!(bytes.len() >= OVERHEAD);
                prop_assert_eq!(&blob.key_id[..], &bytes[2..18]);
                prop_assert_eq!(blob.open(&key(), &context()), Err(BlobError::Authentication));
            }
            Err(e) => {
                prop_assert_eq!(e, BlobError::Malformed);
                prop_assert!(
                    bytes.len() < OVERHEAD
                        || (bytes[0] != FORMAT_V1 && bytes[0] != FORMAT_V2_MULTI_REGION)
                        || bytes[1] != ALG_AES_256_GCM
                );
            }
        }
    }

    #[test]
    fn any_changed_byte_fails_to_open(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let mut blob = sealed(&plaintext);
        let i = at.index(blob.len());
        blob[i] ^= xor;
        match CiphertextBlob::parse(&blob) {
            // Only the version and algorithm bytes are checked by parse itself.
            Err(e) => {
                prop_assert!(i < 2, "byte {} made the blob malformed", i);
                prop_assert_eq!(e, BlobError::Malformed);
            }
            Ok(parsed) => {
                prop_assert_eq!(parsed.open(&key(), &context()), Err(BlobError::Authentication));
            }
        }
    }

    #[test]
    fn truncated_or_extended_blobs_fail_typed(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        cut in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 1..32),
    ) {
        let blob = sealed(&plaintext);
        let truncated = &blob[..cut.index(blob.len())];
        match CiphertextBlob::parse(truncated) {
            Err(e) => prop_assert_eq!(e, BlobError::Malformed),
            Ok(parsed) => {
                prop_assert_eq!(parsed.open(&key(), &context()), Err(BlobError::Authentication));
            }
        }
        let mut extended = blob.clone();
        extended.extend_from_slice(&tail);
        let parsed = CiphertextBlob::parse(&extended).unwrap();
        prop_assert_eq!(parsed.open(&key(), &context()), Err(BlobError::Authentication));
    }

    #[test]
    fn wrong_context_or_key_fails_to_open(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        k in "[a-z]{0,8}",
        v in "[a-z]{0,8}",
    ) {
        let blob = CiphertextBlob::parse(&sealed(&plaintext)).unwrap();
        let opened = blob.open(&key(), &context()).unwrap();
        prop_assert_eq!(opened.as_slice(), &plaintext[..]);
        if (k.as_str(), v.as_str()) != ("k", "v") {
            let other = EncryptionContext::new(BTreeMap::from([(k, v)]));
            prop_assert_eq!(blob.open(&key(), &other), Err(BlobError::Authentication));
        }
        let other_key = SymmetricKey::from_bytes(&[8u8; 32]).unwrap();
        prop_assert_eq!(blob.open(&other_key, &context()), Err(BlobError::Authentication));
    }
}
