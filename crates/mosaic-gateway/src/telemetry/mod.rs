//! Observability: `tracing` spans on every request path, continued from and into W3C
//! Trace Context (`traceparent`), exported over OTLP/HTTP when configured, and log lines
//! that carry the trace id. Nothing is exported by default; export never blocks a
//! request (a bounded queue; what does not fit is dropped and counted).

pub mod http;
pub mod metrics;
pub mod otlp;

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{Config, LogFormat};

/// The service name spans carry unless `OTEL_SERVICE_NAME` or `service_name` say
/// otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "mosaic-gateway";

/// The exporter's counters, once [`init`] started one (read by `/metrics`).
static EXPORT_STATS: OnceLock<Arc<otlp::ExportStats>> = OnceLock::new();

/// Spans exported, dropped and failed so far, when exporting.
pub fn export_counts() -> Option<(u64, u64, u64)> {
    EXPORT_STATS
        .get()
        .map(|s| (s.exported(), s.dropped(), s.failed()))
}

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes what is queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
    /// Export counters, when spans are exported.
    pub export: Option<Arc<otlp::ExportStats>>,
}

impl Telemetry {
    /// Send what is queued (bounded by the exporter's timeout) and stop.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!("telemetry shutdown: {e}");
        }
    }
}

/// `key=value,key2=value2` as in `OTEL_RESOURCE_ATTRIBUTES` (values percent-decoded).
pub fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The resource every span names: the service and `OTEL_RESOURCE_ATTRIBUTES`.
pub fn resource(config: &Config, env: &impl Fn(&str) -> Option<String>) -> Resource {
    let mut attributes: Vec<KeyValue> = env("OTEL_RESOURCE_ATTRIBUTES")
        .map(|a| parse_pairs(&a))
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| KeyValue::new(k, v))
        .collect();
    let service = env("OTEL_SERVICE_NAME")
        .filter(|s| !s.trim().is_empty())
        .or_else(|| config.service_name.clone())
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
    attributes.retain(|kv| kv.key.as_str() != "service.name");
    attributes.push(KeyValue::new("service.name", service));
    attributes.push(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    Resource::builder_empty()
        .with_attributes(attributes)
        .build()
}

/// The tracer provider: exporting over OTLP when the environment (`OTEL_EXPORTER_OTLP_*`)
/// or the configuration (`otlp_endpoint`) names an endpoint, else recording spans for
/// their ids only.
pub fn provider(
    config: &Config,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(SdkTracerProvider, Option<Arc<otlp::ExportStats>>), String> {
    let mut otlp = otlp::OtlpConfig::from_env(env)?;
    if otlp.is_none() {
        if let Some(endpoint) = &config.otlp_endpoint {
            let with_endpoint = |name: &str| match name {
                "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
                other => env(other),
            };
            otlp = otlp::OtlpConfig::from_env(with_endpoint)?;
        }
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource(config, env));
    let mut stats = None;
    if let Some(otlp) = otlp {
        let (processor, s) = otlp::processor(otlp);
        builder = builder.with_span_processor(processor);
        stats = Some(s);
    }
    Ok((builder.build(), stats))
}

/// The log filter: `MOSAIC_LOG`, else `RUST_LOG`, else info (sqlx at warn).
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_env("MOSAIC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

/// Install the process-wide subscriber: the filter, log lines on stderr (human or JSON;
/// lines inside a request carry its `trace_id`), and spans to OpenTelemetry. Also sets
/// the W3C Trace Context propagator (and no baggage propagator: baggage is never
/// forwarded).
pub fn init(config: &Config) -> Result<Telemetry, String> {
    let env = |name: &str| std::env::var(name).ok();
    let (provider, export) = provider(config, &env)?;
    install(config.log_format, filter(), provider.clone());
    if let Some(stats) = &export {
        let _ = EXPORT_STATS.set(stats.clone());
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Ok(Telemetry { provider, export })
}

/// Install a subscriber with this provider (tests install one with an in-memory
/// exporter). A second install in one process is ignored.
pub fn install(format: LogFormat, filter: EnvFilter, provider: SdkTracerProvider) {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("mosaic");
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Human => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_attributes_parse_and_decode() {
        assert_eq!(
            parse_pairs("deployment.environment=home, team=a%2Cb,=x,bad"),
            vec![
                ("deployment.environment".to_string(), "home".to_string()),
                ("team".to_string(), "a,b".to_string()),
            ]
        );
    }
}
