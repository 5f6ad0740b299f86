//! One request through the real gateway binary to an upstream service is one
//! trace: an in-test OTLP/gRPC receiver gets the gateway's server and client
//! spans and the upstream's server span, linked parent to child.
//! Also checks the `healthcheck` argument of the binary.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use loja_runtime::config::{Drain, HttpLimits, LogFormat};
use loja_runtime::{Readiness, healthcheck, server, telemetry};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A span as received, with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

struct Receiver(mpsc::UnboundedSender<Received>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    AnyValue::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    let _ = self.0.send(Received {
                        service: service.clone(),
                        name: span.name,
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent_span_id: span.parent_span_id,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Receiver(tx)))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, rx)
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn healthcheck_exit_code(listen: SocketAddr) -> i32 {
    Command::new(env!("CARGO_BIN_EXE_api-gateway"))
        .arg("healthcheck")
        .env("LISTEN_ADDR", listen.to_string())
        .status()
        .unwrap()
        .code()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_the_gateway_is_one_trace_across_services() {
    let (collector, mut spans) = receiver().await;
    let endpoint = format!("http://{collector}");

    // The upstream: a runtime service in this process, exporting to the receiver.
    let provider = telemetry::tracer_provider("pedidos", Some(&endpoint)).unwrap();
    let subscriber =
        telemetry::subscriber("pedidos", LogFormat::Text, "info", &provider, std::io::sink)
            .unwrap();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let routes = Router::new().route("/api/v1/orders/{id}", get(|| async { "order" }));
    let readiness = Readiness::new(None);
    let upstream_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = upstream_listener.local_addr().unwrap();
    tokio::spawn(server::serve(
        upstream_listener,
        server::app("pedidos", routes, readiness.clone()),
        readiness,
        std::future::pending(),
        Drain {
            delay: Duration::ZERO,
            timeout: Duration::from_secs(1),
        },
        HttpLimits::default(),
    ));

    // The gateway: the real binary, configured through its environment.
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port().await).parse().unwrap();
    assert_eq!(healthcheck_exit_code(listen), 1, "nothing listens yet");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_api-gateway"))
        .env("LISTEN_ADDR", listen.to_string())
        .env("GATEWAY_ROUTES", "/api/v1/orders=pedidos")
        .env("PEDIDOS_URL", format!("http://{upstream}"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if healthcheck::probe(listen, Duration::from_secs(1)) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the gateway never became ready");
    assert_eq!(healthcheck_exit_code(listen), 0);

    let mut stream = tokio::net::TcpStream::connect(listen).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /api/v1/orders/42 HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("order"), "{answer}");

    // SIGTERM: the gateway drains, and its telemetry guard flushes the spans.
    let status = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(gateway.stdout.as_mut().unwrap(), &mut out).unwrap();
        (gateway.wait().unwrap(), out)
    })
    .await
    .unwrap();
    assert!(output.0.success(), "gateway exit: {:?}", output.0);
    let flush = provider.clone();
    tokio::task::spawn_blocking(move || flush.force_flush())
        .await
        .unwrap()
        .unwrap();

    let mut received = Vec::new();
    let find = |received: &[Received], service: &str, name: &str| {
        received
            .iter()
            .find(|s| s.service == service && s.name == name)
            .cloned()
    };
    let (gw_server, gw_client, up_server) = loop {
        let span = tokio::time::timeout(Duration::from_secs(20), spans.recv())
            .await
            .unwrap_or_else(|_| panic!("the expected spans never arrived: {received:#?}"))
            .unwrap();
        received.push(span);
        if let (Some(a), Some(b), Some(c)) = (
            find(&received, "api-gateway", "GET /api/v1/orders/{id}"),
            find(&received, "api-gateway", "GET pedidos"),
            find(&received, "pedidos", "GET /api/v1/orders/{id}"),
        ) {
            break (a, b, c);
        }
    };
    assert!(
        gw_server.parent_span_id.is_empty(),
        "the gateway started the trace"
    );
    assert_eq!(gw_client.trace_id, gw_server.trace_id);
    assert_eq!(up_server.trace_id, gw_server.trace_id);
    assert_eq!(gw_client.parent_span_id, gw_server.span_id);
    assert_eq!(up_server.parent_span_id, gw_client.span_id);

    // The gateway's access log line names the same trace.
    let trace_hex: String = gw_server
        .trace_id
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let access = output
        .1
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["path"] == "/api/v1/orders/42")
        .unwrap_or_else(|| panic!("no access line in {}", output.1));
    assert_eq!(access["trace_id"], trace_hex.as_str());
    assert_eq!(access["service"], "api-gateway");

    assert_eq!(healthcheck_exit_code(listen), 1, "the gateway is gone");
}
