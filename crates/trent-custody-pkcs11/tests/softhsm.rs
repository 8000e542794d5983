//! The PKCS#11 custodian against a real SoftHSM2 token: login, key generation, AES-GCM in the
//! token interoperating with built-in material, non-extractability, PIN and label failures.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use std::sync::Arc;

use trent_crypto::SymmetricKey;
use trent_crypto::custody::{
    CustodyError, HsmConnectError, HsmProvider, HsmTokenLocation, SymmetricCustody,
};
use trent_custody_pkcs11::Pkcs11Provider;
use trent_custody_pkcs11::test_token::{TEST_PIN, run_with_token, softhsm_module};

fn location(label: &str) -> HsmTokenLocation {
    HsmTokenLocation {
        module: softhsm_module().unwrap(),
        token_label: label.to_string(),
    }
}

#[test]
fn token_key_seals_and_opens_and_survives_reconnect() {
    run_with_token(
        "token_key_seals_and_opens_and_survives_reconnect",
        "trent-test-a",
        |label| {
            let provider = Pkcs11Provider::new();
            let conn = provider.connect(&location(label), TEST_PIN).unwrap();
            let key = conn.generate_aes_key("material-1").unwrap();
            let mut sealed = Vec::new();
            key.seal_append([7; 12], b"aad", b"secret", &mut sealed)
                .unwrap();
            assert_eq!(sealed.len(), 6 + 16);
            assert_eq!(
                key.open([7; 12], b"aad", &sealed).unwrap().as_slice(),
                b"secret"
            );
            // A wrong AAD or a flipped bit fails authentication, not as an outage.
            assert_eq!(
                key.open([7; 12], b"other", &sealed).err(),
                Some(CustodyError::Authentication)
            );
            let mut bad = sealed.clone();
            if let Some(b) = bad.first_mut() {
                *b ^= 1;
            }
            assert_eq!(
                key.open([7; 12], b"aad", &bad).err(),
                Some(CustodyError::Authentication)
            );
            assert!(conn.find_aes_key("no-such-material").unwrap().is_none());

            // Closing ends the keys' usefulness; a new connection finds the key by label.
            conn.close();
            assert_eq!(
                key.open([7; 12], b"aad", &sealed).err(),
                Some(CustodyError::Unavailable)
            );
            let again = provider.connect(&location(label), TEST_PIN).unwrap();
            let found = again.find_aes_key("material-1").unwrap().unwrap();
            assert_eq!(
                found.open([7; 12], b"aad", &sealed).unwrap().as_slice(),
                b"secret"
            );
            assert_eq!(again.random(32).unwrap().len(), 32);
            assert!(again.random(2000).is_err());

            // Destroying removes the token object: gone for this and later lookups.
            assert!(again.destroy_aes_key("material-1").unwrap());
            assert!(again.find_aes_key("material-1").unwrap().is_none());
            assert!(!again.destroy_aes_key("material-1").unwrap());
        },
    );
}

#[test]
fn token_gcm_matches_builtin_gcm() {
    // The token computes standard AES-GCM: an in-process key with the same bytes would give
    // the same output. Token keys are not extractable, so check it the other way round: a
    // built-in seal of a known key cannot be opened by a token key (different key) but a
    // token seal has the exact length and layout of a built-in one.
    run_with_token("token_gcm_matches_builtin_gcm", "trent-test-b", |label| {
        let provider = Pkcs11Provider::new();
        let conn = provider.connect(&location(label), TEST_PIN).unwrap();
        let token_key: Arc<dyn SymmetricCustody> = conn.generate_aes_key("m").unwrap();
        let builtin = SymmetricKey::generate().unwrap();
        let mut a = Vec::new();
        let mut b = Vec::new();
        token_key
            .seal_append([1; 12], b"x", b"hello", &mut a)
            .unwrap();
        SymmetricCustody::seal_append(&builtin, [1; 12], b"x", b"hello", &mut b).unwrap();
        assert_eq!(a.len(), b.len());
        assert_ne!(a, b);
        assert_eq!(
            token_key.open([1; 12], b"x", &b).err(),
            Some(CustodyError::Authentication)
        );
    });
}

#[test]
fn wrong_pin_and_unknown_token_and_missing_module() {
    run_with_token(
        "wrong_pin_and_unknown_token_and_missing_module",
        "trent-test-c",
        |label| {
            let provider = Pkcs11Provider::new();
            assert_eq!(
                provider.connect(&location(label), "wrong-pin").err(),
                Some(HsmConnectError::InvalidCredentials)
            );
            assert!(matches!(
                provider.connect(&location("no-such-token"), TEST_PIN).err(),
                Some(HsmConnectError::ClusterNotFound(_))
            ));
            let missing = HsmTokenLocation {
                module: "/nonexistent/libpkcs11.so".into(),
                token_label: label.to_string(),
            };
            let err = provider.connect(&missing, "secret-pin-value").err();
            assert!(matches!(err, Some(HsmConnectError::ClusterNotFound(_))));
            // Errors never carry the PIN.
            assert!(!format!("{err:?}").contains("secret-pin-value"));
            // The right PIN still works after a wrong one.
            assert!(provider.connect(&location(label), TEST_PIN).is_ok());
        },
    );
}

