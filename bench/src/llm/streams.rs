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

/// Streams that have had their first token and not yet their end, across workers.
#[derive(Clone, Default)]
pub struct Live(Arc<AtomicUsize>);

impl Live {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
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

/// `concurrency` workers repeat streams until `duration` has passed; each stream may
/// take up to `timeout`.
pub async fn run(
    target: &Target,
    concurrency: usize,
    duration: Duration,
    timeout: Duration,
) -> Result<StreamStats> {
    let clients = (0..concurrency)
        .map(|_| client(timeout))
        .collect::<Result<Vec<_>>>()?;
    let body = request_body(target);
    let live = Live::default();
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for http in clients {
        let (target, body, live) = (target.clone(), body.clone(), live.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = StreamStats::default();
            while Instant::now() < deadline {
                record(&mut stats, one(&http, &target, body.clone(), &live).await);
            }
            stats
        }));
    }
    let mut total = StreamStats::default();
    for worker in workers {
        total.absorb(worker.await.context("a stream worker failed")?);
    }
    total.elapsed = started.elapsed();
    total.ttft_us.sort_unstable();
    total.total_us.sort_unstable();
    Ok(total)
}

/// `count` streams at once, one per worker, each read to its end; `live` counts those
/// between their first token and their end, so the caller can sample while all are open.
pub fn hold(
    target: &Target,
    count: usize,
    timeout: Duration,
    live: &Live,
) -> Result<tokio::task::JoinHandle<StreamStats>> {
    let clients = (0..count)
        .map(|_| client(timeout))
        .collect::<Result<Vec<_>>>()?;
    let body = request_body(target);
    let (target, live) = (target.clone(), live.clone());
    Ok(tokio::spawn(async move {
        let started = Instant::now();
        let stats = Arc::new(Mutex::new(StreamStats::default()));
        let mut workers = Vec::with_capacity(count);
        for http in clients {
            let (target, body, live, stats) =
                (target.clone(), body.clone(), live.clone(), stats.clone());
            workers.push(tokio::spawn(async move {
                let outcome = one(&http, &target, body, &live).await;
                if let Ok(mut s) = stats.lock() {
                    record(&mut s, outcome);
                }
            }));
        }
        for worker in workers {
            let _ = worker.await;
        }
        let mut total = stats
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        total.elapsed = started.elapsed();
        total.ttft_us.sort_unstable();
        total.total_us.sort_unstable();
        total
    }))
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
        (self.0).0.fetch_sub(1, Ordering::Relaxed);
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
    let mut response = request.send().await.map_err(|e| format!("{e:#}"))?;
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
    while let Some(bytes) = response.chunk().await.map_err(|e| format!("{e:#}"))? {
        scan.feed(&bytes)?;
        if first_token.is_none() && scan.content_len > 0 {
            first_token = Some(sent.elapsed());
            live.0.fetch_add(1, Ordering::Relaxed);
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
