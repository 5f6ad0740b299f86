//! What must hold after any load, deploy or failure, checked in the
//! services' databases once the platform has settled: orders final, stock
//! accounted for, payments matched to orders, no hold left, and every order a
//! client saw confirmed kept whole. The databases are read once into a
//! [`Snapshot`]; each invariant is a named function of it, so each can be
//! shown to fail on a broken state. Anything unreadable fails, never reads
//! as "holds".

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use loja_testkit::pg::query;
use serde::Serialize;

/// One invariant and what was found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub holds: bool,
    /// The figures behind the verdict.
    pub detail: String,
}

/// An order as pedidos stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub status: String,
    pub unfinished: bool,
    pub total_cents: i64,
    /// Quantity by sku.
    pub items: BTreeMap<String, i64>,
}

/// A payment as pagamentos stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub order_id: String,
    pub status: String,
    pub amount_cents: i64,
}

/// A reservation as estoque stored it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reservation {
    pub status: String,
    /// Quantity by sku.
    pub items: BTreeMap<String, i64>,
}

/// The three databases, read once.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub orders: BTreeMap<String, Order>,
    pub payments: Vec<Payment>,
    pub reservations: BTreeMap<String, Reservation>,
    /// Products, and those whose received units are not available + held + sold.
    pub products: u64,
    pub unbalanced: Vec<String>,
}

fn url(server: &str, database: &str) -> String {
    format!("{server}/{database}")
}

fn int(value: &str, what: &str) -> Result<i64> {
    value
        .parse()
        .with_context(|| format!("{what}: `{value}` is not a number"))
}

/// Every row of `sql`, each with exactly `columns` columns.
fn rows(server: &str, database: &str, sql: &str, columns: usize) -> Result<Vec<Vec<String>>> {
    let rows = query(&url(server, database), sql)?;
    if let Some(bad) = rows.iter().find(|r| r.len() != columns) {
        bail!("{database}: expected {columns} columns, got {bad:?} from {sql}");
    }
    Ok(rows)
}

/// Reads what the invariants need from the services' databases on `server`.
pub fn snapshot(server: &str) -> Result<Snapshot> {
    let mut s = Snapshot::default();
    let sql = "SELECT id, status, (status = 'pending' OR compensation_pending OR cancel_requested), \
               COALESCE(total_cents, 0), items::text FROM orders";
    for r in rows(server, "pedidos", sql, 5)? {
        let items: Vec<serde_json::Value> =
            serde_json::from_str(&r[4]).with_context(|| format!("items of order {}", r[0]))?;
        let mut quantities = BTreeMap::new();
        for item in items {
            let sku = item["sku"].as_str().context("an item without sku")?;
            let n = item["quantity"]
                .as_i64()
                .context("an item without quantity")?;
            *quantities.entry(sku.to_owned()).or_insert(0) += n;
        }
        let order = Order {
            status: r[1].clone(),
            unfinished: r[2] == "t",
            total_cents: int(&r[3], "total_cents")?,
            items: quantities,
        };
        s.orders.insert(r[0].clone(), order);
    }
    for r in rows(
        server,
        "pagamentos",
        "SELECT order_id, status, amount_cents FROM payments",
        3,
    )? {
        s.payments.push(Payment {
            order_id: r[0].clone(),
            status: r[1].clone(),
            amount_cents: int(&r[2], "amount_cents")?,
        });
    }
    let sql = "SELECT r.order_id, r.status, COALESCE(i.sku, ''), COALESCE(i.quantity, 0) \
               FROM reservations r LEFT JOIN reservation_items i USING (order_id)";
    for r in rows(server, "estoque", sql, 4)? {
        let reservation = s.reservations.entry(r[0].clone()).or_default();
        reservation.status = r[1].clone();
        if !r[2].is_empty() {
            *reservation.items.entry(r[2].clone()).or_insert(0) += int(&r[3], "quantity")?;
        }
    }
    let sql = "SELECT p.sku, p.received = p.available + \
                 (SELECT COALESCE(sum(i.quantity), 0) FROM reservation_items i \
                    JOIN reservations r USING (order_id) \
                   WHERE i.sku = p.sku AND r.status IN ('held', 'committed')) \
               FROM products p";
    for r in rows(server, "estoque", sql, 2)? {
        s.products += 1;
        if r[1] != "t" {
            s.unbalanced.push(r[0].clone());
        }
    }
    Ok(s)
}

