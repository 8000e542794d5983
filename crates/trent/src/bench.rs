//! `trent bench`: a closed-loop load generator for a running Trent.
//!
//! It opens `--connections` keep-alive HTTP/1.1 connections, and on each sends correctly signed
//! requests back to back for `--duration` seconds (every request is signed afresh with the
//! current time, as a real client would). It then reports requests/s and latency percentiles.
//! Only loopback or the operator's own servers should be targeted.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
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
    /// encrypt, decrypt, generate-data-key, sign, generate-mac, or mixed (each connection
    /// cycles through Encrypt, Decrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext,
    /// ReEncrypt, DescribeKey, GenerateMac and Sign on keys it creates).
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
    /// Also print throughput, errors and latency for every this many seconds (a soak run).
    #[arg(long, default_value_t = 0)]
    interval: u64,
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
    let requests: Arc<[LoadRequest]> = if args.operation == "mixed" {
        mixed_requests(&target, &args).await?.into()
    } else {
        vec![single_request(&target, &args).await?].into()
    };
    let baseline = if args.baseline {
        let report = load_baseline(&target, &args, requests.clone()).await?;
        println!("baseline (bare HTTP): {}", report.line);
        Some(report)
    } else {
        None
    };
    let report = load(Arc::new(target), requests, &args).await?;
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

/// One request a worker sends: the operation and its JSON body.
struct LoadRequest {
    operation: &'static str,
    body: Bytes,
}

impl LoadRequest {
    fn new(operation: &'static str, body: &Value) -> Self {
        Self {
            operation,
            body: Bytes::from(body.to_string()),
        }
    }
}

/// Creates a key of `create`'s shape and returns its id.
async fn create_key(target: &Target, create: &Value) -> Result<String, String> {
    let created = call_once(target, "CreateKey", create).await?;
    created
        .pointer("/KeyMetadata/KeyId")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "CreateKey returned no KeyId".to_string())
}

async fn single_request(target: &Target, args: &BenchArgs) -> Result<LoadRequest, String> {
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
        None => create_key(target, &create).await?,
    };
    let plaintext = STANDARD.encode(vec![0x42u8; args.plaintext_bytes]);
    Ok(match args.operation.as_str() {
        "encrypt" => LoadRequest::new("Encrypt", &json!({"KeyId": key_id, "Plaintext": plaintext})),
        "generate-data-key" => LoadRequest::new(
            "GenerateDataKey",
            &json!({"KeyId": key_id, "KeySpec": "AES_256"}),
        ),
        "decrypt" => {
            let enc = call_once(
                target,
                "Encrypt",
                &json!({"KeyId": key_id, "Plaintext": plaintext}),
            )
            .await?;
            LoadRequest::new(
                "Decrypt",
                &json!({"CiphertextBlob": enc.get("CiphertextBlob")}),
            )
        }
        "sign" => {
            let described = call_once(target, "DescribeKey", &json!({"KeyId": key_id})).await?;
            let algorithm = described
                .pointer("/KeyMetadata/SigningAlgorithms/0")
                .and_then(Value::as_str)
                .ok_or("the key has no signing algorithm (use a SIGN_VERIFY key)")?
                .to_string();
            LoadRequest::new(
                "Sign",
                &json!({"KeyId": key_id, "Message": plaintext, "SigningAlgorithm": algorithm}),
            )
        }
        "generate-mac" => LoadRequest::new(
            "GenerateMac",
            &json!({"KeyId": key_id, "Message": plaintext, "MacAlgorithm": "HMAC_SHA_256"}),
        ),
        other => {
            return Err(format!(
                "unknown operation `{other}` (encrypt, decrypt, generate-data-key, sign, generate-mac, mixed)"
            ));
        }
    })
}

