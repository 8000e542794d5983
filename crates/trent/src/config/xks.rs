//! `[xks_client]`: how Trent reaches the XKS proxies of EXTERNAL_KEY_STORE-type custom key
//! stores (`trent_custody_xks::client`). Every field is optional:
//!
//! ```toml
//! [xks_client]
//! ca_bundle = "xks-ca.pem"     # PEM CAs trusted for proxies (default: the system's store)
//! port = 8443                  # instead of 443 (XksProxyUriEndpoint cannot carry a port)
//! timeout_ms = 250             # per proxy call, connection set-up included (KMS: 250 ms)
//! allowed_proxy_hosts = ["xks.example.internal", "127.0.0.1"]
//!                              # endpoints allowed although they are (or resolve to)
//!                              # loopback, private, link-local or metadata addresses;
//!                              # default none: such endpoints are refused (SSRF guard)
//! health_check_interval_s = 60 # the periodic GetHealthStatus of connected stores
//! ```
//!
//! Relative paths are relative to the config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct XksClientConfig {
    pub ca_bundle: Option<PathBuf>,
    pub port: Option<u16>,
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub allowed_proxy_hosts: Vec<String>,
    pub health_check_interval_s: Option<u64>,
}

/// The client settings, the CA bundle read now (a bad file stops the start).
pub fn resolve(
    config: Option<XksClientConfig>,
    config_dir: &Path,
) -> Result<trent_custody_xks::ClientSettings, String> {
    let config = config.unwrap_or_default();
    let ca_bundle = config.ca_bundle.map(|p| {
        if p.is_relative() {
            config_dir.join(p)
        } else {
            p
        }
    });
    let timeout = match config.timeout_ms {
        Some(0) => return Err("[xks_client] timeout_ms must be at least 1".into()),
        Some(ms) => Duration::from_millis(ms),
        None => trent_custody_xks::client::DEFAULT_TIMEOUT,
    };
    let mut settings =
        trent_custody_xks::ClientSettings::new(ca_bundle.as_deref(), timeout, config.port)
            .map_err(|e| format!("[xks_client]: {e}"))?
            .allow_hosts(config.allowed_proxy_hosts);
    match config.health_check_interval_s {
        Some(0) => return Err("[xks_client] health_check_interval_s must be at least 1".into()),
        Some(s) => settings.health_check_interval = Duration::from_secs(s),
        None => {}
    }
    Ok(settings)
}
