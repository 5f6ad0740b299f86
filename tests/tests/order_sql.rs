//! The ceiling of `cargo xtask bench` replays `xtask/bench/order.sql` as
//! "the SQL of one order". This holds the file to the services: the
//! statements PostgreSQL runs for one order placed through pedidos and for
//! one replayed order are the same, one for one and in the same order, where
//! a parameter (`$1`) of the services' may stand for any expression of the
//! script's. Changing a statement in a service without the script (or the
//! other way round) fails here.

use std::time::Duration;

use anyhow::Result;
use loja_testkit::pg::TempCluster;
use loja_tests::{Platform, Settings, card, order_body};
use xtask::Workspace;
use xtask::perf::bench::ceiling::{Length, Replay, Scratch};
use xtask::perf::orders::{STOCK, price_cents};

/// Every statement the server logged after byte `from` of its log, for the
/// databases `keep` accepts: `(database, statement)` in log order, with
/// whitespace folded.
fn statements(log: &str, from: usize, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in log[from..].lines() {
        // A new entry: `<time> UTC [<pid>] <database> LOG:  statement: <sql>`
        // (simple protocol) or `... LOG:  execute <name>: <sql>` (prepared).
        if let Some((head, message)) = line.split_once(" LOG:  ") {
            out.extend(current.take());
            let database = head.rsplit(' ').next().unwrap_or_default().to_owned();
            let sql = match message.strip_prefix("execute ") {
                Some(named) => named.split_once(": ").map(|(_, sql)| sql),
                None => message.strip_prefix("statement: "),
            };
            if let Some(sql) = sql.filter(|_| keep(&database)) {
                current = Some((database, sql.to_owned()));
            }
        } else if line.starts_with('\t')
            && let Some((_, sql)) = current.as_mut()
        {
            sql.push(' ');
            sql.push_str(line.trim());
        } else if !line.starts_with(char::is_whitespace) {
            // DETAIL lines (the bound parameters) and the like end a statement.
            out.extend(current.take());
        }
    }
    out.extend(current);
    out.into_iter()
        .map(|(db, sql)| (db, fold(&sql)))
        .filter(|(_, sql)| !sql.is_empty())
        .collect()
}

fn fold(sql: &str) -> String {
    sql.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches(';')
        .to_owned()
}

/// True when `script` is `service` with each `$n` of the service's replaced by some expression.
fn matches(service: &str, script: &str) -> bool {
    let pattern: Vec<String> = regex::Regex::new(r"\$\d+")
        .unwrap()
        .split(service)
        .map(regex::escape)
        .collect();
    regex::Regex::new(&format!("^{}$", pattern.join("(.+?)")))
        .unwrap()
        .is_match(script)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ceiling_replays_exactly_the_statements_the_services_run_for_an_order() -> Result<()> {
    let cluster =
        TempCluster::start_with(&[("log_statement", "all"), ("log_line_prefix", "%m [%p] %d ")])?;
    let server = cluster
        .url("postgres")
        .trim_end_matches("/postgres")
        .to_owned();
    // No background pass may run while the order does.
    let p = Platform::start_with(Settings {
        reconcile_interval_secs: 3600,
        sweep_interval_secs: 3600,
        server: Some(server.clone()),
        ..Settings::default()
    })
    .await?;
    let sku = "BENCH-0001";
    p.product(sku, i64::from(price_cents(1)), STOCK as i64)
        .await?;

    let log_path = cluster.log_path();
    let log = move || std::fs::read_to_string(&log_path).unwrap_or_default();
    let before = log().len();
    let body = order_body("bench-1", &[(sku, 1)], card("tok_visa"));
    let (status, order) = p.order(&body, Some("order-sql-1")).await?;
    assert_eq!(status, 201, "{order}");
    // The server writes its log asynchronously.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let services = statements(&log(), before, |db| db.starts_with("loja_t_"));

    let ws = Workspace::find()?;
    let replayed = tokio::task::spawn_blocking(move || -> Result<Vec<(String, String)>> {
        let scratch = Scratch::create(&ws, &server)?;
        let before = log().len();
        let replay = Replay {
            connections: 1,
            length: Length::Orders(1),
            lines: Some(1),
            card: Some(true),
        };
        let ran = scratch.replay(&replay, || {})?;
        anyhow::ensure!(
            ran.transactions == 1 && ran.failed == 0,
            "the replay failed: {ran:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
        let name = scratch.name();
        let replayed = statements(&log(), before, |db| db == name);
        scratch.drop_database()?;
        Ok(replayed)
    })
    .await??;

    let listing = |list: &[(String, String)]| -> String {
        list.iter()
            .map(|(db, sql)| format!("  {db}: {sql}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let context = format!(
        "the services ran:\n{}\nthe replay ran:\n{}",
        listing(&services),
        listing(&replayed)
    );
    assert!(services.len() > 10, "{context}");
    assert_eq!(
        services.len(),
        replayed.len(),
        "statement counts differ\n{context}"
    );
    for (n, ((db, service), (_, script))) in services.iter().zip(&replayed).enumerate() {
        assert!(
            matches(service, script),
            "statement {n} differs:\n  {db}: {service}\n  replay: {script}\n{context}"
        );
    }
    Ok(())
}

#[test]
fn a_parameter_stands_for_any_expression_and_nothing_else_differs() {
    assert!(matches(
        "UPDATE t SET a = $1 WHERE id = $2",
        "UPDATE t SET a = a + 1 WHERE id = md5($3::text)::uuid"
    ));
    assert!(!matches(
        "UPDATE t SET a = $1 WHERE id = $2",
        "UPDATE t SET b = 1 WHERE id = 2"
    ));
    assert!(matches("BEGIN", "BEGIN"));
    assert!(!matches("BEGIN", "COMMIT"));
}
