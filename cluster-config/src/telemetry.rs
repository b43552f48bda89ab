//! `[telemetry]`: where traces go. Off unless `otlp_endpoint` is set, and then only the sampled
//! share of requests is recorded.

use serde::{Deserialize, Serialize};

use crate::Problem;

/// Tracing export over OTLP (HTTP, JSON encoding).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP receiver (`http://collector:4318`); spans are posted to
    /// `{otlp_endpoint}/v1/traces`. Absent: no spans are exported and no trace context is
    /// carried between nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// Share of new traces recorded, 0.0 to 1.0. A request that arrives with a sampled W3C
    /// `traceparent` is always recorded, so one trace is whole across nodes.
    #[serde(default = "default_sampling_ratio")]
    pub sampling_ratio: f64,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_sampling_ratio() -> f64 {
    1.0
}

fn default_service_name() -> String {
    "artstore".into()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, sampling_ratio: default_sampling_ratio(), service_name: default_service_name() }
    }
}

impl TelemetryConfig {
    pub(crate) fn validate(&self, p: &mut Vec<Problem>) {
        if let Some(e) = &self.otlp_endpoint {
            match url::Url::parse(e) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                Ok(u) => p.push(Problem::new(
                    "telemetry.otlp_endpoint",
                    format!("scheme {:?}: use http or https", u.scheme()),
                )),
                Err(err) => p.push(Problem::new("telemetry.otlp_endpoint", format!("{e:?} is not a URL: {err}"))),
            }
        }
        if !(0.0..=1.0).contains(&self.sampling_ratio) {
            p.push(Problem::new(
                "telemetry.sampling_ratio",
                format!("{} is not between 0.0 and 1.0", self.sampling_ratio),
            ));
        }
        if self.service_name.trim().is_empty() {
            p.push(Problem::new("telemetry.service_name", "must not be empty"));
        }
    }
}
