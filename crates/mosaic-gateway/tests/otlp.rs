//! OTLP/HTTP export against a real collector: a small receiver on loopback, written here,
//! that decodes `ExportTraceServiceRequest` with the `opentelemetry-proto` types. Plus
//! the exporter's behaviour when the collector is down or refuses, and the parsing of the
//! `OTEL_*` variables.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use mosaic_gateway::telemetry::otlp::{self, ExportStats, OtlpConfig};
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue as ProtoKeyValue};
use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanProcessor as _};
use opentelemetry_sdk::Resource;
use prost::Message;

/// How the collector answers every request.
#[derive(Clone, Copy)]
enum Answer {
    Accept,
    Status(StatusCode),
    /// 200 with a partial success rejecting this many spans.
    Reject(i64),
}

/// One request as the collector saw it.
#[derive(Clone)]
struct Received {
    content_type: Option<String>,
    api_key: Option<String>,
    request: ExportTraceServiceRequest,
}

#[derive(Clone)]
struct CollectorState {
    answer: Answer,
    received: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<Mutex<usize>>,
}

/// An OTLP/HTTP receiver on 127.0.0.1, on a thread and runtime of its own so that tests
/// may block (force_flush) or run their own runtime without stalling it.
struct Collector {
    addr: SocketAddr,
    state: CollectorState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Collector {
    fn start(answer: Answer) -> Collector {
        let state = CollectorState {
            answer,
            received: Arc::default(),
            attempts: Arc::default(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = std::sync::mpsc::channel();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(state.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr.recv_timeout(Duration::from_secs(5)).unwrap();
        Collector {
            addr,
            state,
            stop: Some(stop),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    fn attempts(&self) -> usize {
        *self.state.attempts.lock().unwrap()
    }

    /// Every span received, in order.
    fn spans(&self) -> Vec<ProtoSpan> {
        self.received()
            .into_iter()
            .flat_map(|r| r.request.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn receive(State(state): State<CollectorState>, headers: HeaderMap, body: Bytes) -> Response {
    *state.attempts.lock().unwrap() += 1;
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let received = Received {
        content_type: header("content-type"),
        api_key: header("x-api-key"),
        request,
    };
    let partial_success = match state.answer {
        Answer::Status(status) => return status.into_response(),
        Answer::Accept => None,
        Answer::Reject(rejected_spans) => Some(ExportTracePartialSuccess {
            rejected_spans,
            error_message: "not today".into(),
        }),
    };
    state.received.lock().unwrap().push(received);
    let answer = ExportTraceServiceResponse { partial_success };
    (
        [("content-type", "application/x-protobuf")],
        answer.encode_to_vec(),
    )
        .into_response()
}

fn config(endpoint: String) -> OtlpConfig {
    OtlpConfig {
        timeout: Duration::from_secs(5),
        ..OtlpConfig::new(endpoint)
    }
}

fn provider(config: OtlpConfig) -> (SdkTracerProvider, Arc<ExportStats>) {
    let (processor, stats) = otlp::processor(config);
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_service_name("mosaic-test")
                .build(),
        )
        .with_span_processor(processor)
        .build();
    (provider, stats)
}

fn end_spans(provider: &SdkTracerProvider, count: usize) {
    let tracer = provider.tracer("otlp-test");
    for i in 0..count {
        let mut span = tracer.start("work");
        span.set_attribute(KeyValue::new("i", i as i64));
        span.end();
    }
}

fn string(key: &str, value: &str) -> ProtoKeyValue {
    ProtoKeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn int(key: &str, value: i64) -> ProtoKeyValue {
    ProtoKeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn boolean(key: &str, value: bool) -> ProtoKeyValue {
    ProtoKeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(value)),
        }),
        ..Default::default()
    }
}

/// What a test says about a span: name, trace, parent link and attributes.
#[derive(Debug, PartialEq)]
struct Seen {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: Vec<ProtoKeyValue>,
}

impl From<&ProtoSpan> for Seen {
    fn from(span: &ProtoSpan) -> Seen {
        Seen {
            name: span.name.clone(),
            trace_id: span.trace_id.clone(),
            span_id: span.span_id.clone(),
            parent_span_id: span.parent_span_id.clone(),
            attributes: span.attributes.clone(),
        }
    }
}

mod export {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn parent_and_child_reach_the_collector_with_ids_links_attributes_and_resource() {
        let collector = Collector::start(Answer::Accept);
        let (provider, stats) = provider(OtlpConfig {
            headers: vec![("x-api-key".into(), "k3y".into())],
            ..config(collector.endpoint())
        });
        let tracer = provider.tracer("otlp-test");

        let parent = tracer
            .span_builder("POST /v1/runs")
            .with_attributes([
                KeyValue::new("http.route", "/v1/runs"),
                KeyValue::new("http.response.status_code", 201),
            ])
            .start(&tracer);
        let parent_ids = parent.span_context().clone();
        let parent_cx = Context::new().with_span(parent);
        let mut child = tracer
            .span_builder("chat gpt-test")
            .with_attributes([KeyValue::new("gen_ai.request.model", "gpt-test")])
            .start_with_context(&tracer, &parent_cx);
        child.set_attribute(KeyValue::new("gen_ai.response.streamed", true));
        let child_ids = child.span_context().clone();
        child.end();
        parent_cx.span().end();
        provider.force_flush().unwrap();

        let trace_id = parent_ids.trace_id().to_bytes().to_vec();
        let mut seen: Vec<Seen> = collector.spans().iter().map(Seen::from).collect();
        seen.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            seen,
            vec![
                Seen {
                    name: "POST /v1/runs".into(),
                    trace_id: trace_id.clone(),
                    span_id: parent_ids.span_id().to_bytes().to_vec(),
                    parent_span_id: vec![],
                    attributes: vec![
                        string("http.route", "/v1/runs"),
                        int("http.response.status_code", 201),
                    ],
                },
                Seen {
                    name: "chat gpt-test".into(),
                    trace_id,
                    span_id: child_ids.span_id().to_bytes().to_vec(),
                    parent_span_id: parent_ids.span_id().to_bytes().to_vec(),
                    attributes: vec![
                        string("gen_ai.request.model", "gpt-test"),
                        boolean("gen_ai.response.streamed", true),
                    ],
                },
            ]
        );

        let received = collector.received();
        for r in &received {
            assert_eq!(r.content_type.as_deref(), Some("application/x-protobuf"));
            assert_eq!(r.api_key.as_deref(), Some("k3y"));
            for resource_spans in &r.request.resource_spans {
                let resource = resource_spans.resource.as_ref().unwrap();
                assert!(
                    resource
                        .attributes
                        .contains(&string("service.name", "mosaic-test")),
                    "{:?}",
                    resource.attributes
                );
            }
        }
        assert_eq!(
            (stats.exported(), stats.dropped(), stats.failed()),
            (2, 0, 0)
        );
    }

    #[test]
    fn a_partial_batch_is_sent_after_the_interval_without_a_flush() {
        let collector = Collector::start(Answer::Accept);
        let (provider, stats) = provider(OtlpConfig {
            interval: Duration::from_millis(50),
            ..config(collector.endpoint())
        });
        end_spans(&provider, 3);

        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.exported() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(stats.exported(), 3);
        assert_eq!(collector.spans().len(), 3);
    }

    #[test]
    fn full_batches_are_split_into_requests_of_batch_size() {
        let collector = Collector::start(Answer::Accept);
        let (provider, stats) = provider(OtlpConfig {
            batch: 4,
            interval: Duration::from_secs(60),
            ..config(collector.endpoint())
        });
        end_spans(&provider, 10);
        provider.force_flush().unwrap();

        let sizes: Vec<usize> = collector
            .received()
            .iter()
            .map(|r| {
                r.request
                    .resource_spans
                    .iter()
                    .flat_map(|rs| &rs.scope_spans)
                    .map(|ss| ss.spans.len())
                    .sum()
            })
            .collect();
        assert!(sizes.iter().all(|&n| n <= 4), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert_eq!(stats.exported(), 10);
    }

    #[test]
    fn shutdown_sends_what_is_queued() {
        let collector = Collector::start(Answer::Accept);
        let (provider, stats) = provider(OtlpConfig {
            interval: Duration::from_secs(60),
            ..config(collector.endpoint())
        });
        end_spans(&provider, 5);
        provider.shutdown().unwrap();
        assert_eq!(collector.spans().len(), 5);
        assert_eq!(stats.exported(), 5);
    }

    /// The exporter has its own thread: a flush called from a runtime's only worker
    /// thread does not wait on a task that this very thread would have to run.
    #[tokio::test]
    async fn flush_from_inside_a_current_thread_runtime_does_not_stall() {
        let collector = Collector::start(Answer::Accept);
        let (provider, stats) = provider(config(collector.endpoint()));
        end_spans(&provider, 2);
        let started = Instant::now();
        provider.force_flush().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(stats.exported(), 2);
    }
}

mod failures {
    use super::*;
    use pretty_assertions::assert_eq;

    /// A port that was just closed: connections are refused.
    fn closed_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}/v1/traces")
    }

    #[test]
    fn ending_spans_never_blocks_when_the_collector_is_unreachable() {
        let (provider, stats) = provider(config(closed_endpoint()));

        let started = Instant::now();
        end_spans(&provider, 10_000);
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(800), "took {elapsed:?}");

        let flushed = Instant::now();
        assert!(provider.force_flush().is_err());
        assert!(flushed.elapsed() < Duration::from_secs(5));
        assert_eq!(stats.exported(), 0);
        assert!(stats.dropped() > 0, "the 2048-span queue overflowed");
        assert!(stats.failed() > 0);
        assert_eq!(stats.dropped() + stats.failed(), 10_000);
    }

    #[test]
    fn a_server_error_is_retried_once_then_counted_as_failed() {
        let collector = Collector::start(Answer::Status(StatusCode::SERVICE_UNAVAILABLE));
        let (provider, stats) = provider(config(collector.endpoint()));
        end_spans(&provider, 3);
        assert!(provider.force_flush().is_err());
        assert_eq!(collector.attempts(), 2);
        assert_eq!((stats.exported(), stats.failed()), (0, 3));
    }

    #[test]
    fn a_client_error_is_not_retried() {
        let collector = Collector::start(Answer::Status(StatusCode::UNAUTHORIZED));
        let (provider, stats) = provider(config(collector.endpoint()));
        end_spans(&provider, 3);
        assert!(provider.force_flush().is_err());
        assert_eq!(collector.attempts(), 1);
        assert_eq!((stats.exported(), stats.failed()), (0, 3));
    }

    #[test]
    fn spans_rejected_in_a_partial_success_count_as_failed() {
        let collector = Collector::start(Answer::Reject(1));
        let (provider, stats) = provider(config(collector.endpoint()));
        end_spans(&provider, 3);
        assert!(provider.force_flush().is_err());
        assert_eq!((stats.exported(), stats.failed()), (2, 1));
    }

    #[test]
    fn a_second_shutdown_is_refused() {
        let (processor, _) = otlp::processor(config(closed_endpoint()));
        assert!(processor.shutdown().is_ok());
        assert!(matches!(
            processor.shutdown(),
            Err(OTelSdkError::AlreadyShutdown)
        ));
    }
}

mod env {
    use super::*;
    use pretty_assertions::assert_eq;

    fn from_env(vars: &[(&str, &str)]) -> Result<Option<OtlpConfig>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpConfig::from_env(|name| vars.get(name).cloned())
    }

    fn endpoint(vars: &[(&str, &str)]) -> String {
        from_env(vars).unwrap().unwrap().endpoint
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        assert_eq!(from_env(&[]), Ok(None));
        assert_eq!(from_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None));
        assert_eq!(
            from_env(&[("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k")]),
            Ok(None)
        );
    }

    #[test]
    fn an_endpoint_alone_gives_the_defaults() {
        assert_eq!(
            from_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
            Ok(Some(OtlpConfig {
                endpoint: "http://collector:4318/v1/traces".into(),
                headers: vec![],
                timeout: Duration::from_secs(10),
                queue: 2048,
                batch: 512,
                interval: Duration::from_secs(1),
            }))
        );
    }

    #[test]
    fn the_general_endpoint_gains_the_traces_path() {
        let base = |value| endpoint(&[("OTEL_EXPORTER_OTLP_ENDPOINT", value)]);
        assert_eq!(base("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(base("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(base("https://c/otlp//"), "https://c/otlp/v1/traces");
    }

    #[test]
    fn the_traces_endpoint_is_used_as_is_and_wins() {
        assert_eq!(
            endpoint(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/custom"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
            ]),
            "http://t:4318/custom"
        );
        assert_eq!(
            endpoint(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:4318/")]),
            "http://t:4318/"
        );
    }

    #[test]
    fn headers_are_decoded_and_the_traces_ones_win() {
        let config = from_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=general, Authorization=Basic%20dTpw ,x-tenant=a%2Cb",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-API-KEY=traces"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            config.headers,
            vec![
                ("Authorization".to_string(), "Basic dTpw".to_string()),
                ("x-tenant".to_string(), "a,b".to_string()),
                ("X-API-KEY".to_string(), "traces".to_string()),
            ]
        );
        assert!(!format!("{config:?}").contains("dTpw"), "{config:?}");
    }

    #[test]
    fn only_http_protobuf_is_accepted() {
        let with = |name, protocol| {
            from_env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                (name, protocol),
            ])
        };
        assert!(with("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .unwrap()
            .is_some());
        let grpc = with("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc").unwrap_err();
        assert!(
            grpc.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc") && grpc.contains("http/protobuf"),
            "{grpc}"
        );
        let json = with("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json").unwrap_err();
        assert!(
            json.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            "{json}"
        );
        // The traces variable wins over the general one.
        assert!(from_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ])
        .unwrap()
        .is_some());
    }

    #[test]
    fn timeout_and_batching_come_from_the_environment() {
        let config = from_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(2500));
        assert_eq!((config.queue, config.batch), (100, 100), "batch ≤ queue");
        assert_eq!(config.interval, Duration::from_millis(200));
        let traces = from_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "700"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(traces.timeout, Duration::from_millis(700));
    }

    #[test]
    fn malformed_values_are_refused_naming_the_variable() {
        let refused = |vars: &[(&str, &str)]| from_env(vars).unwrap_err();
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert!(refused(&[base, ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")])
            .contains("OTEL_EXPORTER_OTLP_TIMEOUT"));
        assert!(
            refused(&[base, ("OTEL_BSP_MAX_QUEUE_SIZE", "0")]).contains("OTEL_BSP_MAX_QUEUE_SIZE")
        );
        assert!(
            refused(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")])
                .contains("OTEL_EXPORTER_OTLP_ENDPOINT")
        );
        assert!(
            refused(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://c/v1/traces")])
                .contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        );
        let header = refused(&[base, ("OTEL_EXPORTER_OTLP_HEADERS", "x-key=s3cret%0A")]);
        assert!(
            header.contains("OTEL_EXPORTER_OTLP_HEADERS") && !header.contains("s3cret"),
            "{header}"
        );
    }

    #[test]
    fn a_disabled_sdk_or_the_none_exporter_exports_nothing() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(from_env(&[base, ("OTEL_SDK_DISABLED", "true")]), Ok(None));
        assert_eq!(
            from_env(&[base, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(None)
        );
        assert!(from_env(&[base, ("OTEL_TRACES_EXPORTER", "otlp")])
            .unwrap()
            .is_some());
        assert!(from_env(&[base, ("OTEL_TRACES_EXPORTER", "zipkin")]).is_err());
    }
}
