//! OTLP/HTTP (protobuf) trace export that never blocks or fails a request.
//!
//! [`QueueProcessor::on_end`] only ever `try_send`s an ended span into a bounded queue;
//! what does not fit is dropped and counted in [`ExportStats`]. One exporter thread, with
//! a single-threaded tokio runtime of its own, batches the queue, encodes an
//! `ExportTraceServiceRequest` with prost and POSTs it with one reqwest client.
//!
//! The exporter is a thread rather than a task on the caller's runtime because
//! `force_flush` and `shutdown` are synchronous: a runtime worker that blocks waiting for a
//! task of its own runtime can stall until the timeout (always on a current-thread
//! runtime; on a multi-thread one when the woken task lands in the blocked worker's
//! LIFO slot, which other workers do not steal). This is also what the SDK's own
//! `BatchSpanProcessor` does.

use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use opentelemetry::Context;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use prost::Message;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use tokio::sync::mpsc;

/// Spans waiting for export before new ones are dropped (`OTEL_BSP_MAX_QUEUE_SIZE`).
pub const DEFAULT_QUEUE: usize = 2048;
/// Spans per export request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
pub const DEFAULT_BATCH: usize = 512;
/// Longest a span waits for a batch to fill (`OTEL_BSP_SCHEDULE_DELAY`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// One export request, and a flush (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A collector that is down would otherwise log a line per batch.
const WARN_EVERY: Duration = Duration::from_secs(30);
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// A collector's answer is a small protobuf; anything longer is not read.
const MAX_RESPONSE: usize = 64 * 1024;
const PROTOBUF: &str = "application/x-protobuf";

/// Where and how to export spans.
#[derive(Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    /// Sent with every export request (typically an API key).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// Queue capacity in spans.
    pub queue: usize,
    /// Largest batch in spans.
    pub batch: usize,
    /// A partial batch is sent after this long.
    pub interval: Duration,
}

impl fmt::Debug for OtlpConfig {
    /// Header values are credentials: only their names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("queue", &self.queue)
            .field("batch", &self.batch)
            .field("interval", &self.interval)
            .finish()
    }
}

impl OtlpConfig {
    /// Exporting to `endpoint` (used as given) with the defaults.
    pub fn new(endpoint: impl Into<String>) -> Self {
        OtlpConfig {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            queue: DEFAULT_QUEUE,
            batch: DEFAULT_BATCH,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// Read the OpenTelemetry variables through `get` (`std::env::var` in production).
    /// `Ok(None)` when no endpoint is named (nothing is exported by default), when
    /// `OTEL_SDK_DISABLED=true` or when `OTEL_TRACES_EXPORTER=none`; `Err` names the
    /// variable that cannot be honoured (never a header value).
    ///
    /// - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as is, else
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`.
    /// - `OTEL_EXPORTER_OTLP_HEADERS`, then `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (which wins
    ///   for the same name): `k=v,k2=v2`, values percent-decoded.
    /// - `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` in milliseconds.
    /// - `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`: only `http/protobuf`.
    /// - `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
    ///   `OTEL_BSP_SCHEDULE_DELAY` (milliseconds).
    ///
    /// Empty values count as unset, as the specification says.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<OtlpConfig>, String> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        // The signal-specific variable, else the general one; with the name that was set.
        let either = |traces: &'static str, general: &'static str| {
            var(traces)
                .map(|v| (traces, v))
                .or_else(|| var(general).map(|v| (general, v)))
        };

        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        match var("OTEL_TRACES_EXPORTER").map(|v| v.to_ascii_lowercase()) {
            None => {}
            Some(v) if v == "otlp" => {}
            Some(v) if v == "none" => return Ok(None),
            Some(v) => {
                return Err(format!(
                    "OTEL_TRACES_EXPORTER={v} is not supported (use \"otlp\" or \"none\")"
                ))
            }
        }

        if let Some((name, protocol)) = either(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ) {
            if protocol != "http/protobuf" {
                return Err(format!(
                    "{name}={protocol} is not supported: Mosaic exports traces over OTLP/HTTP \
                     with protobuf (\"http/protobuf\")"
                ));
            }
        }

        let (name, endpoint) = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(endpoint), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint),
            (None, Some(base)) => (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}/v1/traces", base.trim_end_matches('/')),
            ),
            (None, None) => return Ok(None),
        };
        check_endpoint(name, &endpoint)?;

