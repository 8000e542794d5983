//! `trent xks-proxy`: run an XKS proxy (spec v1.0.3) over AES-256 keys in its own data
//! directory, for EXTERNAL_KEY_STORE-type key stores — Trent's or AWS KMS's. The proxy
//! itself is `trent_custody_xks::proxy`; this is its command line.

use std::path::PathBuf;

use trent_custody_xks::keys;
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
    /// Add a random AES-256 external key to the proxy's keys file.
    CreateKey {
        #[arg(long)]
        config: PathBuf,
        /// The external key id (1–128 of A-Za-z0-9-_.), what CreateKey's XksKeyId names.
        #[arg(long)]
        key_id: String,
        /// Comma-separated key usage.
        #[arg(long, default_value = "ENCRYPT,DECRYPT", value_delimiter = ',')]
        usage: Vec<String>,
        /// Create the key DISABLED.
        #[arg(long)]
        disabled: bool,
    },
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
            keys::create_key(&config.keys_file(), &key_id, &usage, !disabled)
                .map_err(|e| e.to_string())?;
            println!("{key_id}");
            Ok(())
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
