//! Graceful shutdown: readiness turns 503 and an in-flight request finishes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use loja_runtime::{Readiness, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

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
    let readiness = Readiness::new(None);
    let app = server::app("drain", routes, readiness.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        app,
        readiness.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(30),
    ));

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
