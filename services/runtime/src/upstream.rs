//! Calls to other services: a pooled HTTP/1.1 keep-alive client over a list of
//! base URLs (`<NAME>_URL`, comma-separated), round-robin, that skips an
//! address refusing connections, bounds every call by a timeout (or the
//! current request's remaining budget, when shorter), and carries the current
//! trace to the callee in `traceparent` and that budget in `x-deadline-ms`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, Version, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::problem::Problem;
use crate::{admission, telemetry};

/// Why a call to another service got no answer. Both variants mean the
/// callee's answer is unknown to the caller, never that it said no.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No address accepted a connection, or the connection broke before a
    /// complete answer arrived. Maps to 503 `upstream_unavailable`.
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        /// The service called.
        service: Arc<str>,
        /// What went wrong, for logs.
        detail: String,
    },
    /// No complete answer within the timeout. Maps to 504 `upstream_timeout`.
    #[error("{service} did not answer within {timeout:?}")]
    Timeout {
        /// The service called.
        service: Arc<str>,
        /// The timeout that passed.
        timeout: Duration,
    },
}

impl UpstreamError {
    /// True for [`UpstreamError::Timeout`]: the request may have been processed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, UpstreamError::Timeout { .. })
    }
}

impl From<UpstreamError> for Problem {
    fn from(err: UpstreamError) -> Self {
        tracing::warn!(error = %err, "upstream call failed");
        match err {
            UpstreamError::Unavailable { service, .. } => {
                Problem::unavailable(format!("{service} is unavailable, try again shortly"))
            }
            UpstreamError::Timeout { service, .. } => {
                Problem::timeout(format!("{service} did not answer in time"))
            }
        }
    }
}

/// One base URL: `http://host:port` with an optional path prefix.
#[derive(Debug, Clone)]
struct Base {
    scheme: Scheme,
    authority: Authority,
    prefix: String,
}

/// A pooled client for one service's replicas. Cheap to clone; clones share
/// the connection pool and the round-robin position.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    service: Arc<str>,
    bases: Vec<Base>,
    next: AtomicUsize,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("service", &self.inner.service)
            .field("bases", &self.inner.bases)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// The environment variable holding `service`'s addresses: `ESTOQUE_URL` for
/// `estoque`, `ORDER_HISTORY_URL` for `order-history`.
pub fn env_var(service: &str) -> String {
    let mut name: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    name.push_str("_URL");
    name
}

impl Upstream {
    /// A client for `service` whose addresses come from `<SERVICE>_URL`.
    pub fn from_env(service: &str, timeout: Duration) -> anyhow::Result<Self> {
        let var = env_var(service);
        let urls = std::env::var(&var).with_context(|| format!("{var} is not set"))?;
        Self::new(service, &urls, timeout).with_context(|| format!("{var}={urls}"))
    }

