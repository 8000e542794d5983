//! The `trent serve` configuration: a TOML file plus command-line overrides.
//!
//! ```toml
//! listen = "127.0.0.1:4599"       # also `localhost:4599`, `:4599` (both 127.0.0.1), `[::1]:4599`
//! data_dir = "trent-data"
//! # database = "postgres://trent@db.internal/trent"  # PostgreSQL instead of <data_dir>/trent.db
//! region = "us-east-1"            # default region; any region in a request's SigV4 scope is served
//! [[account]]
//! id = "111122223333"
//! root_access_key_id = "AKIAEXAMPLE000000001"
//! root_secret_access_key = "secret-1"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod hsm;
mod quotas;
mod xks;
pub use hsm::{HsmClusterConfig, RootKeyPkcs11};
pub use quotas::QuotasConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4599";
pub const DEFAULT_DATA_DIR: &str = "trent-data";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL URL (`postgres://…`) for the store instead of the SQLite file in `data_dir`
    /// (which still holds the root key, credentials and admin files).
    pub database: Option<String>,
    pub region: Option<String>,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// A file holding the root key (64 hex digits) instead of `<data_dir>/root.key`.
    pub root_key_file: Option<PathBuf>,
    #[serde(default)]
    pub account: Vec<AccountConfig>,
    /// A separate address for `/health`, `/ready` and `/metrics` (default: the API port).
    pub ops_listen: Option<String>,
    /// Bounds on connections and request bodies (`[limits]`); defaults suit one machine.
    pub limits: Option<LimitsConfig>,
    /// Facilities for tests and drills; never turn these on in production.
    pub testing: Option<TestingConfig>,
    /// AWS KMS's request-rate and resource quotas (`[quotas]`, `config/quotas.rs`).
    pub quotas: Option<QuotasConfig>,
    /// A development seed (TOML, or YAML by its `.yaml`/`.yml` name) applied at every start.
    pub seed_file: Option<PathBuf>,
    /// The audit trail (`[audit]`; on by default, see docs/audit.md).
    pub audit: Option<AuditConfig>,
    /// Integrated services (`[[integrated_service]]`, docs/integrated-services.md): each gets
    /// service credentials in `<data_dir>/services/<name>.credentials`.
    #[serde(default)]
    pub integrated_service: Vec<IntegratedServiceConfig>,
    /// HSM clusters for AWS_CLOUDHSM-type custom key stores (`[[hsm_cluster]]`,
    /// `config/hsm.rs`).
    #[serde(default)]
    pub hsm_cluster: Vec<HsmClusterConfig>,
    /// The root key in a PKCS#11 token instead of a file (`[root_key_pkcs11]`,
    /// `config/hsm.rs`).
    pub root_key_pkcs11: Option<hsm::RootKeyPkcs11Config>,
    /// How XKS proxies of EXTERNAL_KEY_STORE stores are reached (`[xks_client]`,
    /// `config/xks.rs`).
    pub xks_client: Option<xks::XksClientConfig>,
    /// Nitro Enclaves attestation (`[nitro]`): the roots `Recipient` documents chain to.
    pub nitro: Option<NitroConfig>,
}

/// `[nitro]`: `root_certificates` are PEM (or DER) files, relative to the config file, of the
/// root certificates a `Recipient` attestation document's chain must end in (AWS's Nitro root
/// G1 in production). Without any, `Recipient` is refused (UnsupportedOperationException).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NitroConfig {
    #[serde(default)]
    pub root_certificates: Vec<PathBuf>,
}

/// `[[integrated_service]]`: a service that calls KMS for its customers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegratedServiceConfig {
    /// Its service principal name, e.g. `autoscaling.amazonaws.com`.
    pub name: String,
}

/// `[audit]`: where and for how long every call's CloudTrail record is kept.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Record every call (default true). Off, no record is written and LookupEvents finds
    /// nothing.
    pub enabled: Option<bool>,
    /// Days a trail segment is kept after its last write (default 90, CloudTrail's event
    /// history); 0 keeps everything.
    pub retention_days: Option<u32>,
    /// Where the trail is kept (default `<data_dir>/audit`).
    pub directory: Option<PathBuf>,
    /// When an answer may be sent: `"write"` (default: once its record is written — survives
    /// kill -9; the fsync follows within `sync_interval_ms`) or `"sync"` (once its record is
    /// fsynced — survives power loss too, at about half the Encrypt throughput). See
    /// docs/audit.md.
    pub durability: Option<String>,
    /// With `durability = "write"`: the least time between two syncs of the trail (default
    /// 25, at most 10000), so about what a power loss may take. Shorter costs CPU per call.
    pub sync_interval_ms: Option<u64>,
}