/// Waits until no order is unfinished and no reservation is held (the
/// reconciler and the TTL sweeper have done their work); returns how long it
/// took. PostgreSQL may still be recovering from a crash meanwhile.
pub fn settle(server: &str, timeout: Duration) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let last = snapshot(server).map(|s| (unfinished(&s), held(&s)));
        if let Ok((0, 0)) = last {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("not settled after {timeout:?}: (unfinished orders, held reservations) {last:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn unfinished(s: &Snapshot) -> usize {
    s.orders.values().filter(|o| o.unfinished).count()
}

fn held(s: &Snapshot) -> usize {
    s.reservations
        .values()
        .filter(|r| r.status == "held")
        .count()
}

type Invariant = fn(&Snapshot, &BTreeSet<String>) -> (bool, String);

/// Every invariant, in the order they are reported.
const INVARIANTS: &[(&str, Invariant)] = &[
    ("every order is in a final state", orders_are_final),
    ("stock sold + available = received", stock_is_balanced),
    ("no hold is left", no_hold_is_left),
    (
        "every approved payment belongs to a confirmed order",
        payments_belong_to_confirmed_orders,
    ),
    (
        "every confirmed order is paid once and its stock sold; no stock sold otherwise",
        confirmed_orders_are_paid_and_sold,
    ),
    (
        "every order answered 201 is confirmed, paid its total once and holds its items",
        acknowledged_orders_are_kept,
    ),
];

/// The names of the checks that do not hold.
pub fn broken(checks: &[Check]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| !c.holds)
        .map(|c| c.name.as_str())
        .collect()
}

/// Checks every invariant; `acknowledged` are the ids of the orders clients
/// were answered 201 for.
pub fn check(s: &Snapshot, acknowledged: &[String]) -> Vec<Check> {
    let acknowledged: BTreeSet<String> = acknowledged.iter().cloned().collect();
    INVARIANTS
        .iter()
        .map(|(name, invariant)| {
            let (holds, detail) = invariant(s, &acknowledged);
            Check {
                name: (*name).into(),
                holds,
                detail,
            }
        })
        .collect()
}

fn orders_are_final(s: &Snapshot, _: &BTreeSet<String>) -> (bool, String) {
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for o in s.orders.values() {
        *by_status.entry(&o.status).or_insert(0) += 1;
    }
    let statuses: Vec<String> = by_status.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let n = unfinished(s);
    (n == 0, format!("{n} unfinished; {}", statuses.join(", ")))
}

fn stock_is_balanced(s: &Snapshot, _: &BTreeSet<String>) -> (bool, String) {
    let sold: i64 = s
        .reservations
        .values()
        .filter(|r| r.status == "committed")
        .flat_map(|r| r.items.values())
        .sum();
    let off = s.unbalanced.len();
    let detail = format!("{off} of {} products off; {sold} units sold", s.products);
    (off == 0 && s.products > 0, detail)
}

fn no_hold_is_left(s: &Snapshot, _: &BTreeSet<String>) -> (bool, String) {
    let n = held(s);
    (n == 0, format!("{n} held"))
}

fn confirmed(s: &Snapshot) -> BTreeSet<&str> {
    s.orders
        .iter()
        .filter(|(_, o)| o.status == "confirmed")
        .map(|(id, _)| id.as_str())
        .collect()
}

fn payments_belong_to_confirmed_orders(s: &Snapshot, _: &BTreeSet<String>) -> (bool, String) {
    let confirmed = confirmed(s);
    let approved: Vec<&Payment> = s
        .payments
        .iter()
        .filter(|p| p.status == "approved")
        .collect();
    let orphans = approved
        .iter()
        .filter(|p| !confirmed.contains(p.order_id.as_str()))
        .count();
    let refunded = s.payments.iter().filter(|p| p.status == "refunded").count();
    let detail = format!(
        "{} approved, {orphans} without a confirmed order, {refunded} refunded",
        approved.len()
    );
    (orphans == 0, detail)
}