        let mut config = OtlpConfig::new(endpoint);
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            for (key, value) in var(name)
                .map(|v| super::parse_pairs(&v))
                .unwrap_or_default()
            {
                check_header(name, &key, &value)?;
                config
                    .headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                config.headers.push((key, value));
            }
        }
        if let Some((name, ms)) = either(
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ) {
            config.timeout = Duration::from_millis(positive(name, &ms)?);
        }
        if let Some(v) = var("OTEL_BSP_MAX_QUEUE_SIZE") {
            config.queue =
                usize::try_from(positive("OTEL_BSP_MAX_QUEUE_SIZE", &v)?).unwrap_or(usize::MAX);
        }
        if let Some(v) = var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            config.batch = usize::try_from(positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &v)?)
                .unwrap_or(usize::MAX);
        }
        // The specification: a batch larger than the queue is the queue.
        config.batch = config.batch.min(config.queue);
        if let Some(v) = var("OTEL_BSP_SCHEDULE_DELAY") {
            config.interval = Duration::from_millis(positive("OTEL_BSP_SCHEDULE_DELAY", &v)?);
        }
        Ok(Some(config))
    }
}

fn check_endpoint(name: &str, endpoint: &str) -> Result<(), String> {
    // The URL itself is not repeated: it may carry credentials.
    let url = reqwest::Url::parse(endpoint).map_err(|e| format!("{name} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{name} must be an http:// or https:// URL"));
    }
    Ok(())
}

fn check_header(name: &str, key: &str, value: &str) -> Result<(), String> {
    if HeaderName::from_bytes(key.as_bytes()).is_err() {
        return Err(format!("{name}: {key:?} is not a valid header name"));
    }
    if HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "{name}: the value of {key} is not a valid header value"
        ));
    }
    Ok(())
}

fn positive(name: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name}={value} is not a positive integer")),
    }
}

/// What became of the spans handed to the exporter, for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl ExportStats {
    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    /// Spans dropped because the queue was full (or the exporter had stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Spans in export requests that failed, or that the collector rejected.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Messages to the exporter thread other than spans. Not bounded: only `set_resource`
/// and callers that then wait for the answer send them.
enum Control {
    Resource(Resource),
    /// Export what is queued; answer with the number of spans that failed.
    Flush(std_mpsc::SyncSender<u64>),
    /// The same, then stop.
    Shutdown(std_mpsc::SyncSender<u64>),
}

/// The span processor: a bounded queue in front of the exporter thread.
pub struct QueueProcessor {
    spans: mpsc::Sender<SpanData>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    full: Arc<tokio::sync::Notify>,
    batch: usize,
    control: mpsc::UnboundedSender<Control>,
    stats: Arc<ExportStats>,
    timeout: Duration,
    is_shutdown: AtomicBool,
}

impl fmt::Debug for QueueProcessor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueProcessor")
            .field("stats", &self.stats)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The processor to add to the tracer provider, and its counters.
pub fn processor(config: OtlpConfig) -> (QueueProcessor, Arc<ExportStats>) {
    let stats = Arc::new(ExportStats::default());
    let (spans, span_rx) = mpsc::channel(config.queue.max(1));
    let (control, control_rx) = mpsc::unbounded_channel();
    let mut exporter = Exporter::new(&config, stats.clone());
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let full = Arc::new(tokio::sync::Notify::new());
    exporter.queued = queued.clone();
    exporter.full = full.clone();

    let spawned = std::thread::Builder::new()
        .name("mosaic-otlp-export".into())
        .spawn(move || {
            // No feedback loop: this thread starts outside any `tracing` span and stays so,
            // and OpenTelemetry is suppressed on it (as in the SDK's batch processor), so
            // the export's own HTTP calls (reqwest, hyper, h2 spans) never become spans
            // in this pipeline. Every task of the runtime below is polled on this thread.
            let _suppressed = Context::enter_telemetry_suppressed_scope();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(exporter.run(span_rx, control_rx)),
                Err(e) => tracing::warn!("OTLP export disabled: no runtime: {e}"),
            }
        });
    if let Err(e) = spawned {
        // The queue's receiver went with the closure: spans are counted as dropped.
        tracing::warn!("OTLP export disabled: cannot start its thread: {e}");
    }

    let processor = QueueProcessor {
        spans,
        queued,
        full,
        batch: config.batch.max(1),
        control,
        stats: stats.clone(),
        timeout: config.timeout,
        is_shutdown: AtomicBool::new(false),
    };
    (processor, stats)
}

