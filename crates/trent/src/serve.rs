//! `trent serve`: open the data directory, bootstrap accounts, apply the seed, start the
//! operator endpoints, and serve until SIGINT/SIGTERM.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use trent_core::Store as _;
use trent_core::{Kms, KmsError, SystemClock};
use trent_crypto::{RootCustodian, RootKey, RootKeyError};
use trent_server::AppState;
use trent_store_sqlite::SqliteStore;
use zeroize::Zeroizing;

use crate::config::Settings;

/// How often the background task looks for due rotations, deletions and expiries.
const BACKGROUND_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Environment variable that may hold the root key (64 hex digits).
pub const ROOT_KEY_ENV: &str = "TRENT_ROOT_KEY";

/// Environment variable that may hold the PIN of the root key's token (`[root_key_pkcs11]`).
pub const ROOT_KEY_PIN_ENV: &str = "TRENT_ROOT_KEY_PIN";

pub async fn run(settings: Settings) -> Result<(), String> {
    // Bind first: a port already in use (or a bad address) must leave nothing behind — no data
    // directory, root key, database, account or credentials file.
    let listener = std::net::TcpListener::bind(settings.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let ops_listener = match settings.ops_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address} (ops_listen): {e}"))?,
        ),
        None => None,
    };
    // The operator's endpoints (`trent account …`), on loopback only, never on the API port.
    let operator_listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1 for the operator endpoints: {e}"))?;
    // A bad seed file refuses start before anything is created: the file is read here, and
    // for a data directory without a database yet (where nothing in it can conflict with the
    // seed) the whole seed is first applied to a scratch in-memory service.
    let seed = match &settings.seed_file {
        Some(path) => Some((path, crate::seed::load(path, &settings.region)?)),
        None => None,
    };
    if let Some((path, seed)) = &seed {
        let db = settings.data_dir.join("trent.db");
        // (On PostgreSQL the seed is checked when applied: whether that database is new is
        // known only once connected.)
        if settings.database.is_none() && !db.try_exists().unwrap_or(true) {
            dry_run_seed(&settings, seed)
                .await
                .map_err(|e| format!("seed {} refused: {e}", path.display()))?;
        }
    }
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoint = client_endpoint(scheme, addr);

    create_private_dir(&settings.data_dir)?;
    let (store, root, root_source, database) = open_store(&settings).await?;
    let kms = Kms::open_with_custodian(store, root, Arc::new(SystemClock::default()))
        .await
        .map_err(|e| match e {
            // Kms::open unwraps every stored secret with the root key: this error there means
            // the key is not the one the database was written with.
            KmsError::Internal(m) if m == RootKeyError::Unwrap.to_string() => format!(
                "the root key in {root_source} does not decrypt the database {database}: it is \
                 not the key this database was created with (restore the right one; every node \
                 on one database needs the same root key)"
            ),
            e => format!("cannot start: {e}"),
        })?
        .with_quotas(settings.quotas.clone());
    let kms = with_nitro_roots(kms, &settings.nitro_root_certificates)?;
    // EXTERNAL_KEY_STORE key stores reach their proxies through the XKS client.
    let kms = kms.with_xks_provider(Arc::new(
        trent_custody_xks::custody::XksClientProvider::new(settings.xks_client.clone()),
    ));
    // AWS_CLOUDHSM key stores reach their tokens through the PKCS#11 custodian.
    let kms = if settings.hsm_clusters.is_empty() {
        kms
    } else {
        kms.with_hsm_clusters(
            settings.hsm_clusters.clone(),
            Arc::new(trent_custody_pkcs11::Pkcs11Provider::new()),
        )
    };

    for account in &settings.accounts {
        kms.ensure_account(
            &account.id,
            &account.root_access_key_id,
            &account.root_secret_access_key,
        )
        .await
        .map_err(|e| format!("cannot set up account {}: {e}", account.id))?;
    }
    write_integrated_services(&kms, &settings)?;
    let credentials_file = settings.data_dir.join("credentials");
    let config_file = settings.data_dir.join("config");
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
    // The AWS config file goes with the credentials file Trent made: written with it, and
    // brought up to date at every later start (the port may differ between runs).
    let has_credentials_file = credentials_file.exists();
    if has_credentials_file {
        write_aws_config_file(&config_file, &settings.region, &endpoint)?;
    }

    if let Some((path, seed)) = &seed {
        let report = kms
            .apply_seed(seed)
            .await
            .map_err(|e| format!("seed {} refused: {e}", path.display()))?;
        if report.created.is_empty() {
            println!(
                "Seed {}: nothing to create ({} existing entries kept)",
                path.display(),
                report.kept
            );
        } else {
            println!(
                "Seed {}: created {} ({}); {} existing entries kept",
                path.display(),
                report.created.len(),
                report.created.join(", "),
                report.kept
            );
        }
    }

    let kms = Arc::new(kms);
    // The admin token guards the operator endpoints always, and clock control when it is on.
    let admin_token = write_admin_token(&settings.data_dir)?;
    let operator = trent_server::OperatorApi::new(
        kms.clone(),
        admin_token.clone(),
        settings.accounts.iter().map(|a| a.id.clone()).collect(),
    );
    let operator_addr = operator_listener.local_addr().map_err(|e| e.to_string())?;
    let operator_router = trent_server::operator_router(Arc::new(operator))
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(operator_listener, operator_router).await {
            tracing::error!(error = %e, "the operator endpoint stopped");
        }
    });
    let admin_addr_file = crate::admin::admin_addr_file(&settings.data_dir);
    replace_private_file(&admin_addr_file, format!("{operator_addr}\n").as_bytes())?;

    // Installed before the "serving" line, so a SIGTERM sent right after it is not lost.
    let shutdown = shutdown_signal();
    println!(
        "Trent is serving the AWS KMS API on {scheme}://{addr} (default region {})",
        settings.region
    );
    if has_credentials_file {
        println!(
            "Try: AWS_CONFIG_FILE={} AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=trent aws kms list-keys",
            config_file.display(),
            credentials_file.display(),
        );
        println!(
            "Or, for tools that ignore endpoint_url in a config file: AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=trent AWS_REGION={region} AWS_DEFAULT_REGION={region} AWS_ENDPOINT_URL_KMS={endpoint} aws kms list-keys",
            credentials_file.display(),
            region = settings.region,
        );
    }
    println!("The web console is at {scheme}://{addr}/console/ (sign in with an access key)");
    let _ = std::io::stdout().flush();

    // The audit trail opens before any work is done, so the lifecycle work caught up on below
    // is recorded too.
    let audit = match &settings.audit {
        Some(audit) => {
            // Several nodes on PostgreSQL: one trail for all of them, each node shipping its
            // committed batches into the database (docs/audit.md, "Several nodes").
            let shared: Option<Arc<dyn trent_audit::shared::SharedTrail>> = match &settings.database
            {
                Some(url) => Some(Arc::new(
                    trent_store_postgres::PgAuditTrail::connect(url.as_str())
                        .await
                        .map_err(|e| {
                            format!("cannot open the shared audit trail in {}: {e}", url.shown())
                        })?,
                )),
                None => None,
            };
            let audit = trent_server::audit::Audit::open_shared(
                audit.clone(),
                kms.clock().now_ms(),
                shared,
            )
            .map_err(|e| {
                format!(
                    "cannot open the audit trail in {}: {e}",
                    audit.directory.display()
                )
            })?;
            kms.set_service_event_sink(trent_server::audit::ServiceEvents::new(audit.clone()));
            println!("Audit trail: {}", audit.settings.directory.display());
            if let Some(shipper) = &audit.shared {
                println!(
                    "Audit trail shared in the database as node {}",
                    shipper.node()
                );
            }
            Some(audit)
        }
        None => None,
    };
    // Catch up on lifecycle work that fell due while stopped, then keep it running. A failing
    // step is retried by the background task; it must not keep the server from starting.
    if let Err(e) = kms.run_due_work().await {
        eprintln!("trent: lifecycle work due at start-up failed (will retry): {e}");
    }
    trent_core::background::spawn(kms.clone(), BACKGROUND_INTERVAL);
    // The periodic health check of connected external key stores' proxies (AWS: every few
    // minutes); no lock is held across the proxy calls (`check_external_key_stores`).
    {
        let kms = kms.clone();
        let every = settings.xks_client.health_check_interval;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                kms.check_external_key_stores().await;
            }
        });
    }
    // On a shared database, apply what other nodes write to this node's caches.
    let _ = trent_core::feed::spawn(kms.clone());
    let mut app =
        AppState::new(kms, settings.tls.is_some()).with_body_limits(&settings.body_limits);
    if let Some(audit) = audit {
        app = app.with_audit(audit);
    }
    if settings.clock_control {
        app = app.with_admin_token(admin_token);
        println!(
            "Clock control is on (testing): token in {}",
            settings.data_dir.join("admin.token").display()
        );
    }
    if let Some(listener) = &ops_listener {
        app = app.with_separate_ops_port();
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        println!("Operator endpoints (/health, /ready, /metrics) on http://{address}");
    }
    let app = Arc::new(app);
    if let Some(listener) = ops_listener {
        let ops = trent_server::ops_router(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, ops).await {
                tracing::error!(error = %e, "the operator endpoint stopped");
            }
        });
    }
    tracing::info!(listen = %addr, tls = settings.tls.is_some(), "trent started");
    let limits = connection_limits_within_descriptors(settings.connection_limits);
    trent_server::serve(app, listener, settings.tls, limits, shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))?;
    let _ = std::fs::remove_file(&admin_addr_file);
    tracing::info!("trent stopped");
    println!("Trent stopped");
    Ok(())
}

