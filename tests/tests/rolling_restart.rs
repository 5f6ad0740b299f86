//! `cargo xtask restart --rolling` on a platform started like `cargo xtask up`
//! with a single replica of every service: while clients keep ordering and
//! reading through the gateway, every process is replaced by a successor on
//! the same port, and no request fails. A successor that cannot become ready
//! is stopped and its predecessor keeps serving.

mod native;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use loja_tests::{card, order_body};
use serde_json::json;
use xtask::native::{plan, restart};

/// Requests sent and failed by the clients, and the failures' descriptions.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
}

/// A closed loop of orders (with Idempotency-Keys, as clients send them) and
/// product reads through the gateway until `stop`.
async fn client(n: usize, gw: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let http = reqwest::Client::new();
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let outcome = if i % 2 == 0 {
            http.get(format!("{gw}/api/v1/products/ROLL-1"))
                .send()
                .await
                .map(|r| (r.status().as_u16(), 200))
        } else {
            let body = order_body(&format!("c-{n}"), &[("ROLL-1", 1)], card("tok_visa"));
            http.post(format!("{gw}/api/v1/orders"))
                .header("idempotency-key", format!("roll-{n}-{i}"))
                .json(&body)
                .send()
                .await
                .map(|r| (r.status().as_u16(), 201))
        };
        tally.sent.fetch_add(1, Ordering::SeqCst);
        let failure = match outcome {
            Ok((status, expected)) if status == expected => None,
            Ok((status, _)) => Some(format!("status {status}")),
            Err(err) => Some(format!("{err:?}")),
        };
        if let Some(failure) = failure {
            tally.failed.fetch_add(1, Ordering::SeqCst);
            tally.failures.lock().unwrap().push(failure);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_process_is_replaced_under_load_without_a_failed_request() -> Result<()> {
    let platform = native::start().await?;
    let gw = platform.gateway.clone();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{gw}/api/v1/products"))
        .bearer_auth(&platform.admin_token)
        .json(&json!({"sku": "ROLL-1", "name": "Rolo", "price_cents": 100, "stock": 1_000_000}))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let before: Vec<(String, u32)> = platform
        .state
        .instances()?
        .into_iter()
        .map(|i| (i.name(), i.pid))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..4)
        .map(|n| tokio::spawn(client(n, gw.clone(), stop.clone(), tally.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let replaced = {
        let (model, state, launches) = (
            platform.model().clone(),
            platform.state.clone(),
            platform.launches.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<Vec<restart::Replaced>> {
            restart::allow_queue_handover();
            let mut replaced = Vec::new();
            for service in plan::start_order(&model)? {
                let timeout = Duration::from_secs(30);
                replaced.extend(restart::rolling(
                    &model,
                    &state,
                    &launches,
                    &service.name,
                    timeout,
                )?);
            }
            Ok(replaced)
        })
        .await??
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await?;
    }

    assert_eq!(replaced.len(), 4, "one replica of each service");
    for r in &replaced {
        let old = before.iter().find(|(name, _)| name == &r.name).map(|b| b.1);
        assert_eq!(r.old_pid, old, "{} replaced its recorded process", r.name);
        assert_ne!(Some(r.new_pid), old);
    }
    let sent = tally.sent.load(Ordering::SeqCst);
    let failed = tally.failed.load(Ordering::SeqCst);
    assert!(sent > 20, "the clients kept going ({sent} requests)");
    assert_eq!(
        failed,
        0,
        "{failed} of {sent} requests failed: {:?}",
        tally.failures.lock().unwrap()
    );
    // The records name the successors, which serve.
    for i in platform
        .state
        .instances()?
        .iter()
        .filter(|i| i.service != "prometheus")
    {
        assert!(
            replaced.iter().any(|r| r.new_pid == i.pid),
            "{} recorded",
            i.name()
        );
        assert!(i.is_alive());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successor_that_cannot_become_ready_leaves_its_predecessor_serving() -> Result<()> {
    let platform = native::start().await?;
    let old = platform
        .state
        .instances()?
        .into_iter()
        .find(|i| i.service == "estoque")
        .unwrap();
    let mut broken = platform
        .launches
        .iter()
        .find(|l| l.service == "estoque")
        .unwrap()
        .clone();
    // A database nobody listens on: the successor never becomes ready.
    let closed = loja_tests::free_port();
    broken.env.insert(
        "DATABASE_URL".into(),
        format!("postgres://estoque:native@127.0.0.1:{closed}/estoque"),
    );
    let state = platform.state.clone();
    let err = tokio::task::spawn_blocking(move || {
        restart::replace(
            &state,
            &broken,
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
    })
    .await?
    .expect_err("the successor cannot be ready");
    assert!(
        err.to_string().contains("the old one keeps serving"),
        "{err:#}"
    );

    let still = platform
        .state
        .instances()?
        .into_iter()
        .find(|i| i.service == "estoque")
        .unwrap();
    assert_eq!(still.pid, old.pid, "the record still names the old process");
    assert!(still.is_alive());
    let r = reqwest::get(format!("{}/api/v1/products", platform.gateway)).await?;
    assert_eq!(r.status(), 200, "estoque still answers through the gateway");
    Ok(())
}
