//! The invariants `cargo xtask drill` (and the overload benchmark) judge a
//! run by, fed real database states: a healthy one holds them all, and each
//! kind of damage makes its invariant fail, read through the same SQL as
//! after a drill. An invariant that cannot fail would prove nothing.

use anyhow::Result;
use loja_testkit::pg::{TempCluster, psql};
use xtask::Workspace;
use xtask::perf::invariants::{self, Check};

const ORDER: &str = "00000000-0000-7000-8000-000000000001";

/// The cluster's superuser URL without database.
fn server(cluster: &TempCluster) -> String {
    let url = cluster.url("postgres");
    url.trim_end_matches("/postgres").to_owned()
}

/// The three services' databases on `cluster`, created afresh and migrated,
/// holding one confirmed order of two units of `A` at 100 cents, paid and sold.
fn healthy(cluster: &TempCluster) -> Result<()> {
    let ws = Workspace::find()?;
    for db in ["pedidos", "pagamentos", "estoque"] {
        let fresh = format!("DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db};");
        psql(&cluster.url("postgres"), &fresh)?;
        let migrations = ws.root().join("services").join(db).join("migrations");
        for file in xtask::util::fs::files_ending(&migrations, &[".sql"]) {
            psql(&cluster.url(db), &std::fs::read_to_string(file)?)?;
        }
    }
    psql(
        &cluster.url("pedidos"),
        &format!(
            "INSERT INTO orders (id, customer_id, status, step, items, total_cents, payment_method) \
             VALUES ('{ORDER}', 'c', 'confirmed', 'done', \
                     '[{{\"sku\":\"A\",\"quantity\":2,\"unit_price_cents\":100}}]', 200, 'pix')"
        ),
    )?;
    psql(
        &cluster.url("pagamentos"),
        &format!(
            "INSERT INTO payments (id, order_id, amount_cents, method, status) \
             VALUES (gen_random_uuid(), '{ORDER}', 200, 'pix', 'approved')"
        ),
    )?;
    psql(
        &cluster.url("estoque"),
        &format!(
            "INSERT INTO products (sku, name, price_cents, available, received) VALUES ('A', 'A', 100, 8, 10); \
             INSERT INTO reservations (order_id, status, expires_at) VALUES ('{ORDER}', 'committed', now()); \
             INSERT INTO reservation_items (order_id, sku, quantity, unit_price_cents) VALUES ('{ORDER}', 'A', 2, 100);"
        ),
    )?;
    Ok(())
}

fn failing(server: &str) -> Result<Vec<String>> {
    let checks: Vec<Check> = invariants::check(&invariants::snapshot(server)?, &[ORDER.into()]);
    Ok(checks
        .into_iter()
        .filter(|c| !c.holds)
        .map(|c| c.name)
        .collect())
}

#[test]
fn a_healthy_state_holds_every_invariant_and_each_damage_fails_its_own() -> Result<()> {
    let damages: [(&str, &str, &str); 6] = [
        (
            "pedidos",
            "UPDATE orders SET status = 'pending'",
            "every order is in a final state",
        ),
        (
            "estoque",
            "UPDATE products SET available = 9",
            "stock sold + available = received",
        ),
        (
            "estoque",
            "UPDATE reservations SET status = 'held'",
            "no hold is left",
        ),
        (
            "pagamentos",
            "UPDATE payments SET amount_cents = 150",
            "every order answered 201 is confirmed, paid its total once and holds its items",
        ),
        (
            "pagamentos",
            "INSERT INTO payments (id, order_id, amount_cents, method, status) \
             VALUES (gen_random_uuid(), gen_random_uuid(), 5, 'pix', 'approved')",
            "every approved payment belongs to a confirmed order",
        ),
        (
            "estoque",
            "UPDATE reservation_items SET quantity = 1; UPDATE products SET available = 9",
            "every order answered 201 is confirmed, paid its total once and holds its items",
        ),
    ];
    let cluster = TempCluster::start()?;
    let server = server(&cluster);
    for (db, damage, broken) in damages {
        healthy(&cluster)?;
        assert!(
            failing(&server)?.is_empty(),
            "the healthy state fails {:?}",
            failing(&server)?
        );
        psql(&cluster.url(db), damage)?;
        let failed = failing(&server)?;
        assert!(
            failed.iter().any(|f| f == broken),
            "after `{damage}`: {failed:?}"
        );
    }
    Ok(())
}

#[test]
fn a_database_that_cannot_be_read_fails_instead_of_reading_as_healthy() -> Result<()> {
    let cluster = TempCluster::start()?;
    let server = server(&cluster);
    healthy(&cluster)?;
    psql(&cluster.url("pagamentos"), "DROP TABLE payments")?;
    assert!(invariants::snapshot(&server).is_err());
    healthy(&cluster)?;
    cluster.stop()?;
    assert!(invariants::snapshot(&server).is_err());
    Ok(())
}
