//! `http_fetch`: GET a public web page and return what it says, as text.
//!
//! A model-driven fetch must not become a way into the gateway's own network, so the
//! address policy is enforced where connections are made: the one client this tool owns
//! is a guarded [`egress`](crate::egress) client, which checks the peer address of every
//! connection. It follows no redirects by itself: every `Location` is checked here like
//! the first URL before it is fetched (IP literals at once, with the redirect that led
//! there in the message), and the connection check stands behind that.
//! The whole fetch runs under one deadline, and the body is streamed and cut at a byte
//! cap, so a slow or endless answer costs at most `timeout` and `max_bytes`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use mosaic_llm::{BoxFuture, ToolSpec};
use reqwest::header::{ACCEPT, CONTENT_ENCODING, CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use serde_json::json;

use super::{Tool, ToolContext, ToolOutput};
use crate::egress::{self, AddressPolicy, Egress, InternalHost, Network, RefusedAddress, Shown};

/// How `http_fetch` may reach out.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Reach loopback, private and link-local addresses too (off by default).
    pub allow_private: bool,
    /// Internal blocks that may be reached anyway (an intranet wiki, a local docs server).
    pub allow: Vec<Network>,
    /// Most bytes of a body read; the rest is cut off (and said so).
    pub max_bytes: usize,
    /// The whole fetch, redirects and body included.
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            allow_private: false,
            allow: Vec::new(),
            max_bytes: 256 * 1024,
            timeout: Duration::from_secs(20),
            max_redirects: 5,
        }
    }
}

pub struct HttpFetch {
    config: FetchConfig,
    policy: AddressPolicy,
    /// Built once; when building fails (no TLS backend), every call says so rather
    /// than falling back to a client without the address policy.
    client: Result<reqwest::Client, String>,
}

const ACCEPTED: &str =
    "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5";

impl HttpFetch {
    pub fn new(config: FetchConfig) -> Self {
        let policy = AddressPolicy {
            allow_private: config.allow_private,
            allow: config.allow.clone(),
        };
        let egress = Egress::guarded(
            "http_fetch",
            policy.clone(),
            "fetch_allow_private or fetch_allow_networks",
        )
        .with_timeouts(config.timeout, Some(config.timeout));
        let client = egress::client(egress).map_err(|e| e.to_string());
        HttpFetch {
            config,
            policy,
            client,
        }
    }

    /// Scheme and IP-literal checks; host names are checked by the resolver on connect.
    fn check(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        let host = url.host_str().ok_or(Refusal::NoHost)?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            if let Some(kind) = self.policy.refuses(ip) {
                return Err(Refusal::Internal { ip, kind });
            }
        }
        Ok(())
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        start: Url,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        let mut url = start;
        let mut from: Option<Url> = None;
        let mut redirects = 0;
        loop {
            let refused = |why| {
                FetchError::Refused(Box::new(Refused {
                    from: from.clone(),
                    to: url.clone(),
                    why,
                }))
            };
            self.check(&url).map_err(refused)?;
            let response = match client
                .get(url.clone())
                .header(ACCEPT, ACCEPTED)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return Err(match refusal(&e) {
                        Some(why) => refused(why),
                        None if e.is_timeout() => FetchError::TimedOut,
                        None => FetchError::Request(url.clone(), chain(&e)),
                    })
                }
            };
            let Some(next) = redirect_target(&url, &response)? else {
                return read(response, url, max_bytes).await;
            };
            if redirects == self.config.max_redirects {
                return Err(FetchError::TooManyRedirects(redirects, next));
            }
            redirects += 1;
            from = Some(std::mem::replace(&mut url, next));
        }
    }
}

