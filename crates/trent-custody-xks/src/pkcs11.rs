//! The proxy's PKCS#11 backend: external keys are AES keys in a token (SoftHSM2, or any
//! PKCS#11 HSM), found by `CKA_LABEL` = the `externalKeyId`, used with `CKM_AES_GCM` inside
//! the token, so their bytes never reach the proxy.
//!
//! ```toml
//! [pkcs11]
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token_label = "xks-ekm"
//! pin_file = "ekm.pin"          # or $TRENT_XKS_PROXY_PIN; relative to the config file
//! ```
//!
//! Decisions (see docs/custom-key-stores.md):
//! - GetKeyMetadata reads the key's attributes: `CKA_KEY_TYPE` and `CKA_VALUE_LEN` give
//!   `keySpec` (`AES_256` for a 32-byte AES key), `CKA_ENCRYPT` / `CKA_DECRYPT` / `CKA_SIGN` /
//!   `CKA_VERIFY` / `CKA_WRAP` / `CKA_UNWRAP` / `CKA_DERIVE` give `keyUsage`. PKCS#11 has no
//!   enabled/disabled state: a key that may neither encrypt nor decrypt is reported `DISABLED`
//!   (it can do nothing for KMS), which is what `trent xks-proxy disable-key` makes of a key
//!   (`C_SetAttributeValue` of both flags to false). PKCS#11 keeps no record of the flags a
//!   disabled key had, so [`admin::enable_key`] sets exactly the usage it is given
//!   (`enable-key --usage ENCRYPT` for an encrypt-only key; both by default).
//! - Exactly one secret-key token object must carry the label; none or several is
//!   `KeyNotFoundException` (as the reference proxy does: an ambiguous id names no key).
//! - Only a 32-byte AES key is used for Encrypt/Decrypt; any other key is
//!   `InvalidKeyUsageException`, like a key without the flag.
//! - The IV is 12 random bytes drawn by the proxy (SoftHSM2 cannot generate GCM IVs) and
//!   passed in; the tag is 128 bits. `C_Decrypt`'s `CKR_ENCRYPTED_DATA_INVALID`,
//!   `CKR_ENCRYPTED_DATA_LEN_RANGE` and `CKR_AEAD_DECRYPT_FAILED` are "does not authenticate"
//!   (`InvalidCiphertextException`); so is `CKR_GENERAL_ERROR`, but only from a SoftHSM2 token
//!   (its `C_Decrypt` answers a failed GCM tag check, `decryptFinal`, with it). Every other
//!   code is `InternalException`.
//! - One logged-in read-write session behind a mutex (a PKCS#11 session must not be used by
//!   two threads at once); the proxy calls the backend on tokio's blocking pool. Each request
//!   finds its key once (`describe`); seal / open reuse that handle. If the token
//!   answers as if it restarted (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`,
//!   `CKR_DEVICE_REMOVED`, `CKR_TOKEN_NOT_PRESENT`, `CKR_USER_NOT_LOGGED_IN`,
//!   `CKR_CRYPTOKI_NOT_INITIALIZED`), the session is reopened, logged in again, the health key
//!   made again, and the operation retried once. GetHealthStatus is a deep check: an AES-GCM
//!   round trip (random IV) in the token under a session (non-token) key generated at start,
//!   which no KMS key can name.
//! - The PIN is read at start (and again when the session is reopened) and never logged;
//!   errors carry the module's return-code name only. Prefer `pin_file`: a
//!   `$TRENT_XKS_PROXY_PIN` stays readable in `/proc/<pid>/environ` (to the same user and
//!   root) for the process's life.
//! - A relative `module` with a directory part (`lib/softhsm2.so`) and a relative
//!   `pin_file` are relative to the config file's directory; a bare file name
//!   (`libsofthsm2.so`) is left to the dynamic loader's search path.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::backend::{BackendError, EkmHealth, KeyBackend, KeyInfo};

/// The environment variable holding the token's user PIN when there is no `pin_file`.
pub const PIN_ENV: &str = "TRENT_XKS_PROXY_PIN";
/// AES-GCM tag length, in bits and bytes.
const TAG_BITS: u64 = 128;
const TAG_LEN: usize = 16;
/// PKCS#11 3.0's `CKR_AEAD_DECRYPT_FAILED` (0x42), which cryptoki 0.12 has no name for.
const CKR_AEAD_DECRYPT_FAILED: std::ffi::c_ulong = 0x42;

