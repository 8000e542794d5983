//! The whole in-process request path, without sockets: signed request bytes in, response bytes
//! out, through the same axum router `trent serve` runs (SigV4 verification, awsJson1.1 parsing,
//! the domain's authorization and the cryptography), with a real SQLite store behind it.
//!
//! Besides criterion's timings it prints how many heap allocations one request makes
//! (`allocations/request`), counted by an instrumented global allocator over a batch of requests
//! built beforehand (building the request, which hyper does in a real server, is not counted).
//!
//! Every case runs twice: with the audit trail off, and on (`audit_*`: the default settings,
//! `durability = "write"`, its writer a task on the same runtime), so the audit path's
//! allocations and time are the difference of the two.
//!
//! One request at a time makes every audited request a batch of its own. The `concurrent`
//! group runs Encrypt as the server meets it under load: [`CONNECTIONS`] tasks sending back to
//! back on a runtime of two worker threads (this machine's cores), so audited requests share
//! batches and wake-ups as in `trent serve`. What it reports as time is **the process's CPU time
//! per request** (all threads, from `/proc/self/task/*/schedstat`), not wall time: it moves
//! little when other programs share the cores, and it is what the audit trail's cost is made of.
//!
//! Run: `cargo bench -p trent --bench request_path` (add `-- --quick` for a short run).
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "benchmark set-up on fixed, valid input: a failure should stop the run loudly"
)]

use std::alloc::System;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::ConnectInfo;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::ServiceExt;
use trent_core::{Kms, SystemClock};
use trent_crypto::RootKey;
use trent_server::AppState;
use trent_store_sqlite::SqliteStore;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const HOST: &str = "localhost:4599";
const REGION: &str = "us-east-1";
/// Requests per allocation count (the average is reported).
const COUNTED_REQUESTS: u64 = 2_000;
/// Concurrent requests in flight in the `concurrent` group (as `trent bench --connections 64`).
const CONNECTIONS: usize = 64;

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    account: String,
    audit: Option<Arc<trent_server::audit::Audit>>,
    access_key_id: String,
    secret: String,
    _data: tempfile::TempDir,
}

impl Harness {
    fn new(audit: bool) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self::on(runtime, audit)
    }

    /// A harness whose router (and audit writer) runs on `runtime`.
    fn on(runtime: tokio::runtime::Runtime, audit: bool) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let (router, account, trail, access_key_id, secret) = runtime.block_on(async {
            let store = SqliteStore::open(&data.path().join("trent.db")).expect("store");
            let (root, _) = RootKey::generate().expect("root key");
            // Every request is counted against its quota as in production, but no quota can
            // be reached: AWS's defaults (e.g. 1,000 ECC operations per second) are below what
            // one core does in process, and a throttled answer is not the path measured here.
            let unreachable = trent_core::quotas::QuotaSettings {
                rate_overrides: trent_core::quotas::RateQuota::ALL
                    .iter()
                    .map(|q| (*q, trent_core::quotas::Rate::per_second(1 << 30)))
                    .collect(),
                ..Default::default()
            };
            let kms = Kms::open(Arc::new(store), root, Arc::new(SystemClock::default()))
                .await
                .expect("kms")
                .with_quotas(unreachable);
            let account = kms.create_random_account().await.expect("account");
            let kms = Arc::new(kms);
            let mut app = AppState::new(kms.clone(), false);
            let mut trail = None;
            if audit {
                let settings = trent_audit::AuditSettings::new(data.path().join("audit"));
                let opened = trent_server::audit::Audit::open(settings, kms.clock().now_ms())
                    .expect("audit trail");
                app = app.with_audit(opened.clone());
                trail = Some(opened);
            }
            let app = Arc::new(app);
            (
                trent_server::router(app),
                account.account_id,
                trail,
                account.access_key_id,
                account.secret_access_key.to_string(),
            )
        });
        Self {
            runtime,
            router,
            account,
            audit: trail,
            access_key_id,
            secret,
            _data: data,
        }
    }

    /// A signed KMS request, as a client would send it.
    fn request(&self, operation: &str, body: &[u8]) -> http::Request<Body> {
        let target = format!("TrentService.{operation}");
        let content_type = "application/x-amz-json-1.1";
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
            .unwrap_or(0);
        let auth = trent_sigv4::sign(
            "POST",
            "/",
            "",
            HOST,
            &[("content-type", content_type), ("x-amz-target", &target)],
            body,
            &self.access_key_id,
            &self.secret,
            None,
            REGION,
            "kms",
            now,
        );
        let mut builder = http::Request::post("/")
            .header("host", HOST)
            .header("content-type", content_type)
            .header("x-amz-target", target);
        for (name, value) in auth {
            builder = builder.header(name, value);
        }
        let mut request = builder.body(Body::from(body.to_vec())).expect("request");
        let peer: SocketAddr = ([127, 0, 0, 1], 50_000).into();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    /// Sends one request through the router and returns the status and body bytes.
    fn send(&self, request: http::Request<Body>) -> (http::StatusCode, axum::body::Bytes) {
        self.runtime.block_on(async {
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, body)
        })
    }

    fn call(&self, operation: &str, body: &Value) -> Value {
        let (status, bytes) = self.send(self.request(operation, body.to_string().as_bytes()));
        let value: Value = serde_json::from_slice(&bytes).expect("json response");
        assert!(status.is_success(), "{operation}: {status} {value}");
        value
    }

    fn create_key(&self, body: Value) -> String {
        self.call("CreateKey", &body)
            .pointer("/KeyMetadata/KeyId")
            .and_then(Value::as_str)
            .expect("KeyId")
            .to_string()
    }
}

