//! Logs and traces: one `tracing` subscriber that writes log lines (text or
//! JSON) and turns spans into OpenTelemetry spans, exported over OTLP/gRPC
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Trace ids exist even without a collector: every service always runs an
//! OpenTelemetry tracer provider, so log lines carry `trace_id` and outgoing
//! calls carry `traceparent` whether or not spans leave the process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{CommonConfig, LogFormat};
use crate::logfmt::LineLayer;

/// Keeps the tracer provider alive; dropping it (or [`TelemetryGuard::shutdown`])
/// flushes the spans still queued for export.
#[must_use = "dropping the guard shuts telemetry down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Flushes queued spans and stops the exporter. Runs the blocking flush on
    /// a blocking thread so the runtime can still drive the gRPC connection.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Without a runtime handle (or on a current-thread runtime) a
            // blocking flush could wait on the very thread that drives the
            // exporter, so it runs on its own thread.
            let _ = std::thread::spawn(move || provider.shutdown()).join();
        }
    }
}

/// Installs the process-wide subscriber and tracer provider for `service`:
/// log lines in `config.log_format` filtered by `config.log_level`, spans
/// exported to `config.otlp_endpoint` if set, W3C `traceparent` propagation.
/// Call once, early in `main`, inside the tokio runtime.
pub fn init(service: &'static str, config: &CommonConfig) -> anyhow::Result<TelemetryGuard> {
    let provider = tracer_provider(service, config.otlp_endpoint.as_deref())?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let subscriber = subscriber(
        service,
        config.log_format,
        &config.log_level,
        &provider,
        std::io::stdout,
    )?;
    tracing::subscriber::set_global_default(subscriber)
        .context("a tracing subscriber was already installed")?;
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(endpoint = %endpoint, "exporting traces over OTLP/gRPC");
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// A tracer provider for `service`; with `otlp_endpoint` its spans go to that
/// collector through a batch exporter, without it they only give ids.
pub fn tracer_provider(
    service: &'static str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<SdkTracerProvider> {
    let resource = Resource::builder().with_service_name(service).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(3))
            .build()
            .with_context(|| format!("OTEL_EXPORTER_OTLP_ENDPOINT={endpoint} is not usable"))?;
        builder = builder.with_batch_exporter(WarnOnce::new(exporter, endpoint));
    }
    Ok(builder.build())
}

/// The subscriber `init` installs, built separately so tests can capture the
/// lines (`writer`) and choose the tracer provider.
pub fn subscriber<W>(
    service: &'static str,
    format: LogFormat,
    log_level: &str,
    provider: &SdkTracerProvider,
    writer: W,
) -> anyhow::Result<impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter_directives(log_level))
        .with_context(|| format!("LOG_LEVEL={log_level:?} is not a valid log filter"))?;
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_threads(false)
        .with_location(false);
    let lines = LineLayer::new(service, format, writer);
    Ok(tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(lines))
}

/// The user's filter plus quiet defaults for chatty dependencies, unless the
/// user named them. OpenTelemetry's own diagnostics are silenced because
/// [`WarnOnce`] reports export trouble once instead of once per batch.
fn filter_directives(log_level: &str) -> String {
    let mut directives = log_level.trim().to_owned();
    for (target, level) in [
        ("opentelemetry", "off"),
        ("opentelemetry_sdk", "off"),
        ("opentelemetry-otlp", "off"),
        ("sqlx", "warn"),
        ("h2", "warn"),
        ("tonic", "warn"),
        ("hyper", "warn"),
    ] {
        if !log_level.contains(target) {
            directives.push_str(&format!(",{target}={level}"));
        }
    }
    directives
}

/// An exporter that reports a failing collector once (and its recovery once)
/// instead of on every batch: an unreachable collector never hurts serving.
#[derive(Debug)]
struct WarnOnce<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
}

impl<E> WarnOnce<E> {
    fn new(inner: E, endpoint: &str) -> Self {
        WarnOnce {
            inner,
            endpoint: endpoint.to_owned(),
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: SpanExporter> SpanExporter for WarnOnce<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        match &result {
            Err(err) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                endpoint = %self.endpoint,
                error = %err,
                "trace export failed; spans are dropped until the collector answers (reported once)"
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = %self.endpoint, "trace export works again");
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The trace id of the current span as 32 lowercase hex digits, if any.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Reads a W3C `traceparent`/`tracestate` from incoming headers. Without
/// one, the returned context is empty and the span started from it is a root.
pub fn extract(headers: &HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes the current span's `traceparent` (and `tracestate`) into `headers`,
/// so the callee continues this trace.
pub fn inject(headers: &mut HeaderMap) {
    inject_context(&tracing::Span::current().context(), headers);
}

/// Writes `cx`'s `traceparent` (and `tracestate`) into `headers`.
pub fn inject_context(cx: &opentelemetry::Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_added_only_for_targets_the_user_did_not_name() {
        let d = filter_directives("info,sqlx=debug");
        assert!(d.starts_with("info,sqlx=debug,"));
        assert!(d.contains("opentelemetry=off"));
        assert!(!d.contains("sqlx=warn"));
    }

    #[test]
    fn traceparent_round_trips_through_headers() {
        let mut incoming = HeaderMap::new();
        incoming.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = extract(&incoming);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let mut outgoing = HeaderMap::new();
        inject_context(&cx, &mut outgoing);
        assert_eq!(outgoing["traceparent"], incoming["traceparent"]);
    }
}