impl Tool for HttpFetch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "http_fetch".into(),
            description: "Fetch a public web page or document with HTTP(S) GET and return it as \
                text: JSON with the final url (after redirects), status, content_type, \
                truncated, and body (HTML is turned into readable text). Only public \
                addresses are reachable, and only text content types are returned."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {
                        "type": "string",
                        "description": "The absolute http:// or https:// URL to fetch, e.g. https://example.com/page"
                    },
                    "max_bytes": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": self.config.max_bytes,
                        "description": format!(
                            "Read at most this many bytes of the body (default and most: {})",
                            self.config.max_bytes
                        )
                    }
                },
                "required": ["url"],
                "additionalProperties": false
            }),
        }
    }

    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: serde_json::Value,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let client = match &self.client {
                Ok(c) => c,
                Err(e) => return ToolOutput::error(format!("http_fetch is unavailable: {e}")),
            };
            let Some(raw) = args.get("url").and_then(|u| u.as_str()) else {
                return ToolOutput::error("http_fetch needs a 'url' string argument");
            };
            let url = match Url::parse(raw.trim()) {
                Ok(u) => u,
                Err(e) => {
                    let hint = "give one like https://example.com/page";
                    return ToolOutput::error(format!(
                        "'{raw}' is not an absolute URL ({e}); {hint}"
                    ));
                }
            };
            let max_bytes = args
                .get("max_bytes")
                .and_then(|n| n.as_u64())
                .map_or(self.config.max_bytes, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                })
                .clamp(1, self.config.max_bytes.max(1));
            let timeout = self.config.timeout;
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => {
                    ToolOutput::error("http_fetch stopped: the run was interrupted")
                }
                done = tokio::time::timeout(timeout, self.fetch(client, url.clone(), max_bytes)) => {
                    match done {
                        Ok(Ok(fetched)) => ToolOutput::ok(fetched.to_json()),
                        Ok(Err(FetchError::TimedOut)) => ToolOutput::error(timed_out(&url, timeout)),
                        Ok(Err(e)) => ToolOutput::error(e.to_string()),
                        Err(_) => ToolOutput::error(timed_out(&url, timeout)),
                    }
                }
            }
        })
    }
}

fn timed_out(url: &Url, timeout: Duration) -> String {
    format!(
        "http_fetch gave up on {url}: no complete answer within {}",
        humantime::format_duration(timeout)
    )
}

/// Where a redirect answer points, resolved against the URL that answered.
fn redirect_target(url: &Url, response: &reqwest::Response) -> Result<Option<Url>, FetchError> {
    let status = response.status();
    let followed = [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ];
    if !followed.contains(&status) {
        return Ok(None);
    }
    let Some(location) = response.headers().get(LOCATION) else {
        return Ok(None);
    };
    let bad = || {
        FetchError::BadLocation(
            url.clone(),
            String::from_utf8_lossy(location.as_bytes()).into_owned(),
        )
    };
    let location = location.to_str().map_err(|_| bad())?;
    url.join(location.trim()).map(Some).map_err(|_| bad())
}

/// The guarded client's refusal, if that is why the request failed.
fn refusal(e: &reqwest::Error) -> Option<Refusal> {
    if let Some(host) = egress::find_cause::<InternalHost>(e) {
        return Some(Refusal::Host(host.clone()));
    }
    egress::find_cause::<RefusedAddress>(e).map(|r| Refusal::Peer(r.clone()))
}

/// An error with its causes, which reqwest keeps out of its own message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        let more = err.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = err.source();
    }
    text
}

/// Why a URL may not be fetched.
#[derive(Debug)]
enum Refusal {
    Scheme,
    NoHost,
    Internal {
        ip: IpAddr,
        kind: &'static str,
    },
    Host(InternalHost),
    /// The connection reached an address the policy refuses (a literal the URL check
    /// did not see, or a name that resolved differently at connect time).
    Peer(RefusedAddress),
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("{0}")]
    Refused(Box<Refused>),
    #[error("too many redirects: gave up after {0} (the next one pointed to {1})")]
    TooManyRedirects(usize, Url),
    #[error("{0} answered with a redirect to '{1}', which is not a usable URL")]
    BadLocation(Url, String),
    #[error("could not fetch {0}: {1}")]
    Request(Url, String),
    #[error("could not read the body of {0}: {1}")]
    Body(Url, String),
    #[error("{0} is {1}, which is not text; http_fetch only returns text (HTML, plain text, JSON, XML and the like)")]
    NotText(Url, String),
    /// The client's own timeout struck first; reported like the overall deadline.
    #[error("timed out")]
    TimedOut,
    #[error("{0} has no content type and does not look like text; http_fetch only returns text")]
    Unknown(Url),
    #[error("{0} came compressed as '{1}', which http_fetch cannot decode")]
    Encoded(Url, String),
}

/// A URL refused, and the page that redirected to it, if any.
#[derive(Debug)]
struct Refused {
    from: Option<Url>,
    to: Url,
    why: Refusal,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Refused { from, to, why } = self;
        f.write_str("refused: ")?;
        match from {
            Some(from) => write!(f, "{from} redirected to {to}, and ")?,
            None if matches!(why, Refusal::Scheme | Refusal::NoHost) => write!(f, "{to} ")?,
            None => {}
        }
        let subject = if from.is_some() { "that " } else { "" };
        match why {
            Refusal::Scheme => write!(
                f,
                "{subject}is not an http or https URL; http_fetch only fetches those"
            ),
            Refusal::NoHost => write!(f, "{subject}names no host"),
            Refusal::Internal { ip, kind } => write!(
                f,
                "{} is a {kind} address; http_fetch only reaches public addresses",
                Shown(*ip)
            ),
            Refusal::Host(host) => {
                write!(f, "{host}; http_fetch only reaches public addresses")
            }
            Refusal::Peer(refused) => write!(f, "{refused}"),
        }
    }
}

