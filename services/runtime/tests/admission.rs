//! Admission control in process: beyond the bound a request is answered
//! 503 `overloaded` with `Retry-After` at once, while admitted ones still
//! run and the probes still answer; a request whose caller's budget is spent
//! does no work; a handler sees its caller's deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use http_body_util::BodyExt;
use loja_runtime::admission::{self, Admission};
use loja_runtime::{Readiness, server};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// A service whose `/work` holds until `release` gets a permit, admitting `limit`.
fn service(limit: usize, release: Arc<Semaphore>, started: Arc<AtomicUsize>) -> Router {
    let routes = Router::new().route(
        "/work",
        get(move || {
            let (release, started) = (release.clone(), started.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                let _held = release.acquire().await.unwrap();
                "done"
            }
        }),
    );
    let app = server::app("admission", routes, Readiness::new(None));
    admission::with_admission(app, Admission::new(limit))
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn wait_for(started: &AtomicUsize, n: usize) {
    while started.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn beyond_the_bound_a_request_is_shed_at_once_with_retry_after() {
    let release = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let app = service(2, release.clone(), started.clone());
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(app.clone().oneshot(get_req("/work"))))
        .collect();
    wait_for(&started, 2).await;

    // The two admitted requests still hold: the third is not queued behind them.
    let shed = app.clone().oneshot(get_req("/work")).await.unwrap();
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        shed.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: serde_json::Value =
        serde_json::from_slice(&shed.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "overloaded");
    assert_eq!(body["status"], 503);
    assert_eq!(
        started.load(Ordering::SeqCst),
        2,
        "the shed request did no work"
    );

    // The probes are never shed.
    for probe in ["/health", "/ready", "/metrics"] {
        let r = app.clone().oneshot(get_req(probe)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{probe}");
    }

    release.add_permits(2);
    for h in held {
        assert_eq!(h.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    // Once they finished, a request is admitted again.
    release.add_permits(1);
    let again = app.oneshot(get_req("/work")).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_whose_caller_gave_up_does_no_work() {
    let release = Arc::new(Semaphore::new(10));
    let started = Arc::new(AtomicUsize::new(0));
    let app = service(8, release, started.clone());
    let req = Request::get("/work")
        .header("x-deadline-ms", "0")
        .body(Body::empty())
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(started.load(Ordering::SeqCst), 0);
    let metrics = app.oneshot(get_req("/metrics")).await.unwrap();
    let text = metrics.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains(r#"admission_refused_total{reason="deadline_passed",service="admission"} "#),
        "{text}"
    );
}

#[tokio::test]
async fn a_handler_sees_the_deadline_its_caller_sent() {
    let routes = Router::new().route(
        "/left",
        get(|| async {
            let left = admission::deadline().map(|d| d.saturating_duration_since(Instant::now()));
            format!(
                "{:?}",
                left.map(|d| d.as_millis() > 1000 && d.as_millis() <= 1500)
            )
        }),
    );
    let app = server::app("admission", routes, Readiness::new(None));
    let req = Request::get("/left")
        .header("x-deadline-ms", "1500")
        .body(Body::empty())
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"Some(true)");
    let r = app.oneshot(get_req("/left")).await.unwrap();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"None");
}
