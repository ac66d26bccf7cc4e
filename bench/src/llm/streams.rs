//! Streaming clients: each worker, on its own keep-alive connection, sends a streamed
//! Chat Completions request, reads the answer to its end, checks it, and starts again
//! until the deadline (or, holding, sends one and keeps it open to the end).
//!
//! Time to first token runs from just before the request is sent to the arrival of the
//! first chunk whose `delta.content` is not empty. A stream counts as served only when
//! its status was 200, the content adds up to the whole scripted text, the usage chunk
//! came, and `[DONE]` ended it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};

/// Where the streams go, and what they must bring back.
#[derive(Clone)]
pub struct Target {
    /// The full `/chat/completions` URL.
    pub url: String,
    pub bearer: Option<String>,
    pub model: String,
    /// The whole answer's content.
    pub expected: Arc<str>,
}

/// What the workers saw.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Time to first token of each served stream, in microseconds, sorted.
    pub ttft_us: Vec<u64>,
    /// Request to `[DONE]` of each served stream, in microseconds, sorted.
    pub total_us: Vec<u64>,
    pub errors: u64,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
    /// From the start of the phase to the end of its last stream.
    pub elapsed: Duration,
}

impl StreamStats {
    pub fn served(&self) -> u64 {
        self.ttft_us.len() as u64
    }

    pub fn per_second(&self) -> f64 {
        self.served() as f64 / self.elapsed.as_secs_f64()
    }

    /// A percentile of time to first token, in milliseconds.
    pub fn ttft_ms(&self, q: f64) -> f64 {
        crate::percentile(&self.ttft_us, q).map_or(f64::NAN, |us| us as f64 / 1000.0)
    }