/// `[pkcs11]` in the proxy's configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token's label (slots are found by it).
    pub token_label: String,
    /// A file holding the token's user PIN (trailing newline ignored); without it,
    /// `$TRENT_XKS_PROXY_PIN`.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
}

impl Pkcs11Config {
    /// The user PIN, from the file or the environment. The error never contains it.
    pub fn pin(&self) -> Result<Zeroizing<String>, String> {
        let pin = match &self.pin_file {
            Some(path) => {
                let text = Zeroizing::new(
                    std::fs::read_to_string(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                );
                Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            None => Zeroizing::new(std::env::var(PIN_ENV).map_err(|_| {
                format!("[pkcs11] needs pin_file or ${PIN_ENV} (the token's user PIN)")
            })?),
        };
        if pin.is_empty() {
            return Err("the token's user PIN is empty".into());
        }
        Ok(pin)
    }
}

/// The open session and the health check's session key (made in that session).
struct TokenState {
    session: Session,
    health_key: ObjectHandle,
    /// The key the last `describe` found: (id, handle, a 32-byte AES key). The proxy always
    /// describes a key just before sealing or opening under it, so seal / open reuse this
    /// handle instead of finding the key and reading its attributes again.
    described: Option<(String, ObjectHandle, bool)>,
}

/// A logged-in session with the external key manager's token.
pub struct Pkcs11Backend {
    config: Pkcs11Config,
    /// `None` after a lost session whose reopening failed (tried again on the next call).
    state: Mutex<Option<TokenState>>,
    /// The token is SoftHSM2 (its `CKR_GENERAL_ERROR` on `C_Decrypt` is a tag mismatch).
    softhsm: bool,
    ekm_vendor: String,
    instance_id: String,
    model: String,
}

fn rv(e: &CkError) -> String {
    // cryptoki's Display names the function and return code, never arguments.
    e.to_string()
}

/// In a [`BackendError::Internal`] detail: the object handle is stale (the key was destroyed).
const HANDLE_INVALID: &str = "stale key handle: ";

/// The prefix of a [`BackendError::Internal`] detail for a code that means the session is
/// gone (the token restarted): [`Pkcs11Backend::with_session`] reopens and retries.
const SESSION_LOST: &str = "token session lost: ";

fn session_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized,
            _,
        )
    )
}

/// A token error as a backend error (`Internal`, marked when the session is lost).
fn ck(e: CkError) -> BackendError {
    if session_lost(&e) {
        BackendError::Internal(format!("{SESSION_LOST}{}", rv(&e)))
    } else if matches!(
        e,
        CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _)
    ) {
        BackendError::Internal(format!("{HANDLE_INVALID}{}", rv(&e)))
    } else {
        BackendError::Internal(rv(&e))
    }
}

