//! The root key held in a PKCS#11 token (`[root_key_pkcs11]` in the config): the
//! [`RootCustodian`] for an operator who keeps Trent's root key itself in an HSM.
//!
//! Two token objects, both generated in the token, sensitive and not extractable, so the root
//! key never exists in Trent's memory:
//!
//! - an AES-256 key labelled `<label>`: wraps and unwraps every secret at rest with AES-GCM in
//!   the token. Wrapped format (version 2, so it is never confused with a file root key's
//!   version 1): `0x02 | nonce (12) | ciphertext | tag (16)`, the AAD as given.
//! - a 32-byte generic secret labelled `<label>-derive`: derives purpose-bound subkeys as
//!   `HMAC-SHA256(secret, "trent:subkey:v1:" || label)` with `CKM_SHA256_HMAC` in the token,
//!   the derivation a file root key uses (the subkeys themselves are in-process keys, like a
//!   file root key's: Trent derives each once, at start).
//!
//! Every node sharing a database must reach the same token objects (an HSM cluster's
//! replication, or one token), as every node needs the same root key file.

use std::sync::Mutex;

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use trent_crypto::custody::{HsmConnectError, HsmTokenLocation, RootCustodian};
use trent_crypto::{RootKeyError, SymmetricKey};
use zeroize::Zeroizing;

use crate::{Pkcs11Provider, TAG_BITS, TAG_LEN};

const WRAP_VERSION: u8 = 2;
const NONCE_LEN: usize = 12;

/// The root key in a token: one logged-in session and the two key objects.
pub struct TokenRootKey {
    session: Mutex<Session>,
    wrap_key: ObjectHandle,
    derive_key: ObjectHandle,
}

/// Why the token root key could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum TokenRootError {
    #[error(transparent)]
    Connect(#[from] HsmConnectError),
    /// The token has no root key objects with that label (and creating them was not asked).
    #[error("the token holds no root key labelled {0:?}")]
    Missing(String),
    #[error("token failure: {0}")]
    Token(String),
}

fn find(
    session: &Session,
    class_type: (ObjectClass, KeyType),
    label: &str,
) -> Result<Option<ObjectHandle>, TokenRootError> {
    let found = session
        .find_objects(&[
            Attribute::Class(class_type.0),
            Attribute::KeyType(class_type.1),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| TokenRootError::Token(e.to_string()))?;
    Ok(found.into_iter().next())
}

fn generate(
    session: &Session,
    mechanism: &Mechanism,
    key_type: KeyType,
    label: &str,
    usage: [Attribute; 2],
) -> Result<ObjectHandle, TokenRootError> {
    let mut template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
    ];
    template.extend(usage);
    session
        .generate_key(mechanism, &template)
        .map_err(|e| TokenRootError::Token(e.to_string()))
}

impl TokenRootKey {
    /// Opens the token at `location` with `pin` and finds the root key labelled `label`.
    /// With `create`, generates it when the token holds none (the caller allows that only
    /// while there is no database, as for a root key file); the flag says whether it did.
    pub fn open(
        provider: &Pkcs11Provider,
        location: &HsmTokenLocation,
        pin: &str,
        label: &str,
        create: bool,
    ) -> Result<(Self, bool), TokenRootError> {
        let session = provider.open_session(location, pin)?;
        let derive_label = format!("{label}-derive");
        let aes = (ObjectClass::SECRET_KEY, KeyType::AES);
        let generic = (ObjectClass::SECRET_KEY, KeyType::GENERIC_SECRET);
        let (wrap_key, derive_key, created) = match (
            find(&session, aes, label)?,
            find(&session, generic, &derive_label)?,
        ) {
            (Some(w), Some(d)) => (w, d, false),
            (None, None) if create => {
                let w = generate(
                    &session,
                    &Mechanism::AesKeyGen,
                    KeyType::AES,
                    label,
                    [Attribute::Encrypt(true), Attribute::Decrypt(true)],
                )?;
                let d = generate(
                    &session,
                    &Mechanism::GenericSecretKeyGen,
                    KeyType::GENERIC_SECRET,
                    &derive_label,
                    [Attribute::Sign(true), Attribute::Verify(true)],
                )?;
                (w, d, true)
            }
            // Half a root key is not one: never complete it (the other half may be lost).
            (Some(_), None) | (None, Some(_)) => {
                return Err(TokenRootError::Token(format!(
                    "the token holds only one of the root key objects {label:?} and {derive_label:?}"
                )));
            }
            (None, None) => return Err(TokenRootError::Missing(label.to_string())),
        };
        Ok((
            Self {
                session: Mutex::new(session),
                wrap_key,
                derive_key,
            },
            created,
        ))
    }

    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, cryptoki::error::Error>,
    ) -> Result<T, cryptoki::error::Error> {
        match self.session.lock() {
            Ok(session) => f(&session),
            // A panic while holding the session leaves it usable (no half-done call remains).
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

fn custodian(e: cryptoki::error::Error) -> RootKeyError {
    RootKeyError::Custodian(e.to_string())
}

impl RootCustodian for TokenRootKey {
    fn wrap(&self, secret: &[u8], aad: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        let nonce = trent_crypto::random::array::<NONCE_LEN>().map_err(|_| RootKeyError::Random)?;
        let sealed = self
            .with_session(|session| {
                let mut iv = nonce;
                let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
                session.encrypt(&Mechanism::AesGcm(params), self.wrap_key, secret)
            })
            .map_err(custodian)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, RootKeyError> {
        let (&version, rest) = wrapped.split_first().ok_or(RootKeyError::Unwrap)?;
        if version != WRAP_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(RootKeyError::Unwrap);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| RootKeyError::Unwrap)?;
        self.with_session(|session| {
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            session.decrypt(&Mechanism::AesGcm(params), self.wrap_key, sealed)
        })
        .map(Zeroizing::new)
        .map_err(|e| match e {
            // SoftHSM2 reports a tag mismatch as a general error (see `TokenKey::open`): a
            // wrapped secret that does not open is "not wrapped by this root key".
            cryptoki::error::Error::Pkcs11(
                RvError::GeneralError
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
                _,
            ) => RootKeyError::Unwrap,
            e => custodian(e),
        })
    }

    fn derive_subkey(&self, label: &str) -> Result<SymmetricKey, RootKeyError> {
        let message = format!("trent:subkey:v1:{label}");
        let tag = self
            .with_session(|session| {
                session.sign(&Mechanism::Sha256Hmac, self.derive_key, message.as_bytes())
            })
            .map_err(custodian)?;
        let tag = Zeroizing::new(tag);
        SymmetricKey::from_bytes(&tag).ok_or(RootKeyError::BadLength)
    }
}