/// The longest `audit.sync_interval_ms`: beyond it a power loss could take many seconds of
/// acknowledged records.
const MAX_SYNC_INTERVAL_MS: u64 = 10_000;

/// `[limits]`: what one client, authenticated or not, can make the server hold.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open connections at most (default 1024); past it the oldest idle one is closed.
    pub max_connections: Option<usize>,
    /// Seconds for a request's headers to arrive, or an idle connection's next request (20).
    pub header_timeout_secs: Option<u64>,
    /// Seconds for a request's body to arrive once its headers have (10).
    pub body_timeout_secs: Option<u64>,
    /// MiB of request bodies held at once across all connections (64).
    pub body_budget_mib: Option<usize>,
    /// Serve HTTP/2 too (default: HTTP/1.1 only, which is all AWS SDKs use for KMS).
    pub http2: Option<bool>,
    /// Concurrent streams per HTTP/2 connection (16).
    pub http2_max_streams: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TestingConfig {
    /// Serve `POST /trent-admin/advance-clock` on loopback, guarded by `<data_dir>/admin.token`.
    #[serde(default)]
    pub clock_control: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub id: String,
    pub root_access_key_id: String,
    pub root_secret_access_key: String,
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("id", &self.id)
            .field("root_access_key_id", &self.root_access_key_id)
            .finish_non_exhaustive()
    }
}

/// The effective settings after merging file and flags.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL instead of `<data_dir>/trent.db` (`database` in the file).
    pub database: Option<DatabaseUrl>,
    pub region: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub root_key_file: Option<PathBuf>,
    pub accounts: Vec<AccountConfig>,
    pub clock_control: bool,
    pub connection_limits: trent_server::ConnectionLimits,
    pub body_limits: trent_server::BodyLimits,
    pub ops_listen: Option<SocketAddr>,
    /// Request-rate and resource quotas (AWS's defaults unless `[quotas]` says otherwise).
    pub quotas: trent_core::quotas::QuotaSettings,
    /// The seed file (`--seed`, `$TRENT_SEED_PATH` or `seed_file`), see `seed.rs`.
    pub seed_file: Option<PathBuf>,
    /// The audit trail, unless `[audit] enabled = false`.
    pub audit: Option<trent_audit::AuditSettings>,
    /// The integrated services' names.
    pub integrated_services: Vec<String>,
    /// The declared HSM clusters (`[[hsm_cluster]]`), certificates read.
    pub hsm_clusters: Vec<trent_core::custom_key_stores::HsmCluster>,
    /// The root key's token (`[root_key_pkcs11]`), instead of a root key file.
    pub root_key_pkcs11: Option<hsm::RootKeyPkcs11>,
    /// The XKS client's trusted CAs, port and timeout (`[xks_client]`).
    pub xks_client: trent_custody_xks::ClientSettings,
    /// `[nitro] root_certificates`, resolved against the config file's directory.
    pub nitro_root_certificates: Vec<PathBuf>,
}

/// A PostgreSQL URL. It may hold a password, so its `Debug` form and [`DatabaseUrl::shown`]
/// leave everything but the scheme, host and database out.
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(text: String) -> Result<Self, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Self(text))
        } else {
            Err(
                "database must be a PostgreSQL URL (postgres://…); leave it out to use the \
                 SQLite file in data_dir"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For messages: `postgres://HOST/DB`, without user, password or parameters.
    pub fn shown(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("postgres", &self.0));
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        format!("{scheme}://{rest}")
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.shown())
    }
}