/// One benchmarked operation: its name and request body.
struct Case {
    name: &'static str,
    operation: &'static str,
    body: Vec<u8>,
}

fn cases(h: &Harness) -> Vec<Case> {
    let symmetric = h.create_key(json!({"Description": "bench"}));
    let p256 = h.create_key(json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}));
    let hmac = h.create_key(json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}));
    let plaintext = STANDARD.encode([0x42u8; 64]);
    let ciphertext = h.call(
        "Encrypt",
        &json!({"KeyId": symmetric, "Plaintext": plaintext}),
    )["CiphertextBlob"]
        .clone();
    let body = |v: Value| v.to_string().into_bytes();
    vec![
        Case {
            name: "encrypt",
            operation: "Encrypt",
            body: body(json!({"KeyId": symmetric, "Plaintext": plaintext})),
        },
        Case {
            name: "decrypt",
            operation: "Decrypt",
            body: body(json!({"CiphertextBlob": ciphertext})),
        },
        Case {
            name: "generate_data_key",
            operation: "GenerateDataKey",
            body: body(json!({"KeyId": symmetric, "KeySpec": "AES_256"})),
        },
        Case {
            name: "sign_p256",
            operation: "Sign",
            body: body(
                json!({"KeyId": p256, "Message": plaintext, "SigningAlgorithm": "ECDSA_SHA_256"}),
            ),
        },
        Case {
            name: "generate_mac",
            operation: "GenerateMac",
            body: body(
                json!({"KeyId": hmac, "Message": plaintext, "MacAlgorithm": "HMAC_SHA_256"}),
            ),
        },
    ]
}

/// Average heap allocations (alloc + realloc) of one request through the router.
fn allocations_per_request(h: &Harness, case: &Case) -> f64 {
    // Warm every cache first (signing key, key, parsed policy).
    let (status, _) = h.send(h.request(case.operation, &case.body));
    assert!(status.is_success(), "{}: {status}", case.name);
    let requests: Vec<_> = (0..COUNTED_REQUESTS)
        .map(|_| h.request(case.operation, &case.body))
        .collect();
    let region = Region::new(GLOBAL);
    for request in requests {
        let (status, _) = h.send(request);
        assert!(status.is_success());
    }
    let change = region.change();
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let per_request = (change.allocations + change.reallocations) as f64 / COUNTED_REQUESTS as f64;
    per_request
}

/// Allocations the harness and axum make for a request whose handler does nothing: the floor
/// under every number above.
fn framework_floor(h: &Harness) -> f64 {
    let router = axum::Router::new().fallback(|| async { "{}" });
    let requests: Vec<_> = (0..COUNTED_REQUESTS)
        .map(|_| h.request("Encrypt", b"{}"))
        .collect();
    let region = Region::new(GLOBAL);
    for request in requests {
        h.runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("infallible");
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body")
        });
    }
    let change = region.change();
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let per_request = (change.allocations + change.reallocations) as f64 / COUNTED_REQUESTS as f64;
    per_request
}

