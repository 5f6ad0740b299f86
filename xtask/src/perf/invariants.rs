//! What must hold after any deploy or failure, checked in the services'
//! databases once the platform has settled: orders final, stock accounted
//! for, payments matched to orders, no hold left, no acknowledged order lost.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use loja_testkit::pg::query;

/// One invariant and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub holds: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

fn url(server: &str, database: &str) -> String {
    format!("{server}/{database}")
}

/// A count from a one-value query.
fn count(server: &str, database: &str, sql: &str) -> Result<u64> {
    let rows = query(&url(server, database), sql)?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// The first column of every row.
fn ids(server: &str, database: &str, sql: &str) -> Result<BTreeSet<String>> {
    Ok(query(&url(server, database), sql)?
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect())
}

const UNFINISHED: &str = "SELECT count(*) FROM orders WHERE status = 'pending' OR compensation_pending OR cancel_requested";
const HELD: &str = "SELECT count(*) FROM reservations WHERE status = 'held'";

/// Waits until no order is unfinished and no reservation is held (the
/// reconciler and the TTL sweeper have done their work); returns how long it took.
pub fn settle(server: &str, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        // PostgreSQL may still be recovering from its crash.
        let unfinished = count(server, "pedidos", UNFINISHED);
        let held = count(server, "estoque", HELD);
        if let (Ok(0), Ok(0)) = (&unfinished, &held) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!(
                "not settled after {timeout:?}: unfinished orders {unfinished:?}, held reservations {held:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Checks every invariant. `confirmed_answers` is how many 201s clients got.
pub fn check(server: &str, confirmed_answers: u64) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    let mut add = |name: &str, holds: bool, detail: String| {
        checks.push(Check {
            name: name.into(),
            holds,
            detail,
        })
    };

    let by_status = query(
        &url(server, "pedidos"),
        "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status",
    )?;
    let unfinished = count(server, "pedidos", UNFINISHED)?;
    let statuses: Vec<String> = by_status.iter().map(|r| r.join(" ")).collect();
    add(
        "every order is in a final state",
        unfinished == 0,
        format!("{unfinished} unfinished; {}", statuses.join(", ")),
    );

    let products = count(server, "estoque", "SELECT count(*) FROM products")?;
    let unbalanced = count(
        server,
        "estoque",
        "SELECT count(*) FROM products p WHERE p.received <> p.available + \
           (SELECT COALESCE(sum(i.quantity), 0) FROM reservation_items i \
              JOIN reservations r USING (order_id) \
             WHERE i.sku = p.sku AND r.status IN ('held', 'committed'))",
    )?;
    let sold = count(
        server,
        "estoque",
        "SELECT COALESCE(sum(i.quantity), 0) FROM reservation_items i \
           JOIN reservations r USING (order_id) WHERE r.status = 'committed'",
    )?;
    add(
        "stock sold + available = received",
        unbalanced == 0,
        format!("{unbalanced} of {products} products off; {sold} units sold"),
    );

    let held = count(server, "estoque", HELD)?;
    add("no hold is left", held == 0, format!("{held} held"));

    let confirmed = ids(
        server,
        "pedidos",
        "SELECT id FROM orders WHERE status = 'confirmed'",
    )?;
    let approved = ids(
        server,
        "pagamentos",
        "SELECT order_id FROM payments WHERE status = 'approved'",
    )?;
    let refunded = count(
        server,
        "pagamentos",
        "SELECT count(*) FROM payments WHERE status = 'refunded'",
    )?;
    let orphans = approved.difference(&confirmed).count();
    add(
        "every approved payment belongs to a confirmed order or is refunded",
        orphans == 0,
        format!(
            "{} approved, {orphans} without a confirmed order, {refunded} refunded",
            approved.len()
        ),
    );

    let committed = ids(
        server,
        "estoque",
        "SELECT order_id FROM reservations WHERE status = 'committed'",
    )?;
    let unpaid = confirmed.difference(&approved).count();
    let unsold = confirmed.difference(&committed).count();
    let sold_unconfirmed = committed.difference(&confirmed).count();
    add(
        "every confirmed order is paid once and its stock sold; no stock sold otherwise",
        unpaid == 0 && unsold == 0 && sold_unconfirmed == 0,
        format!(
            "{} confirmed: {unpaid} without an approved payment, {unsold} without committed stock; \
             {sold_unconfirmed} committed reservations of unconfirmed orders",
            confirmed.len()
        ),
    );

    add(
        "no acknowledged order is lost",
        confirmed.len() as u64 >= confirmed_answers,
        format!(
            "{confirmed_answers} answered 201 to clients, {} confirmed in pedidos",
            confirmed.len()
        ),
    );
    Ok(checks)
}
