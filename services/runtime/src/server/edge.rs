//! The rules every request head must follow before any route sees it: a
//! head no larger than `max_header_bytes` (431), and RFC 9112's `Host` rule
//! for HTTP/1.1 (400 without exactly one valid `Host`).

use axum::extract::Request;
use axum::http::uri::Authority;
use axum::http::{StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::HttpLimits;
use crate::problem::{Code, Problem};

/// The middleware. The connection puts its [`HttpLimits`] in the request
/// extensions; a request without them did not come over a connection (a
/// router driven in-process, as tests do) and has no head on the wire.
pub async fn request_head(req: Request, next: Next) -> Response {
    if let Some(limits) = req.extensions().get::<HttpLimits>()
        && let Err(problem) = check(&req, limits.max_header_bytes)
    {
        return problem.into_response();
    }
    next.run(req).await
}

fn check(req: &Request, max_header_bytes: usize) -> Result<(), Problem> {
    if head_bytes(req) > max_header_bytes {
        return Err(Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::HeadersTooLarge,
            format!("the request line and header fields exceed {max_header_bytes} bytes"),
        ));
    }
    if req.version() == Version::HTTP_11 {
        let mut hosts = req.headers().get_all(header::HOST).iter();
        let valid = match (hosts.next(), hosts.next()) {
            (Some(host), None) => host.to_str().is_ok_and(is_host),
            _ => false,
        };
        if !valid {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                Code::ValidationFailed,
                "an HTTP/1.1 request needs exactly one Host header with a valid host",
            ));
        }
    }
    Ok(())
}

/// `uri-host [":" port]` (RFC 9110 section 7.2): an authority without user
/// information.
fn is_host(value: &str) -> bool {
    !value.contains('@')
        && value
            .parse::<Authority>()
            .is_ok_and(|a| a.as_str() == value)
}

/// The size of the request line and header fields as sent (`name: value`
/// and CRLF per field).
fn head_bytes(req: &Request) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + " HTTP/1.1\r\n".len();
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::HeaderValue;

    fn request(version: Version, hosts: &[&str]) -> Request {
        let mut req = Request::builder()
            .uri("/x")
            .version(version)
            .body(Body::empty())
            .unwrap();
        for host in hosts {
            req.headers_mut()
                .append(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        req
    }

    #[test]
    fn http_1_1_needs_exactly_one_valid_host() {
        let status = |req: &Request| check(req, 16_384).err().map(|p| p.status);
        assert_eq!(status(&request(Version::HTTP_11, &["shop.example"])), None);
        assert_eq!(
            status(&request(Version::HTTP_11, &["127.0.0.1:8080"])),
            None
        );
        for hosts in [&[][..], &["a", "b"], &["a b"], &["a/b"], &["a@b"]] {
            assert_eq!(
                status(&request(Version::HTTP_11, hosts)),
                Some(StatusCode::BAD_REQUEST),
                "{hosts:?}"
            );
        }
        // HTTP/1.0 predates the rule.
        assert_eq!(status(&request(Version::HTTP_10, &[])), None);
    }

    #[test]
    fn a_head_over_the_limit_is_431() {
        let mut req = request(Version::HTTP_11, &["h"]);
        req.headers_mut()
            .insert("x-big", HeaderValue::from_str(&"a".repeat(2000)).unwrap());
        assert!(check(&req, 4096).is_ok());
        let problem = check(&req, 1024).unwrap_err();
        assert_eq!(problem.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(problem.code, Code::HeadersTooLarge);
    }
}
