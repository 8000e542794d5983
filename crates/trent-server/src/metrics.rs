//! What the server counts, and the Prometheus text it serves at `/metrics`.
//!
//! Counting happens once per request in [`Metrics::record`], from what the dispatcher learned
//! ([`Observed`], returned beside the response) and the error code error responses carry in
//! their extensions ([`ErrorCode`], so success allocates nothing for it). The KMS operations have fixed
//! slots (an array indexed by operation, lock-free); IAM/STS actions and error codes, rarer,
//! are kept in small maps behind a mutex, bounded so request data cannot grow them forever.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use trent_core::Principal;

use crate::kms::Operation;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Distinct IAM/STS action names or (operation, code) pairs kept; past it, "other".
const MAX_NAMES: usize = 256;

/// What a request was and who made it, as the dispatcher learned it.
#[derive(Clone)]
pub struct Observed {
    pub service: &'static str,
    pub operation: OperationName,
    pub principal: Option<Arc<Principal>>,
    /// The key the request was about, when the domain resolved one.
    pub key_arn: Option<Arc<str>>,
    /// Why the request was allowed or denied (`trent_core::explain`), rendered only when the
    /// request log is on.
    pub decision: Option<String>,
}

/// The operation a request named.
#[derive(Clone)]
pub enum OperationName {
    Kms(Operation),
    Query(Box<str>),
    /// Not known: the request failed before its operation was read.
    Unknown,
}

impl OperationName {
    pub fn as_str(&self) -> &str {
        match self {
            OperationName::Kms(op) => op.as_str(),
            OperationName::Query(action) => action,
            OperationName::Unknown => "",
        }
    }
}

/// Left in an error response's extensions: its `__type` (or Query `Code`).
#[derive(Clone)]
pub struct ErrorCode(pub Box<str>);

/// Left beside [`ErrorCode`]: the error's message, for the audit trail's `errorMessage`.
#[derive(Clone)]
pub struct ErrorMessage(pub Box<str>);

/// One operation's counters.
struct Series {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Requests at or under each bound of [`BUCKETS`] (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS.len()],
    micros: AtomicU64,
}

impl Series {
    fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            micros: AtomicU64::new(0),
        }
    }

    fn record(&self, latency: Duration, error: bool) {
        self.requests.fetch_add(1, Relaxed);
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
        let seconds = latency.as_secs_f64();
        if let Some(slot) = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .and_then(|i| self.buckets.get(i))
        {
            slot.fetch_add(1, Relaxed);
        }
        self.micros.fetch_add(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }
}

/// Everything counted since start.
pub struct Metrics {
    kms: Vec<Series>,
    query: Mutex<BTreeMap<Box<str>, Arc<Series>>>,
    unknown: Series,
    errors: Mutex<BTreeMap<ErrorSeries, u64>>,
}

