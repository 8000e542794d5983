//! Key custody in a PKCS#11 token, for AWS_CLOUDHSM-type custom key stores: the one crate
//! that links `cryptoki`, so the domain only sees `trent_crypto::custody`'s traits.
//!
//! [`Pkcs11Provider`] implements [`HsmProvider`]: it loads a module once per path (a second
//! `C_Initialize` of the same module is refused and a `C_Finalize` would end every other
//! user's sessions, so the context is shared and never finalized while Trent runs), finds the
//! token by label (SoftHSM2 gives slots random-looking ids), opens one read-write session and
//! logs in as the token's user with the key store's password — like CloudHSM's `kmsuser`.
//!
//! Keys are AES-256, generated in the token with `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`, so
//! their bytes never leave it; Trent finds them again by label (the KMS key id). Sealing
//! uses `CKM_AES_GCM` with Trent's nonce and AAD, so a token key produces exactly the
//! ciphertext format built-in material does (`trent_crypto::blob`).
//!
//! A PKCS#11 session is not safe to use from two threads at once: each connection's session
//! sits behind a mutex. That serializes one store's token calls (≈ 26 µs per small GCM
//! operation on SoftHSM2), which is the HSM's cost, not Trent's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use trent_crypto::custody::{
    CustodyError, HsmConnectError, HsmConnection, HsmProvider, HsmTokenLocation, SymmetricCustody,
};
use zeroize::Zeroizing;

/// AES-GCM tag length in bits (what Trent's blob format carries).
const TAG_BITS: u64 = 128;
/// AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;
/// Largest random request passed to the token at once (AWS's GenerateRandom maximum).
const MAX_RANDOM: usize = 1024;

/// Opens PKCS#11 tokens; one loaded module per path, shared by every connection.
#[derive(Default)]
pub struct Pkcs11Provider {
    modules: Mutex<HashMap<PathBuf, Pkcs11>>,
}

impl Pkcs11Provider {
    pub fn new() -> Self {
        Self::default()
    }

    /// The loaded, initialized module at `path`.
    fn module(&self, path: &std::path::Path) -> Result<Pkcs11, HsmConnectError> {
        let mut modules = self
            .modules
            .lock()
            .map_err(|_| HsmConnectError::Network("module registry poisoned".into()))?;
        if let Some(module) = modules.get(path) {
            return Ok(module.clone());
        }
        let module = Pkcs11::new(path).map_err(|e| {
            HsmConnectError::ClusterNotFound(format!(
                "cannot load PKCS#11 module {}: {e}",
                path.display()
            ))
        })?;
        match module.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Initialized already by someone else in this process: usable as is.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                return Err(HsmConnectError::ClusterNotFound(format!(
                    "cannot initialize PKCS#11 module {}: {e}",
                    path.display()
                )));
            }
        }
        modules.insert(path.to_path_buf(), module.clone());
        Ok(module)
    }
}

impl Pkcs11Provider {
    /// A logged-in read-write session with the token at `location`.
    fn open_session(
        &self,
        location: &HsmTokenLocation,
        pin: &str,
    ) -> Result<Session, HsmConnectError> {
        let module = self.module(&location.module)?;
        let slots = module
            .get_slots_with_token()
            .map_err(|e| HsmConnectError::Network(e.to_string()))?;
        let slot = slots
            .into_iter()
            .find(|slot| {
                module
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == location.token_label)
            })
            .ok_or_else(|| {
                HsmConnectError::ClusterNotFound(format!(
                    "no token labelled {:?} in {}",
                    location.token_label,
                    location.module.display()
                ))
            })?;
        let session = module
            .open_rw_session(slot)
            .map_err(|e| HsmConnectError::Network(e.to_string()))?;
        match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
            Ok(()) => {}
            // The login is process-wide: someone else here (not a live connection of ours,
            // which `connect` checks first) is logged in, and the token did not check this
            // PIN. AWS answers a second login with USER_LOGGED_IN.
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                return Err(HsmConnectError::UserLoggedIn);
            }
            Err(CkError::Pkcs11(
                RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinLocked
                | RvError::PinExpired,
                _,
            )) => return Err(HsmConnectError::InvalidCredentials),
            // The message is the module's (a return code name), never the PIN.
            Err(e) => return Err(HsmConnectError::Network(e.to_string())),
        }
        Ok(session)
    }
}

/// A token, as the process-wide login registry names it.
type TokenId = (PathBuf, String);

