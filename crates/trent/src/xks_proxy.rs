//! `trent xks-proxy`: run an XKS proxy (spec v1.0.3) for EXTERNAL_KEY_STORE-type key stores
//! — Trent's or AWS KMS's — over AES keys in a PKCS#11 token (`[pkcs11]`) or in its own
//! data directory (`keys.json`), and manage those keys. The proxy itself is
//! `trent_custody_xks::proxy`; this is its command line.

use std::path::PathBuf;

use trent_custody_xks::keys;
use trent_custody_xks::pkcs11::admin;
use trent_custody_xks::proxy::{self, Proxy, ProxyConfig};

#[derive(clap::Subcommand)]
pub enum XksProxyCommand {
    /// Serve the XKS proxy API until SIGTERM or Ctrl-C.
    Serve {
        /// The proxy's TOML configuration (listen, data_dir, tls_cert, tls_key, region,
        /// uri_path_prefix, [[credential]]).
        #[arg(long)]
        config: PathBuf,
    },
    /// Add a random AES-256 external key: generated in the `[pkcs11]` token (not
    /// extractable), else in the proxy's keys file.
    CreateKey {
        #[arg(long)]
        config: PathBuf,
        /// The external key id (1–128 of A-Za-z0-9-_.), what CreateKey's XksKeyId names.
        #[arg(long)]
        key_id: String,
        /// Comma-separated key usage.
        #[arg(long, default_value = "ENCRYPT,DECRYPT", value_delimiter = ',')]
        usage: Vec<String>,
        /// Create the key DISABLED (keys file only; for a token key use disable-key).
        #[arg(long)]
        disabled: bool,
    },
    /// Disable a `[pkcs11]` token key (CKA_ENCRYPT and CKA_DECRYPT false: `DISABLED`).
    DisableKey {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        key_id: String,
    },
    /// Enable a `[pkcs11]` token key again for exactly `--usage` (the token keeps no record of
    /// what a disabled key once allowed, so an encrypt-only key is not widened to both).
    EnableKey {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        key_id: String,
        /// Comma-separated key usage: ENCRYPT, DECRYPT or both.
        #[arg(long, default_value = "ENCRYPT,DECRYPT", value_delimiter = ',')]
        usage: Vec<String>,
    },
    /// Destroy a `[pkcs11]` token key.
    DeleteKey {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        key_id: String,
    },
}

fn token_of(config: &ProxyConfig) -> Result<&trent_custody_xks::pkcs11::Pkcs11Config, String> {
    config.pkcs11.as_ref().ok_or_else(|| {
        "this command manages [pkcs11] token keys; the configuration has none".into()
    })
}

pub async fn run(command: XksProxyCommand) -> Result<(), String> {
    match command {
        XksProxyCommand::Serve { config } => {
            let config = ProxyConfig::load(&config)?;
            let scheme = if config.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            let base = config.base_path();
            let (listener, addr) = proxy::bind(&config).await?;
            let proxy = Proxy::new(config)?;
            // The tests (and operators) read the address from this line.
            println!("Trent XKS proxy is serving {base} on {scheme}://{addr}");
            proxy.serve(listener, shutdown_signal()).await
        }
        XksProxyCommand::CreateKey {
            config,
            key_id,
            usage,
            disabled,
        } => {
            let config = ProxyConfig::load(&config)?;
            match &config.pkcs11 {
                Some(token) if !disabled => admin::create_key(token, &key_id, &usage)?,
                Some(_) => return Err("--disabled is for keys-file keys; use disable-key".into()),
                None => keys::create_key(&config.keys_file(), &key_id, &usage, !disabled)
                    .map_err(|e| e.to_string())?,
            }
            println!("{key_id}");
            Ok(())
        }
        XksProxyCommand::DisableKey { config, key_id } => {
            let config = ProxyConfig::load(&config)?;
            admin::set_enabled(token_of(&config)?, &key_id, false)
        }
        XksProxyCommand::EnableKey {
            config,
            key_id,
            usage,
        } => {
            let config = ProxyConfig::load(&config)?;
            admin::enable_key(token_of(&config)?, &key_id, &usage)
        }
        XksProxyCommand::DeleteKey { config, key_id } => {
            let config = ProxyConfig::load(&config)?;
            admin::delete_key(token_of(&config)?, &key_id)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
