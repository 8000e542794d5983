//! The `trent` command: `trent serve` runs the KMS server, `trent bench` load-tests one,
//! `trent account …` and `trent credentials rotate` administer a running one, `trent backup`
//! and `trent migrate` copy its embedded store, `trent xks-proxy` runs an XKS proxy.

mod admin;
mod audit;
mod bare_http;
mod bench;
mod config;
mod migrate;
mod seed;
mod serve;
mod xks_proxy;

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
        /// A development seed file (TOML, or YAML when named .yaml/.yml) to apply at start;
        /// overrides `seed_file` in the config.
        #[arg(long, env = "TRENT_SEED_PATH")]
        seed: Option<PathBuf>,
        /// A PostgreSQL URL (postgres://…) to keep the state in instead of <data_dir>/trent.db;
        /// overrides `database` in the config (which is the place for a URL with a password:
        /// a command line is visible to every local user).
        #[arg(long)]
        database: Option<String>,
    },
    /// Accounts of the running server on the data directory.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Root credentials of the running server's accounts.
    Credentials {
        #[command(subcommand)]
        command: CredentialsCommand,
    },
    /// Who can use a key of the running server: every principal and the operations it may
    /// perform (by the key policy, IAM policies and grants), with findings.
    Access {
        /// The key's ARN or id.
        key: String,
        /// Print the analysis as JSON.
        #[arg(long)]
        json: bool,
        /// Dry-run this key policy (a JSON file): who would gain or lose which operations.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// The audit trail: check its digest chain, or export it as JSON Lines files.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the embedded SQLite store to FILE while the server runs (one consistent
    /// snapshot); the root key is not in it: keep that too.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Copy the embedded SQLite store (every key, material version, alias, grant, IAM entity,
    /// credential and rotation) into an empty PostgreSQL database, for several nodes.
    Migrate {
        /// The PostgreSQL database (postgres://…) to copy into; it must hold no state yet.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        target: Target,
    },
    /// Load-test a running server with signed Encrypt/Decrypt/GenerateDataKey requests.
    Bench(bench::BenchArgs),
    /// An XKS proxy for external key stores, over AES-256 keys in its own data directory.
    XksProxy {
        #[command(subcommand)]
        command: xks_proxy::XksProxyCommand,
    },
    /// A bare HTTP server answering every request with a fixed body: the ceiling
    /// `trent bench --baseline` compares Trent with.
    #[command(hide = true)]
    BareHttp {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
}

/// Where the server to administer keeps its data: `--data-dir`, else the config's `data_dir`,
/// else `./trent-data`.
#[derive(clap::Args)]
struct Target {
    /// The data directory of the running server.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's TOML configuration file (for its `data_dir`).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl Target {
    fn settings(&self) -> Result<config::Settings, String> {
        config::Settings::load(self.config.as_deref(), None, self.data_dir.clone())
    }

    fn data_dir(&self) -> Result<PathBuf, String> {
        Ok(config::Settings::load(self.config.as_deref(), None, self.data_dir.clone())?.data_dir)
    }

    /// The audit trail's directory (`[audit] directory`, else `<data_dir>/audit`).
    fn audit_dir(&self) -> Result<PathBuf, String> {
        let settings = config::Settings::load(self.config.as_deref(), None, self.data_dir.clone())?;
        Ok(match settings.audit {
            Some(audit) => audit.directory,
            None => settings.data_dir.join("audit"),
        })
    }
}

#[derive(Subcommand)]
enum AccountCommand {
    /// List the accounts with their root access key ids.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Create an account with random root credentials, printed or written to a profile.
    Create {
        /// The account id (12 digits); random when absent.
        #[arg(long)]
        id: Option<String>,
        /// Write the root credentials as this profile of the credentials file instead of
        /// printing them (the profile must not exist yet).
        #[arg(long)]
        profile: Option<String>,
        /// The shared-credentials file for --profile (default: <data_dir>/credentials).
        #[arg(long)]
        credentials_file: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every batch digest and follow the chain; fails if an event or batch was
    /// changed, removed, added or reordered. Prints the head digest to record.
    Verify {
        /// Verify every node's chain in this PostgreSQL database's shared trail (several
        /// nodes) instead of the files; with a data directory, also says how many of its
        /// node's batches are not shipped yet.
        #[arg(long)]
        database: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Write every event into OUT/<account>/<Region>/<yyyy>/<mm>/<dd>.jsonl.
    Export {
        /// The directory to write into.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum CredentialsCommand {
    /// Give an account a new root access key and delete its old ones; the default account's
    /// <data_dir>/credentials file is rewritten.
    Rotate {
        /// The account (default: the default account, whose key is in <data_dir>/credentials).
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        target: Target,
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
                seed,
                database,
            } => {
                let mut settings = config::Settings::load(config.as_deref(), listen, data_dir)?;
                settings.seed_file = seed.or(settings.seed_file);
                if let Some(url) = database {
                    settings.database = Some(config::DatabaseUrl::parse(url)?);
                }
                serve::run(settings).await
            }
            Command::Account {
                command: AccountCommand::List { target },
            } => admin::account_list(&target.data_dir()?).await,
            Command::Account {
                command:
                    AccountCommand::Create {
                        id,
                        profile,
                        credentials_file,
                        target,
                    },
            } => {
                admin::account_create(
                    &target.data_dir()?,
                    id.as_deref(),
                    profile.as_deref(),
                    credentials_file.as_deref(),
                )
                .await
            }
            Command::Credentials {
                command: CredentialsCommand::Rotate { account, target },
            } => admin::credentials_rotate(&target.data_dir()?, account.as_deref()).await,
            Command::Access {
                key,
                json,
                policy,
                target,
            } => admin::key_access(&target.data_dir()?, &key, json, policy.as_deref()).await,
            Command::Audit {
                command: AuditCommand::Verify { database, target },
            } => match database {
                Some(url) => {
                    let url = config::DatabaseUrl::parse(url)?;
                    let local = (target.data_dir.is_some() || target.config.is_some())
                        .then(|| target.audit_dir())
                        .transpose()?;
                    audit::verify_shared(&url, local.as_deref()).await
                }
                None => audit::verify(&target.audit_dir()?),
            },
            Command::Audit {
                command: AuditCommand::Export { out, target },
            } => audit::export(&target.audit_dir()?, &out),
            Command::Backup { to, target } => migrate::backup(&target.settings()?, &to),
            Command::Migrate { to, target } => migrate::migrate(&target.settings()?, &to).await,
            Command::Bench(args) => bench::run(args).await,
            Command::XksProxy { command } => xks_proxy::run(command).await,
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