fn confirmed_orders_are_paid_and_sold(s: &Snapshot, _: &BTreeSet<String>) -> (bool, String) {
    let confirmed = confirmed(s);
    let mut approved: BTreeMap<&str, usize> = BTreeMap::new();
    for p in s.payments.iter().filter(|p| p.status == "approved") {
        *approved.entry(&p.order_id).or_insert(0) += 1;
    }
    let committed: BTreeSet<&str> = s
        .reservations
        .iter()
        .filter(|(_, r)| r.status == "committed")
        .map(|(id, _)| id.as_str())
        .collect();
    let unpaid = confirmed
        .iter()
        .filter(|id| approved.get(*id) != Some(&1))
        .count();
    let unsold = confirmed.difference(&committed).count();
    let sold_unconfirmed = committed.difference(&confirmed).count();
    let detail = format!(
        "{} confirmed: {unpaid} without exactly one approved payment, {unsold} without committed stock; \
         {sold_unconfirmed} committed reservations of unconfirmed orders",
        confirmed.len()
    );
    (unpaid == 0 && unsold == 0 && sold_unconfirmed == 0, detail)
}

fn acknowledged_orders_are_kept(s: &Snapshot, acknowledged: &BTreeSet<String>) -> (bool, String) {
    let mut lost = 0;
    let mut unpaid = 0;
    let mut short = 0;
    for id in acknowledged {
        let Some(order) = s.orders.get(id).filter(|o| o.status == "confirmed") else {
            lost += 1;
            continue;
        };
        let payments: Vec<&Payment> = s
            .payments
            .iter()
            .filter(|p| &p.order_id == id && p.status == "approved")
            .collect();
        if payments.len() != 1 || payments[0].amount_cents != order.total_cents {
            unpaid += 1;
        }
        let reserved = s.reservations.get(id).map(|r| &r.items);
        if reserved != Some(&order.items) {
            short += 1;
        }
    }
    let detail = format!(
        "{} answered 201: {lost} not confirmed in pedidos, {unpaid} without exactly one approved payment of their total, \
         {short} whose reservation differs from their items",
        acknowledged.len()
    );
    (lost + unpaid + short == 0, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One confirmed order of two units, paid and sold, on a balanced catalog.
    fn healthy() -> Snapshot {
        let items = BTreeMap::from([("A".to_string(), 2)]);
        Snapshot {
            orders: BTreeMap::from([(
                "o1".to_string(),
                Order {
                    status: "confirmed".into(),
                    unfinished: false,
                    total_cents: 200,
                    items: items.clone(),
                },
            )]),
            payments: vec![Payment {
                order_id: "o1".into(),
                status: "approved".into(),
                amount_cents: 200,
            }],
            reservations: BTreeMap::from([(
                "o1".to_string(),
                Reservation {
                    status: "committed".into(),
                    items,
                },
            )]),
            products: 1,
            unbalanced: Vec::new(),
        }
    }

    fn failing(s: &Snapshot) -> Vec<String> {
        check(s, &["o1".to_string()])
            .into_iter()
            .filter(|c| !c.holds)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_healthy_state_holds_every_invariant() {
        assert!(
            failing(&healthy()).is_empty(),
            "{:?}",
            check(&healthy(), &[])
        );
    }

    #[test]
    fn each_broken_state_fails_its_invariant() {
        let mut s = healthy();
        s.payments[0].amount_cents = 199;
        assert_eq!(failing(&s), [INVARIANTS[5].0]);

        let mut s = healthy();
        s.payments.push(s.payments[0].clone());
        assert_eq!(failing(&s), [INVARIANTS[4].0, INVARIANTS[5].0]);

        let mut s = healthy();
        s.orders.get_mut("o1").unwrap().status = "failed".into();
        assert_eq!(
            failing(&s),
            [INVARIANTS[3].0, INVARIANTS[4].0, INVARIANTS[5].0]
        );

        let mut s = healthy();
        s.reservations
            .get_mut("o1")
            .unwrap()
            .items
            .insert("A".into(), 1);
        assert_eq!(failing(&s), [INVARIANTS[5].0]);

        let mut s = healthy();
        s.reservations.get_mut("o1").unwrap().status = "held".into();
        assert_eq!(failing(&s), [INVARIANTS[2].0, INVARIANTS[4].0]);

        let mut s = healthy();
        s.unbalanced.push("A".into());
        assert_eq!(failing(&s), [INVARIANTS[1].0]);

        let mut s = healthy();
        s.orders.get_mut("o1").unwrap().unfinished = true;
        assert_eq!(failing(&s), [INVARIANTS[0].0]);

        // An order a client saw confirmed and pedidos does not know.
        let s = healthy();
        let lost = check(&s, &["o1".to_string(), "o2".to_string()]);
        assert!(!lost[5].holds, "{lost:?}");
    }
}
