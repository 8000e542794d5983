//! Accepting connections with bounded cost: a connection limit that evicts idle connections
//! first, header/idle and TLS-handshake timeouts, HTTP/1.1 only unless HTTP/2 is configured,
//! small per-connection buffers, and a graceful shutdown.
//!
//! Why this is ours and not a server crate's default: an unauthenticated client must not be
//! able to hold memory or connection slots for long. Slow or idle clients are cut off by
//! hyper's header-read timeout (which, on an HTTP/1.1 keep-alive connection, also runs while
//! the connection waits for its next request); when every slot is taken, the oldest connection
//! with no request in flight is closed to make room, so a flood of idle or half-sent
//! connections cannot lock legitimate clients out. Request bodies are bounded separately, in
//! `body.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

/// Connection-level limits, all configurable (`[limits]` in `trent.toml`).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections at most; past it the oldest idle connection is closed.
    pub max_connections: usize,
    /// Time allowed for a request's headers to arrive, and for an idle keep-alive connection
    /// to start its next request.
    pub header_timeout: Duration,
    /// Time allowed for a TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Serve HTTP/2 (prior knowledge or ALPN) as well as HTTP/1.1.
    pub http2: bool,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_streams: u32,
    /// Time allowed for in-flight requests to finish at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(20),
            tls_handshake_timeout: Duration::from_secs(10),
            http2: false,
            http2_max_streams: 16,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Largest read buffer per connection. Headers of a signed KMS request, session token
/// included, are a few KiB; hyper's default (~400 KiB) would let each idle client pin that much.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The open connections: what the limit counts and what eviction picks from.
#[derive(Default)]
pub struct Connections {
    next_id: AtomicU64,
    open: std::sync::Mutex<BTreeMap<u64, Arc<ConnectionState>>>,
    /// Connections closed to make room for new ones (a metric).
    pub evicted: AtomicU64,
}

/// One open connection, as the registry sees it.
struct ConnectionState {
    /// Requests being handled now: a connection with none is idle and may be evicted.
    in_flight: AtomicUsize,
    close: Notify,
}

impl Connections {
    /// Open connections now (a metric).
    pub fn count(&self) -> usize {
        self.open.lock().map(|open| open.len()).unwrap_or(0)
    }

    /// Files a new connection. At the limit, the oldest idle connection is told to close (ids
    /// grow, so the map's order is age); when every connection is busy, `None`: refuse this one.
    fn admit(&self, limit: usize) -> Option<(u64, Arc<ConnectionState>)> {
        let mut open = self.open.lock().ok()?;
        if open.len() >= limit {
            let idle = open
                .iter()
                .find(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some(victim) = open.remove(&idle) {
                victim.close.notify_one();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            in_flight: AtomicUsize::new(0),
            close: Notify::new(),
        });
        open.insert(id, state.clone());
        Some((id, state))
    }

    fn forget(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }
}

/// Counts a request in flight on its connection for as long as it lives.
struct InFlight(Arc<ConnectionState>);

impl InFlight {
    fn start(state: &Arc<ConnectionState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts on `listener` until `shutdown` completes, then lets in-flight requests finish for
/// up to `limits.shutdown_grace`.
pub async fn run(
    router: Router,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    connections: Arc<Connections>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(READ_BUFFER_BYTES)
        .max_headers(64);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(READ_BUFFER_BYTES as u32)
        .max_send_buf_size(READ_BUFFER_BYTES * 4)
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
    let builder = if limits.http2 {
        builder
    } else {
        builder.http1_only()
    };
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = tokio_util::task::TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: back off briefly
                // instead of spinning on the error.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some((id, state)) = connections.admit(limits.max_connections) else {
            tracing::warn!(%peer, "connection refused: every connection is busy");
            drop(stream);
            continue;
        };
        let connection = Connection {
            router: router.clone(),
            builder: builder.clone(),
            peer,
            state,
            stop: stop_rx.clone(),
            limits: limits.clone(),
            tls: None,
        };
        let tls = tls.clone();
        let registry = connections.clone();
        tasks.spawn(async move {
            match tls {
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        connection.limits.tls_handshake_timeout,
                        acceptor.accept(stream),
                    );
                    // An eviction during the handshake closes it too.
                    let closed = connection.state.close.notified();
                    tokio::select! {
                        result = handshake => {
                            if let Ok(Ok(tls_stream)) = result {
                                let mut connection = connection;
                                // For the audit trail's tlsDetails.
                                let session = tls_stream.get_ref().1;
                                connection.tls = Some(crate::audit::TlsInfo {
                                    version: crate::audit::tls_version_name(session.protocol_version()),
                                    cipher_suite: crate::audit::cipher_suite_name(session.negotiated_cipher_suite()),
                                });
                                connection.serve(tls_stream).await;
                            }
                        }
                        () = closed => {}
                    }
                }
                None => connection.serve(stream).await,
            }
            registry.forget(id);
        });
    }
    drop(listener);
    tasks.close();
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(limits.shutdown_grace, tasks.wait()).await;
}

/// One accepted connection and what it needs to be served.
struct Connection {
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    peer: SocketAddr,
    state: Arc<ConnectionState>,
    stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
    /// The negotiated TLS parameters, left on every request of the connection.
    tls: Option<crate::audit::TlsInfo>,
}

impl Connection {
    async fn serve<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router;
        let peer = self.peer;
        let tls = self.tls;
        let state = self.state.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<_>| {
            let in_flight = InFlight::start(&state);
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(tls) = tls {
                request.extensions_mut().insert(tls);
            }
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(axum::body::Body::new)).await;
                drop(in_flight);
                response
            }
        });
        let connection = self.builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let closed = self.state.close.notified();
        tokio::pin!(closed);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = &mut closed => return,
            _ = self.stop.wait_for(|stop| *stop) => {}
        }
        // Shutting down: no new requests on this connection; finish the ones in flight.
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(self.limits.shutdown_grace, connection).await;
    }
}
