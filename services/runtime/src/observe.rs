//! The per-request layer every service shares: request id, a server span that
//! continues the caller's trace, Prometheus counters, one access log line, and
//! the request body limit.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::DEFAULT_MAX_BODY_BYTES;
use crate::json::payload_too_large;
use crate::logfmt::ACCESS_TARGET;
use crate::metrics::{self, UNMATCHED};
use crate::problem::PROBLEM_JSON;
use crate::telemetry;

/// The request id header: the client's value is kept, otherwise one is
/// generated; it is forwarded to upstreams and returned on every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request extension carrying the configured body limit (`MAX_BODY_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Response extension naming the endpoint label (and span name) of a request
/// that matched no axum route but that the handler classified itself, such as
/// the gateway's route prefixes. Without it such requests count as `unmatched`.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub Arc<str>);

/// The request id the layer assigned, as a request extension for handlers.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// State of the layer: the service name used in labels.
#[derive(Clone)]
pub struct Observe {
    service: &'static str,
}

impl Observe {
    /// The layer's state for `service`.
    pub fn new(service: &'static str) -> Self {
        Observe { service }
    }
}

/// The middleware itself; see the module documentation.
pub async fn observe(State(observe): State<Observe>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = metrics::method_label(req.method());
    let path = loggable(req.uri().path());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let endpoint = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);

    let request_id = request_id(req.headers().get(&X_REQUEST_ID));
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id.clone());
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {endpoint}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = endpoint,
        url.path = %path,
        http.response.status_code = Empty,
        request_id = request_id.to_str().unwrap_or_default(),
    );
    // A malformed or missing traceparent yields an empty context: the span
    // then starts a new trace, as W3C Trace Context asks.
    let _ = span.set_parent(telemetry::extract(req.headers()));

    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(DEFAULT_MAX_BODY_BYTES, |l| l.0);
    let mut response = if route.is_some() && declared_length(&req).is_some_and(|n| n > limit) {
        // A matched route can refuse a declared oversize body before reading
        // it. Unmatched requests (the gateway's) read it through the limit so
        // that their handler can label the 413 with its own route.
        payload_too_large().into_response()
    } else {
        let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
        next.run(req).instrument(span.clone()).await
    };

    // axum's own extractors answer an oversize body with a plain-text 413;
    // every error body here is a problem.
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem(&response) {
        let extensions = std::mem::take(response.extensions_mut());
        response = payload_too_large().into_response();
        *response.extensions_mut() = extensions;
    }

    let cx = span.context();
    let otel_span = cx.span();
    let label = response.extensions().get::<RouteLabel>().cloned();
    let endpoint = match &label {
        Some(RouteLabel(label)) => {
            // The span has started, so its name is changed on the
            // OpenTelemetry span itself (recording `otel.name` now is ignored).
            otel_span.update_name(format!("{method} {label}"));
            span.record("http.route", &**label);
            &**label
        }
        None => endpoint,
    };
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    let elapsed = start.elapsed();
    metrics::http().observe(
        observe.service,
        method,
        endpoint,
        status,
        elapsed.as_secs_f64(),
    );
    // The access line is logged outside the span, naming its trace itself:
    // as a span event it would only repeat what the span already records.
    let sc = otel_span.span_context();
    let trace_id = if sc.is_valid() {
        sc.trace_id().to_string()
    } else {
        String::new()
    };
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: ACCESS_TARGET, parent: None, trace_id, method, path = %path, status, duration_ms = ms, "{method} {path} {status} {ms:.1}ms");
    } else {
        tracing::info!(target: ACCESS_TARGET, parent: None, trace_id, method, path = %path, status, duration_ms = ms, "{method} {path} {status} {ms:.1}ms");
    }
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id);
    response
}

/// The client's request id when it is a reasonable token, else a new UUID.
fn request_id(client: Option<&HeaderValue>) -> HeaderValue {
    match client {
        Some(v)
            if !v.is_empty()
                && v.len() <= 128
                && v.as_bytes().iter().all(|b| b.is_ascii_graphic()) =>
        {
            v.clone()
        }
        _ => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .expect("a UUID is a valid header value"),
    }
}

/// Longest path an access line repeats: what a client sends is logged, but
/// not without bound.
const LOGGED_PATH_CHARS: usize = 512;

fn loggable(path: &str) -> String {
    match path.char_indices().nth(LOGGED_PATH_CHARS) {
        Some((end, _)) => format!("{}…", &path[..end]),
        None => path.to_owned(),
    }
}

fn declared_length(req: &Request) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes())
}