/// Applies `seed` to a scratch in-memory service holding the accounts a fresh data directory
/// would get (the declared ones, or one default account), so a seed that would fail is refused
/// before the data directory is made.
async fn dry_run_seed(settings: &Settings, seed: &trent_core::seed::Seed) -> Result<(), String> {
    let (root, _) = RootKey::generate().map_err(|e| e.to_string())?;
    let kms = Kms::open(
        Arc::new(trent_core::memory_store::MemoryStore::default()),
        root,
        Arc::new(SystemClock::default()),
    )
    .await
    .map_err(|e| e.to_string())?;
    if settings.accounts.is_empty() {
        kms.create_random_account()
            .await
            .map_err(|e| e.to_string())?;
    }
    for a in &settings.accounts {
        kms.ensure_account(&a.id, &a.root_access_key_id, &a.root_secret_access_key)
            .await
            .map_err(|e| format!("account {}: {e}", a.id))?;
    }
    kms.apply_seed(seed)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The URL a client on this machine reaches the server at: the bound address, with an
/// unspecified one (`0.0.0.0`, `[::]`) replaced by loopback, which a client cannot connect to
/// portably.
fn client_endpoint(scheme: &str, addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
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

/// Creates the data directory (0700), or restricts an existing one to its owner, and checks
/// that files can be made in it: a read-only or foreign directory is reported by its path
/// here, not as an obscure database error later.
fn create_private_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create data directory {}: {e}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| format!("cannot read data directory {}: {e}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            format!(
                "cannot restrict data directory {} to its owner (mode 700): {e}",
                dir.display()
            )
        })?;
    }
    let probe = dir.join(".trent-write-check");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| format!("cannot write in data directory {}: {e}", dir.display()))
}

