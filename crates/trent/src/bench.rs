//! `trent bench`: a closed-loop load generator for a running Trent.
//!
//! It opens `--connections` keep-alive HTTP/1.1 connections, and on each sends correctly signed
//! requests back to back for `--duration` seconds (every request is signed afresh with the
//! current time, as a real client would). It then reports requests/s and latency percentiles.
//! Only loopback or the operator's own servers should be targeted.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Server to load (http only).
    #[arg(long, default_value = "http://127.0.0.1:4599")]
    endpoint: String,
    /// Shared-credentials file with a `[trent]` profile (default: trent-data/credentials).
    #[arg(long)]
    credentials_file: Option<PathBuf>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// encrypt, decrypt, generate-data-key, sign or generate-mac.
    #[arg(long, default_value = "encrypt")]
    operation: String,
    /// Key to use; when absent a new key is created (symmetric, or for `sign` of `--key-spec`,
    /// for `generate-mac` HMAC_256).
    #[arg(long)]
    key_id: Option<String>,
    /// Key spec of the key `sign` creates: RSA_2048, ECC_NIST_P256, ECC_NIST_EDWARDS25519,
    /// ML_DSA_65, ... (its first signing algorithm is used).
    #[arg(long, default_value = "ECC_NIST_P256")]
    key_spec: String,
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Plaintext size for encrypt (and for the ciphertext decrypt uses).
    #[arg(long, default_value_t = 64)]
    plaintext_bytes: usize,
    /// Also load a bare HTTP server (`trent bare-http`, started here as a child process) with
    /// the same requests for the same time, first, and print Trent's ratio to it.
    #[arg(long)]
    baseline: bool,
}

/// What one load run measured.
struct Report {
    requests: usize,
    errors: u64,
    rate: f64,
    line: String,
}

struct Target {
    host: String,
    addr: String,
    access_key_id: String,
    secret: String,
    region: String,
}

pub async fn run(args: BenchArgs) -> Result<(), String> {
    let target = target(&args)?;
    let create = match args.operation.as_str() {
        "sign" => {
            json!({"Description": "trent bench", "KeySpec": args.key_spec, "KeyUsage": "SIGN_VERIFY"})
        }
        "generate-mac" => {
            json!({"Description": "trent bench", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"})
        }
        _ => json!({"Description": "trent bench"}),
    };
    let key_id = match &args.key_id {
        Some(k) => k.clone(),
        None => {
            let created = call_once(&target, "CreateKey", &create).await?;
            created
                .pointer("/KeyMetadata/KeyId")
                .and_then(Value::as_str)
                .ok_or("CreateKey returned no KeyId")?
                .to_string()
        }
    };
    let plaintext = STANDARD.encode(vec![0x42u8; args.plaintext_bytes]);
    let (operation, body) = match args.operation.as_str() {
        "encrypt" => ("Encrypt", json!({"KeyId": key_id, "Plaintext": plaintext})),
        "generate-data-key" => (
            "GenerateDataKey",
            json!({"KeyId": key_id, "KeySpec": "AES_256"}),
        ),
        "decrypt" => {
            let enc = call_once(
                &target,
                "Encrypt",
                &json!({"KeyId": key_id, "Plaintext": plaintext}),
            )
            .await?;
            (
                "Decrypt",
                json!({"CiphertextBlob": enc.get("CiphertextBlob")}),
            )
        }
        "sign" => {
            let described = call_once(&target, "DescribeKey", &json!({"KeyId": key_id})).await?;
            let algorithm = described
                .pointer("/KeyMetadata/SigningAlgorithms/0")
                .and_then(Value::as_str)
                .ok_or("the key has no signing algorithm (use a SIGN_VERIFY key)")?
                .to_string();
            (
                "Sign",
                json!({"KeyId": key_id, "Message": plaintext, "SigningAlgorithm": algorithm}),
            )
        }
        "generate-mac" => (
            "GenerateMac",
            json!({"KeyId": key_id, "Message": plaintext, "MacAlgorithm": "HMAC_SHA_256"}),
        ),
        other => {
            return Err(format!(
                "unknown operation `{other}` (encrypt, decrypt, generate-data-key, sign, generate-mac)"
            ));
        }
    };
    let body = Bytes::from(body.to_string());
    let baseline = if args.baseline {
        let report = load_baseline(&target, &args, operation, body.clone()).await?;
        println!("baseline (bare HTTP): {}", report.line);
        Some(report)
    } else {
        None
    };
    let report = load(
        std::sync::Arc::new(target),
        operation,
        body,
        args.connections,
        args.duration,
    )
    .await?;
    println!("{}", report.line);
    if let Some(bare) = baseline {
        println!(
            "ratio to bare HTTP: {:.3} ({:.0} / {:.0} req/s)",
            report.rate / bare.rate,
            report.rate,
            bare.rate
        );
    }
    if report.errors > 0 {
        return Err(format!(
            "{} of {} requests failed",
            report.errors, report.requests
        ));
    }
    Ok(())
}

/// Starts `trent bare-http` on a free loopback port, loads it like Trent, and stops it.
async fn load_baseline(
    trent: &Target,
    args: &BenchArgs,
    operation: &'static str,
    body: Bytes,
) -> Result<Report, String> {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bare-http", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the bare HTTP server: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("bare HTTP server has no stdout")?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected output from the bare HTTP server: {line}"))?
        .to_string();
    let target = Target {
        host: trent.host.clone(),
        addr,
        access_key_id: trent.access_key_id.clone(),
        secret: trent.secret.clone(),
        region: trent.region.clone(),
    };
    let report = load(
        std::sync::Arc::new(target),
        operation,
        body,
        args.connections,
        args.duration,
    )
    .await;
    let _ = child.kill().await;
    report
}

