//! Prometheus metrics: the HTTP request counter and latency histogram of
//! API.md plus process metrics, served as text on `GET /metrics`.

use std::sync::LazyLock;

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Endpoint label of requests that matched no route: a fixed value, so that
/// scanners probing random paths cannot create unbounded label sets.
pub const UNMATCHED: &str = "unmatched";

/// Method label of a request whose method is none of the standard ones
/// (RFC 9110 and PATCH): a client cannot mint label values by inventing
/// methods.
pub const OTHER_METHOD: &str = "_other";

/// The `method` label of a request: its standard method, else
/// [`OTHER_METHOD`].
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or(OTHER_METHOD, Method::as_str)
}

/// The process-wide registry and the HTTP instruments every service shares.
pub struct HttpMetrics {
    registry: Registry,
    /// `http_requests_total{service,method,endpoint,status}`.
    pub requests: IntCounterVec,
    /// `http_request_duration_seconds{service,method,endpoint}`.
    pub duration: HistogramVec,
}

static METRICS: LazyLock<HttpMetrics> = LazyLock::new(HttpMetrics::new);

/// The shared instruments; services register their own metrics on
/// [`HttpMetrics::registry`] so `/metrics` serves them too.
pub fn http() -> &'static HttpMetrics {
    &METRICS
}

impl HttpMetrics {
    fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered."),
            &["service", "method", "endpoint", "status"],
        )
        .expect("valid counter definition");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving a request to sending its response head.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["service", "method", "endpoint"],
        )
        .expect("valid histogram definition");
        registry
            .register(Box::new(requests.clone()))
            .expect("first registration");
        registry
            .register(Box::new(duration.clone()))
            .expect("first registration");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("first registration");
        HttpMetrics {
            registry,
            requests,
            duration,
        }
    }

    /// The registry `/metrics` serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one answered request and its duration. `method` comes from
    /// [`method_label`] and `endpoint` from a route table, so every label
    /// takes its value from a bounded set.
    pub fn observe(
        &self,
        service: &str,
        method: &'static str,
        endpoint: &str,
        status: u16,
        seconds: f64,
    ) {
        let buf = itoa_status(status);
        let status = std::str::from_utf8(&buf).unwrap_or("000");
        self.requests
            .with_label_values(&[service, method, endpoint, status])
            .inc();
        self.duration
            .with_label_values(&[service, method, endpoint])
            .observe(seconds);
    }

    /// The text exposition of every registered metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A status code as three ASCII digits without allocating.
fn itoa_status(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// The Prometheus text format of this process's metrics:
/// `http_requests_total{service,method,endpoint,status}` and
/// `http_request_duration_seconds`, labelled with route templates.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_up_method_is_one_label_whatever_its_spelling() {
        for made_up in ["FOO", "BREW", &"X".repeat(8000)] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), OTHER_METHOD);
        }
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
    }

    #[test]
    fn made_up_methods_add_no_series() {
        let metrics = HttpMetrics::new();
        for made_up in ["FOO", "BAR", "BAZ"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            metrics.observe("t", method_label(&method), UNMATCHED, 405, 0.001);
        }
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .count();
        assert_eq!(series, 1, "{text}");
        assert!(text.contains(r#"method="_other""#));
    }
}

#[utoipa::path(get, path = "/metrics", tag = "probes", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format.", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
pub async fn handler() -> Response {
    let mut response = http().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