impl LimitsConfig {
    /// The configured limits over the defaults.
    fn resolve(
        &self,
    ) -> Result<(trent_server::ConnectionLimits, trent_server::BodyLimits), String> {
        let secs = std::time::Duration::from_secs;
        let mut connections = trent_server::ConnectionLimits::default();
        let mut bodies = trent_server::BodyLimits::default();
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err("limits.max_connections must be at least 1".into());
            }
            connections.max_connections = n;
        }
        if let Some(t) = self.header_timeout_secs {
            if t == 0 {
                return Err("limits.header_timeout_secs must be at least 1".into());
            }
            connections.header_timeout = secs(t);
        }
        if let Some(t) = self.body_timeout_secs {
            if t == 0 {
                return Err("limits.body_timeout_secs must be at least 1".into());
            }
            bodies.read_timeout = secs(t);
        }
        if let Some(mib) = self.body_budget_mib {
            // At least one largest body must fit, or every chunked request would be refused.
            if mib == 0 {
                return Err("limits.body_budget_mib must be at least 1".into());
            }
            bodies.budget_bytes = mib.saturating_mul(1024 * 1024);
        }
        if let Some(h2) = self.http2 {
            connections.http2 = h2;
        }
        if let Some(streams) = self.http2_max_streams {
            if streams == 0 {
                return Err("limits.http2_max_streams must be at least 1".into());
            }
            connections.http2_max_streams = streams;
        }
        Ok((connections, bodies))
    }
}

impl Settings {
    pub fn load(
        config: Option<&Path>,
        listen: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, String> {
        let file = match config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                toml::from_str::<ConfigFile>(&text)
                    .map_err(|e| format!("invalid config {}: {e}", path.display()))?
            }
            None => ConfigFile::default(),
        };
        let listen = listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = parse_listen(&listen)?;
        let (connection_limits, body_limits) = file.limits.unwrap_or_default().resolve()?;
        let quotas = file.quotas.unwrap_or_default().resolve()?;
        let ops_listen = match file.ops_listen {
            Some(address) => Some(parse_listen(&address).map_err(|e| format!("ops_listen: {e}"))?),
            None => None,
        };
        let tls = match (file.tls_cert, file.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("tls_cert and tls_key must be given together".into()),
        };
        let data_dir = data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let config_dir = config
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let hsm_clusters = hsm::resolve(file.hsm_cluster, &config_dir)?;
        let xks_client = xks::resolve(file.xks_client, &config_dir)?;
        let root_key_pkcs11 = hsm::resolve_root(file.root_key_pkcs11, &config_dir)?;
        let nitro_root_certificates = file
            .nitro
            .map(|n| n.root_certificates)
            .unwrap_or_default()
            .into_iter()
            .map(|p| config_dir.join(p))
            .collect();
        if root_key_pkcs11.is_some() && file.root_key_file.is_some() {
            return Err("root_key_file and [root_key_pkcs11] are two root keys: give one".into());
        }
        // DisconnectCustomKeyStore logs the process out of its cluster's token, which would
        // log the root key's session out with it: the root key needs a token of its own.
        if let Some(root) = &root_key_pkcs11
            && let Some(c) = hsm_clusters.iter().find(|c| c.token == root.token)
        {
            return Err(format!(
                "[root_key_pkcs11] names the token of hsm_cluster {}: the root key needs a token of its own",
                c.id
            ));
        }
        let audit_config = file.audit.unwrap_or_default();
        let audit = audit_config.enabled.unwrap_or(true).then(|| {
            let mut settings = trent_audit::AuditSettings::new(
                audit_config
                    .directory
                    .unwrap_or_else(|| data_dir.join("audit")),
            );
            if let Some(days) = audit_config.retention_days {
                settings.retention_days = days;
            }
            settings
        });
        let audit = match (audit, audit_config.sync_interval_ms) {
            (Some(_), Some(ms)) if ms > MAX_SYNC_INTERVAL_MS => {
                return Err(format!(
                    "audit.sync_interval_ms must be at most {MAX_SYNC_INTERVAL_MS}, not {ms}"
                ));
            }
            (Some(mut settings), Some(ms)) => {
                settings.sync_interval = std::time::Duration::from_millis(ms);
                Some(settings)
            }
            (audit, _) => audit,
        };
        let audit = match (audit, audit_config.durability.as_deref()) {
            (Some(mut settings), Some(mode)) => {
                settings.durability = match mode {
                    "sync" => trent_audit::Durability::Sync,
                    "write" => trent_audit::Durability::Write,
                    other => {
                        return Err(format!(
                            "audit.durability must be \"sync\" or \"write\", not {other:?}"
                        ));
                    }
                };
                Some(settings)
            }
            (audit, _) => audit,
        };
        Ok(Settings {
            listen,
            data_dir,
            database: file.database.map(DatabaseUrl::parse).transpose()?,
            region: file.region.unwrap_or_else(|| DEFAULT_REGION.into()),
            tls,
            root_key_file: file.root_key_file,
            accounts: file.account,
            clock_control: file.testing.is_some_and(|t| t.clock_control),
            connection_limits,
            body_limits,
            ops_listen,
            quotas,
            seed_file: file.seed_file,
            integrated_services: file
                .integrated_service
                .into_iter()
                .map(|s| s.name)
                .collect(),
            hsm_clusters,
            root_key_pkcs11,
            xks_client,
            nitro_root_certificates,
            audit,
        })
    }
}