/// SQLite opens a database file it cannot write read-only without a word, and every write then
/// fails long after start-up: refuse to start instead, naming the file (the database or its
/// write-ahead log) and the reason.
fn check_database_writable(db_path: &Path) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db_path.as_os_str().to_owned();
        path.push(suffix);
        let path = PathBuf::from(path);
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot open database {} for writing: {e}",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// The store (`<data_dir>/trent.db`, or PostgreSQL when `database` is set), the root key and
/// where it came from, and the database's name for messages. SQLite: the root key is loaded
/// (or generated) before the file is created. PostgreSQL: connected (and migrated) first,
/// then a root key is generated only if the database has no account yet.
async fn open_store(
    settings: &Settings,
) -> Result<
    (
        Arc<dyn trent_core::Store>,
        Arc<dyn RootCustodian>,
        String,
        String,
    ),
    String,
> {
    match &settings.database {
        None => {
            let db_path = settings.data_dir.join("trent.db");
            let name = db_path.display().to_string();
            let exists = db_path
                .try_exists()
                .map_err(|e| format!("cannot look for database {name}: {e}"))?;
            let (root, root_source) = load_or_create_root_key(settings, exists, &name)?;
            check_database_writable(&db_path)?;
            let store = SqliteStore::open(&db_path)
                .map_err(|e| format!("cannot open database {name}: {e}"))?;
            Ok((Arc::new(store), root, root_source, name))
        }
        Some(url) => {
            let name = url.shown();
            let store = trent_store_postgres::PostgresStore::connect(url.as_str())
                .await
                .map_err(|e| format!("cannot open database {name}: {e}"))?;
            let exists = !store
                .accounts()
                .await
                .map_err(|e| format!("cannot read database {name}: {e}"))?
                .is_empty();
            let (root, root_source) = load_or_create_root_key(settings, exists, &name)?;
            Ok((Arc::new(store), root, root_source, name))
        }
    }
}

