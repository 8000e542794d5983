//! The `trent serve` configuration: a TOML file plus command-line overrides.
//!
//! ```toml
//! listen = "127.0.0.1:4599"
//! data_dir = "trent-data"
//! region = "us-east-1"            # default region; any region in a request's SigV4 scope is served
//! [[account]]
//! id = "111122223333"
//! root_access_key_id = "AKIAEXAMPLE000000001"
//! root_secret_access_key = "secret-1"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:4599";
pub const DEFAULT_DATA_DIR: &str = "trent-data";
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub region: Option<String>,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// A file holding the root key (64 hex digits) instead of `<data_dir>/root.key`.
    pub root_key_file: Option<PathBuf>,
    #[serde(default)]
    pub account: Vec<AccountConfig>,
    /// Facilities for tests and drills; never turn these on in production.
    pub testing: Option<TestingConfig>,
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
    pub region: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub root_key_file: Option<PathBuf>,
    pub accounts: Vec<AccountConfig>,
    pub clock_control: bool,
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
        let listen = listen
            .parse()
            .map_err(|e| format!("invalid listen address `{listen}`: {e}"))?;
        let tls = match (file.tls_cert, file.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("tls_cert and tls_key must be given together".into()),
        };
        Ok(Settings {
            listen,
            data_dir: data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            region: file.region.unwrap_or_else(|| DEFAULT_REGION.into()),
            tls,
            root_key_file: file.root_key_file,
            accounts: file.account,
            clock_control: file.testing.is_some_and(|t| t.clock_control),
        })
    }
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
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"").unwrap();
        assert!(Settings::load(Some(&path), None, None).is_err());
    }
}
