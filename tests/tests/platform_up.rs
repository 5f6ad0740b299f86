//! The whole platform started by the code path of `cargo xtask up` (on free
//! ports, in a temporary state directory) and used through the gateway only,
//! as a client would: a shopping session end to end, then the metrics and
//! logs an operator would look at.

mod native;

use anyhow::{Context, Result};
use loja_tests::{card, order_body};
use serde_json::{Value, json};
use xtask::native::{access, trace};

/// A trace id this test chooses, so it can be looked for in every log.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread")]
async fn a_shopping_session_through_the_gateway_of_a_platform_started_like_xtask_up() -> Result<()>
{
    let platform = native::start().await?;
    let gw = platform.gateway.clone();
    let token = platform.admin_token.clone();
    let http = reqwest::Client::new();

    // The catalog, written with the admin token.
    for (sku, price, stock) in [("CAM-001", 4990, 5), ("CAN-002", 1500, 1)] {
        let r = http
            .post(format!("{gw}/api/v1/products"))
            .bearer_auth(&token)
            .json(&json!({"sku": sku, "name": sku, "price_cents": price, "stock": stock}))
            .send()
            .await?;
        assert_eq!(r.status(), 201, "creating {sku}: {}", r.text().await?);
    }

    // A confirmed order, in a trace this test names.
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let send_order = |key: &'static str| {
        http.post(format!("{gw}/api/v1/orders"))
            .header("idempotency-key", key)
            .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
            .json(&body)
            .send()
    };
    let first = send_order("session-1").await?;
    assert_eq!(first.status(), 201);
    let order: Value = first.json().await?;
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total_cents"], 9980);

    // The same key and body: the first response again, no second order.
    let replay = send_order("session-1").await?;
    assert_eq!(replay.status(), 201);
    let replayed: Value = replay.json().await?;
    assert_eq!(replayed["id"], order["id"]);

    // Declined and out of stock.
    let declined = http
        .post(format!("{gw}/api/v1/orders"))
        .json(&order_body(
            "c-42",
            &[("CAN-002", 1)],
            card("tok_chargeDeclined"),
        ))
        .send()
        .await?;
    assert_eq!(declined.status(), 402);
    let declined: Value = declined.json().await?;
    assert_eq!(declined["code"], "payment_declined");
    let short = http
        .post(format!("{gw}/api/v1/orders"))
        .json(&order_body(
            "c-7",
            &[("CAN-002", 2)],
            json!({"method": "pix"}),
        ))
        .send()
        .await?;
    assert_eq!(short.status(), 409);
    assert_eq!(short.json::<Value>().await?["code"], "insufficient_stock");

    // Stock after the session: 5 - 2 sold; the declined hold was returned.
    let stock = |sku: &'static str| {
        let (http, gw) = (http.clone(), gw.clone());
        async move {
            let p: Value = http
                .get(format!("{gw}/api/v1/products/{sku}"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(p["stock"].as_i64().context("stock")?)
        }
    };
    assert_eq!(stock("CAM-001").await?, 3);
    assert_eq!(stock("CAN-002").await?, 1);

    // Cancelling returns the stock and refunds the payment.
    let id = order["id"].as_str().context("order id")?;
    let cancelled: Value = http
        .post(format!("{gw}/api/v1/orders/{id}/cancel"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock("CAM-001").await?, 5);
    let payment_id = order["payment"]["id"].as_str().context("payment id")?;
    let payment: Value = http
        .get(format!("{gw}/api/v1/payments/{payment_id}"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(payment["status"], "refunded");

    // Every service counted its part of the session, by route template.
    let expected = [
        ("api-gateway", "endpoint=\"/api/v1/orders\""),
        ("api-gateway", "endpoint=\"/api/v1/orders/{id}/cancel\""),
        ("pedidos", "endpoint=\"/api/v1/orders\""),
        ("estoque", "endpoint=\"/internal/reservations\""),
        ("pagamentos", "endpoint=\"/internal/payments\""),
    ];
    for (service, endpoint) in expected {
        let metrics = http
            .get(format!(
                "http://127.0.0.1:{}/metrics",
                platform.port_of(service).context("not running")?
            ))
            .send()
            .await?
            .text()
            .await?;
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("http_requests_total{") && l.contains(endpoint)),
            "{service} did not count {endpoint}:\n{metrics}"
        );
    }

    // Every metric the generated alerts and SLO rules read is one the
    // services expose, with the bucket bounds the latency objectives name.
    let mut exposed = String::new();
    for service in ["api-gateway", "pedidos", "estoque", "pagamentos"] {
        let port = platform.port_of(service).context("not running")?;
        let url = format!("http://127.0.0.1:{port}/metrics");
        exposed.push_str(&http.get(url).send().await?.text().await?);
    }
    for (metric, le) in metrics_the_rules_read()? {
        assert!(
            exposed
                .lines()
                .any(|l| l.starts_with(&format!("{metric}{{"))
                    && le
                        .as_ref()
                        .is_none_or(|le| l.contains(&format!("le=\"{le}\"")))),
            "no service exposes {metric} (le {le:?}), which a generated rule reads"
        );
    }

    // The order's way, from the logs alone: gateway, then pedidos, then
    // estoque (hold), pagamentos (charge) and estoque (commit), each under
    // the request that made it; then its replay, answered by pedidos alone.
    let (hops, events) = access::read(&platform.state.root().join("logs"))?;
    let mine: Vec<access::Hop> = hops
        .iter()
        .filter(|h| h.trace_id == TRACE_ID)
        .cloned()
        .collect();
    let tree = trace::render(TRACE_ID, &mine, &events);
    let shape: Vec<String> = tree
        .lines()
        .skip(1)
        .filter(|l| !l.trim_start().starts_with('·'))
        .map(|l| {
            let hop = l.split_once(" ms  ").map_or(l, |(_, rest)| rest);
            let instance = hop.split_whitespace().next().unwrap_or_default();
            format!("{}{instance}", &hop[..hop.len() - hop.trim_start().len()])
        })
        .collect();
    assert_eq!(
        shape,
        [
            "api-gateway-1",
            "  pedidos-1",
            "    estoque-1",
            "    pagamentos-1",
            "    estoque-1",
            "api-gateway-1",
            "  pedidos-1"
        ],
        "{tree}"
    );

    // Every call the traffic shows is one loja.toml declares, and every
    // declared call was made.
    let graph = access::CallGraph::of(platform.model(), &access::calls(&hops));
    assert!(graph.undeclared.is_empty(), "{graph:?}");
    assert!(graph.unseen.is_empty(), "{graph:?}");
    // Held against a loja.toml without pedidos -> pagamentos, the same
    // traffic shows that call as undeclared.
    let mut narrower = platform.model().clone();
    for s in &mut narrower.services {
        s.calls
            .retain(|c| !(s.name == "pedidos" && c == "pagamentos"));
    }
    let graph = access::CallGraph::of(&narrower, &access::calls(&hops));
    assert_eq!(graph.undeclared, ["pedidos -> pagamentos"], "{graph:?}");

    // The order's trace id is in the log lines of all four services.
    assert_eq!(platform.instances.len(), 4);
    for instance in &platform.instances {
        let log = std::fs::read_to_string(platform.state.log_path(&instance.name()))?;
        assert!(
            log.contains(TRACE_ID),
            "{} logged nothing for trace {TRACE_ID}:\n{}",
            instance.name(),
            xtask::util::tail_text(&log, 10)
        );
    }
    Ok(())
}

/// The series names (with the `le` they select, if any) that the rules of
/// `generated/observability` read, but for recording rules' own names,
/// kube-state-metrics' `kube_*` and Prometheus's own `up`.
fn metrics_the_rules_read() -> Result<Vec<(String, Option<String>)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated/observability");
    let selector = regex::Regex::new(r#"([a-z_][a-z0-9_:]*)\{(.*?)\}\["#)?;
    let le = regex::Regex::new(r#"le="([^"]+)""#)?;
    let mut found = std::collections::BTreeSet::new();
    for file in ["alerts.yml", "slos.yml"] {
        let text = std::fs::read_to_string(dir.join(file))?;
        for c in selector.captures_iter(&text) {
            let name = &c[1];
            if name.contains(':') || name.starts_with("kube_") || name == "up" {
                continue;
            }
            let bound = le.captures(&c[2]).map(|l| l[1].to_string());
            found.insert((name.to_string(), bound));
        }
    }
    anyhow::ensure!(
        found.len() >= 3,
        "too few metrics found in the rules: {found:?}"
    );
    Ok(found.into_iter().collect())
}