/// The root key from `$TRENT_ROOT_KEY`, the configured file, or `<data_dir>/root.key`
/// (generated on first start, mode 0600), with where it came from for messages. A missing
/// `root.key` is generated only while there is no database: beside an existing one it would be
/// the wrong key, and a user might back it up in place of the lost one.
fn load_or_create_root_key(
    settings: &Settings,
    db_exists: bool,
    db_name: &str,
) -> Result<(Arc<dyn RootCustodian>, String), String> {
    if let Some(token) = &settings.root_key_pkcs11 {
        if std::env::var_os(ROOT_KEY_ENV).is_some() {
            return Err(format!(
                "${ROOT_KEY_ENV} and [root_key_pkcs11] are two root keys: give one"
            ));
        }
        return open_token_root_key(token, db_exists, db_name);
    }
    let (root, source) = load_or_create_root_key_file(settings, db_exists, db_name)?;
    Ok((Arc::new(root), source))
}

/// The root key held in a PKCS#11 token: found by its label, or generated in the token
/// while there is no database (as `root.key` is); the PIN from `$TRENT_ROOT_KEY_PIN` or the
/// configured `pin_file` (refused if other users can read it).
fn open_token_root_key(
    token: &crate::config::RootKeyPkcs11,
    db_exists: bool,
    db_name: &str,
) -> Result<(Arc<dyn RootCustodian>, String), String> {
    let source = format!(
        "the PKCS#11 token {:?} (key {:?})",
        token.token.token_label, token.key_label
    );
    let pin = match (std::env::var(ROOT_KEY_PIN_ENV), &token.pin_file) {
        (Ok(pin), _) => Zeroizing::new(pin),
        (Err(_), Some(path)) => {
            refuse_if_exposed(path)?;
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read the root key token's pin_file {}: {e}",
                    path.display()
                )
            })?);
            Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_string())
        }
        (Err(_), None) => {
            return Err(format!(
                "[root_key_pkcs11] needs the token's PIN: set ${ROOT_KEY_PIN_ENV} or pin_file"
            ));
        }
    };
    let provider = trent_custody_pkcs11::Pkcs11Provider::new();
    match trent_custody_pkcs11::TokenRootKey::open(
        &provider,
        &token.token,
        &pin,
        &token.key_label,
        !db_exists,
    ) {
        Ok((root, created)) => {
            if created {
                tracing::info!(token = %token.token.token_label, key = %token.key_label, "generated the root key in its PKCS#11 token");
            }
            Ok((Arc::new(root), source))
        }
        Err(trent_custody_pkcs11::root::TokenRootError::Missing(_)) => Err(format!(
            "the root key is missing from {source} but the database {db_name} exists: refusing \
             to generate a new root key, which could not decrypt it (restore the token's key, \
             or point key_label at it)"
        )),
        Err(e) => Err(format!("cannot open the root key in {source}: {e}")),
    }
}