/// Opens the token: loads and initializes the module, finds the token by label, logs in.
pub fn open_session(config: &Pkcs11Config) -> Result<(Session, cryptoki::slot::TokenInfo), String> {
    let module = Pkcs11::new(&config.module).map_err(|e| {
        format!(
            "cannot load PKCS#11 module {}: {}",
            config.module.display(),
            rv(&e)
        )
    })?;
    match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(format!(
                "cannot initialize {}: {}",
                config.module.display(),
                rv(&e)
            ));
        }
    }
    let slots = module.get_slots_with_token().map_err(|e| rv(&e))?;
    let (slot, info) = slots
        .into_iter()
        .find_map(|slot| {
            let info = module.get_token_info(slot).ok()?;
            (info.label().trim_end() == config.token_label).then_some((slot, info))
        })
        .ok_or_else(|| {
            format!(
                "no token labelled {:?} in {}",
                config.token_label,
                config.module.display()
            )
        })?;
    let session = module.open_rw_session(slot).map_err(|e| rv(&e))?;
    let pin = config.pin()?;
    match session.login(UserType::User, Some(&AuthPin::new(pin.as_str().into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => {
            return Err(format!(
                "cannot log in to token {:?}: {}",
                config.token_label,
                rv(&e)
            ));
        }
    }
    Ok((session, info))
}

fn key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// The one secret key labelled `label`.
fn find_key(session: &Session, label: &str) -> Result<ObjectHandle, BackendError> {
    let found = session.find_objects(&key_template(label)).map_err(ck)?;
    match found.as_slice() {
        [one] => Ok(*one),
        _ => Err(BackendError::NotFound),
    }
}

/// `keySpec` and `keyUsage` from a key's attributes, and whether it is a 32-byte AES key.
fn key_info(session: &Session, handle: ObjectHandle) -> Result<(KeyInfo, bool), BackendError> {
    let attributes = session
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::Sign,
                AttributeType::Verify,
                AttributeType::Wrap,
                AttributeType::Unwrap,
                AttributeType::Derive,
            ],
        )
        .map_err(ck)?;
    let mut key_type = None;
    let mut len = None;
    let mut usage = Vec::new();
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::ValueLen(l) => len = Some(*l),
            Attribute::Encrypt(true) => usage.push("ENCRYPT".to_string()),
            Attribute::Decrypt(true) => usage.push("DECRYPT".to_string()),
            Attribute::Sign(true) => usage.push("SIGN".to_string()),
            Attribute::Verify(true) => usage.push("VERIFY".to_string()),
            Attribute::Wrap(true) => usage.push("WRAP".to_string()),
            Attribute::Unwrap(true) => usage.push("UNWRAP".to_string()),
            Attribute::Derive(true) => usage.push("DERIVE".to_string()),
            _ => {}
        }
    }
    let aes = key_type == Some(KeyType::AES);
    let key_spec = match (aes, len) {
        (true, Some(32)) => "AES_256".to_string(),
        (true, Some(24)) => "AES_192".to_string(),
        (true, Some(16)) => "AES_128".to_string(),
        (true, _) => "AES".to_string(),
        (false, _) => key_type.map_or_else(|| "UNKNOWN".to_string(), |t| t.to_string()),
    };
    let enabled = usage.iter().any(|u| u == "ENCRYPT" || u == "DECRYPT");
    let aes_256 = aes && len == Some(32);
    Ok((
        KeyInfo {
            key_spec,
            usage,
            enabled,
        },
        aes_256,
    ))
}

/// Opens the token and makes the health check's session key.
fn open_state(config: &Pkcs11Config) -> Result<(TokenState, cryptoki::slot::TokenInfo), String> {
    let (session, info) = open_session(config)?;
    let health_key = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .map_err(|e| format!("cannot make the health-check key in the token: {}", rv(&e)))?;
    Ok((
        TokenState {
            session,
            health_key,
            described: None,
        },
        info,
    ))
}

impl Pkcs11Backend {
    /// Opens the token and makes the health check's session key.
    pub fn open(config: &Pkcs11Config) -> Result<Self, String> {
        let (state, info) = open_state(config)?;
        Ok(Self {
            config: config.clone(),
            state: Mutex::new(Some(state)),
            softhsm: info.manufacturer_id().trim_end().starts_with("SoftHSM"),
            ekm_vendor: format!("{} (PKCS#11)", info.manufacturer_id().trim_end()),
            instance_id: format!(
                "{} {}",
                info.label().trim_end(),
                info.serial_number().trim_end()
            ),
            model: info.model().trim_end().to_string(),
        })
    }

