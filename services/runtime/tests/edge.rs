//! What a careless or hostile client can make a server hold, over real
//! sockets: slow and idle connections close, excess connections get a 503,
//! oversized heads a 431, and HTTP/1.1 requests break no `Host` rule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use loja_runtime::config::{Drain, HttpLimits};
use loja_runtime::{Readiness, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMITS: HttpLimits = HttpLimits {
    header_read_timeout_ms: 600,
    idle_timeout_ms: 800,
    max_connections: 4,
    max_header_bytes: 4096,
};

/// A server with `limits` on a free loopback port, for the test's lifetime.
fn serving(limits: HttpLimits) -> SocketAddr {
    let readiness = Readiness::new(None);
    let routes = Router::new().route("/x", get(|| async { "ok" }));
    let app = server::app("edge", routes, readiness.clone());
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let drain = Drain {
        delay: Duration::ZERO,
        timeout: Duration::from_secs(1),
    };
    tokio::spawn(server::serve(
        listener,
        app,
        readiness,
        std::future::pending(),
        drain,
        limits,
    ));
    addr
}

/// Reads until the server closes the connection; what it sent, and when.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    assert!(
        read.is_ok(),
        "the connection was still open after {within:?}"
    );
    (String::from_utf8_lossy(&seen).into_owned(), start.elapsed())
}

async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    until_closed(&mut stream, Duration::from_secs(5)).await.0
}

#[tokio::test]
async fn a_connection_that_never_sends_closes_after_the_idle_timeout() {
    let addr = serving(LIMITS);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let (_, after) = until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(
        after >= Duration::from_millis(700),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_closes_after_the_idle_timeout() {
    let addr = serving(LIMITS);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let (seen, after) = until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(
        after >= Duration::from_millis(700),
        "closed after {after:?}"
    );
}

#[tokio::test]
async fn a_head_sent_one_line_at_a_time_is_cut_off() {
    let addr = serving(LIMITS);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /x HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    // Every line arrives well within the idle timeout; the head never ends.
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream
                .write_all(format!("x-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let cut = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    assert!(cut.is_ok(), "the server was still reading after 3 s");
    assert!(start.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn connections_over_the_cap_get_a_503_problem_at_once() {
    let addr = serving(LIMITS);
    let mut held = Vec::new();
    for _ in 0..LIMITS.max_connections {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them before the next one arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let seen = exchange(addr, b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n").await;
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
    assert!(seen.contains("retry-after: 1"), "{seen}");
    assert!(seen.contains(r#""code":"overloaded""#), "{seen}");
    // A place freed is a place for the next client.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = exchange(
        addr,
        b"GET /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
}

#[tokio::test]
async fn an_oversized_head_is_431_however_large() {
    let addr = serving(LIMITS);
    for size in [5_000, 500_000] {
        let request = format!(
            "GET /x HTTP/1.1\r\nhost: t\r\nx-big: {}\r\nconnection: close\r\n\r\n",
            "a".repeat(size)
        );
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The server may close before reading everything.
        let _ = stream.write_all(request.as_bytes()).await;
        let (seen, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
        assert!(seen.starts_with("HTTP/1.1 431"), "{size}: {seen}");
    }
}

#[tokio::test]
async fn http_1_1_without_one_host_is_400() {
    let addr = serving(LIMITS);
    for head in [
        "GET /x HTTP/1.1\r\nconnection: close\r\n\r\n",
        "GET /x HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
    ] {
        let seen = exchange(addr, head.as_bytes()).await;
        assert!(seen.starts_with("HTTP/1.1 400"), "{head:?}: {seen}");
        assert!(seen.contains("application/problem+json"), "{seen}");
    }
    // HTTP/1.0 predates the rule.
    let seen = exchange(addr, b"GET /x HTTP/1.0\r\n\r\n").await;
    assert!(seen.starts_with("HTTP/1.0 200"), "{seen}");
}