struct Fetched {
    url: Url,
    status: u16,
    content_type: Option<String>,
    truncated: bool,
    body: String,
}

impl Fetched {
    fn to_json(&self) -> String {
        json!({
            "url": self.url.as_str(),
            "status": self.status,
            "content_type": self.content_type,
            "truncated": self.truncated,
            "body": self.body,
        })
        .to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Html,
    Text,
}

/// Read a final answer: refuse what is not text before reading it, read at most
/// `max_bytes`, decode, and turn HTML into text.
async fn read(
    mut response: reqwest::Response,
    url: Url,
    max_bytes: usize,
) -> Result<Fetched, FetchError> {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| {
                String::from_utf8_lossy(v.as_bytes()).trim().to_string()
            })
            .filter(|v| !v.is_empty())
    };
    let content_type = header(CONTENT_TYPE);
    if let Some(encoding) = header(CONTENT_ENCODING) {
        if !encoding.eq_ignore_ascii_case("identity") {
            return Err(FetchError::Encoded(url, encoding));
        }
    }
    let declared = match content_type.as_deref() {
        Some(ct) => match kind_of(ct) {
            Some(kind) => Some(kind),
            None => return Err(FetchError::NotText(url, ct.to_string())),
        },
        None => None,
    };

    let mut bytes = Vec::with_capacity(max_bytes.min(64 * 1024));
    let mut truncated = false;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(FetchError::TimedOut),
            Err(e) => return Err(FetchError::Body(url, chain(&e))),
        };
        let room = max_bytes - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    drop(response);

    let kind = match declared {
        Some(kind) => kind,
        None => sniff(&bytes).ok_or_else(|| FetchError::Unknown(url.clone()))?,
    };
    let text = decode(&bytes, content_type.as_deref());
    let body = match kind {
        Kind::Html => super::html::to_text(&text),
        Kind::Text => text,
    };
    Ok(Fetched {
        url,
        status,
        content_type,
        truncated,
        body,
    })
}

/// Whether a content type is one this tool returns, and whether it is HTML.
fn kind_of(content_type: &str) -> Option<Kind> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let text = essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || essence.ends_with("+yaml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/ecmascript"
                | "application/x-javascript"
                | "application/x-ndjson"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/sql"
                | "application/graphql"
                | "application/x-sh"
                | "application/x-www-form-urlencoded"
        );
    match essence.as_str() {
        "text/html" | "application/xhtml+xml" => Some(Kind::Html),
        _ if text => Some(Kind::Text),
        _ => None,
    }
}

/// A body without a content type counts as text when it is UTF-8 without NUL bytes.
fn sniff(bytes: &[u8]) -> Option<Kind> {
    let valid = match std::str::from_utf8(bytes) {
        Ok(_) => true,
        // Cut off in the middle of a character by the byte cap.
        Err(e) => e.error_len().is_none(),
    };
    if !valid || bytes.contains(&0) {
        return None;
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start();
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        Some(Kind::Html)
    } else {
        Some(Kind::Text)
    }
}

/// UTF-8 (a character cut off by the byte cap is dropped), or Latin-1 when declared.
fn decode(bytes: &[u8], content_type: Option<&str>) -> String {
    let charset = content_type
        .and_then(|ct| {
            ct.split(';')
                .skip(1)
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
                .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase())
        })
        .unwrap_or_default();
    if matches!(
        charset.as_str(),
        "iso-8859-1" | "latin1" | "latin-1" | "windows-1252" | "cp1252"
    ) {
        return bytes.iter().map(|&b| char::from(b)).collect();
    }
    let bytes = match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    };
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn content_types_are_sorted_into_html_text_and_refused() {
        assert_eq!(kind_of("text/html; charset=utf-8"), Some(Kind::Html));
        assert_eq!(kind_of("application/ld+json"), Some(Kind::Text));
        assert_eq!(kind_of("Application/JSON"), Some(Kind::Text));
        assert_eq!(kind_of("text/csv"), Some(Kind::Text));
        assert_eq!(kind_of("image/png"), None);
        assert_eq!(kind_of("application/octet-stream"), None);
        assert_eq!(sniff(b"<!doctype html><p>x"), Some(Kind::Html));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), None);
    }

    #[test]
    fn a_character_cut_by_the_byte_cap_is_dropped() {
        let text = "é".as_bytes();
        assert_eq!(decode(&[b'a', text[0]], None), "a");
        assert_eq!(
            decode(b"caf\xe9", Some("text/plain; charset=ISO-8859-1")),
            "café"
        );
    }
}