    /// A client for `service` at `urls`: comma-separated `http://host:port`
    /// base URLs. Every call, retries included, is bounded by `timeout`.
    pub fn new(service: &str, urls: &str, timeout: Duration) -> anyhow::Result<Self> {
        let bases = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(parse_base)
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!bases.is_empty(), "no base URL for {service}");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Upstream {
            inner: Arc::new(Inner {
                service: service.into(),
                bases,
                next: AtomicUsize::new(0),
                timeout,
                client,
            }),
        })
    }

    /// The service this client calls.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Sends `req`, whose URI is a path and query (`/internal/payments`), to
    /// the next replica. A replica that refuses the connection is skipped for
    /// the next one: the request never reached it, so this is safe for every
    /// method. A connection closed before any answer is repeated on the next
    /// replica only when the request is repeatable (idempotent method or an
    /// `Idempotency-Key`). The whole exchange, body included, is bounded by
    /// the timeout.
    pub async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, UpstreamError> {
        let (parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let span = tracing::info_span!(
            "upstream",
            otel.name = %format_args!("{} {}", parts.method, self.inner.service),
            otel.kind = "client",
            otel.status_code = Empty,
            peer.service = &*self.inner.service,
            http.request.method = %parts.method,
            url.path = path.path(),
            server.address = Empty,
            http.response.status_code = Empty,
        );
        let mut headers = parts.headers;
        telemetry::inject_context(&span.context(), &mut headers);
        // The callee learns how long its caller waits: this call's timeout,
        // or what is left of the current request's own budget if less.
        let budget = admission::budget(self.inner.timeout);
        headers.insert(
            admission::DEADLINE_HEADER.clone(),
            HeaderValue::from(budget.as_millis() as u64),
        );
        let call = self.attempts(parts.method, path, headers, body, &span);
        let timed_out = || UpstreamError::Timeout {
            service: self.inner.service.clone(),
            timeout: budget,
        };
        let result = if budget.is_zero() {
            // The caller has given up already: the call is not even sent.
            Err(timed_out())
        } else {
            match tokio::time::timeout(budget, call)
                .instrument(span.clone())
                .await
            {
                Ok(result) => result,
                Err(_) => Err(timed_out()),
            }
        };
        match &result {
            Ok(response) => {
                span.record("http.response.status_code", response.status().as_u16());
                if response.status().is_server_error() {
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }

    async fn attempts(
        &self,
        method: Method,
        path: PathAndQuery,
        headers: HeaderMap,
        body: Bytes,
        span: &tracing::Span,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let bases = &self.inner.bases;
        let first = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let repeatable = is_repeatable(&method, &headers);
        let mut refused = Vec::new();
        // Every replica once; one more try for a single address (behind a
        // Kubernetes Service the next connection reaches another pod).
        for i in 0..bases.len().max(2) {
            let base = &bases[(first + i) % bases.len()];
            span.record("server.address", base.authority.as_str());
            let uri = base.uri(&path).map_err(|err| self.unavailable(err))?;
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = method.clone();
            *req.uri_mut() = uri;
            *req.version_mut() = Version::HTTP_11;
            *req.headers_mut() = headers.clone();
            match self.inner.client.request(req).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let bytes = body
                        .collect()
                        .await
                        .map_err(|err| self.unavailable(format!("reading the answer: {err}")))?
                        .to_bytes();
                    return Ok(Response::from_parts(parts, bytes));
                }
                Err(err) if err.is_connect() => {
                    tracing::debug!(address = %base.authority, error = %err, "connection refused, trying the next address");
                    refused.push(format!("{}: {}", base.authority, error_chain(&err)));
                }
                Err(err) if repeatable && closed_before_answer(&err) => {
                    tracing::debug!(address = %base.authority, error = %err, "connection closed before an answer, repeating on the next address");
                    refused.push(format!("{}: {}", base.authority, error_chain(&err)));
                }
                Err(err) => return Err(self.unavailable(error_chain(&err))),
            }
        }
        Err(self.unavailable(refused.join("; ")))
    }

    fn unavailable(&self, detail: impl std::fmt::Display) -> UpstreamError {
        UpstreamError::Unavailable {
            service: self.inner.service.clone(),
            detail: detail.to_string(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Response<Bytes>, UpstreamError> {
        let req = Request::get(path)
            .body(Bytes::new())
            .map_err(|err| self.unavailable(err))?;
        self.send(req).await
    }

    /// `POST path` with `body` as JSON (`content-type: application/json`).
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let json = serde_json::to_vec(body).map_err(|err| self.unavailable(err))?;
        let req = Request::post(path)
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(Bytes::from(json))
            .map_err(|err| self.unavailable(err))?;
        self.send(req).await
    }
}

/// Parses an upstream answer's body as JSON.
pub fn json<T: serde::de::DeserializeOwned>(response: &Response<Bytes>) -> serde_json::Result<T> {
    serde_json::from_slice(response.body())
}

impl Base {
    fn uri(&self, path: &PathAndQuery) -> Result<Uri, axum::http::Error> {
        let pq = if self.prefix.is_empty() {
            path.clone()
        } else {
            PathAndQuery::try_from(format!("{}{}", self.prefix, path.as_str()))?
        };
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
    }
}

fn parse_base(url: &str) -> anyhow::Result<Base> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    let scheme = uri
        .scheme()
        .cloned()
        .with_context(|| format!("{url:?} has no scheme"))?;
    anyhow::ensure!(
        scheme == Scheme::HTTP,
        "{url:?}: only http:// is supported between services"
    );
    let authority = uri
        .authority()
        .cloned()
        .with_context(|| format!("{url:?} has no host"))?;
    Ok(Base {
        scheme,
        authority,
        prefix: uri.path().trim_end_matches('/').to_owned(),
    })
}

/// A request that may be sent twice without a second effect: an idempotent
/// method, or one carrying an `Idempotency-Key` that the callee deduplicates.
fn is_repeatable(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    ) || headers.contains_key("idempotency-key")
}

/// True when a pooled connection was closed or reset by the replica before any
/// answer arrived: what a replica that is shutting down does to an idle
/// keep-alive connection at the instant a request is written to it.
fn closed_before_answer(err: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled())
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// An error and its sources on one line: hyper's top-level message alone
/// ("client error (Connect)") says too little.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_follow_the_contract() {
        assert_eq!(env_var("estoque"), "ESTOQUE_URL");
        assert_eq!(env_var("order-history"), "ORDER_HISTORY_URL");
    }

    #[test]
    fn base_urls_are_validated() {
        assert!(Upstream::new("x", "http://a:1, http://b:2/", Duration::from_secs(1)).is_ok());
        assert!(Upstream::new("x", "", Duration::from_secs(1)).is_err());
        assert!(Upstream::new("x", "https://a:1", Duration::from_secs(1)).is_err());
        assert!(Upstream::new("x", "a:1", Duration::from_secs(1)).is_err());
    }
}
