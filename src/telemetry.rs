//! Logging and tracing: text or JSON lines on stderr filtered by `RUST_LOG` (default `info`), and,
//! when an OTLP endpoint is configured, every span exported over OTLP/gRPC. Without an endpoint no
//! OpenTelemetry layer is installed at all, so tracing costs what plain logging costs.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

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
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
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
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