    fn absorb(&mut self, other: StreamStats) {
        self.ttft_us.extend(other.ttft_us);
        self.total_us.extend(other.total_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Streams that have had their first token and not yet their end, across workers, and
/// the time to first token of each, as it comes.
#[derive(Clone, Default)]
pub struct Live(Arc<LiveInner>);

#[derive(Default)]
struct LiveInner {
    open: AtomicUsize,
    first_tokens_us: Mutex<Vec<u64>>,
}

impl Live {
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    fn first_token(&self, ttft: Duration) {
        self.0.open.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut v) = self.0.first_tokens_us.lock() {
            v.push(ttft.as_micros() as u64);
        }
    }
}

fn client(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .context("building an HTTP client")
}

fn request_body(target: &Target) -> Bytes {
    Bytes::from(
        json!({
            "model": target.model,
            "messages": [{"role": "user", "content": "Count for the benchmark, please."}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 256,
        })
        .to_string(),
    )
}

/// `concurrency` workers repeat streams for `duration`; each stream may take up to
/// `timeout`. Each worker first opens its connection with one stream that is not
/// counted, and all start together once every worker has: the figures are those of
/// streams over open keep-alive connections, not of a storm of connects.
/// `at_start` runs as the measured part starts, to take readings then.
pub async fn run(
    target: &Target,
    concurrency: usize,
    duration: Duration,
    timeout: Duration,
    at_start: impl FnOnce(),
) -> Result<StreamStats> {
    let clients = (0..concurrency)
        .map(|_| client(timeout))
        .collect::<Result<Vec<_>>>()?;
    let body = request_body(target);
    let live = Live::default();
    let ready = Arc::new(tokio::sync::Barrier::new(concurrency + 1));
    let mut workers = Vec::with_capacity(concurrency);
    for http in clients {
        let (target, body, live, ready) =
            (target.clone(), body.clone(), live.clone(), ready.clone());
        workers.push(tokio::spawn(async move {
            let _ = one(&http, &target, body.clone(), &live).await;
            ready.wait().await;
            let deadline = Instant::now() + duration;
            let mut stats = StreamStats::default();
            while Instant::now() < deadline {
                record(&mut stats, one(&http, &target, body.clone(), &live).await);
            }
            stats
        }));
    }
    ready.wait().await;
    let started = Instant::now();
    at_start();
    let mut total = StreamStats::default();
    for worker in workers {
        total.absorb(worker.await.context("a stream worker failed")?);
    }
    total.elapsed = started.elapsed();
    total.ttft_us.sort_unstable();
    total.total_us.sort_unstable();
    Ok(total)
}

/// Streams held open at once; [`Held::stop`] cuts them off.
pub struct Held {
    workers: Vec<tokio::task::JoinHandle<()>>,
    errors: Arc<Mutex<StreamStats>>,
    pub live: Live,
}

/// What holding saw: time to first token of every stream that got one (sorted), and
/// the streams that failed before they were cut off.
pub struct HeldStats {
    pub ttft_us: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl HeldStats {
    pub fn ttft_ms(&self, q: f64) -> f64 {
        crate::percentile(&self.ttft_us, q).map_or(f64::NAN, |us| us as f64 / 1000.0)
    }
}

/// Send `count` streams at once, one per worker, and keep reading them; `live` tells
/// how many are open.
pub fn hold(target: &Target, count: usize, timeout: Duration) -> Result<Held> {
    let clients = (0..count)
        .map(|_| client(timeout))
        .collect::<Result<Vec<_>>>()?;
    let body = request_body(target);
    let live = Live::default();
    let errors = Arc::new(Mutex::new(StreamStats::default()));
    let workers = clients
        .into_iter()
        .map(|http| {
            let (target, body, live, errors) =
                (target.clone(), body.clone(), live.clone(), errors.clone());
            tokio::spawn(async move {
                let outcome = one(&http, &target, body, &live).await;
                if outcome.is_err() {
                    if let Ok(mut s) = errors.lock() {
                        record(&mut s, outcome);
                    }
                }
            })
        })
        .collect();
    Ok(Held {
        workers,
        errors,
        live,
    })
}

impl Held {
    /// All streams ended (served or failed) before being cut off.
    pub fn finished(&self) -> bool {
        self.workers.iter().all(|w| w.is_finished())
    }

    /// Cut off every stream still open (their connections close) and answer what was seen.
    pub async fn stop(self) -> HeldStats {
        for worker in &self.workers {
            worker.abort();
        }
        for worker in self.workers {
            let _ = worker.await;
        }
        let mut ttft_us = self
            .live
            .0
            .first_tokens_us
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        ttft_us.sort_unstable();
        let (errors, first_error) = self
            .errors
            .lock()
            .map(|s| (s.errors, s.first_error.clone()))
            .unwrap_or_default();
        HeldStats {
            ttft_us,
            errors,
            first_error,
        }
    }
}

fn record(stats: &mut StreamStats, outcome: Result<(Duration, Duration), String>) {
    match outcome {
        Ok((ttft, total)) => {
            stats.ttft_us.push(ttft.as_micros() as u64);
            stats.total_us.push(total.as_micros() as u64);
        }
        Err(e) => {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(e);
            }
        }
    }
}

/// Counts a stream as live from its first token until it is dropped.
struct LiveGuard<'a>(&'a Live);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        (self.0).0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One streamed request: time to first token and to the end, or what went wrong.
async fn one(
    http: &reqwest::Client,
    target: &Target,
    body: Bytes,
    live: &Live,
) -> Result<(Duration, Duration), String> {
    let sent = Instant::now();
    let mut request = http
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(token) = &target.bearer {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await.map_err(|e| causes(&e))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let text = response.text().await.unwrap_or_default();
        return Err(format!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    let mut scan = Scan::default();
    let mut first_token = None;
    let mut _live = None;
    while let Some(bytes) = response.chunk().await.map_err(|e| causes(&e))? {
        scan.feed(&bytes)?;
        if first_token.is_none() && scan.content_len > 0 {
            let ttft = sent.elapsed();
            first_token = Some(ttft);
            live.first_token(ttft);
            _live = Some(LiveGuard(live));
        }
    }
    let total = sent.elapsed();
    let ttft = first_token.ok_or("no token came")?;
    if !scan.done {
        return Err("the stream ended without [DONE]".into());
    }
    if !scan.usage {
        return Err("no usage chunk".into());
    }
    if scan.content_len != target.expected.len() {
        return Err(format!(
            "{} bytes of content, expected {}",
            scan.content_len,
            target.expected.len()
        ));
    }
    Ok((ttft, total))
}

/// An error with its causes: reqwest's own message rarely says what happened.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An incremental reader of `data:` lines.
#[derive(Default)]
struct Scan {
    partial: Vec<u8>,
    content_len: usize,
    usage: bool,
    done: bool,
}

impl Scan {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.partial.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(n) = self.partial[start..].iter().position(|b| *b == b'\n') {
            let line = &self.partial[start..start + n];
            start += n + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if data == b"[DONE]" {
                self.done = true;
                continue;
            }
            let event: Value = serde_json::from_slice(data).map_err(|e| {
                format!(
                    "a data line is not JSON ({e}): {}",
                    String::from_utf8_lossy(data)
                )
            })?;
            if !event["error"].is_null() {
                return Err(format!("an error event: {}", event["error"]));
            }
            if let Some(text) = event["choices"][0]["delta"]["content"].as_str() {
                self.content_len += text.len();
            }
            if event["usage"]["completion_tokens"].is_u64() {
                self.usage = true;
            }
        }
        self.partial.drain(..start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::upstream::Upstream;

    #[test]
    fn scan_reads_lines_split_anywhere() {
        let text =
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n\
                    data: {\"choices\":[{\"delta\":{\"content\":\"ab\"}}]}\n\n\
                    : a comment\n\
                    data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\n\
                    data: [DONE]\n\n";
        for cut in 0..text.len() {
            let mut scan = Scan::default();
            scan.feed(&text.as_bytes()[..cut]).unwrap();
            scan.feed(&text.as_bytes()[cut..]).unwrap();
            assert_eq!(scan.content_len, 2, "cut at {cut}");
            assert!(scan.usage && scan.done, "cut at {cut}");
        }
    }

    #[test]
    fn scan_fails_on_an_error_event_or_bad_json() {
        let mut scan = Scan::default();
        assert!(scan
            .feed(b"data: {\"error\":{\"message\":\"boom\"}}\n\n")
            .is_err());
        let mut scan = Scan::default();
        assert!(scan.feed(b"data: {not json\n\n").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn whole_streams_from_the_scripted_upstream() {
        let upstream = Upstream::start(5, Duration::from_millis(1)).await.unwrap();
        let target = Target {
            url: format!("{}/chat/completions", upstream.base_url()),
            bearer: None,
            model: "scripted".into(),
            expected: upstream.expected_text().into(),
        };
        let stats = run(
            &target,
            3,
            Duration::from_millis(200),
            Duration::from_secs(5),
            || {},
        )
        .await
        .unwrap();
        assert_eq!(stats.errors, 0, "{:?}", stats.first_error);
        assert!(stats.served() >= 3);
        assert!(stats.ttft_us.first() <= stats.total_us.first());

        upstream.set_pace(Duration::from_secs(5));
        let held = hold(&target, 10, Duration::from_secs(30)).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while held.live.open() < 10 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(upstream.open_streams(), 10);
        let stats = held.stop().await;
        assert_eq!((stats.ttft_us.len(), stats.errors), (10, 0));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(upstream.open_streams(), 0);
    }
}