/// The mixed workload: data-plane calls on a symmetric key (one of them by alias), a
/// management read, an HMAC and an ECDSA key.
async fn mixed_requests(target: &Target, args: &BenchArgs) -> Result<Vec<LoadRequest>, String> {
    let symmetric = match &args.key_id {
        Some(k) => k.clone(),
        None => create_key(target, &json!({"Description": "trent bench"})).await?,
    };
    let other = create_key(target, &json!({"Description": "trent bench"})).await?;
    let alias = format!("alias/trent-bench-{}", now_unix());
    call_once(
        target,
        "CreateAlias",
        &json!({"AliasName": alias, "TargetKeyId": symmetric}),
    )
    .await?;
    let mac = create_key(
        target,
        &json!({"Description": "trent bench", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await?;
    let signing = create_key(
        target,
        &json!({"Description": "trent bench", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await?;
    let plaintext = STANDARD.encode(vec![0x42u8; args.plaintext_bytes]);
    let context = json!({"purpose": "soak"});
    let enc = call_once(
        target,
        "Encrypt",
        &json!({"KeyId": symmetric, "Plaintext": plaintext, "EncryptionContext": context}),
    )
    .await?;
    let blob = enc.get("CiphertextBlob").cloned().unwrap_or(Value::Null);
    Ok(vec![
        LoadRequest::new(
            "Encrypt",
            &json!({"KeyId": alias, "Plaintext": plaintext, "EncryptionContext": context}),
        ),
        LoadRequest::new(
            "Decrypt",
            &json!({"CiphertextBlob": blob, "EncryptionContext": context}),
        ),
        LoadRequest::new(
            "GenerateDataKey",
            &json!({"KeyId": symmetric, "KeySpec": "AES_256", "EncryptionContext": context}),
        ),
        LoadRequest::new(
            "GenerateDataKeyWithoutPlaintext",
            &json!({"KeyId": symmetric, "NumberOfBytes": 32}),
        ),
        LoadRequest::new(
            "ReEncrypt",
            &json!({"CiphertextBlob": blob, "SourceEncryptionContext": context,
                    "DestinationKeyId": other, "DestinationEncryptionContext": context}),
        ),
        LoadRequest::new("DescribeKey", &json!({"KeyId": symmetric})),
        LoadRequest::new(
            "GenerateMac",
            &json!({"KeyId": mac, "Message": plaintext, "MacAlgorithm": "HMAC_SHA_256"}),
        ),
        LoadRequest::new(
            "Sign",
            &json!({"KeyId": signing, "Message": plaintext, "SigningAlgorithm": "ECDSA_SHA_256"}),
        ),
    ])
}

/// Starts `trent bare-http` on a free loopback port, loads it like Trent, and stops it.
async fn load_baseline(
    trent: &Target,
    args: &BenchArgs,
    requests: Arc<[LoadRequest]>,
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
    let report = load(Arc::new(target), requests, args).await;
    let _ = child.kill().await;
    report
}

/// Runs `connections` closed-loop workers for `duration` seconds against `target`; with an
/// interval, prints each interval's figures as it ends.
async fn load(
    target: Arc<Target>,
    requests: Arc<[LoadRequest]>,
    args: &BenchArgs,
) -> Result<Report, String> {
    let (connections, duration) = (args.connections, args.duration);
    let interval = if args.interval == 0 {
        duration.max(1)
    } else {
        args.interval
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(duration);
    let intervals = usize::try_from(duration.div_ceil(interval).max(1)).unwrap_or(1);
    let histograms: Arc<[Histogram]> = (0..intervals).map(|_| Histogram::default()).collect();
    let mut workers = Vec::with_capacity(connections);
    for n in 0..connections {
        let (target, requests, histograms) = (target.clone(), requests.clone(), histograms.clone());
        workers.push(tokio::spawn(async move {
            worker(
                &target,
                &requests,
                n,
                started,
                interval,
                deadline,
                &histograms,
            )
            .await
        }));
    }
    let reporter = (args.interval > 0).then(|| {
        let histograms = histograms.clone();
        tokio::spawn(async move {
            println!("interval_s  requests  errors     req/s  p50_ms  p99_ms  max_ms");
            for (i, h) in histograms.iter().enumerate() {
                let end = started + Duration::from_secs(interval * (i as u64 + 1));
                tokio::time::sleep_until(end.min(deadline).into()).await;
                // In-flight requests of the interval finish within a few milliseconds.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let seconds = (interval * (i as u64 + 1)).min(duration);
                let span = seconds - interval * i as u64;
                println!("{}", h.row(seconds, span));
            }
        })
    });
    for w in workers {
        w.await.map_err(|e| e.to_string())??;
    }
    if let Some(r) = reporter {
        let _ = r.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = Histogram::default();
    for h in histograms.iter() {
        total.add(h);
    }
    let (count, errors) = (total.count(), total.errors.load(Relaxed));
    #[expect(
        clippy::cast_precision_loss,
        reason = "request counts are far below 2^53"
    )]
    let rate = count as f64 / elapsed;
    let line = format!(
        "operation={} connections={connections} duration={elapsed:.1}s requests={count} errors={errors} rate={rate:.0} req/s latency_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        match &*requests {
            [one] => one.operation,
            _ => "mixed",
        },
        total.percentile(0.5),
        total.percentile(0.9),
        total.percentile(0.99),
        f64::from(total.max_us.load(Relaxed)) / 1000.0,
    );
    Ok(Report {
        requests: usize::try_from(count).unwrap_or(usize::MAX),
        errors,
        rate,
        line,
    })
}

/// Latencies of one interval: 10 µs buckets up to 100 ms (one overflow bucket above), shared
/// by all workers (relaxed atomic counts: a few per request, no lock, no growing memory over a
/// long run).
struct Histogram {
    buckets: Box<[AtomicU64]>,
    errors: AtomicU64,
    max_us: AtomicU32,
}

const BUCKET_US: u32 = 10;
const BUCKETS: usize = 10_001;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            errors: AtomicU64::new(0),
            max_us: AtomicU32::new(0),
        }
    }
}

impl Histogram {
    fn record(&self, latency_us: u32, ok: bool) {
        let i = usize::try_from(latency_us / BUCKET_US).map_or(BUCKETS - 1, |i| i.min(BUCKETS - 1));
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Relaxed);
        }
        self.max_us.fetch_max(latency_us, Relaxed);
        if !ok {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    fn add(&self, other: &Histogram) {
        for (a, b) in self.buckets.iter().zip(other.buckets.iter()) {
            a.fetch_add(b.load(Relaxed), Relaxed);
        }
        self.errors.fetch_add(other.errors.load(Relaxed), Relaxed);
        self.max_us.fetch_max(other.max_us.load(Relaxed), Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// The latency (ms) at fraction `p` of the requests: the upper edge of its bucket.
    fn percentile(&self, p: f64) -> f64 {
        let count = self.count();
        if count == 0 {
            return 0.0;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank among the recorded requests"
        )]
        let rank = ((count as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Relaxed);
            if seen >= rank {
                #[expect(clippy::cast_precision_loss, reason = "bucket indices are below 2^53")]
                return ((i + 1) as f64 * f64::from(BUCKET_US)) / 1000.0;
            }
        }
        f64::from(self.max_us.load(Relaxed)) / 1000.0
    }

    /// One line of the interval table: the interval ended at `seconds`, lasted `span`.
    fn row(&self, seconds: u64, span: u64) -> String {
        let count = self.count();
        #[expect(
            clippy::cast_precision_loss,
            reason = "request counts are far below 2^53"
        )]
        let rate = count as f64 / span.max(1) as f64;
        format!(
            "{seconds:>10}  {count:>8}  {:>6}  {rate:>8.0}  {:>6.2}  {:>6.2}  {:>6.2}",
            self.errors.load(Relaxed),
            self.percentile(0.5),
            self.percentile(0.99),
            f64::from(self.max_us.load(Relaxed)) / 1000.0,
        )
    }
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
    requests: &[LoadRequest],
    first: usize,
    started: Instant,
    interval: u64,
    deadline: Instant,
    histograms: &[Histogram],
) -> Result<(), String> {
    let mut sender = connect(t).await?;
    // A signature is re-made every second (its X-Amz-Date changes), not per request: the server
    // verifies every request in full either way, and the load tool shares the server's CPUs.
    let mut signed: Vec<Option<(i64, hyper::Request<Full<Bytes>>)>> =
        requests.iter().map(|_| None).collect();
    // Workers start at different points of a mixed list, so every operation is always in flight.
    let mut next = first;
    while Instant::now() < deadline {
        let index = next % requests.len();
        next = next.wrapping_add(1);
        let (Some(request), Some(slot)) = (requests.get(index), signed.get_mut(index)) else {
            return Err("no request to send".into());
        };
        let second = now_unix();
        let template = match slot {
            Some((at, req)) if *at == second => req,
            _ => {
                &slot
                    .insert((
                        second,
                        signed_request(t, request.operation, request.body.clone())?,
                    ))
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
        let latency_us = u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX);
        let slot = usize::try_from(start.duration_since(started).as_secs() / interval.max(1))
            .unwrap_or(usize::MAX)
            .min(histograms.len().saturating_sub(1));
        if let Some(h) = histograms.get(slot) {
            h.record(latency_us, ok);
        }
    }
    Ok(())
}
