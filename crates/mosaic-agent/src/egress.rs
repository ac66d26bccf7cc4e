//! Egress: every HTTP request the gateway makes to the outside goes through a client
//! built here, by [`client`]. Provider and embedding calls, `http_fetch`, the trace
//! exporter use it today; the MCP-over-HTTP, skills-from-git, OIDC discovery and peer
//! clients to come must use it too, so that one policy decides what the gateway reaches.
//!
//! Why one builder. Anything that fetches a URL on a user's or a model's behalf must not
//! become a way into the gateway's own network (loopback services, the cloud metadata
//! endpoint at 169.254.169.254, the LAN). Checking the URL is not enough: a host name
//! can resolve to anything, and an IP literal (`http://127.0.0.1`, `http://[::1]`,
//! `http://2130706433`) never reaches a resolver at all. So a guarded client checks the
//! peer address of **every connection it establishes**, whatever the URL looked like
//! and however it got there, and drops the connection before a single request byte is
//! written when the [`AddressPolicy`] refuses it ([`RefusedAddress`]); over TLS the
//! check comes after the handshake, where reqwest hands the connection over. Its
//! resolver ([`PolicyResolver`]) also drops internal addresses of host names before
//! connecting, which keeps the other addresses of a name usable and gives a clearer
//! error.
//!
//! The clients follow no redirects: a provider that answers 3xx gets a clear error, and
//! a caller that must follow them (`http_fetch`) does so by hand, checking each hop.
//! Guarded clients use no proxy from the environment, because a proxy connects to the
//! target itself, out of sight of the address check.

mod addresses;

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connection, HttpInfo};

pub use addresses::{
    embedded_ipv4, internal_kind, is_internal, AddressPolicy, InternalHost, Network, NetworkError,
    PolicyResolver, Shown,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long establishing a connection may take, unless a client asks otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a client may reach, and how its refusals read.
#[derive(Debug, Clone)]
pub struct Egress {
    /// The addresses it may connect to; `None` for clients of services an admin
    /// configured (the gateway's own providers, the embedder, the trace exporter), which
    /// may be anywhere, loopback included.
    pub policy: Option<AddressPolicy>,
    /// Who connects, as refusals name it: "users' providers", "http_fetch".
    pub purpose: &'static str,
    /// The setting that lets it reach internal addresses, as refusals name it.
    pub setting: &'static str,
    pub connect_timeout: Duration,
    /// A deadline for each whole request; `None` for streams, which have their own.
    pub timeout: Option<Duration>,
}

impl Egress {
    /// A client of services an admin configured: any address, no redirects.
    pub fn trusted(purpose: &'static str) -> Egress {
        Egress {
            policy: None,
            purpose,
            setting: "",
            connect_timeout: CONNECT_TIMEOUT,
            timeout: None,
        }
    }

    /// A client held to `policy`; `setting` is what an admin changes to widen it.
    pub fn guarded(purpose: &'static str, policy: AddressPolicy, setting: &'static str) -> Egress {
        Egress {
            policy: Some(policy),
            purpose,
            setting,
            ..Egress::trusted(purpose)
        }
    }

    pub fn with_timeouts(mut self, connect: Duration, whole: Option<Duration>) -> Egress {
        self.connect_timeout = connect;
        self.timeout = whole;
        self
    }
}

/// A connection refused because of the address it reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is {} {kind} address; {purpose} may not reach it unless the gateway sets {setting}", Shown(*addr), article(kind))]
pub struct RefusedAddress {
    pub addr: IpAddr,
    pub kind: &'static str,
    pub purpose: &'static str,
    pub setting: &'static str,
}

fn article(kind: &str) -> &'static str {
    match kind.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u' | 'I') => "an",
        _ => "a",
    }
}

/// The one way to build an outbound HTTP client. Never follows redirects; a guarded one
/// checks every connection's peer address and ignores proxy settings.
pub fn client(egress: Egress) -> Result<reqwest::Client, reqwest::Error> {
    builder(egress).build()
}

fn builder(egress: Egress) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(egress.connect_timeout)
        .user_agent(concat!("mosaic/", env!("CARGO_PKG_VERSION")));
    if let Some(timeout) = egress.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(policy) = egress.policy {
        let guard = Arc::new(Guard {
            policy,
            purpose: egress.purpose,
            setting: egress.setting,
        });
        builder = builder
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver::new(guard.policy.clone())))
            // Over TLS the handshake is done by the time the peer is checked; a refused
            // connection still never carries a request.
            .connector_layer(PeerCheckLayer(guard));
    }
    builder
}

/// The first error of type `E` in `e`'s chain of causes: how a caller tells a guarded
/// client's refusal ([`RefusedAddress`], [`InternalHost`]) from other failures.
pub fn find_cause<'e, E: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e E> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        source = err.source();
    }
    None
}

#[derive(Debug)]
struct Guard {
    policy: AddressPolicy,
    purpose: &'static str,
    setting: &'static str,
}

impl Guard {
    fn check(&self, addr: IpAddr) -> Result<(), RefusedAddress> {
        match self.policy.refuses(addr) {
            None => Ok(()),
            Some(kind) => Err(RefusedAddress {
                addr,
                kind,
                purpose: self.purpose,
                setting: self.setting,
            }),
        }
    }
}

/// Wraps reqwest's connector: each connection it establishes (plain or TLS) is let
/// through only when its peer address passes the guard.
#[derive(Debug, Clone)]
struct PeerCheckLayer(Arc<Guard>);

impl<S> tower::Layer<S> for PeerCheckLayer {
    type Service = PeerCheck<S>;

    fn layer(&self, inner: S) -> PeerCheck<S> {
        PeerCheck {
            inner,
            guard: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
struct PeerCheck<S> {
    inner: S,
    guard: Arc<Guard>,
}

/// No peer address to check: refused rather than trusted.
#[derive(Debug, thiserror::Error)]
#[error("the connection does not tell which address it reached, so it is refused")]
struct UnknownPeer;

impl<S, R> tower::Service<R> for PeerCheck<S>
where
    S: tower::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let guard = self.guard.clone();
        let connecting = self.inner.call(request);
        Box::pin(async move {
            let conn = connecting.await.map_err(Into::into)?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            let peer = extras
                .get::<HttpInfo>()
                .map(|info| info.remote_addr().ip())
                .ok_or(UnknownPeer)?;
            // Dropping `conn` here closes it: nothing was written to it.
            guard.check(peer)?;
            Ok(conn)
        })
    }
}

#[cfg(test)]
mod tests;
