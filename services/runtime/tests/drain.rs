//! Graceful shutdown: readiness turns 503, answers close their connection
//! while the listener still accepts, then in-flight requests finish; and a
//! successor process can bind the same port.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use loja_runtime::config::{Drain, HttpLimits};
use loja_runtime::{Readiness, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};

/// A service serving `routes` on a free loopback port until `stop` is sent.
struct Serving {
    addr: std::net::SocketAddr,
    readiness: Readiness,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn serving(routes: Router, drain: Drain) -> Serving {
    let readiness = Readiness::new(None);
    let app = server::app("drain", routes, readiness.clone());
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        app,
        readiness.clone(),
        async move {
            let _ = stopped.await;
        },
        drain,
        HttpLimits::default(),
    ));
    Serving {
        addr,
        readiness,
        stop,
        server,
    }
}

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let routes = {
        let (entered, release) = (entered.clone(), release.clone());
        Router::new().route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                release.notified().await;
                "finished"
            }),
        )
    };
    let Serving {
        addr,
        readiness,
        stop,
        server,
    } = serving(
        routes,
        Drain {
            delay: Duration::ZERO,
            timeout: Duration::from_secs(30),
        },
    );

    let client = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    });
    entered.notified().await;

    stop.send(()).unwrap();
    while !readiness.is_draining() {
        tokio::task::yield_now().await;
    }
    assert!(
        readiness.check().await.is_err(),
        "/ready answers 503 while draining"
    );
    assert!(!server.is_finished(), "the server waits for the request");

    release.notify_one();
    let answer = client.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    server.await.unwrap().unwrap();
}

/// One HTTP/1.1 exchange on a new connection; the whole answer as text.
async fn exchange(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    let mut answer = String::new();
    // Keep-alive answers leave the connection open: read what arrived.
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .map_err(std::io::Error::other)??;
    answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    Ok(answer)
}

#[tokio::test]
async fn while_draining_answers_close_their_connection_then_the_listener_closes() {
    let routes = Router::new().route("/hello", get(|| async { "hello" }));
    let Serving {
        addr,
        readiness,
        stop,
        server,
    } = serving(
        routes,
        Drain {
            delay: Duration::from_millis(800),
            timeout: Duration::from_secs(5),
        },
    );

    let before = exchange(addr, "/hello").await.unwrap();
    assert!(before.starts_with("HTTP/1.1 200"), "{before}");
    assert!(
        !before.to_ascii_lowercase().contains("connection: close"),
        "{before}"
    );
    let ready = exchange(addr, "/ready").await.unwrap();
    assert!(
        ready.contains(&format!("\"pid\":{}", std::process::id())),
        "/ready names the process: {ready}"
    );

    stop.send(()).unwrap();
    while !readiness.is_draining() {
        tokio::task::yield_now().await;
    }
    let during = exchange(addr, "/hello").await.unwrap();
    assert!(during.starts_with("HTTP/1.1 200"), "still served: {during}");
    assert!(
        during.to_ascii_lowercase().contains("connection: close"),
        "{during}"
    );
    let unready = exchange(addr, "/ready").await.unwrap();
    assert!(unready.starts_with("HTTP/1.1 503"), "{unready}");

    server.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed once the server returned"
    );
}

#[tokio::test]
async fn a_successor_binds_the_same_port_while_the_first_still_listens() {
    let first = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = first.local_addr().unwrap();
    let second = server::bind(addr).expect("SO_REUSEPORT lets a successor share the port");
    assert_eq!(second.local_addr().unwrap(), addr);
    drop(first);
    let accept = tokio::spawn(async move { second.accept().await.map(|_| ()) });
    TcpStream::connect(addr).await.unwrap();
    accept.await.unwrap().unwrap();
}