impl QueueProcessor {
    /// Ask the exporter to send what is queued and wait, at most `timeout`, for it.
    fn export_queued(
        &self,
        message: fn(std_mpsc::SyncSender<u64>) -> Control,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (reply, answer) = std_mpsc::sync_channel(1);
        if self.control.send(message(reply)).is_err() {
            return Err(OTelSdkError::InternalFailure(
                "the OTLP exporter is not running".into(),
            ));
        }
        match answer.recv_timeout(timeout) {
            Ok(0) => Ok(()),
            Ok(failed) => Err(OTelSdkError::InternalFailure(format!(
                "{failed} spans failed to export over OTLP"
            ))),
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(OTelSdkError::InternalFailure(
                "the OTLP exporter stopped".into(),
            )),
        }
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Recorded but not sampled spans are not for export.
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        } else if self.queued.fetch_add(1, Ordering::Relaxed) + 1 == self.batch {
            self.full.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.export_queued(Control::Flush, self.timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.is_shutdown.swap(true, Ordering::SeqCst) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.export_queued(Control::Shutdown, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        // A closed channel means the exporter is gone; there is nothing to tell it.
        let _ = self.control.send(Control::Resource(resource.clone()));
    }
}

/// How one POST went.
enum Attempt {
    /// 2xx; the collector may still reject some spans (partial success).
    Accepted {
        rejected: u64,
    },
    /// Worth one more try: a 5xx or no answer at all.
    Retry(String),
    Failed(String),
}

/// The exporter thread's state.
struct Exporter {
    client: Option<reqwest::Client>,
    endpoint: String,
    headers: HeaderMap,
    batch: usize,
    interval: Duration,
    resource: ResourceAttributesWithSchema,
    stats: Arc<ExportStats>,
    last_warning: Option<Instant>,
    /// Spans lost since the last warning.
    unreported: u64,
    queued: Arc<std::sync::atomic::AtomicUsize>,
    full: Arc<tokio::sync::Notify>,
}

impl Exporter {
    fn new(config: &OtlpConfig, stats: Arc<ExportStats>) -> Self {
        let mut headers = HeaderMap::new();
        for (key, value) in &config.headers {
            match (
                HeaderName::from_bytes(key.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(name), Ok(mut value)) => {
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                _ => tracing::warn!(header = %key, "OTLP export header ignored: not valid"),
            }
        }
        // No redirects (the egress default): a redirected POST becomes a GET, and a
        // collector that moved is misconfigured.
        let egress = mosaic_agent::egress::Egress::trusted("the trace exporter")
            .with_timeouts(mosaic_agent::egress::CONNECT_TIMEOUT, Some(config.timeout));
        let client = mosaic_agent::egress::client(egress)
            .map_err(|e| tracing::warn!("OTLP export disabled: no HTTP client: {e}"))
            .ok();
        Exporter {
            client,
            endpoint: config.endpoint.clone(),
            headers,
            batch: config.batch.max(1),
            interval: config.interval,
            resource: ResourceAttributesWithSchema::default(),
            stats,
            last_warning: None,
            unreported: 0,
            queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            full: Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn run(
        mut self,
        mut spans: mpsc::Receiver<SpanData>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut buffer = Vec::with_capacity(self.batch);
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                message = control.recv() => match message {
                    Some(Control::Resource(resource)) => self.resource = (&resource).into(),
                    Some(Control::Flush(reply)) => {
                        let failed = self.drain(&mut spans, &mut buffer).await;
                        let _ = reply.send(failed);
                    }
                    Some(Control::Shutdown(reply)) => {
                        spans.close();
                        let failed = self.drain(&mut spans, &mut buffer).await;
                        let _ = reply.send(failed);
                        return;
                    }
                    None => {
                        // The processor was dropped without a shutdown.
                        spans.close();
                        self.drain(&mut spans, &mut buffer).await;
                        return;
                    }
                },
                _ = self.full.notified() => {
                    self.drain(&mut spans, &mut buffer).await;
                }
                _ = tick.tick() => {
                    self.drain(&mut spans, &mut buffer).await;
                }
            }
        }
    }

    /// Export the buffer and what is queued now (not what arrives meanwhile, so a busy
    /// producer cannot keep a flush going); the number of spans that failed.
    async fn drain(
        &mut self,
        spans: &mut mpsc::Receiver<SpanData>,
        buffer: &mut Vec<SpanData>,
    ) -> u64 {
        let failed_before = self.stats.failed();
        let mut queued = spans.len();
        loop {
            while buffer.len() < self.batch && queued > 0 {
                match spans.try_recv() {
                    Ok(span) => {
                        buffer.push(span);
                        self.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
                queued -= 1;
            }
            if buffer.is_empty() {
                break;
            }
            self.export(buffer).await;
        }
        self.stats.failed() - failed_before
    }

    /// Send the buffer (left empty) as one request, retrying once if that may help.
    async fn export(&mut self, buffer: &mut Vec<SpanData>) {
        let batch = mem::replace(buffer, Vec::with_capacity(self.batch));
        let count = batch.len() as u64;
        let request = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &self.resource),
        };
        let body = Bytes::from(request.encode_to_vec());
        let attempt = match self.post(body.clone()).await {
            Attempt::Retry(_) => {
                tokio::time::sleep(RETRY_DELAY).await;
                self.post(body).await
            }
            attempt => attempt,
        };
        match attempt {
            Attempt::Accepted { rejected } => {
                let rejected = rejected.min(count);
                self.stats
                    .exported
                    .fetch_add(count - rejected, Ordering::Relaxed);
                if rejected > 0 {
                    self.stats.failed.fetch_add(rejected, Ordering::Relaxed);
                    self.warn(rejected, "the collector rejected some spans");
                }
            }
            Attempt::Retry(reason) | Attempt::Failed(reason) => {
                self.stats.failed.fetch_add(count, Ordering::Relaxed);
                self.warn(count, &reason);
            }
        }
    }

    async fn post(&self, body: Bytes) -> Attempt {
        let Some(client) = &self.client else {
            return Attempt::Failed("no HTTP client".into());
        };
        let sent = client
            .post(&self.endpoint)
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, PROTOBUF)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) if e.is_builder() => return Attempt::Failed(error_chain(&e.without_url())),
            Err(e) => return Attempt::Retry(error_chain(&e.without_url())),
        };
        let status = response.status();
        if status.is_server_error() {
            return Attempt::Retry(format!("the collector answered {status}"));
        }
        if !status.is_success() {
            return Attempt::Failed(format!("the collector answered {status}"));
        }
        // A partial success names the spans it rejected; an unreadable answer counts as
        // full success, the status said so.
        let mut answer = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            if answer.len() + chunk.len() > MAX_RESPONSE {
                answer.clear();
                break;
            }
            answer.extend_from_slice(&chunk);
        }
        let rejected = ExportTraceServiceResponse::decode(answer.as_slice())
            .ok()
            .and_then(|r| r.partial_success)
            .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
        Attempt::Accepted { rejected }
    }

    /// At most one line per [`WARN_EVERY`], counting the spans lost in between. Neither
    /// span data nor headers are logged.
    fn warn(&mut self, spans: u64, reason: &str) {
        self.unreported += spans;
        let now = Instant::now();
        if self
            .last_warning
            .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            return;
        }
        self.last_warning = Some(now);
        tracing::warn!(
            lost_spans = self.unreported,
            "OTLP trace export failed: {reason}"
        );
        self.unreported = 0;
    }
}

/// An error and its causes on one line ("error sending request: … : connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