fn request_path(c: &mut Criterion) {
    let plain = Harness::new(false);
    let audited = Harness::new(true);
    println!(
        "axum + harness floor (handler does nothing): allocations/request = {:.1}",
        framework_floor(&plain)
    );
    let mut group = c.benchmark_group("request_path");
    for (prefix, h) in [("", &plain), ("audit_", &audited)] {
        let cases = cases(h);
        for case in &cases {
            let allocations = allocations_per_request(h, case);
            println!(
                "{prefix}{}: allocations/request = {allocations:.1}",
                case.name
            );
        }
        for case in &cases {
            group.bench_function(format!("{prefix}{}", case.name), |b| {
                b.iter_batched(
                    || h.request(case.operation, &case.body),
                    |request| h.send(request),
                    criterion::BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
    audit_parts(c, &audited);
    concurrent(c);
}

/// The CPU time every thread of this process has used so far (`/proc/self/task/*/schedstat`'s
/// first field, nanoseconds on a CPU). Threads that have exited are not counted: the runtime's
/// threads and the audit trail's sync thread live as long as the harness.
fn process_cpu() -> Duration {
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += text
                .split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(total)
}

/// Sends `requests` through the router from `CONNECTIONS` tasks at once (each its share, back
/// to back) and returns the process CPU time it took.
fn run_concurrently(h: &Harness, requests: Vec<http::Request<Body>>) -> Duration {
    let mut shares: Vec<Vec<_>> = (0..CONNECTIONS).map(|_| Vec::new()).collect();
    for (n, request) in requests.into_iter().enumerate() {
        shares[n % CONNECTIONS].push(request);
    }
    let started = process_cpu();
    h.runtime.block_on(async {
        let tasks: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let router = h.router.clone();
                tokio::spawn(async move {
                    for request in share {
                        let response = router.clone().oneshot(request).await.expect("infallible");
                        assert!(response.status().is_success(), "{}", response.status());
                        axum::body::to_bytes(response.into_body(), usize::MAX)
                            .await
                            .expect("body");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("request task");
        }
    });
    process_cpu().saturating_sub(started)
}

/// Event lines and digest lines (one per batch) in the trail's segments under `dir`.
fn trail_lines(dir: &std::path::Path) -> (u64, u64) {
    let (mut events, mut batches) = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read(entry.path()).unwrap_or_default();
        for line in text.split(|&b| b == b'\n') {
            if line.starts_with(b"{\"eventVersion\"") {
                events += 1;
            } else if line.starts_with(b"{\"trentDigest\"") {
                batches += 1;
            }
        }
    }
    (events, batches)
}

/// Encrypt with [`CONNECTIONS`] requests in flight on two worker threads, audit off and on:
/// allocations per request, and the process's CPU time per request (criterion's "time").
fn concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("concurrent");
    for (name, audit) in [("encrypt_cpu", false), ("audit_encrypt_cpu", true)] {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let h = Harness::on(runtime, audit);
        let case = cases(&h).into_iter().next().expect("the encrypt case");
        let warm: Vec<_> = (0..CONNECTIONS * 4)
            .map(|_| h.request(case.operation, &case.body))
            .collect();
        run_concurrently(&h, warm);
        let counted: Vec<_> = (0..COUNTED_REQUESTS * 5)
            .map(|_| h.request(case.operation, &case.body))
            .collect();
        let region = Region::new(GLOBAL);
        let cpu = run_concurrently(&h, counted);
        let change = region.change();
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        let per_request =
            (change.allocations + change.reallocations) as f64 / (COUNTED_REQUESTS * 5) as f64;
        println!(
            "concurrent {name}: allocations/request = {per_request:.1}, CPU/request = {:.2} µs",
            cpu.as_secs_f64() * 1e6 / (COUNTED_REQUESTS * 5) as f64
        );
        if h.audit.is_some() {
            let (events, batches) = trail_lines(&h._data.path().join("audit"));
            println!(
                "concurrent {name}: the trail holds {events} events in {batches} batches so far ({:.1} events/batch)",
                events as f64 / batches.max(1) as f64
            );
        }
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let requests: Vec<_> = (0..iters)
                    .map(|_| h.request(case.operation, &case.body))
                    .collect();
                run_concurrently(&h, requests)
            });
        });
    }
    group.finish();
}

/// The audit path's request-side parts alone, for the Encrypt request: the scan of the body
/// for the logged parameters, and building the whole record line (that scan included).
/// The record has no `resources` here (no key was resolved), so it is a little shorter than
/// a real Encrypt's.
fn audit_parts(c: &mut Criterion, h: &Harness) {
    let Some(audit) = &h.audit else { return };
    let case = cases(h).into_iter().next().expect("the encrypt case");
    let request = h.request(case.operation, &case.body);
    let mut caller = trent_core::Caller::root(&h.account, &h.access_key_id, REGION);
    caller.source_ip = Some([127, 0, 0, 1].into());
    let record_line = || {
        let call = trent_server::audit::Call {
            source: trent_server::audit::Source::Kms,
            event_name: "Encrypt",
            request_id: "5c5ae4a2-52d4-4a6f-8f3a-0e2d2f7f0c11",
            caller: &caller,
            headers: request.headers(),
            parameters: trent_audit::parameters::json_parameters(&case.body),
            error: None,
            response_elements: None,
            tls: None,
            secure: false,
        };
        trent_server::audit::lines(audit, &call, 1_764_000_000_000).expect("record")
    };
    let region = Region::new(GLOBAL);
    let mut bytes = 0;
    for _ in 0..COUNTED_REQUESTS {
        bytes = record_line().lines.len();
    }
    let change = region.change();
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let per_line = (change.allocations + change.reallocations) as f64 / COUNTED_REQUESTS as f64;
    println!("audit record line alone ({bytes} bytes): allocations/record = {per_line:.1}");
    let mut group = c.benchmark_group("audit_parts");
    group.bench_function("encrypt_json_parameters", |b| {
        b.iter(|| trent_audit::parameters::json_parameters(std::hint::black_box(&case.body)));
    });
    group.bench_function("encrypt_record_line", |b| {
        b.iter(record_line);
    });
    group.finish();
}

criterion_group!(benches, request_path);
criterion_main!(benches);
