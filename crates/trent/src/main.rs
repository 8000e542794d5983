//! The `trent` command: `trent serve` runs the KMS server, `trent bench` load-tests one.

mod bare_http;
mod bench;
mod config;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trent",
    version,
    about = "A self-hosted key management service that speaks the AWS KMS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the AWS KMS API (default: 127.0.0.1:4599, data in ./trent-data).
    Serve {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on: IP:PORT, localhost:PORT or :PORT (both loopback); overrides
        /// the file.
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (overrides the file).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Load-test a running server with signed Encrypt/Decrypt/GenerateDataKey requests.
    Bench(bench::BenchArgs),
    /// A bare HTTP server answering every request with a fixed body: the ceiling
    /// `trent bench --baseline` compares Trent with.
    #[command(hide = true)]
    BareHttp {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

/// Logs to stderr, filtered by `$TRENT_LOG` (default `warn`; `info` adds one line per request
/// and the start-up and shutdown lines), as text or, with `TRENT_LOG_FORMAT=json`, one JSON
/// object per line.
fn init_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("TRENT_LOG").unwrap_or_else(|_| "warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("TRENT_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                config,
                listen,
                data_dir,
            } => {
                let settings = config::Settings::load(config.as_deref(), listen, data_dir)?;
                serve::run(settings).await
            }
            Command::Bench(args) => bench::run(args).await,
            Command::BareHttp { listen } => bare_http::run(&listen).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("trent: {e}");
            ExitCode::FAILURE
        }
    }
}
