//! The HTTP listener: accepts connections and serves the application on each, with the
//! limits that keep slow or hostile clients from taking the gateway offline.
//!
//! axum's own `serve` has no header timeout and no connection limit, so a thousand
//! idle sockets exhaust the open-file limit and every later client (health checks
//! included) waits. Here every connection holds a permit of a fixed budget below that
//! limit; past it a client gets a 503 at once and is closed. hyper closes a connection
//! that does not send complete headers within `header_timeout`, counted from when the
//! connection is ready for a request, which also ends idle keep-alive connections.
//! Body deadlines and early 413s are request middleware (`limits.rs`). A stop asks
//! every connection to finish its request in flight and close; long streams end
//! themselves when the gateway stops (see `Server::stop`).
//!
//! The server owns a list of listeners ([`ListenerSpec`]: an address, a transport, a
//! connection budget and the application it serves), bound before anything else starts
//! and stopped together. The API listener is the first; another (the federation's
//! mutual-TLS listener) is one more entry, with a transport of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::AppState;

/// File descriptors kept free for the database, log files and outbound calls.
const FD_RESERVE: u64 = 256;
/// The most connections served at once when the configuration names no number.
const AUTO_MAX_CONNECTIONS: u64 = 16_384;
/// What a client past the connection limit is told before the socket closes.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 84\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"too many connections; try again shortly\"}}";

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// How a listener's connections are carried: plain TCP (the API listener, which
/// refuses a non-loopback address without TLS in front of it). The federation listener
/// adds mutual TLS as a second variant, decided where each connection is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
}

/// Builds a listener's application once the gateway's state exists.
pub type AppBuilder = Box<dyn FnOnce(&AppState) -> Router + Send>;

/// A listener for the server to start: where, how, within what budget, serving what.
pub struct ListenerSpec {
    /// Names the listener in logs and in [`crate::Server::listener_addr`].
    pub name: &'static str,
    pub addr: SocketAddr,
    pub transport: Transport,
    pub limits: ConnLimits,
    pub app: AppBuilder,
}

/// A listener whose socket is bound, waiting for its application.
pub(crate) struct BoundListener {
    pub name: &'static str,
    pub tcp: TcpListener,
    pub local_addr: SocketAddr,
    pub transport: Transport,
    pub limits: ConnLimits,
    pub app: AppBuilder,
}

impl ListenerSpec {
    /// Bind the socket (with a deep accept queue: a burst of new clients, hundreds of
    /// streams opening at once, must wait in the queue, not be dropped by the kernel and
    /// retry a second later).
    pub(crate) fn bind(self) -> std::io::Result<BoundListener> {
        let socket = match self.addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr)?;
        let tcp = socket.listen(4096)?;
        Ok(BoundListener {
            name: self.name,
            local_addr: tcp.local_addr()?,
            tcp,
            transport: self.transport,
            limits: self.limits,
            app: self.app,
        })
    }
}

/// Raise the soft open-file limit to the hard one (a process may always do so) and
/// return the limit in force.
pub fn raise_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), hard) = (limit.current, limit.maximum) {
        let target = hard.unwrap_or(soft.max(65_536));
        if target > soft {
            limit.current = Some(target);
            match setrlimit(Resource::Nofile, limit) {
                Ok(()) => tracing::debug!(from = soft, to = target, "raised the open-file limit"),
                Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
            }
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The connection budget for a process allowed `file_limit` open files.
pub fn auto_max_connections(file_limit: u64) -> usize {
    let budget = file_limit
        .saturating_sub(FD_RESERVE)
        .clamp(16, AUTO_MAX_CONNECTIONS);
    usize::try_from(budget).unwrap_or(usize::MAX)
}

/// Serve `app` on `listener` until `stop` is cancelled, then ask every connection to
/// close after its request in flight and wait for them (the caller bounds the wait).
pub(crate) async fn serve(
    listener: TcpListener,
    transport: Transport,
    app: Router,
    limits: ConnLimits,
    stop: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut last_accept_error: Option<tokio::time::Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or the peer gave up before accept: go on,
                    // logging at most once a second.
                    if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "accepting a connection failed");
                        last_accept_error = Some(tokio::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            connections.spawn(refuse(tcp));
            continue;
        };
        // Small SSE writes go out at once rather than waiting to be batched.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            match transport {
                Transport::Plain => serve_connection(tcp, peer, app, limits, stop).await,
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Past the limit: say so and close, never waiting on the client for long.
async fn refuse(mut tcp: tokio::net::TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(BUSY).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnLimits,
    stop: CancellationToken,
) {
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_end(result),
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

fn log_end(result: hyper::Result<()>) {
    if let Err(e) = result {
        // Timeouts and clients that go away are routine; keep them out of the way.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_budget_leaves_room_below_the_file_limit() {
        assert_eq!(auto_max_connections(1024), 768);
        assert_eq!(auto_max_connections(20_000), 16_384);
        assert_eq!(auto_max_connections(100), 16);
    }

    #[test]
    fn the_busy_answer_says_how_long_its_body_is() {
        let text = std::str::from_utf8(BUSY).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(
            serde_json::from_str::<serde_json::Value>(body).is_ok(),
            "{body}"
        );
    }
}