/// The logins this process's connections hold. PKCS#11 login state belongs to the
/// application and token, not to a session: a second `C_Login` answers
/// `CKR_USER_ALREADY_LOGGED_IN` without checking its PIN. So a connection to a token already
/// logged in is accepted only if its PIN is the one the live login proved (kept as a salted
/// SHA-256, never the PIN), and a wrong PIN never reaches the token (no lockout).
static LOGINS: Mutex<BTreeMap<TokenId, Login>> = Mutex::new(BTreeMap::new());
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

struct Login {
    salt: [u8; 32],
    tag: [u8; 32],
    generation: u64,
    /// Live sessions under this login; the token ends the login with the last one.
    sessions: usize,
}

fn pin_tag(salt: &[u8; 32], pin: &str) -> [u8; 32] {
    let mut input = Zeroizing::new(Vec::with_capacity(32 + pin.len()));
    input.extend_from_slice(salt);
    input.extend_from_slice(pin.as_bytes());
    trent_crypto::hash::sha256(&input)
}

/// One session's share of a registered login; released when the session goes.
struct Claim {
    token: TokenId,
    generation: u64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut logins) = LOGINS.lock()
            && let Some(login) = logins.get_mut(&self.token)
            && login.generation == self.generation
        {
            login.sessions = login.sessions.saturating_sub(1);
            if login.sessions == 0 {
                logins.remove(&self.token);
            }
        }
    }
}

impl HsmProvider for Pkcs11Provider {
    fn connect(
        &self,
        location: &HsmTokenLocation,
        pin: &str,
    ) -> Result<Arc<dyn HsmConnection>, HsmConnectError> {
        let token: TokenId = (location.module.clone(), location.token_label.clone());
        // Held across the login, so two connects to one token do not race.
        let mut logins = LOGINS
            .lock()
            .map_err(|_| HsmConnectError::Network("login registry poisoned".into()))?;
        let generation = match logins.get_mut(&token) {
            Some(login) => {
                if !trent_crypto::hash::constant_time_eq(&pin_tag(&login.salt, pin), &login.tag) {
                    return Err(HsmConnectError::UserLoggedIn);
                }
                // The PIN is the live login's: this is the same store again (another node
                // object in this process); its session shares the login.
                let session = self.open_session_as_logged_in(location, pin)?;
                login.sessions += 1;
                return Ok(connection(session, token, login.generation));
            }
            None => GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let session = self.open_session(location, pin)?;
        let mut salt = [0u8; 32];
        trent_crypto::random::fill(&mut salt)
            .map_err(|e| HsmConnectError::Network(e.to_string()))?;
        logins.insert(
            token.clone(),
            Login {
                tag: pin_tag(&salt, pin),
                salt,
                generation,
                sessions: 1,
            },
        );
        Ok(connection(session, token, generation))
    }
}

impl Pkcs11Provider {
    /// A session under a login this process's registry holds (PIN already matched): the
    /// login is tried again only in case the token ended it.
    fn open_session_as_logged_in(
        &self,
        location: &HsmTokenLocation,
        pin: &str,
    ) -> Result<Session, HsmConnectError> {
        match self.open_session(location, pin) {
            Err(HsmConnectError::UserLoggedIn) => self.open_unauthenticated(location),
            other => other,
        }
    }

    fn open_unauthenticated(
        &self,
        location: &HsmTokenLocation,
    ) -> Result<Session, HsmConnectError> {
        let module = self.module(&location.module)?;
        let slot = module
            .get_slots_with_token()
            .map_err(|e| HsmConnectError::Network(e.to_string()))?
            .into_iter()
            .find(|slot| {
                module
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == location.token_label)
            })
            .ok_or_else(|| HsmConnectError::ClusterNotFound("token gone".into()))?;
        module
            .open_rw_session(slot)
            .map_err(|e| HsmConnectError::Network(e.to_string()))
    }
}

fn connection(session: Session, token: TokenId, generation: u64) -> Arc<dyn HsmConnection> {
    Arc::new(TokenConnection {
        session: Arc::new(Mutex::new(Some(Open {
            session,
            claim: Claim { token, generation },
        }))),
    })
}

/// A logged-in session and its share of the login (dropped after the session).
struct Open {
    session: Session,
    claim: Claim,
}

/// A logged-in session with one token; `None` once closed.
type SharedSession = Arc<Mutex<Option<Open>>>;

struct TokenConnection {
    session: SharedSession,
}

impl TokenConnection {
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CustodyError>,
    ) -> Result<T, CustodyError> {
        with_session(&self.session, f)
    }
}

