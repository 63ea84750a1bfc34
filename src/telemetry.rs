//! Logging and tracing: text or JSON lines on stderr filtered by `RUST_LOG` (default `info`), and,
//! when an OTLP endpoint is configured, every span exported over OTLP/gRPC. Without an endpoint no
//! OpenTelemetry layer is installed at all, so tracing costs what plain logging costs.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use opentelemetry::trace::SpanContext;
use opentelemetry_sdk::trace::Sampler as SdkSampler;

use crate::config::LogFormat;

/// Keeps the span exporter alive; `shutdown` (or drop) flushes what is still buffered.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now (tests, and before exit).
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            // The SDK blocks while its exporter, which runs on this runtime, sends.
            let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        }
    }

    /// Flushes and stops the exporter.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Best effort when `shutdown` was not awaited; bounded by the exporter's timeout.
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber; with `otlp_endpoint`, also the OpenTelemetry layer exporting
/// spans there. Must run inside the Tokio runtime (the OTLP client lives on it). Fails if a global
/// subscriber is already installed (tests call it once per process) or the exporter cannot be
/// built.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log collector would store the escape codes.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let provider = match otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(endpoint)?),
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("warden"))
            .with_error_records_to_exceptions(true)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .context("a global tracing subscriber is already installed")?;
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .context("otlp_endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): cannot build the OTLP exporter")?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    // The standard OTEL_SERVICE_NAME (read by the builder) wins over the default name.
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("warden");
    }
    let resource = resource.build();
    Ok(SdkTracerProvider::builder()
        // The edge samples each RPC by OTEL_TRACES_SAMPLER before a span exists and hands its
        // decision on as the span's parent; the SDK follows it (and keeps the other roots).
        .with_sampler(SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)))
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The sampler named by `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// Keeps this fraction of traces.
    TraceIdRatio(f64),
    /// Follows a sampled or unsampled parent; a root is decided by the inner sampler.
    ParentBased(Root),
}

/// The root sampler of a parent-based one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
}

impl Default for Sampler {
    /// The OpenTelemetry specification's default.
    fn default() -> Self {
        Self::ParentBased(Root::AlwaysOn)
    }
}

impl Sampler {
    /// Parses the standard variables' values; `None` for the default. An unknown sampler or a
    /// ratio outside 0..=1 is an error naming the variable.
    pub fn parse(name: Option<&str>, arg: Option<&str>) -> Result<Self, String> {
        let ratio = || -> Result<f64, String> {
            match arg.map(str::trim).filter(|a| !a.is_empty()) {
                None => Ok(1.0),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!("OTEL_TRACES_SAMPLER_ARG: `{a}` is not a ratio between 0 and 1")
                    }),
            }
        };
        Ok(match name.map(str::trim).filter(|n| !n.is_empty()) {
            None => Self::default(),
            Some("always_on") => Self::AlwaysOn,
            Some("always_off") => Self::AlwaysOff,
            Some("traceidratio") => Self::TraceIdRatio(ratio()?),
            Some("parentbased_always_on") => Self::ParentBased(Root::AlwaysOn),
            Some("parentbased_always_off") => Self::ParentBased(Root::AlwaysOff),
            Some("parentbased_traceidratio") => Self::ParentBased(Root::TraceIdRatio(ratio()?)),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER: `{other}` is not supported (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"
                ));
            }
        })
    }

    /// Whether to keep a trace whose parent, if the client sent one, is `parent`.
    pub(crate) fn keeps(self, parent: Option<&SpanContext>) -> bool {
        let ratio = |ratio: f64| match parent {
            // The parent's trace id decides, so every service keeping that ratio agrees.
            Some(p) => {
                let low =
                    u64::from_be_bytes(p.trace_id().to_bytes()[8..].try_into().unwrap_or_default());
                #[allow(clippy::cast_precision_loss)]
                let fraction = (low >> 11) as f64 / (1u64 << 53) as f64;
                fraction < ratio
            }
            None => rand::random::<f64>() < ratio,
        };
        match self {
            Self::AlwaysOn => true,
            Self::AlwaysOff => false,
            Self::TraceIdRatio(r) => ratio(r),
            Self::ParentBased(root) => match parent {
                Some(p) => p.is_sampled(),
                None => match root {
                    Root::AlwaysOn => true,
                    Root::AlwaysOff => false,
                    Root::TraceIdRatio(r) => ratio(r),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn the_standard_sampler_variables_parse_and_bad_ones_are_refused() {
        assert_eq!(
            Sampler::parse(None, None),
            Ok(Sampler::ParentBased(Root::AlwaysOn))
        );
        assert_eq!(
            Sampler::parse(Some("parentbased_traceidratio"), Some("0.01")),
            Ok(Sampler::ParentBased(Root::TraceIdRatio(0.01)))
        );
        assert_eq!(
            Sampler::parse(Some("traceidratio"), None),
            Ok(Sampler::TraceIdRatio(1.0))
        );
        assert_eq!(
            Sampler::parse(Some("always_off"), Some("x")),
            Ok(Sampler::AlwaysOff)
        );
        assert!(Sampler::parse(Some("traceidratio"), Some("1.5")).is_err());
        assert!(Sampler::parse(Some("traceidratio"), Some("half")).is_err());
        assert!(Sampler::parse(Some("jaeger_remote"), None).is_err());
    }

    #[test]
    fn a_parent_based_sampler_follows_the_parent_and_samples_roots_at_its_ratio() {
        let parent = |sampled: bool| {
            SpanContext::new(
                TraceId::from_bytes([7; 16]),
                SpanId::from_bytes([1; 8]),
                if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            )
        };
        let sampler = Sampler::ParentBased(Root::TraceIdRatio(0.01));
        assert!(sampler.keeps(Some(&parent(true))));
        assert!(!sampler.keeps(Some(&parent(false))));
        let kept = (0..100_000).filter(|_| sampler.keeps(None)).count();
        assert!((500..1_500).contains(&kept), "about 1 % of roots: {kept}");
        assert!(!Sampler::AlwaysOff.keeps(Some(&parent(true))));
        assert!(Sampler::AlwaysOn.keeps(Some(&parent(false))));
    }
}