/// Runs `connections` closed-loop workers for `duration` seconds against `target`.
async fn load(
    target: std::sync::Arc<Target>,
    operation: &'static str,
    body: Bytes,
    connections: usize,
    duration: u64,
) -> Result<Report, String> {
    let deadline = Instant::now() + Duration::from_secs(duration);
    let started = Instant::now();
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (target, body) = (target.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            worker(&target, operation, body, deadline).await
        }));
    }
    let mut latencies_us: Vec<u32> = Vec::new();
    let mut errors = 0u64;
    for w in workers {
        let (lat, errs) = w.await.map_err(|e| e.to_string())??;
        latencies_us.extend(lat);
        errors += errs;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies_us.is_empty() {
            return 0.0;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into a sorted sample"
        )]
        let i = ((latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(latencies_us.get(i).copied().unwrap_or(0)) / 1000.0
    };
    #[expect(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^53"
    )]
    let rate = latencies_us.len() as f64 / elapsed;
    let line = format!(
        "operation={operation} connections={connections} duration={elapsed:.1}s requests={} errors={errors} rate={rate:.0} req/s latency_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        latencies_us.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    Ok(Report {
        requests: latencies_us.len(),
        errors,
        rate,
        line,
    })
}

fn target(args: &BenchArgs) -> Result<Target, String> {
    let host = args
        .endpoint
        .strip_prefix("http://")
        .ok_or("bench speaks plain http: use an http:// endpoint")?
        .trim_end_matches('/')
        .to_string();
    let (access_key_id, secret) = match (&args.access_key_id, &args.secret_access_key) {
        (Some(a), Some(s)) => (a.clone(), s.clone()),
        _ => {
            let path = args
                .credentials_file
                .clone()
                .unwrap_or_else(|| PathBuf::from("trent-data/credentials"));
            read_credentials(&path)?
        }
    };
    Ok(Target {
        addr: host.clone(),
        host,
        access_key_id,
        secret,
        region: args.region.clone(),
    })
}

/// Reads `aws_access_key_id` / `aws_secret_access_key` from the `[trent]` profile.
fn read_credentials(path: &std::path::Path) -> Result<(String, String), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut in_profile = false;
    let (mut akid, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_profile = line == "[trent]";
        } else if in_profile && let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => akid = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    akid.zip(secret)
        .ok_or_else(|| format!("no [trent] profile with keys in {}", path.display()))
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

fn signed_request(
    t: &Target,
    operation: &str,
    body: Bytes,
) -> Result<hyper::Request<Full<Bytes>>, String> {
    let target_header = format!("TrentService.{operation}");
    let content_type = "application/x-amz-json-1.1";
    let auth = trent_sigv4::sign(
        "POST",
        "/",
        "",
        &t.host,
        &[
            ("content-type", content_type),
            ("x-amz-target", &target_header),
        ],
        &body,
        &t.access_key_id,
        &t.secret,
        None,
        &t.region,
        "kms",
        now_unix(),
    );
    let mut req = hyper::Request::post("/")
        .header("host", &t.host)
        .header("content-type", content_type)
        .header("x-amz-target", target_header);
    for (name, value) in auth {
        req = req.header(name, value);
    }
    req.body(Full::new(body)).map_err(|e| e.to_string())
}

async fn connect(
    t: &Target,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(&t.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", t.addr))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn call_once(t: &Target, operation: &str, body: &Value) -> Result<Value, String> {
    let mut sender = connect(t).await?;
    let response = sender
        .send_request(signed_request(t, operation, Bytes::from(body.to_string()))?)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{operation} failed: {status} {value}"));
    }
    Ok(value)
}

async fn worker(
    t: &Target,
    operation: &str,
    body: Bytes,
    deadline: Instant,
) -> Result<(Vec<u32>, u64), String> {
    let mut sender = connect(t).await?;
    let mut latencies = Vec::with_capacity(100_000);
    let mut errors = 0;
    // A signature is re-made every second (its X-Amz-Date changes), not per request: the server
    // verifies every request in full either way, and the load tool shares the server's CPUs.
    let mut signed: Option<(i64, hyper::Request<Full<Bytes>>)> = None;
    while Instant::now() < deadline {
        let second = now_unix();
        let template = match &signed {
            Some((at, req)) if *at == second => req,
            _ => {
                &signed
                    .insert((second, signed_request(t, operation, body.clone())?))
                    .1
            }
        };
        let mut req = hyper::Request::new(template.body().clone());
        *req.method_mut() = template.method().clone();
        *req.uri_mut() = template.uri().clone();
        *req.headers_mut() = template.headers().clone();
        let start = Instant::now();
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let _ = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        latencies.push(u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX));
        if !ok {
            errors += 1;
        }
    }
    Ok((latencies, errors))
}
