//! Test support: a private SoftHSM2 token in a temporary directory (like
//! `trent-store-postgres`'s `TestCluster`), for this crate's tests, the domain's and the
//! end-to-end ones.
//!
//! SoftHSM2 reads its configuration from `$SOFTHSM2_CONF` when the module initializes, so the
//! process using the module must have that variable from its start: Rust tests cannot set it
//! safely in-process (`set_var` is unsafe, and the workspace forbids `unsafe`), so a test
//! re-runs itself as a child process with the variable set ([`run_with_token`]). A trent
//! binary started by a test is simply given the variable.
//!
//! Nothing is installed here: a missing module is an error that names the package to install
//! (`./scripts/test` installs it when it can).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `softhsm2` package puts the module (and a couple of other common places).
const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// The user PIN of test tokens (7 to 32 characters: a valid AWS `KeyStorePassword`).
pub const TEST_PIN: &str = "kmsuser-pin-1";
/// The security officer PIN of test tokens.
pub const TEST_SO_PIN: &str = "5678";

/// How long a test's child process may run.
const CHILD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Set (to the token label) in the child process [`run_with_token`] starts.
const CHILD_LABEL_ENV: &str = "TRENT_TEST_SOFTHSM_LABEL";

/// The SoftHSM2 module, or an error naming the command that installs it.
pub fn softhsm_module() -> Result<PathBuf, String> {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            "SoftHSM2 is not installed: run `apt-get install -y softhsm2` (as root), \
             or ./scripts/test, which does"
                .to_string()
        })
}

/// A SoftHSM2 configuration and token directory; removed on drop.
pub struct TestTokens {
    dir: tempfile::TempDir,
}

impl TestTokens {
    /// A fresh configuration with an empty token directory.
    pub fn new() -> Result<Self, String> {
        softhsm_module()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { dir })
    }

    /// The file to point `SOFTHSM2_CONF` at.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// Initializes a token labelled `label` with [`TEST_PIN`] as its user PIN.
    pub fn init_token(&self, label: &str) -> Result<(), String> {
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", TEST_SO_PIN, "--pin", TEST_PIN])
            .output()
            .map_err(|e| format!("softhsm2-util: {e} (apt-get install -y softhsm2)"))?;
        if !out.status.success() {
            return Err(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `body(label)` in a process whose `SOFTHSM2_CONF` names a fresh configuration with one
/// token labelled `label` (PIN [`TEST_PIN`]). Call it from a `#[test] fn test_name`: the
/// parent re-runs the same test binary with `--exact test_name`; in that child `body` runs.
#[expect(clippy::panic, reason = "test support: a failed setup fails the test")]
pub fn run_with_token(test_name: &str, label: &str, body: impl FnOnce(&str)) {
    if let Ok(child_label) = std::env::var(CHILD_LABEL_ENV) {
        body(&child_label);
        return;
    }
    let tokens = match TestTokens::new() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    if let Err(e) = tokens.init_token(label) {
        panic!("{e}");
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("current_exe: {e}"),
    };
    let mut child = match Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", tokens.conf())
        .env(CHILD_LABEL_ENV, label)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("{test_name}: cannot start its SoftHSM2 child process: {e}"),
    };
    // A hung child must fail the test, not hang the whole run.
    let deadline = std::time::Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("timed out after {CHILD_TIMEOUT:?}"));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    match status {
        Ok(s) if s.success() => {}
        other => panic!("{test_name} failed in its SoftHSM2 child process: {other:?}"),
    }
}

/// The labels of the secret keys in the token labelled `token_label`, seen through a session
/// of its own (as an operator's tool would look, independently of Trent's connections).
/// The user login is per process: if this process is logged in already the login is shared
/// (and not ended: no logout here, the session is only closed).
pub fn secret_key_labels(
    module: &Path,
    token_label: &str,
    pin: &str,
) -> Result<Vec<String>, String> {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error, RvError};
    use cryptoki::object::{Attribute, AttributeType, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    let pkcs11 = Pkcs11::new(module).map_err(|e| e.to_string())?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(e.to_string()),
    }
    let slot = pkcs11
        .get_slots_with_token()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| {
            pkcs11
                .get_token_info(*s)
                .is_ok_and(|i| i.label().trim_end() == token_label)
        })
        .ok_or_else(|| format!("no token labelled {token_label}"))?;
    let session = pkcs11.open_ro_session(slot).map_err(|e| e.to_string())?;
    match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(e.to_string()),
    }
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .map_err(|e| e.to_string())?;
    let mut labels = Vec::new();
    for h in handles {
        let attrs = session
            .get_attributes(h, &[AttributeType::Label])
            .map_err(|e| e.to_string())?;
        for a in attrs {
            if let Attribute::Label(l) = a {
                labels.push(String::from_utf8_lossy(&l).into_owned());
            }
        }
    }
    labels.sort();
    Ok(labels)
}
