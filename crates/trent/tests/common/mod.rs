//! Test harness: start the real `trent` binary on an ephemeral port and build real clients for it.

#![allow(
    dead_code,
    reason = "each test file uses a different subset of the harness"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};

pub const ACCOUNT_A: &str = "111122223333";
pub const AKID_A: &str = "AKIAEXAMPLE000000001";
pub const SECRET_A: &str = "secret-1";
pub const ACCOUNT_B: &str = "444455556666";
pub const AKID_B: &str = "AKIAEXAMPLE000000002";
pub const SECRET_B: &str = "secret-2";

/// A running `trent serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub endpoint: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts Trent with two declared accounts in a fresh data directory.
    pub fn start() -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Server::start_in(&data_dir, true);
        s._tmp = Some(tmp);
        s
    }

    /// Starts Trent with the two declared accounts and `extra` appended to its config file
    /// (e.g. a `[limits]` section).
    pub fn start_with_config(extra: &str) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let mut s = Server::start_configured(&data_dir, true, extra, None, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Starts Trent with `TRENT_LOG=info` and JSON logs, its stderr going to the file
    /// [`Server::log_file`] returns.
    pub fn start_logging(extra: &str) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        let log = tmp.path().join("stderr.log");
        let mut s = Server::start_configured(&data_dir, true, extra, Some(&log), &[]);
        s._tmp = Some(tmp);
        s
    }

    /// Where [`Server::start_logging`] sends the server's stderr.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.parent().unwrap().join("stderr.log")
    }

    /// Starts Trent on `data_dir`, with the two test accounts declared in a config file when
    /// `with_accounts`.
    pub fn start_in(data_dir: &Path, with_accounts: bool) -> Server {
        Server::start_configured(data_dir, with_accounts, "", None, &[])
    }

    /// Starts Trent on `data_dir` with `extra` in its config file (e.g. `seed_file = "…"`),
    /// with the two test accounts declared when `with_accounts`.
    pub fn start_in_with_config(data_dir: &Path, with_accounts: bool, extra: &str) -> Server {
        Server::start_configured(data_dir, with_accounts, extra, None, &[])
    }

    /// As [`Server::start_in_with_config`], with `args` added to `trent serve`'s command line.
    pub fn start_in_with_args(
        data_dir: &Path,
        with_accounts: bool,
        extra: &str,
        args: &[&str],
    ) -> Server {
        Server::start_configured(data_dir, with_accounts, extra, None, args)
    }

    fn start_configured(
        data_dir: &Path,
        with_accounts: bool,
        extra: &str,
        log: Option<&Path>,
        args: &[&str],
    ) -> Server {
        std::fs::create_dir_all(data_dir.parent().unwrap()).unwrap();
        let config = data_dir.parent().unwrap().join("trent.toml");
        let accounts = if with_accounts {
            format!(
                "[[account]]\nid = \"{ACCOUNT_A}\"\nroot_access_key_id = \"{AKID_A}\"\nroot_secret_access_key = \"{SECRET_A}\"\n\
                 [[account]]\nid = \"{ACCOUNT_B}\"\nroot_access_key_id = \"{AKID_B}\"\nroot_secret_access_key = \"{SECRET_B}\"\n"
            )
        } else {
            String::new()
        };
        // Functional tests call faster than AWS's default management quotas allow (5 CreateKey
        // per second) with SDK retries off, so they run with throttling off; a test that sets
        // `[quotas]` itself (tests/quotas.rs) gets what it asks for.
        let quotas = if extra.contains("[quotas") {
            ""
        } else {
            "[quotas]\nthrottling = false\n"
        };
        std::fs::write(
            &config,
            // Clock control lets lifecycle tests move time (rotation, deletion, expiry).
            format!(
                "listen = \"127.0.0.1:0\"\nregion = \"us-east-1\"\n{extra}\n{accounts}{quotas}[testing]\nclock_control = true\n"
            ),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_trent"));
        command
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("TRENT_ROOT_KEY")
            .env_remove("TRENT_SEED_PATH")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(log) = log {
            command
                .env("TRENT_LOG", "info")
                .env("TRENT_LOG_FORMAT", "json")
                .stderr(std::fs::File::create(log).unwrap());
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let endpoint = loop {
            let line = lines
                .next()
                .expect("trent exited before listening")
                .unwrap();
            if let Some(rest) = line.split(" on ").nth(1)
                && line.starts_with("Trent is serving")
            {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            endpoint,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
        }
    }

    /// Moves the server's clock forward by `seconds` through the operator's clock control
    /// (`POST /trent-admin/advance-clock`) and returns its JSON answer.
    pub fn advance_clock(&self, seconds: i64) -> serde_json::Value {
        use std::io::{Read, Write};
        let token = std::fs::read_to_string(self.data_dir.join("admin.token")).unwrap();
        let host = self.endpoint.trim_start_matches("http://");
        let body = format!("{{\"Seconds\": {seconds}}}");
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "POST /trent-admin/advance-clock HTTP/1.1\r\nHost: {host}\r\nX-Trent-Admin-Token: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            token.trim(),
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let json = response.split("\r\n\r\n").nth(1).unwrap();
        serde_json::from_str(json).unwrap()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` of the endpoint.
    pub fn host(&self) -> &str {
        self.endpoint.trim_start_matches("http://")
    }

    pub fn kill_9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }

    pub fn kms(&self, akid: &str, secret: &str) -> aws_sdk_kms::Client {
        self.kms_in(akid, secret, "us-east-1")
    }

    pub fn kms_in(&self, akid: &str, secret: &str, region: &str) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(akid, secret, None, None, "test"))
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// A KMS client with temporary credentials.
    pub fn kms_session(&self, akid: &str, secret: &str, token: &str) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(
                akid,
                secret,
                Some(token.to_string()),
                None,
                "test",
            ))
            .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    pub fn iam(&self, akid: &str, secret: &str) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                akid, secret, None, None, "test",
            ))
            .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    pub fn sts(&self, akid: &str, secret: &str, token: Option<&str>) -> aws_sdk_sts::Client {
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                akid,
                secret,
                token.map(str::to_string),
                None,
                "test",
            ))
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .build();
        aws_sdk_sts::Client::from_conf(config)
    }

    pub fn kms_a(&self) -> aws_sdk_kms::Client {
        self.kms(AKID_A, SECRET_A)
    }

    pub fn kms_b(&self) -> aws_sdk_kms::Client {
        self.kms(AKID_B, SECRET_B)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a symmetric encryption key with the default key policy through `kms`; returns its id.
pub async fn new_key_id(kms: &aws_sdk_kms::Client) -> String {
    kms.create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

/// Creates an IAM user with an access key through `iam`; returns (access key id, secret, user ARN).
pub async fn new_iam_user(iam: &aws_sdk_iam::Client, name: &str) -> (String, String, String) {
    let created = iam.create_user().user_name(name).send().await.unwrap();
    let arn = created.user().unwrap().arn().to_string();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    (
        key.access_key_id().to_string(),
        key.secret_access_key().to_string(),
        arn,
    )
}

/// The `__type`-derived error code of a failed SDK call.
pub fn code<E, R>(
    result: Result<R, aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>>,
) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e
            .as_service_error()
            .and_then(|s| s.code())
            .map(str::to_string)
            .unwrap_or_else(|| format!("not a service error: {e:?}")),
    }
}

/// The message of a failed SDK call.
pub fn message<E, R>(
    result: Result<R, aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>>,
) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match result {
        Ok(r) => panic!("expected an error, got {r:?}"),
        Err(e) => e
            .as_service_error()
            .and_then(|s| s.message())
            .unwrap_or_default()
            .to_string(),
    }
}
