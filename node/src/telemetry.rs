//! Logging (tracing: readable text or JSON lines) and the Prometheus metrics recorder.

use artstore_cluster_config::LogFormat;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the configured level.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => {
            builder.with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init()
        }
    };
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