    /// Runs `f` on the session (and the health key); if the token says the session is
    /// gone, reopens it, logs in, makes the health key again and runs `f` once more.
    fn with_session<T>(
        &self,
        mut f: impl FnMut(&mut TokenState) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| BackendError::Internal("token session poisoned".into()))?;
        if let Some(open) = state.as_mut() {
            match f(open) {
                Err(BackendError::Internal(detail)) if detail.starts_with(SESSION_LOST) => {
                    tracing::warn!(detail, "xks-proxy: the token session is lost; reopening");
                }
                other => return other,
            }
        }
        // Close the old session (if the token still knows it) before opening the new one.
        *state = None;
        let (open, _) = open_state(&self.config)
            .map_err(|e| BackendError::Internal(format!("cannot reopen the token session: {e}")))?;
        f(state.insert(open))
    }

    /// The key `id`, if it is an AES-256 key allowed to `usage`.
    fn usable_key(session: &Session, id: &str, usage: &str) -> Result<ObjectHandle, BackendError> {
        let handle = find_key(session, id)?;
        let (info, aes_256) = key_info(session, handle)?;
        if !aes_256 || !info.allows(usage) {
            return Err(BackendError::Usage);
        }
        Ok(handle)
    }

    /// Runs `op` on the handle the last `describe` of `id` found (the proxy has checked
    /// that key's usage; the token still enforces `CKA_ENCRYPT` / `CKA_DECRYPT`), or, with
    /// none or if the token no longer knows that handle, on the key found again.
    fn with_key<T>(
        state: &mut TokenState,
        id: &str,
        usage: &str,
        mut op: impl FnMut(&Session, ObjectHandle) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        if let Some((_, handle, aes_256)) = state.described.as_ref().filter(|d| d.0 == id) {
            if !aes_256 {
                return Err(BackendError::Usage);
            }
            match op(&state.session, *handle) {
                Err(BackendError::Internal(detail)) if detail.contains(HANDLE_INVALID) => {
                    state.described = None;
                }
                other => return other,
            }
        }
        let handle = Self::usable_key(&state.session, id, usage)?;
        op(&state.session, handle)
    }
}

fn gcm_seal(
    session: &Session,
    handle: ObjectHandle,
    iv: [u8; 12],
    aad: &[u8],
    data: &mut [u8],
) -> Result<[u8; 16], BackendError> {
    let mut iv = iv;
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(ck)?;
    let sealed = session
        .encrypt(&Mechanism::AesGcm(params), handle, data)
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _) => BackendError::Usage,
            e => ck(e),
        })?;
    let sealed = Zeroizing::new(sealed);
    let (ciphertext, tag) = sealed.split_at_checked(data.len()).ok_or_else(|| {
        BackendError::Internal("the token returned a short AES-GCM output".into())
    })?;
    let tag: [u8; TAG_LEN] = tag
        .try_into()
        .map_err(|_| BackendError::Internal("the token returned an unexpected tag".into()))?;
    data.copy_from_slice(ciphertext);
    Ok(tag)
}

fn gcm_open(
    session: &Session,
    handle: ObjectHandle,
    iv: [u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8; 16],
    softhsm: bool,
) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let mut iv = iv;
    let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(ck)?;
    let mut input = Vec::with_capacity(ciphertext.len() + TAG_LEN);
    input.extend_from_slice(ciphertext);
    input.extend_from_slice(tag);
    match session.decrypt(&Mechanism::AesGcm(params), handle, &input) {
        Ok(plain) => Ok(Zeroizing::new(plain)),
        Err(e) => Err(decrypt_error(e, softhsm)),
    }
}

/// `C_Decrypt`'s error: the ciphertext codes are `Ciphertext`; SoftHSM2's `C_Decrypt`
/// answers a failed GCM tag check (`decryptFinal`) with `CKR_GENERAL_ERROR`, so that is
/// `Ciphertext` too from a SoftHSM2 token only; anything else is `Internal`.
fn decrypt_error(e: CkError, softhsm: bool) -> BackendError {
    match e {
        CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _) => BackendError::Usage,
        CkError::Pkcs11(
            RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::UnknownErrorCode(CKR_AEAD_DECRYPT_FAILED),
            _,
        ) => BackendError::Ciphertext,
        CkError::Pkcs11(RvError::GeneralError, _) if softhsm => BackendError::Ciphertext,
        e => ck(e),
    }
}

impl KeyBackend for Pkcs11Backend {
    fn describe(&self, id: &str) -> Result<KeyInfo, BackendError> {
        self.with_session(|state| {
            state.described = None;
            let handle = find_key(&state.session, id)?;
            let (info, aes_256) = key_info(&state.session, handle)?;
            state.described = Some((id.to_owned(), handle, aes_256));
            Ok(info)
        })
    }

    fn seal(
        &self,
        id: &str,
        iv: [u8; 12],
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; 16], BackendError> {
        self.with_session(|state| {
            Self::with_key(state, id, "ENCRYPT", |session, handle| {
                gcm_seal(session, handle, iv, aad, &mut *data)
            })
        })
    }