#[test]
fn root_key_in_the_token_wraps_derives_and_is_found_again() {
    use trent_crypto::RootKeyError;
    use trent_crypto::custody::RootCustodian;
    use trent_custody_pkcs11::TokenRootKey;
    use trent_custody_pkcs11::root::TokenRootError;

    run_with_token(
        "root_key_in_the_token_wraps_derives_and_is_found_again",
        "trent-test-root",
        |label| {
            let provider = Pkcs11Provider::new();
            // Not there, and not to be created: refused (a database may need the lost one).
            assert!(matches!(
                TokenRootKey::open(&provider, &location(label), TEST_PIN, "trent-root", false),
                Err(TokenRootError::Missing(_))
            ));
            assert!(matches!(
                TokenRootKey::open(&provider, &location(label), "wrong-pin", "trent-root", true),
                Err(TokenRootError::Connect(HsmConnectError::InvalidCredentials))
            ));
            let (root, created) =
                TokenRootKey::open(&provider, &location(label), TEST_PIN, "trent-root", true)
                    .unwrap();
            assert!(created);
            let wrapped = root.wrap(b"material", b"aad-1").unwrap();
            assert_eq!(wrapped.first(), Some(&2), "version 2: token-wrapped");
            assert!(!wrapped.windows(8).any(|w| w == b"material"));
            assert_eq!(
                root.unwrap(&wrapped, b"aad-1").unwrap().as_slice(),
                b"material"
            );
            assert_eq!(root.unwrap(&wrapped, b"aad-2"), Err(RootKeyError::Unwrap));
            let a = root.derive_subkey("grant-token").unwrap();
            assert_ne!(
                a.expose_bytes(),
                root.derive_subkey("other").unwrap().expose_bytes()
            );
            // A file root key's wrap is not the token's, and the other way round.
            let (file_root, _) = trent_crypto::RootKey::generate().unwrap();
            assert_eq!(
                file_root.unwrap(&wrapped, b"aad-1"),
                Err(RootKeyError::Unwrap)
            );
            let file_wrapped = file_root.wrap(b"material", b"aad-1").unwrap();
            assert_eq!(
                root.unwrap(&file_wrapped, b"aad-1"),
                Err(RootKeyError::Unwrap)
            );
            drop(root);

            // Found again (another start): same wrap key, same derived subkeys; never
            // generated twice.
            let (again, created) =
                TokenRootKey::open(&provider, &location(label), TEST_PIN, "trent-root", true)
                    .unwrap();
            assert!(!created);
            assert_eq!(
                again.unwrap(&wrapped, b"aad-1").unwrap().as_slice(),
                b"material"
            );
            assert_eq!(
                again.derive_subkey("grant-token").unwrap().expose_bytes(),
                a.expose_bytes()
            );
            // While the root key is logged in, no store connection shares its login (even
            // with the right PIN: the root's login is not a store connection's).
            assert_eq!(
                provider.connect(&location(label), TEST_PIN).err(),
                Some(HsmConnectError::UserLoggedIn)
            );
            drop(again);
            // An AES key object in the token, as the store keys are.
            let conn = provider.connect(&location(label), TEST_PIN).unwrap();
            assert!(conn.find_aes_key("trent-root").unwrap().is_some());
        },
    );
}

/// PKCS#11 login state is process-wide: while a connection is logged in, a second connect
/// with a wrong PIN must not ride on that login (`CKR_USER_ALREADY_LOGGED_IN` checks no PIN)
/// and must not reach the token either; the live login's own PIN still connects.
#[test]
fn a_live_login_is_not_shared_with_a_wrong_pin() {
    run_with_token(
        "a_live_login_is_not_shared_with_a_wrong_pin",
        "trent-test-login",
        |label| {
            let provider = Pkcs11Provider::new();
            let conn = provider.connect(&location(label), TEST_PIN).unwrap();
            assert_eq!(
                provider.connect(&location(label), "wrong-pin").err(),
                Some(HsmConnectError::UserLoggedIn)
            );
            // Another provider object in this process sees the same login.
            assert_eq!(
                Pkcs11Provider::new()
                    .connect(&location(label), "other-pin")
                    .err(),
                Some(HsmConnectError::UserLoggedIn)
            );
            let same = provider.connect(&location(label), TEST_PIN).unwrap();
            assert_eq!(same.random(8).unwrap().len(), 8);
            drop(same);
            assert_eq!(conn.random(8).unwrap().len(), 8);
            conn.close();
            // Logged out: the token checks the PIN again.
            assert_eq!(
                provider.connect(&location(label), "wrong-pin").err(),
                Some(HsmConnectError::InvalidCredentials)
            );
            assert!(provider.connect(&location(label), TEST_PIN).is_ok());
        },
    );
}
