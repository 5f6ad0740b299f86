//! The one small HTTP client of xtask: a blocking HTTP/1.0 exchange on a
//! fresh connection (the answer is close-delimited, never chunked), enough
//! to probe `/ready`, seed a catalog or place an order. Loads come from wrk.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

/// An answer: its status code and its body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// The body as JSON; `null` when it is empty.
    pub fn json(&self) -> Result<Value> {
        if self.body.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.body)
            .with_context(|| format!("a body that is not JSON: {}", self.body))
    }
}

/// One request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, such as `/api/v1/products?limit=1`.
    pub path: &'a str,
    pub headers: Vec<(&'a str, String)>,
    /// Sent as `application/json` when present.
    pub json: Option<String>,
    /// How long the whole answer may take (3 s when zero).
    pub timeout: Duration,
}

impl<'a> Request<'a> {
    /// `GET path`.
    pub fn get(path: &'a str) -> Self {
        Request {
            method: "GET",
            path,
            ..Request::default()
        }
    }

    /// `method path` with a JSON body.
    pub fn json(method: &'a str, path: &'a str, body: impl ToString) -> Self {
        Request {
            method,
            path,
            json: Some(body.to_string()),
            ..Request::default()
        }
    }

    /// Adds `Authorization: Bearer token`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.headers
            .push(("Authorization", format!("Bearer {token}")));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sends the request to `authority` (`host:port`).
    pub fn send(&self, authority: &str) -> Result<Answer> {
        let addr: SocketAddr = authority
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} names no address"))?;
        let timeout = if self.timeout.is_zero() {
            Duration::from_secs(3)
        } else {
            self.timeout
        };
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .with_context(|| format!("connecting to {authority}"))?;
        stream.set_read_timeout(Some(timeout))?;
        let mut head = format!(
            "{} {} HTTP/1.0\r\nHost: {authority}\r\n",
            self.method, self.path
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = self.json.as_deref().unwrap_or("");
        if self.json.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut raw = Vec::new();
        // An answer whose sender failed to close the connection still counts.
        let read = stream.take(16 << 20).read_to_end(&mut raw);
        let answer = parse(&raw);
        match (answer, read) {
            (Ok(answer), _) => Ok(answer),
            (Err(err), Err(io)) => Err(io).context(err),
            (Err(err), Ok(_)) => Err(err),
        }
        .with_context(|| format!("{} {} on {authority}", self.method, self.path))
    }
}

/// Status code and body of a raw HTTP answer.
pub fn parse(raw: &[u8]) -> Result<Answer> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no complete answer head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status code in the answer")?;
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

/// `GET path` on a loopback port with short timeouts, or `None` when nothing
/// answers: the probe of `/ready`.
pub fn probe(port: u16, path: &str) -> Option<Answer> {
    Request::get(path).send(&format!("127.0.0.1:{port}")).ok()
}

/// `host:port` of an `http://host:port[/...]` URL.
pub fn authority(url: &str) -> Result<&str> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// URLs are supported"))?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_status_and_body() {
        let a = parse(b"HTTP/1.0 201 Created\r\ncontent-type: application/json\r\n\r\n{\"a\":1}")
            .unwrap();
        assert_eq!(a.status, 201);
        assert_eq!(a.json().unwrap()["a"], 1);
        assert!(parse(b"HTTP/1.0 200 OK\r\n").is_err());
        assert_eq!(
            parse(b"HTTP/1.0 204 No Content\r\n\r\n")
                .unwrap()
                .json()
                .unwrap(),
            Value::Null
        );
    }

    #[test]
    fn only_http_urls_have_an_authority() {
        assert_eq!(
            authority("http://127.0.0.1:8080/x").unwrap(),
            "127.0.0.1:8080"
        );
        assert!(authority("https://a").is_err());
    }
}