/// Service, operation and error code of a count of error responses.
type ErrorSeries = (&'static str, Box<str>, Box<str>);

impl Default for Metrics {
    fn default() -> Self {
        Self {
            kms: Operation::ALL.iter().map(|_| Series::new()).collect(),
            query: Mutex::default(),
            unknown: Series::new(),
            errors: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Counts one finished request.
    pub fn record(
        &self,
        observed: Option<&Observed>,
        error: Option<&ErrorCode>,
        latency: Duration,
    ) {
        let operation = observed.map(|o| &o.operation);
        match operation {
            Some(OperationName::Kms(op)) => {
                if let Some(series) = self.kms.get(*op as usize) {
                    series.record(latency, error.is_some());
                }
            }
            Some(OperationName::Query(action)) => {
                let series = self.query.lock().ok().map(|mut q| {
                    if let Some(s) = q.get(action) {
                        return s.clone();
                    }
                    let name: Box<str> = if q.len() < MAX_NAMES {
                        action.clone()
                    } else {
                        "other".into()
                    };
                    q.entry(name)
                        .or_insert_with(|| Arc::new(Series::new()))
                        .clone()
                });
                if let Some(series) = series {
                    series.record(latency, error.is_some());
                }
            }
            Some(OperationName::Unknown) | None => self.unknown.record(latency, error.is_some()),
        }
        if let Some(ErrorCode(code)) = error
            && let Ok(mut errors) = self.errors.lock()
        {
            let service = observed.map_or("", |o| o.service);
            let op: Box<str> = operation.map_or("", OperationName::as_str).into();
            let key = (service, op, code.clone());
            if errors.len() < MAX_NAMES || errors.contains_key(&key) {
                *errors.entry(key).or_insert(0) += 1;
            } else {
                *errors
                    .entry((service, "other".into(), "other".into()))
                    .or_insert(0) += 1;
            }
        }
    }

    /// The Prometheus text exposition of these counters and of `gauges`.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("# HELP trent_requests_total Requests answered, by service and operation.\n");
        out.push_str("# TYPE trent_requests_total counter\n");
        let query = self.query.lock().map(|q| q.clone()).unwrap_or_default();
        let series: Vec<(&str, &str, &Series)> = Operation::ALL
            .iter()
            .zip(&self.kms)
            .map(|(op, s)| ("kms", op.as_str(), s))
            .chain(query.iter().map(|(a, s)| ("iam_sts", &**a, &**s)))
            .chain(std::iter::once(("", "", &self.unknown)))
            .filter(|(_, _, s)| s.requests.load(Relaxed) > 0)
            .collect();
        for (service, op, s) in &series {
            let op = label(op);
            let _ = writeln!(
                out,
                "trent_requests_total{{service=\"{service}\",operation=\"{op}\"}} {}",
                s.requests.load(Relaxed)
            );
        }
        out.push_str(
            "# HELP trent_request_errors_total Error responses, by operation and error code.\n",
        );
        out.push_str("# TYPE trent_request_errors_total counter\n");
        if let Ok(errors) = self.errors.lock() {
            for ((service, op, code), n) in errors.iter() {
                let _ = writeln!(
                    out,
                    "trent_request_errors_total{{service=\"{service}\",operation=\"{}\",code=\"{}\"}} {n}",
                    label(op),
                    label(code)
                );
            }
        }
        out.push_str(
            "# HELP trent_request_duration_seconds Time from headers received to response.\n",
        );
        out.push_str("# TYPE trent_request_duration_seconds histogram\n");
        for (service, op, s) in &series {
            let op = label(op);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += n.load(Relaxed);
                let _ = writeln!(
                    out,
                    "trent_request_duration_seconds_bucket{{service=\"{service}\",operation=\"{op}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = s.requests.load(Relaxed);
            let _ = writeln!(
                out,
                "trent_request_duration_seconds_bucket{{service=\"{service}\",operation=\"{op}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "trent_request_duration_seconds_sum{{service=\"{service}\",operation=\"{op}\"}} {}",
                s.micros.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "trent_request_duration_seconds_count{{service=\"{service}\",operation=\"{op}\"}} {count}"
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

/// A label value with Prometheus's escapes (request data may reach an error code's label).
fn label(value: &str) -> String {
    value
        .chars()
        .flat_map(|c| match c {
            '\\' => vec!['\\', '\\'],
            '"' => vec!['\\', '"'],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms(op: Operation) -> Observed {
        Observed {
            service: "kms",
            operation: OperationName::Kms(op),
            principal: None,
            key_arn: None,
            decision: None,
        }
    }

    #[test]
    fn requests_errors_and_latency_are_rendered_per_operation() {
        let m = Metrics::default();
        m.record(
            Some(&kms(Operation::Encrypt)),
            None,
            Duration::from_micros(700),
        );
        m.record(
            Some(&kms(Operation::Encrypt)),
            None,
            Duration::from_millis(30),
        );
        m.record(
            Some(&kms(Operation::Decrypt)),
            Some(&ErrorCode("InvalidCiphertextException".into())),
            Duration::from_millis(2),
        );
        let text = m.render(&[("trent_connections_open", "Open connections.", 3.0)]);
        assert!(text.contains("trent_requests_total{service=\"kms\",operation=\"Encrypt\"} 2\n"));
        assert!(text.contains("trent_requests_total{service=\"kms\",operation=\"Decrypt\"} 1\n"));
        assert!(
            !text.contains("operation=\"Sign\""),
            "unused operations are left out"
        );
        assert!(text.contains(
            "trent_request_errors_total{service=\"kms\",operation=\"Decrypt\",code=\"InvalidCiphertextException\"} 1\n"
        ));
        // 0.7 ms is in the 1 ms bucket, 30 ms in the 50 ms one; buckets are cumulative.
        assert!(text.contains("operation=\"Encrypt\",le=\"0.0005\"} 0\n"));
        assert!(text.contains("operation=\"Encrypt\",le=\"0.001\"} 1\n"));
        assert!(text.contains("operation=\"Encrypt\",le=\"0.025\"} 1\n"));
        assert!(text.contains("operation=\"Encrypt\",le=\"0.05\"} 2\n"));
        assert!(text.contains("operation=\"Encrypt\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("trent_connections_open 3\n"));
    }

    #[test]
    fn request_data_cannot_grow_the_maps_without_bound_or_break_the_format() {
        let m = Metrics::default();
        for i in 0..(MAX_NAMES * 2) {
            let observed = Observed {
                service: "iam_sts",
                operation: OperationName::Query(format!("Action\"{i}\n").into()),
                principal: None,
                key_arn: None,
                decision: None,
            };
            m.record(
                Some(&observed),
                Some(&ErrorCode(format!("Code{i}").into())),
                Duration::from_millis(1),
            );
        }
        assert!(m.query.lock().unwrap().len() <= MAX_NAMES + 1);
        assert!(m.errors.lock().unwrap().len() <= MAX_NAMES + 1);
        let text = m.render(&[]);
        assert!(text.contains("operation=\"other\""));
        assert!(
            text.contains("Action\\\"0\\n"),
            "quotes and newlines are escaped"
        );
    }
}
