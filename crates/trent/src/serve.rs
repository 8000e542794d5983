//! `trent serve`: open the data directory, bootstrap accounts, and serve until SIGINT/SIGTERM.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trent_core::{Kms, SystemClock};
use trent_crypto::RootKey;
use trent_server::AppState;
use trent_store_sqlite::SqliteStore;
use zeroize::Zeroizing;

use crate::config::Settings;

/// How often the background task looks for due rotations, deletions and expiries.
const BACKGROUND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Environment variable that may hold the root key (64 hex digits).
pub const ROOT_KEY_ENV: &str = "TRENT_ROOT_KEY";

pub async fn run(settings: Settings) -> Result<(), String> {
    create_private_dir(&settings.data_dir)?;
    let root = load_or_create_root_key(&settings)?;
    let store = SqliteStore::open(&settings.data_dir.join("trent.db"))
        .map_err(|e| format!("cannot open database: {e}"))?;
    let kms = Kms::open(Arc::new(store), root, Arc::new(SystemClock::default()))
        .await
        .map_err(|e| format!("cannot start: {e}"))?;

    for account in &settings.accounts {
        kms.ensure_account(
            &account.id,
            &account.root_access_key_id,
            &account.root_secret_access_key,
        )
        .await
        .map_err(|e| format!("cannot set up account {}: {e}", account.id))?;
    }
    let credentials_file = settings.data_dir.join("credentials");
    if settings.accounts.is_empty() && kms.account_count().await.map_err(|e| e.to_string())? == 0 {
        let account = kms
            .create_random_account()
            .await
            .map_err(|e| format!("cannot create the default account: {e}"))?;
        write_credentials_file(
            &credentials_file,
            &account.access_key_id,
            &account.secret_access_key,
        )?;
        println!(
            "Created default account {} with root credentials in {}",
            account.account_id,
            credentials_file.display()
        );
    }

    let shutdown = shutdown_signal();
    let listener = std::net::TcpListener::bind(settings.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "Trent is serving the AWS KMS API on {scheme}://{addr} (default region {})",
        settings.region
    );
    if credentials_file.exists() {
        println!(
            "Try: AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=trent AWS_DEFAULT_REGION={} aws --endpoint-url {scheme}://{addr} kms list-keys",
            credentials_file.display(),
            settings.region
        );
    }
    let _ = std::io::stdout().flush();

    let kms = Arc::new(kms);
    // Catch up on lifecycle work that fell due while stopped, then keep it running. A failing
    // step is retried by the background task; it must not keep the server from starting.
    if let Err(e) = kms.run_due_work().await {
        eprintln!("trent: lifecycle work due at start-up failed (will retry): {e}");
    }
    trent_core::background::spawn(kms.clone(), BACKGROUND_INTERVAL);
    let mut app =
        AppState::new(kms, settings.tls.is_some()).with_body_limits(&settings.body_limits);
    if settings.clock_control {
        app = app.with_admin_token(write_admin_token(&settings.data_dir)?);
        println!(
            "Clock control is on (testing): token in {}",
            settings.data_dir.join("admin.token").display()
        );
    }
    let app = Arc::new(app);
    let limits = connection_limits_within_descriptors(settings.connection_limits);
    trent_server::serve(app, listener, settings.tls, limits, shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    println!("Trent stopped");
    Ok(())
}

/// SIGINT or SIGTERM. The SIGTERM handler is installed when this is called, not when the
/// future is first polled, so a signal sent right after the "serving" line is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))
}

/// The root key from `$TRENT_ROOT_KEY`, the configured file, or `<data_dir>/root.key`
/// (generated on first start, mode 0600).
fn load_or_create_root_key(settings: &Settings) -> Result<RootKey, String> {
    if let Ok(hex_key) = std::env::var(ROOT_KEY_ENV) {
        return parse_root_key(&hex_key).map_err(|e| format!("{ROOT_KEY_ENV}: {e}"));
    }
    let path: PathBuf = settings
        .root_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("root.key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_if_exposed(&path)?;
            parse_root_key(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && settings.root_key_file.is_none() => {
            let (root, bytes) = RootKey::generate().map_err(|e| e.to_string())?;
            let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_slice())));
            write_private_file(&path, text.as_bytes())?;
            Ok(root)
        }
        Err(e) => Err(format!("cannot read root key {}: {e}", path.display())),
    }
}

/// A root key file others can read (or write) is refused: it would expose every key's material.
fn refuse_if_exposed(path: &Path) -> Result<(), String> {
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read root key {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "root key {} is accessible to other users (mode {mode:03o}); restrict it with `chmod 600 {}`",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

fn parse_root_key(text: &str) -> Result<RootKey, String> {
    let bytes = Zeroizing::new(
        hex::decode(text.trim()).map_err(|_| "root key must be 64 hex digits".to_string())?,
    );
    RootKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

fn write_credentials_file(path: &Path, access_key_id: &str, secret: &str) -> Result<(), String> {
    let text = Zeroizing::new(format!(
        "[trent]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
    ));
    write_private_file(path, text.as_bytes())
}

/// Writes a new file readable only by its owner, and syncs it to disk.
fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A fresh random clock-control token in `<data_dir>/admin.token` (0600), replacing any old one.
fn write_admin_token(data_dir: &Path) -> Result<Zeroizing<String>, String> {
    let path = data_dir.join("admin.token");
    let bytes = trent_crypto::random::secret_bytes(32).map_err(|e| e.to_string())?;
    let token = Zeroizing::new(hex::encode(bytes.as_slice()));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot replace {}: {e}", path.display())),
    }
    write_private_file(&path, token.as_bytes())?;
    Ok(token)
}

/// Descriptors kept back from the connection limit for the database, the data files and the
/// listener itself.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Raises the open-file limit to what the system allows, and lowers the connection limit to
/// fit under it: running out of descriptors would stop `accept` for everyone, where the
/// connection limit closes idle connections to make room.
fn connection_limits_within_descriptors(
    mut limits: trent_server::ConnectionLimits,
) -> trent_server::ConnectionLimits {
    let available = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("trent: cannot read the open-file limit ({e}); keeping the connection limit");
            return limits;
        }
    };
    let fits = usize::try_from(available.saturating_sub(RESERVED_DESCRIPTORS).max(16))
        .unwrap_or(usize::MAX);
    if limits.max_connections > fits {
        eprintln!(
            "trent: the open-file limit is {available}: serving at most {fits} connections instead of {}",
            limits.max_connections
        );
        limits.max_connections = fits;
    }
    limits
}
