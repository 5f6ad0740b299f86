//! Forwarding one public request to the service that owns its path.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, header};
use axum::response::IntoResponse;
use loja_runtime::Problem;
use loja_runtime::json::{is_json, payload_too_large, unsupported_media_type};
use loja_runtime::metrics::UNMATCHED;
use loja_runtime::observe::RouteLabel;
use loja_runtime::server::PeerAddr;

use crate::Gateway;
use crate::path::resolve;

/// Headers that describe one connection, not the message (RFC 9110 section
/// 7.6.1); they never cross the gateway. `host` is replaced by the
/// upstream's own and passed on as `x-forwarded-host`.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
];

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The gateway's only handler: everything that is not a probe lands here.
pub async fn forward(State(gateway): State<Gateway>, req: Request) -> axum::response::Response {
    let resolved = match resolve(req.uri().path()) {
        Ok(path) => path,
        Err(_) => return no_route(),
    };
    let Some(route) = gateway.routes.find(&resolved) else {
        return no_route();
    };
    let label = RouteLabel(gateway.templates.label(&resolved));
    let peer = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip());
    let limited = peer.and_then(|peer| {
        let client = gateway.limits.client(peer, req.headers());
        gateway.limits.check(&route.prefix, client)
    });
    let mut response = match limited {
        Some(response) => response,
        None => match proxy(&gateway, route, resolved, req).await {
            Ok(response) => response,
            Err(problem) => problem.into_response(),
        },
    };
    response.extensions_mut().insert(label);
    response
}

async fn proxy(
    gateway: &Gateway,
    route: &crate::routes::Route,
    path: String,
    req: Request,
) -> Result<axum::response::Response, Problem> {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > gateway.max_body_bytes as u64) {
        return Err(payload_too_large());
    }
    let may_have_body =
        declared.is_some_and(|n| n > 0) || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if needs_json(&parts.method) && may_have_body && !is_json(&parts.headers) {
        return Err(unsupported_media_type());
    }
    let body = axum::body::to_bytes(body, gateway.max_body_bytes)
        .await
        .map_err(|err| {
            if is_length_limit(&err) {
                payload_too_large()
            } else {
                tracing::debug!(error = %err, "reading a request body failed");
                Problem::malformed("the request body could not be read")
            }
        })?;
    if needs_json(&parts.method) && !body.is_empty() && !is_json(&parts.headers) {
        return Err(unsupported_media_type());
    }

    let mut headers = parts.headers;
    let client_host = headers.remove(header::HOST);
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    let peer = parts
        .extensions
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip());
    if let Some(ip) = peer {
        let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip.to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    if let Some(host) = client_host.or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    }) {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }

    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut upstream_req = axum::http::Request::new(body);
    *upstream_req.method_mut() = parts.method;
    *upstream_req.uri_mut() = path_and_query
        .parse()
        .map_err(|_| Problem::not_found("no route for this path"))?;
    *upstream_req.headers_mut() = headers;

    let answer = route.upstream.send(upstream_req).await?;
    let (mut parts, body) = answer.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Methods whose body, when present, must be JSON on every public route.
fn needs_json(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

fn is_length_limit(err: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// 404 for paths no route covers, counted as `unmatched` so that probes of
/// random paths cannot grow the metric's label set.
fn no_route() -> axum::response::Response {
    let mut response = Problem::not_found("no public route for this path").into_response();
    response
        .extensions_mut()
        .insert(RouteLabel(UNMATCHED.into()));
    response
}