    fn open(
        &self,
        id: &str,
        iv: [u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; 16],
    ) -> Result<Zeroizing<Vec<u8>>, BackendError> {
        self.with_session(|state| {
            Self::with_key(state, id, "DECRYPT", |session, handle| {
                gcm_open(session, handle, iv, aad, ciphertext, tag, self.softhsm)
            })
        })
    }

    fn health(&self) -> EkmHealth {
        let active = self
            .with_session(|state| {
                let (session, health_key) = (&state.session, state.health_key);
                // A fresh random IV each time: one key, so a repeated IV would reuse the
                // GCM keystream and authentication key.
                let mut iv = [0u8; 12];
                aws_lc_rs::rand::fill(&mut iv)
                    .map_err(|_| BackendError::Internal("no random IV".into()))?;
                let mut data = *b"xks-proxy health";
                let tag = gcm_seal(session, health_key, iv, b"health", &mut data)?;
                let plain = gcm_open(
                    session,
                    health_key,
                    iv,
                    b"health",
                    &data,
                    &tag,
                    self.softhsm,
                )?;
                Ok(plain.as_slice() == b"xks-proxy health")
            })
            .unwrap_or(false);
        EkmHealth {
            ekm_vendor: self.ekm_vendor.clone(),
            id: self.instance_id.clone(),
            model: self.model.clone(),
            active,
        }
    }
}

/// Operator commands on the token's keys (`trent xks-proxy create-key | disable-key |
/// enable-key | delete-key` with a `[pkcs11]` configuration).
pub mod admin {
    use super::*;

    fn with_token<T>(
        config: &Pkcs11Config,
        f: impl FnOnce(&Session) -> Result<T, String>,
    ) -> Result<T, String> {
        let (session, _) = open_session(config)?;
        f(&session)
    }

    fn one_key(session: &Session, id: &str) -> Result<ObjectHandle, String> {
        find_key(session, id).map_err(|e| match e {
            BackendError::NotFound => format!("no single key labelled {id:?} in the token"),
            BackendError::Internal(detail) => detail,
            _ => "token error".into(),
        })
    }

    /// Generates a non-extractable AES-256 token key labelled `id` allowed `usage`
    /// (`ENCRYPT`, `DECRYPT`).
    pub fn create_key(config: &Pkcs11Config, id: &str, usage: &[String]) -> Result<(), String> {
        if !crate::keys::valid_key_id(id) {
            return Err("an external key id is 1 to 128 characters of A-Za-z0-9-_.".into());
        }
        with_token(config, |session| {
            let existing = session
                .find_objects(&key_template(id))
                .map_err(|e| rv(&e))?;
            if !existing.is_empty() {
                return Err(format!("a key labelled {id:?} already exists"));
            }
            let mut template = key_template(id);
            template.extend([
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(usage.iter().any(|u| u == "ENCRYPT")),
                Attribute::Decrypt(usage.iter().any(|u| u == "DECRYPT")),
                // Only what XKS uses (SoftHSM2 would default SIGN and VERIFY to true).
                Attribute::Sign(false),
                Attribute::Verify(false),
                Attribute::Derive(false),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
            ]);
            session
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map(|_| ())
                .map_err(|e| rv(&e))
        })
    }

    /// Sets the key's `CKA_ENCRYPT` and `CKA_DECRYPT` (both false: reported `DISABLED`).
    /// Enabling sets both: to give an encrypt-only (or decrypt-only) key back only its own
    /// usage, use [`enable_key`] (`enable-key --usage ENCRYPT`).
    pub fn set_enabled(config: &Pkcs11Config, id: &str, enabled: bool) -> Result<(), String> {
        if enabled {
            return enable_key(config, id, &["ENCRYPT".into(), "DECRYPT".into()]);
        }
        set_flags(config, id, false, false)
    }

    /// Enables the key for exactly `usage` (`ENCRYPT`, `DECRYPT`, or both): PKCS#11 keeps no
    /// record of what a disabled key once allowed, so the operator says it again rather than
    /// the key being widened to both.
    pub fn enable_key(config: &Pkcs11Config, id: &str, usage: &[String]) -> Result<(), String> {
        if usage.is_empty() || usage.iter().any(|u| u != "ENCRYPT" && u != "DECRYPT") {
            return Err("a key's usage is ENCRYPT, DECRYPT or both".into());
        }
        let has = |name: &str| usage.iter().any(|u| u == name);
        set_flags(config, id, has("ENCRYPT"), has("DECRYPT"))
    }