/// The root key from `$TRENT_ROOT_KEY`, the configured file, or `<data_dir>/root.key`.
fn load_or_create_root_key_file(
    settings: &Settings,
    db_exists: bool,
    db_name: &str,
) -> Result<(RootKey, String), String> {
    if let Ok(hex_key) = std::env::var(ROOT_KEY_ENV) {
        let source = format!("${ROOT_KEY_ENV}");
        let root = parse_root_key(&hex_key).map_err(|e| format!("{source}: {e}"))?;
        return Ok((root, source));
    }
    let path: PathBuf = settings
        .root_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("root.key"));
    let source = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_if_exposed(&path)?;
            let root = parse_root_key(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok((root, source))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && settings.root_key_file.is_none() => {
            if db_exists {
                return Err(format!(
                    "root key {} is missing but the database {db_name} exists: refusing to \
                     generate a new root key, which could not decrypt it. Restore root.key from \
                     your backup (or set ${ROOT_KEY_ENV}, or root_key_file: every node on one \
                     database needs the same root key); to start afresh instead, move the data \
                     directory away",
                    path.display(),
                ));
            }
            let (root, bytes) = RootKey::generate().map_err(|e| e.to_string())?;
            let text = Zeroizing::new(format!("{}\n", hex::encode(bytes.as_slice())));
            write_private_file(&path, text.as_bytes())?;
            Ok((root, source))
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

/// Registers each `[[integrated_service]]` and writes its credentials (derived from the root
/// key, so the same at every start) to `<data_dir>/services/<name>.credentials` unless there.
fn write_integrated_services(kms: &trent_core::Kms, settings: &Settings) -> Result<(), String> {
    let dir = settings.data_dir.join("services");
    for name in &settings.integrated_services {
        let credentials = kms
            .register_integrated_service(name)
            .map_err(|e| format!("integrated service {name}: {e}"))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{name}.credentials"));
        if !path.exists() {
            write_credentials_file(
                &path,
                &credentials.access_key_id,
                &credentials.secret_access_key,
            )?;
        }
    }
    Ok(())
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

/// The AWS config file for the default account's profile: `[profile trent]` with the region and
/// the endpoint, so any SDK or tool reading AWS config files needs only `AWS_PROFILE=trent`
/// (with `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` pointing here).
fn aws_config_text(region: &str, endpoint: &str) -> String {
    format!(
        "# Written by Trent (`trent serve`) for the profile in the credentials file beside it.\n\
         # Trent rewrites this file whenever its endpoint or region changes: keep your own\n\
         # settings in another file.\n\
         [profile trent]\nregion = {region}\nendpoint_url = {endpoint}\n"
    )
}

/// Writes `<data_dir>/config` (0600) unless it already says exactly this. Trent owns the file:
/// one that differs (another port, region or scheme since the last run, or none yet — a data
/// directory from before Trent wrote it) is replaced whole, atomically, so a reader never sees
/// half of it; one that is current is left untouched.
fn write_aws_config_file(path: &Path, region: &str, endpoint: &str) -> Result<(), String> {
    let text = aws_config_text(region, endpoint);
    match std::fs::read(path) {
        Ok(current) if current == text.as_bytes() => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    replace_private_file(path, text.as_bytes())
}

/// Replaces `path` whole (0600) through a temporary file and a rename, so a reader never sees
/// half of it.
fn replace_private_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(".tmp");
    let staging = PathBuf::from(staging);
    match std::fs::remove_file(&staging) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot replace {}: {e}", staging.display())),
    }
    write_private_file(&staging, contents)?;
    std::fs::rename(&staging, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

/// A fresh random admin token (operator endpoints, clock control) in `<data_dir>/admin.token` (0600), replacing any old one.
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

/// `[nitro] root_certificates` read and parsed: a file that is not a certificate stops start-up
/// (a typo must not silently turn `Recipient` off).
fn with_nitro_roots(kms: Kms, files: &[std::path::PathBuf]) -> Result<Kms, String> {
    if files.is_empty() {
        return Ok(kms);
    }
    let mut anchors: Option<trent_crypto::nitro::TrustAnchors> = None;
    for file in files {
        let bytes = std::fs::read(file)
            .map_err(|e| format!("[nitro] root certificate {}: {e}", file.display()))?;
        let parsed = trent_crypto::nitro::TrustAnchors::parse(&bytes).map_err(|e| {
            format!(
                "[nitro] root certificate {}: not a PEM or DER certificate: {e}",
                file.display()
            )
        })?;
        match &mut anchors {
            Some(a) => a.extend(parsed),
            None => anchors = Some(parsed),
        }
    }
    Ok(match anchors {
        Some(a) => kms.with_nitro_roots(a),
        None => kms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_endpoint_replaces_an_unspecified_address_with_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            client_endpoint("http", at("0.0.0.0:4599")),
            "http://127.0.0.1:4599"
        );
        assert_eq!(
            client_endpoint("https", at("[::]:443")),
            "https://[::1]:443"
        );
        assert_eq!(
            client_endpoint("http", at("10.1.2.3:80")),
            "http://10.1.2.3:80"
        );
    }

    #[test]
    fn the_aws_config_file_is_rewritten_only_when_it_would_change() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        write_aws_config_file(&path, "eu-west-1", "http://127.0.0.1:4599").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(
            "[profile trent]\nregion = eu-west-1\nendpoint_url = http://127.0.0.1:4599\n"
        ));
        let first = std::fs::metadata(&path).unwrap();
        assert_eq!(first.permissions().mode() & 0o777, 0o600);

        write_aws_config_file(&path, "eu-west-1", "http://127.0.0.1:4599").unwrap();
        let same = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (same.ino(), same.mtime_nsec()),
            (first.ino(), first.mtime_nsec())
        );

        write_aws_config_file(&path, "eu-west-1", "http://127.0.0.1:4600").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("endpoint_url = http://127.0.0.1:4600\n"));
        assert!(!text.contains("4599"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config"], "no staging file is left behind");
    }
}