fn with_session<T>(
    session: &SharedSession,
    f: impl FnOnce(&Session) -> Result<T, CustodyError>,
) -> Result<T, CustodyError> {
    let guard = session.lock().map_err(|_| CustodyError::Unavailable)?;
    let open = guard.as_ref().ok_or(CustodyError::Unavailable)?;
    f(&open.session)
}

/// A token failure as a custody error: a lost session or device is "unavailable", the rest
/// is reported with the module's return code.
fn token_error(e: CkError) -> CustodyError {
    match e {
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::TokenNotPresent
            | RvError::UserNotLoggedIn
            | RvError::CryptokiNotInitialized,
            _,
        ) => CustodyError::Unavailable,
        e => CustodyError::Failed(e.to_string()),
    }
}

fn aes_key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

impl HsmConnection for TokenConnection {
    fn generate_aes_key(&self, label: &str) -> Result<Arc<dyn SymmetricCustody>, CustodyError> {
        let handle = self.with_session(|session| {
            let mut template = aes_key_template(label);
            template.extend([
                Attribute::ValueLen(32.into()),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(false),
                Attribute::Unwrap(false),
            ]);
            session
                .generate_key(&Mechanism::AesKeyGen, &template)
                .map_err(token_error)
        })?;
        Ok(Arc::new(TokenKey {
            session: self.session.clone(),
            handle,
        }))
    }

    fn find_aes_key(&self, label: &str) -> Result<Option<Arc<dyn SymmetricCustody>>, CustodyError> {
        let found = self.with_session(|session| {
            session
                .find_objects(&aes_key_template(label))
                .map_err(token_error)
        })?;
        Ok(found.into_iter().next().map(|handle| {
            Arc::new(TokenKey {
                session: self.session.clone(),
                handle,
            }) as Arc<dyn SymmetricCustody>
        }))
    }

    fn destroy_aes_key(&self, label: &str) -> Result<bool, CustodyError> {
        self.with_session(|session| {
            let found = session
                .find_objects(&aes_key_template(label))
                .map_err(token_error)?;
            let any = !found.is_empty();
            for handle in found {
                session.destroy_object(handle).map_err(token_error)?;
            }
            Ok(any)
        })
    }

    fn random(&self, len: usize) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        if len > MAX_RANDOM {
            return Err(CustodyError::Failed("random request too large".into()));
        }
        let len = u32::try_from(len).map_err(|_| CustodyError::Failed("length".into()))?;
        self.with_session(|session| {
            session
                .generate_random_vec(len)
                .map(Zeroizing::new)
                .map_err(token_error)
        })
    }

    fn close(&self) {
        if let Ok(mut guard) = self.session.lock()
            && let Some(open) = guard.take()
        {
            // Logging out ends the login for every session of this application on the token;
            // dropping the session closes it. The registry forgets the login with it.
            let _ = open.session.logout();
            if let Ok(mut logins) = LOGINS.lock()
                && logins
                    .get(&open.claim.token)
                    .is_some_and(|l| l.generation == open.claim.generation)
            {
                logins.remove(&open.claim.token);
            }
        }
    }
}

/// An AES key inside the token, used through the connection's session.
struct TokenKey {
    session: SharedSession,
    handle: ObjectHandle,
}

impl SymmetricCustody for TokenKey {
    fn seal_append(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CustodyError> {
        let sealed = with_session(&self.session, |session| {
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(token_error)?;
            session
                .encrypt(&Mechanism::AesGcm(params), self.handle, plaintext)
                .map_err(token_error)
        })?;
        if sealed.len() != plaintext.len() + TAG_LEN {
            return Err(CustodyError::Failed(
                "token returned an unexpected AES-GCM length".into(),
            ));
        }
        out.extend_from_slice(&sealed);
        Ok(())
    }

    fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        if sealed.len() < TAG_LEN {
            return Err(CustodyError::Authentication);
        }
        with_session(&self.session, |session| {
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into()).map_err(token_error)?;
            match session.decrypt(&Mechanism::AesGcm(params), self.handle, sealed) {
                Ok(plain) => Ok(Zeroizing::new(plain)),
                // A tag mismatch is the ciphertext's fault, like built-in material's. SoftHSM2
                // 2.6 reports it as CKR_GENERAL_ERROR (its OpenSSL finalize fails); the
                // session-level failures are told apart above by `token_error`'s codes.
                Err(CkError::Pkcs11(
                    RvError::GeneralError
                    | RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::DataInvalid
                    | RvError::DataLenRange,
                    _,
                )) => Err(CustodyError::Authentication),
                Err(e) => Err(token_error(e)),
            }
        })
    }
}

pub mod root;
pub mod test_token;

pub use root::TokenRootKey;
