//! The log line format of API.md, in text and JSON, with the trace id of the
//! request the line belongs to.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use loja_runtime::config::LogFormat;
use loja_runtime::{Readiness, db, server, telemetry};
use serde_json::Value;
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

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

/// Serves one traced request to an app whose handler logs from inside a SQL
/// span, and returns every line written.
async fn lines(format: LogFormat) -> Vec<String> {
    let capture = Capture::default();
    let provider = telemetry::tracer_provider("svc-log", None).unwrap();
    let subscriber =
        telemetry::subscriber("svc-log", format, "info", &provider, capture.clone()).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);
    let routes = Router::new().route(
        "/api/v1/things/{id}",
        get(|| async {
            db::instrument("SELECT 1", async {
                tracing::info!(rows = 1, "queried");
            })
            .await;
            "ok"
        }),
    );
    let app = server::app("svc-log", routes, Readiness::new(None));
    let response = app
        .oneshot(
            Request::get("/api/v1/things/7")
                .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = capture.0.lock().unwrap().clone();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `2024-01-01 12:00:00`: digits where digits belong.
fn is_timestamp(s: &str) -> bool {
    s.len() == 19
        && s.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test]
async fn text_lines_have_time_level_service_message_and_trace_id() {
    let lines = lines(LogFormat::Text).await;
    let access = lines
        .iter()
        .find(|l| l.contains("GET /api/v1/things/7"))
        .unwrap_or_else(|| panic!("no access line in {lines:?}"));
    let parts: Vec<&str> = access.splitn(4, " | ").collect();
    assert_eq!(parts.len(), 4, "{access}");
    assert!(is_timestamp(parts[0]), "{access}");
    assert_eq!(parts[1], "INFO");
    assert_eq!(parts[2], "svc-log");
    let message = parts[3]
        .strip_prefix("GET /api/v1/things/7 200 ")
        .unwrap_or_else(|| panic!("{access}"));
    let (ms, trace) = message.split_once("ms trace_id=").unwrap();
    let (whole, tenths) = ms.split_once('.').unwrap();
    assert!(
        whole.parse::<u64>().is_ok() && tenths.len() == 1,
        "{access}"
    );
    assert_eq!(trace, TRACE);

    let inner = lines
        .iter()
        .find(|l| l.contains("| queried"))
        .unwrap_or_else(|| panic!("no handler line in {lines:?}"));
    assert!(
        inner.ends_with(&format!(
            "| INFO | svc-log | queried rows=1 trace_id={TRACE}"
        )),
        "{inner}"
    );
}

#[tokio::test]
async fn json_lines_have_the_same_fields() {
    let lines = lines(LogFormat::Json).await;
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let access = parsed
        .iter()
        .find(|v| v["path"] == "/api/v1/things/7")
        .unwrap_or_else(|| panic!("no access line in {lines:?}"));
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["service"], "svc-log");
    assert_eq!(access["trace_id"], TRACE);
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);
    assert!(access["duration_ms"].as_f64().is_some());
    assert!(
        access["message"]
            .as_str()
            .unwrap()
            .starts_with("GET /api/v1/things/7 200 ")
    );
    // Microseconds: `cargo xtask trace` nests requests by their time spans.
    let ts = access["timestamp"].as_str().unwrap();
    let fraction = ts.split_once('.').map(|(_, f)| f.trim_end_matches('Z'));
    assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    assert_eq!(fraction.map(str::len), Some(6), "{ts}");
    let inner = parsed.iter().find(|v| v["message"] == "queried").unwrap();
    assert_eq!(inner["trace_id"], TRACE);
    assert_eq!(inner["rows"], 1);
}
