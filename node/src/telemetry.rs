//! Logging (tracing: readable text or JSON lines), trace export over OTLP when configured, and
//! the Prometheus metrics recorder.
//!
//! Traces: with `[telemetry] otlp_endpoint`, a `tracing-opentelemetry` layer turns the node's
//! spans (each HTTP request, tarpc calls in and out, chunk transfers) into OpenTelemetry spans,
//! exported in batches by the SDK's OTLP exporter. The W3C trace context crosses nodes in tarpc's
//! request context and in the storage protocol's header, and comes in from clients as
//! `traceparent`. Without an endpoint no layer is installed: spans stay log context only.

use std::time::Duration;

use artstore_cluster_config::{LogFormat, TelemetryConfig};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How long exported spans may wait for their batch (short: traces are read soon after).
const EXPORT_DELAY: Duration = Duration::from_millis(500);

/// What becomes a span in an exported trace: the node's own spans, and tarpc's calls in and out.
const TRACE_FILTER: &str = "info,openraft=warn,tarpc=info,hyper=warn,h2=warn,reqwest=warn";

/// Keeps the trace exporter alive; dropping it sends what is still queued.
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber: logs to stderr and, when `telemetry` has an endpoint, span
/// export. `RUST_LOG`, when set, overrides the configured level.
pub fn init_logging(format: LogFormat, level: &str, telemetry: &TelemetryConfig, node_id: u64) -> Tracing {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let logs = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (provider, problem) = match telemetry.otlp_endpoint.as_deref() {
        None => (None, None),
        Some(endpoint) => match tracer_provider(endpoint, telemetry, node_id) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        },
    };
    // Traces have a filter of their own: tarpc's spans carry the context between nodes even where
    // its log lines are off.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer().with_tracer(p.tracer("artstore")).with_filter(EnvFilter::new(TRACE_FILTER))
    });
    let _ = tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).try_init();
    match (&provider, problem) {
        (Some(_), _) => {
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            tracing::info!(
                endpoint = telemetry.otlp_endpoint.as_deref().unwrap_or_default(),
                sampling_ratio = telemetry.sampling_ratio,
                "exporting traces over OTLP"
            );
        }
        (None, Some(e)) => tracing::warn!(error = %e, "trace export is off: the OTLP exporter could not be built"),
        (None, None) => {}
    }
    Tracing { provider }
}

fn tracer_provider(endpoint: &str, telemetry: &TelemetryConfig, node_id: u64) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(10))
        .with_http_client(OtlpClient::new()?)
        .build()
        .map_err(|e| e.to_string())?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(EXPORT_DELAY).build())
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(telemetry.service_name.clone())
        .with_attribute(KeyValue::new("service.instance.id", node_id.to_string()))
        .with_attribute(KeyValue::new("artstore.node_id", node_id as i64))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(telemetry.sampling_ratio))))
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: the workspace's reqwest, run on the node's runtime (the SDK's
/// batch processor calls it from a thread of its own).
#[derive(Debug, Clone)]
struct OtlpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl OtlpClient {
    fn new() -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        // reqwest's rustls takes the process's provider (the node's own TLS names its own).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = reqwest::Client::builder()
            .tls_built_in_native_certs(true)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: axum::http::Request<bytes::Bytes>,
    ) -> Result<axum::http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let call = async move {
            let mut req = client.request(parts.method, parts.uri.to_string()).body(body);
            for (name, value) in parts.headers.iter() {
                req = req.header(name, value);
            }
            let resp = req.send().await?.error_for_status()?;
            let status = resp.status();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = self.runtime.spawn(call).await??;
        Ok(axum::http::Response::builder().status(status).body(body)?)
    }
}

/// Counters of rare events that alerts watch (deploy/monitoring/rules).
const COUNTED_FROM_START: &[&str] = &[
    "artstore_scrub_damaged_total",
    "artstore_repair_unrecoverable_chunks_total",
    "artstore_storage_quorum_failures_total",
    "artstore_ingest_under_replicated_chunks_total",
    "artstore_auth_tokens_refused_total",
    "artstore_transport_refused_connections_total",
    "artstore_read_replica_failures_total",
    "artstore_damaged_replicas_reported_total",
    "artstore_raft_freezes_total",
];

/// Installs the metrics recorder and returns the handle `/metrics` renders.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])?
        .install_recorder()?;
    // Present at 0 from start-up: an alert on `increase()` then counts the first event too,
    // instead of seeing a new series already at 1.
    for name in COUNTED_FROM_START {
        metrics::counter!(*name).increment(0);
    }
    metrics::counter!("artstore_http_tls_reloads_total", "outcome" => "failed").increment(0);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
