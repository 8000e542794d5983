//! Reading request bodies with bounded memory and time.
//!
//! Every body is read into memory (KMS requests are small), so what an unauthenticated client
//! can make the server hold is bounded three ways: one body is at most [`MAX_BODY_BYTES`]; all
//! bodies being read or handled at once share one budget, reserved from the declared
//! `Content-Length` (or the maximum, for a chunked body) before the first byte is read; and a
//! body must arrive within a time limit. The headers are checked first (`auth::check_headers`),
//! so only a request from a known access key inside its replay window gets this far.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request body accepted. KMS payloads are at most a few tens of KiB (a 32 KiB policy,
/// a 6 KiB ciphertext, base64-encoded); anything larger is refused before parsing.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The budget is counted in units of this many bytes (a semaphore permit each).
const UNIT_BYTES: usize = 1024;

/// Limits on request bodies, configurable (`[limits]` in `trent.toml`).
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// Bytes of request bodies held at once, across all connections.
    pub budget_bytes: usize,
    /// Time allowed for a whole body to arrive once the headers have.
    pub read_timeout: Duration,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            budget_bytes: 64 * 1024 * 1024,
            read_timeout: Duration::from_secs(10),
        }
    }
}

/// The shared budget and the time limit.
pub struct BodyReader {
    budget: Arc<Semaphore>,
    budget_units: usize,
    read_timeout: Duration,
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRefusal {
    TooLarge,
    /// The budget is spent: the server is holding as many bodies as it may.
    Busy,
    TimedOut,
    /// The client went away or sent a malformed body.
    Broken,
}

/// A body read into memory, with its share of the budget (returned when this is dropped).
pub struct ReadBody {
    pub bytes: Bytes,
    _reservation: OwnedSemaphorePermit,
}

impl BodyReader {
    pub fn new(limits: &BodyLimits) -> Self {
        let budget_units = (limits.budget_bytes / UNIT_BYTES).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            budget: Arc::new(Semaphore::new(budget_units)),
            budget_units,
            read_timeout: limits.read_timeout,
        }
    }

    /// Bytes of the budget in use now (a metric).
    pub fn bytes_in_use(&self) -> usize {
        self.budget_units
            .saturating_sub(self.budget.available_permits())
            .saturating_mul(UNIT_BYTES)
    }

    /// Reads `body`, reserving its declared length first; refuses a declared length over the
    /// maximum without reading a byte.
    pub async fn read(&self, headers: &HeaderMap, body: Body) -> Result<ReadBody, BodyRefusal> {
        let declared = match headers.get(http::header::CONTENT_LENGTH) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(BodyRefusal::Broken)?,
            None => MAX_BODY_BYTES as u64,
        };
        if declared > MAX_BODY_BYTES as u64 {
            return Err(BodyRefusal::TooLarge);
        }
        let units = usize::try_from(declared)
            .unwrap_or(MAX_BODY_BYTES)
            .div_ceil(UNIT_BYTES)
            .max(1);
        let reservation = self
            .budget
            .clone()
            .try_acquire_many_owned(u32::try_from(units).unwrap_or(u32::MAX))
            .map_err(|_| BodyRefusal::Busy)?;
        // The declared length is what was reserved: a body may not be longer than it said.
        let limit = usize::try_from(declared).unwrap_or(MAX_BODY_BYTES);
        let bytes = match tokio::time::timeout(self.read_timeout, axum::body::to_bytes(body, limit))
            .await
        {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(_)) => return Err(BodyRefusal::Broken),
            Err(_) => return Err(BodyRefusal::TimedOut),
        };
        Ok(ReadBody {
            bytes,
            _reservation: reservation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_length: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = content_length {
            h.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn a_declared_length_over_the_maximum_is_refused_unread() {
        let reader = BodyReader::new(&BodyLimits::default());
        let result = reader.read(&headers(Some("262145")), Body::from("x")).await;
        assert_eq!(result.err(), Some(BodyRefusal::TooLarge));
        assert_eq!(reader.bytes_in_use(), 0);
    }

    #[tokio::test]
    async fn bodies_share_one_budget_and_return_it_when_dropped() {
        let reader = BodyReader::new(&BodyLimits {
            budget_bytes: 8 * 1024,
            read_timeout: Duration::from_secs(5),
        });
        let first = reader
            .read(&headers(Some("5000")), Body::from(vec![b'a'; 5000]))
            .await
            .unwrap();
        assert_eq!(first.bytes.len(), 5000);
        assert_eq!(reader.bytes_in_use(), 5 * 1024);
        // 5 KiB of 8 are held: a second 5000-byte body does not fit, a 3000-byte one does.
        let refused = reader
            .read(&headers(Some("5000")), Body::from(vec![b'b'; 5000]))
            .await;
        assert_eq!(refused.err(), Some(BodyRefusal::Busy));
        let small = reader
            .read(&headers(Some("3000")), Body::from(vec![b'c'; 3000]))
            .await
            .unwrap();
        drop(first);
        drop(small);
        assert_eq!(reader.bytes_in_use(), 0);
    }

    #[tokio::test]
    async fn a_chunked_body_reserves_the_maximum() {
        let reader = BodyReader::new(&BodyLimits {
            budget_bytes: MAX_BODY_BYTES - 1024,
            read_timeout: Duration::from_secs(5),
        });
        let result = reader.read(&headers(None), Body::from("{}")).await;
        assert_eq!(result.err(), Some(BodyRefusal::Busy));
    }

    #[tokio::test]
    async fn a_body_longer_than_declared_is_refused() {
        let reader = BodyReader::new(&BodyLimits::default());
        let result = reader
            .read(&headers(Some("10")), Body::from(vec![b'a'; 100]))
            .await;
        assert_eq!(result.err(), Some(BodyRefusal::Broken));
        assert_eq!(reader.bytes_in_use(), 0);
    }

    #[tokio::test]
    async fn a_body_that_stalls_times_out() {
        let reader = BodyReader::new(&BodyLimits {
            budget_bytes: 1024 * 1024,
            read_timeout: Duration::from_millis(100),
        });
        let result = reader.read(&headers(Some("10")), Body::new(Stalled)).await;
        assert_eq!(result.err(), Some(BodyRefusal::TimedOut));
        assert_eq!(reader.bytes_in_use(), 0);
    }

    /// A body whose client never sends a byte.
    struct Stalled;

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            std::task::Poll::Pending
        }
    }
}