/// A listen address: `IP:PORT` (`[IPv6]:PORT`), `localhost:PORT` (127.0.0.1) or `:PORT`
/// (127.0.0.1 too: all interfaces must be asked for by name, `0.0.0.0:PORT`). No other name is
/// looked up, so what is bound never depends on DNS or `/etc/hosts`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let invalid = |why: &str| {
        format!(
            "invalid listen address `{text}`: {why} (expected IP:PORT, localhost:PORT or :PORT)"
        )
    };
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(invalid("no port"));
    };
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return Err(invalid("the host must be an IP address or localhost"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| invalid("the port must be a number from 0 to 65535"))?;
    Ok(SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_shape_parses_and_flags_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trent.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:4599"
data_dir = "trent-data"
region = "us-east-1"            # default region
[[account]]
id = "111122223333"
root_access_key_id = "AKIAEXAMPLE000000001"
root_secret_access_key = "secret-1"
[[account]]
id = "444455556666"
root_access_key_id = "AKIAEXAMPLE000000002"
root_secret_access_key = "secret-2"
"#,
        )
        .unwrap();
        let s = Settings::load(Some(&path), Some("127.0.0.1:0".into()), None).unwrap();
        assert_eq!(s.listen.port(), 0);
        assert_eq!(s.data_dir, PathBuf::from("trent-data"));
        assert_eq!(s.accounts.len(), 2);
        assert_eq!(s.accounts[1].root_secret_access_key, "secret-2");
        assert!(
            !format!("{:?}", s.accounts).contains("secret-2"),
            "secrets stay out of Debug"
        );
    }

    #[test]
    fn root_key_pkcs11_resolves_against_the_config_and_excludes_other_root_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let path = dir.path().join("trent.toml");
        let root = "[root_key_pkcs11]\npkcs11_module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"root\"\npin_file = \"root.pin\"\n";
        std::fs::write(&path, root).unwrap();
        let s = Settings::load(Some(&path), None, None).unwrap();
        let token = s.root_key_pkcs11.unwrap();
        assert_eq!(token.key_label, hsm::DEFAULT_ROOT_KEY_LABEL);
        assert_eq!(token.token.token_label, "root");
        assert_eq!(token.pin_file, Some(dir.path().join("root.pin")));

        std::fs::write(&path, format!("root_key_file = \"k\"\n{root}")).unwrap();
        let e = Settings::load(Some(&path), None, None).unwrap_err();
        assert!(e.contains("two root keys"), "{e}");

        let cluster = "[[hsm_cluster]]\nid = \"cluster-1a2b3c4d5e6\"\npkcs11_module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"root\"\ntrust_anchor_certificate = \"ca.pem\"\n";
        std::fs::write(&path, format!("{root}{cluster}")).unwrap();
        let e = Settings::load(Some(&path), None, None).unwrap_err();
        assert!(e.contains("a token of its own"), "{e}");

        // A cluster's key quota: configured, defaulted, never zero.
        std::fs::write(&path, format!("{cluster}max_keys = 5\n")).unwrap();
        let s = Settings::load(Some(&path), None, None).unwrap();
        assert_eq!(s.hsm_clusters[0].max_keys, 5);
        std::fs::write(&path, cluster).unwrap();
        let s = Settings::load(Some(&path), None, None).unwrap();
        assert_eq!(
            s.hsm_clusters[0].max_keys,
            trent_core::custom_key_stores::DEFAULT_MAX_KEYS_PER_CLUSTER
        );
        std::fs::write(&path, format!("{cluster}max_keys = 0\n")).unwrap();
        assert!(Settings::load(Some(&path), None, None).is_err());
    }

    #[test]
    fn database_is_a_postgres_url_kept_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg.toml");
        std::fs::write(
            &path,
            "database = \"postgres://trent:hunter2@db.internal:5433/trent?sslmode=disable\"",
        )
        .unwrap();
        let s = Settings::load(Some(&path), None, None).unwrap();
        let url = s.database.as_ref().unwrap();
        assert!(url.as_str().contains("hunter2"));
        assert_eq!(url.shown(), "postgres://db.internal:5433/trent");
        assert!(!format!("{s:?}").contains("hunter2"));
        std::fs::write(&path, "database = \"trent.db\"").unwrap();
        let e = Settings::load(Some(&path), None, None).unwrap_err();
        assert!(e.contains("postgres://"), "{e}");
        assert!(Settings::load(None, None, None).unwrap().database.is_none());
    }

    #[test]
    fn audit_is_on_by_default_under_the_data_dir_and_configurable() {
        let s = Settings::load(None, None, Some("d".into())).unwrap();
        let audit = s.audit.unwrap();
        assert_eq!(audit.directory, PathBuf::from("d/audit"));
        assert_eq!(audit.retention_days, 90);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trent.toml");
        std::fs::write(
            &path,
            "[audit]\nretention_days = 7\ndirectory = \"/var/trail\"\n",
        )
        .unwrap();
        let audit = Settings::load(Some(&path), None, None)
            .unwrap()
            .audit
            .unwrap();
        assert_eq!(
            (audit.retention_days, audit.directory),
            (7, PathBuf::from("/var/trail"))
        );
        std::fs::write(&path, "[audit]\nenabled = false\n").unwrap();
        assert!(
            Settings::load(Some(&path), None, None)
                .unwrap()
                .audit
                .is_none()
        );
    }

    #[test]
    fn the_audit_sync_interval_defaults_to_25_ms_and_is_bounded() {
        use std::time::Duration;
        let s = Settings::load(None, None, Some("d".into())).unwrap();
        assert_eq!(s.audit.unwrap().sync_interval, Duration::from_millis(25));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trent.toml");
        std::fs::write(&path, "[audit]\nsync_interval_ms = 5\n").unwrap();
        let audit = Settings::load(Some(&path), None, None)
            .unwrap()
            .audit
            .unwrap();
        assert_eq!(audit.sync_interval, Duration::from_millis(5));
        std::fs::write(&path, "[audit]\nsync_interval_ms = 10001\n").unwrap();
        let e = Settings::load(Some(&path), None, None).unwrap_err();
        assert!(e.contains("sync_interval_ms"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"").unwrap();
        assert!(Settings::load(Some(&path), None, None).is_err());
    }

    #[test]
    fn listen_accepts_localhost_and_a_bare_port_as_loopback() {
        let loopback = |port| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
        assert_eq!(parse_listen("localhost:4599").unwrap(), loopback(4599));
        assert_eq!(parse_listen("LocalHost:0").unwrap(), loopback(0));
        assert_eq!(parse_listen(":4599").unwrap(), loopback(4599));
        assert_eq!(
            parse_listen("0.0.0.0:4599").unwrap(),
            "0.0.0.0:4599".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:4599").unwrap(),
            "[::1]:4599".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn listen_refuses_other_names_and_bad_ports() {
        for bad in [
            "example.com:4599",
            "localhost",
            "4599",
            ":",
            ":65536",
            "localhost:-1",
            "localhost:http",
            "",
        ] {
            let e = parse_listen(bad).unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
        }
    }

    #[test]
    fn listen_forms_work_from_the_file_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trent.toml");
        std::fs::write(
            &path,
            "listen = \"localhost:4599\"\nops_listen = \":9599\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path), None, None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:4599".parse::<SocketAddr>().unwrap());
        assert_eq!(s.ops_listen, Some("127.0.0.1:9599".parse().unwrap()));
        let s = Settings::load(Some(&path), Some(":0".into()), None).unwrap();
        assert_eq!(s.listen, "127.0.0.1:0".parse::<SocketAddr>().unwrap());
        assert!(Settings::load(None, Some("nowhere:1".into()), None).is_err());
    }
}
