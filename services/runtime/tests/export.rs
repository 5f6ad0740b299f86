//! An unreachable collector costs one warning, not one per batch, and
//! requests are served as usual meanwhile.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use loja_runtime::config::LogFormat;
use loja_runtime::{Readiness, server, telemetry};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_reported_once() {
    let refusing = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let endpoint = format!("http://{refusing}");
    let capture = Capture::default();
    let provider = telemetry::tracer_provider("svc-export", Some(&endpoint)).unwrap();
    let subscriber = telemetry::subscriber(
        "svc-export",
        LogFormat::Text,
        "info",
        &provider,
        capture.clone(),
    )
    .unwrap();
    // Global: the exporter reports from the batch processor's own thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = server::app("svc-export", Router::new(), Readiness::new(None));
    for _ in 0..2 {
        for _ in 0..3 {
            let response = app
                .clone()
                .oneshot(Request::get("/health").body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let flush = provider.clone();
        let result = tokio::task::spawn_blocking(move || flush.force_flush())
            .await
            .unwrap();
        assert!(result.is_err(), "nothing can be exported");
    }

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let warnings = text
        .lines()
        .filter(|l| l.contains("| WARN |") && l.contains("trace export failed"))
        .count();
    assert_eq!(warnings, 1, "{text}");
    assert_eq!(text.matches("GET /health 200").count(), 6, "{text}");
    assert!(!text.contains("BatchSpanProcessor"), "{text}");
}
