//! Fuzz target: `CiphertextBlob::parse` and `open` on arbitrary bytes.
//!
//! Input: the first byte picks the mode. Mode even: the rest is a blob, parsed and (if it parses)
//! opened with a fixed key. Mode odd: a valid blob is sealed under the fixed key and the rest of
//! the input is XORed into it; the mutated blob must parse-or-fail cleanly, and may open only if
//! no byte actually changed (AES-GCM with the header in the AAD).

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use trent_crypto::{BlobError, CiphertextBlob, EncryptionContext, MaterialId, SymmetricKey};

const KEY_ID: [u8; 16] = [0x11; 16];
const MATERIAL: MaterialId = MaterialId([0x22; 32]);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(key) = SymmetricKey::from_bytes(&[7u8; 32]) else {
        return;
    };
    let context = EncryptionContext::new(BTreeMap::from([("k".to_owned(), "v".to_owned())]));

    if mode % 2 == 0 {
        match CiphertextBlob::parse(rest) {
            Ok(blob) => {
                assert_eq!(&rest[2..18], &blob.key_id);
                // Opening succeeds only for a genuine blob under our key (the seeds are such);
                // anything else is the typed authentication failure.
                for ctx in [&context, &EncryptionContext::default()] {
                    if let Err(e) = blob.open(&key, ctx) {
                        assert_eq!(e, BlobError::Authentication);
                    }
                }
            }
            Err(e) => assert_eq!(e, BlobError::Malformed),
        }
        return;
    }

    let plaintext: &[u8] = b"fuzzing the ciphertext blob";
    let Ok(mut blob) = CiphertextBlob::seal(KEY_ID, MATERIAL, &key, &context, plaintext) else {
        return;
    };
    let mut changed = false;
    for (b, x) in blob.iter_mut().zip(rest) {
        *b ^= x;
        changed |= *x != 0;
    }
    // Extra input beyond the blob's length is appended (a longer, still-parsable blob).
    if rest.len() > blob.len() {
        blob.extend_from_slice(&rest[blob.len()..]);
        changed = true;
    }
    match CiphertextBlob::parse(&blob) {
        Ok(parsed) => match parsed.open(&key, &context) {
            Ok(opened) => {
                assert!(!changed, "a modified blob authenticated");
                assert_eq!(opened.as_slice(), plaintext);
            }
            Err(e) => {
                assert!(changed, "the unmodified blob failed to open: {e}");
                assert_eq!(e, BlobError::Authentication);
            }
        },
        Err(e) => {
            assert!(changed);
            assert_eq!(e, BlobError::Malformed);
        }
    }
});