    fn set_flags(
        config: &Pkcs11Config,
        id: &str,
        encrypt: bool,
        decrypt: bool,
    ) -> Result<(), String> {
        with_token(config, |session| {
            let handle = one_key(session, id)?;
            session
                .update_attributes(
                    handle,
                    &[Attribute::Encrypt(encrypt), Attribute::Decrypt(decrypt)],
                )
                .map_err(|e| rv(&e))
        })
    }

    /// Destroys the key (`C_DestroyObject`).
    pub fn delete_key(config: &Pkcs11Config, id: &str) -> Result<(), String> {
        with_token(config, |session| {
            let handle = one_key(session, id)?;
            session.destroy_object(handle).map_err(|e| rv(&e))
        })
    }
}

/// Makes a relative `pin_file` / `module` relative to `base` (the config file's directory).
/// A `module` that is a bare file name (`libsofthsm2.so`) is left as written, for the
/// dynamic loader's search path.
pub(crate) fn rebase(config: &mut Pkcs11Config, base: &Path) {
    if let Some(p) = config.pin_file.as_mut()
        && p.is_relative()
    {
        *p = base.join(&*p);
    }
    if config.module.is_relative() && config.module.components().count() > 1 {
        config.module = base.join(&config.module);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(module: &str, pin_file: Option<&str>) -> Pkcs11Config {
        Pkcs11Config {
            module: module.into(),
            token_label: "t".into(),
            pin_file: pin_file.map(PathBuf::from),
        }
    }

    #[test]
    fn rebase_makes_module_and_pin_file_relative_to_the_config() {
        let base = Path::new("/etc/trent");
        let mut c = config("lib/softhsm2.so", Some("ekm.pin"));
        rebase(&mut c, base);
        assert_eq!(c.module, Path::new("/etc/trent/lib/softhsm2.so"));
        assert_eq!(c.pin_file.as_deref(), Some(Path::new("/etc/trent/ekm.pin")));
        let mut c = config("./softhsm2.so", None);
        rebase(&mut c, base);
        assert_eq!(c.module, Path::new("/etc/trent/./softhsm2.so"));
        // Absolute paths and a bare library name (the loader's search path) stay.
        let mut c = config("libsofthsm2.so", Some("/run/pin"));
        rebase(&mut c, base);
        assert_eq!(c.module, Path::new("libsofthsm2.so"));
        assert_eq!(c.pin_file.as_deref(), Some(Path::new("/run/pin")));
        let mut c = config("/usr/lib/softhsm/libsofthsm2.so", None);
        rebase(&mut c, base);
        assert_eq!(c.module, Path::new("/usr/lib/softhsm/libsofthsm2.so"));
    }

    #[test]
    fn only_ciphertext_codes_are_invalid_ciphertext() {
        use cryptoki::context::Function;
        let e = |rv| CkError::Pkcs11(rv, Function::Decrypt);
        for rv in [
            RvError::EncryptedDataInvalid,
            RvError::EncryptedDataLenRange,
            RvError::UnknownErrorCode(CKR_AEAD_DECRYPT_FAILED),
        ] {
            assert!(matches!(
                decrypt_error(e(rv), false),
                BackendError::Ciphertext
            ));
        }
        assert!(matches!(
            decrypt_error(e(RvError::GeneralError), true),
            BackendError::Ciphertext
        ));
        for rv in [
            RvError::GeneralError,
            RvError::FunctionFailed,
            RvError::DeviceError,
        ] {
            assert!(matches!(
                decrypt_error(e(rv), false),
                BackendError::Internal(_)
            ));
        }
        assert!(matches!(
            decrypt_error(e(RvError::FunctionFailed), true),
            BackendError::Internal(_)
        ));
        assert!(matches!(
            decrypt_error(e(RvError::SessionHandleInvalid), true),
            BackendError::Internal(d) if d.starts_with(SESSION_LOST)
        ));
    }
}
