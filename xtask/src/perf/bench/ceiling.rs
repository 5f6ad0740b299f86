//! Measurement 2, the ceiling: the SQL of one order (`xtask/bench/order.sql`)
//! replayed by pgbench straight against the platform's PostgreSQL server, at
//! the same concurrency, with no HTTP and no services in between.
//!
//! The services keep separate databases on that one server, and a pgbench
//! script cannot switch databases mid-transaction. Three pgbench processes,
//! one per database, would give three unrelated rates and compete for the
//! CPU with no notion of "one order". Instead a scratch database gets all
//! three schemas (their table names do not collide, the migrations are the
//! services' own files) and one script transaction is one whole order: the
//! same statements, commits and row locks, so its rate is directly comparable
//! with confirmed orders per second.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use loja_testkit::pg::psql;

use crate::Workspace;
use crate::perf::orders::{SKUS, STOCK, price_cents};

/// The scratch database; dropped again afterwards.
const DATABASE: &str = "bench_ceiling";
/// Services whose migrations make up the scratch schema.
const SERVICES: &[&str] = &["pedidos", "estoque", "pagamentos"];

/// What pgbench measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceiling {
    /// Orders (script transactions) per second.
    pub orders_per_sec: f64,
    pub transactions: u64,
    pub failed: u64,
    pub latency_avg_ms: f64,
    /// CPU time of the PostgreSQL server per order, in ms (compare with the
    /// platform's `postgres` figure: the difference is what the services'
    /// way of talking to the database costs the server).
    pub postgres_cpu_ms_per_order: f64,
}

/// Builds the scratch database, runs the warm-up and the measured replay,
/// and drops the database. `server` is a superuser URL without database
/// (`postgres://postgres@127.0.0.1:15432`).
pub fn run(
    ws: &Workspace,
    server: &str,
    connections: u32,
    warmup: Duration,
    duration: Duration,
    postmaster: Option<u32>,
) -> Result<Ceiling> {
    let scratch = Scratch::create(ws, server)?;
    let load = |duration| Replay {
        connections,
        length: Length::Time(duration),
        lines: None,
        card: None,
    };
    if !warmup.is_zero() {
        scratch.replay(&load(warmup), || {})?;
    }
    let before = super::cpu::snapshot(&[], postmaster);
    let mut after = before.clone();
    let mut ceiling = scratch.replay(&load(duration), || {
        after.merge(super::cpu::snapshot(&[], postmaster))
    })?;
    let cpu = super::cpu::per_order(&before, &after, ceiling.transactions);
    ceiling.postgres_cpu_ms_per_order = cpu.get("postgres").copied().unwrap_or(0.0);
    scratch.drop_database()?;
    Ok(ceiling)
}

/// The scratch database holding the three services' schemas and the bench
/// catalog; dropped with [`Scratch::drop_database`] (or left behind for
/// inspection when a run fails half-way).
pub struct Scratch<'a> {
    ws: &'a Workspace,
    server: String,
}

/// How long one replay runs.
#[derive(Debug, Clone, Copy)]
pub enum Length {
    Time(Duration),
    /// Orders per client.
    Orders(u32),
}

/// One replay of `order.sql`.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    pub connections: u32,
    pub length: Length,
    /// Lines per order: 1 to 3 at random when `None`.
    pub lines: Option<u32>,
    /// Card (true) or pix (false): at random when `None`.
    pub card: Option<bool>,
}

impl<'a> Scratch<'a> {
    /// Creates the scratch database afresh on `server` (a superuser URL
    /// without database), with every service's migrations and the catalog.
    pub fn create(ws: &'a Workspace, server: &str) -> Result<Scratch<'a>> {
        let scratch = Scratch {
            ws,
            server: server.to_owned(),
        };
        psql(
            &scratch.admin(),
            &format!("DROP DATABASE IF EXISTS {DATABASE}; CREATE DATABASE {DATABASE};"),
        )?;
        for service in SERVICES {
            let dir = ws.root().join("services").join(service).join("migrations");
            for file in crate::util::fs::files_ending(&dir, &[".sql"]) {
                psql(&scratch.url(), &std::fs::read_to_string(&file)?)
                    .with_context(|| format!("applying {}", file.display()))?;
            }
        }
        let prices: Vec<String> = (1..=SKUS)
            .map(|n| {
                format!(
                    "('BENCH-{n:04}', 'Bench item {n}', {}, {STOCK}, {STOCK})",
                    price_cents(n)
                )
            })
            .collect();
        psql(
            &scratch.url(),
            &format!(
                "INSERT INTO products (sku, name, price_cents, available, received) VALUES {};\nVACUUM ANALYZE;",
                prices.join(",\n")
            ),
        )?;
        Ok(scratch)
    }

    fn admin(&self) -> String {
        format!("{}/postgres", self.server)
    }

    /// The scratch database's URL.
    pub fn url(&self) -> String {
        format!("{}/{DATABASE}", self.server)
    }

    /// The scratch database's name.
    pub fn name(&self) -> &'static str {
        DATABASE
    }

    /// Drops the database.
    pub fn drop_database(self) -> Result<()> {
        psql(
            &self.admin(),
            &format!("DROP DATABASE IF EXISTS {DATABASE};"),
        )
    }

    /// Runs pgbench with `order.sql`, calling `sample` every 200 ms while it runs.
    pub fn replay(&self, replay: &Replay, mut sample: impl FnMut()) -> Result<Ceiling> {
        let script = self.ws.root().join("xtask/bench/order.sql");
        let connections = replay.connections;
        let mut cmd = Command::new("pgbench");
        cmd.args(["-n", "-M", "prepared"])
            .args(["-c", &connections.to_string()])
            .args(["-j", &connections.clamp(1, 2).to_string()]);
        match replay.length {
            Length::Time(duration) => cmd.args(["-T", &duration.as_secs().max(1).to_string()]),
            Length::Orders(n) => cmd.args(["-t", &n.to_string()]),
        };
        let lines = replay.lines.unwrap_or(0);
        let card = replay.card.map_or(2, u32::from);
        let child = cmd
            .args(["-D", &format!("skus={SKUS}")])
            .args(["-D", &format!("lines={lines}")])
            .args(["-D", &format!("card={card}"), "-f"])
            .arg(&script)
            .arg(self.url())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running pgbench (it comes with the PostgreSQL client package)")?;
        // Its report is printed at the end only, so the pipes cannot fill meanwhile.
        let mut child = child;
        while child.try_wait()?.is_none() {
            sample();
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "pgbench failed: {}\n{}",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        parse(&stdout).with_context(|| format!("reading pgbench's report:\n{stdout}"))
    }
}

/// The figures of pgbench's summary.
pub fn parse(stdout: &str) -> Result<Ceiling> {
    let value = |prefix: &str| -> Option<f64> {
        stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                // With `-t N`: `processed: done/planned`.
                .split('/')
                .next()?
                .parse()
                .ok()
        })
    };
    Ok(Ceiling {
        orders_per_sec: value("tps = ").context("no tps line")?,
        transactions: value("number of transactions actually processed: ")
            .context("no transaction count")? as u64,
        failed: value("number of failed transactions: ").unwrap_or(0.0) as u64,
        latency_avg_ms: value("latency average = ").unwrap_or(0.0),
        postgres_cpu_ms_per_order: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_summary_is_read() {
        let out = "transaction type: order.sql\nnumber of clients: 32\n\
                   number of transactions actually processed: 12345\n\
                   number of failed transactions: 0 (0.000%)\n\
                   latency average = 25.1 ms\n\
                   initial connection time = 40.2 ms\n\
                   tps = 617.25 (without initial connection time)\n";
        let c = parse(out).unwrap();
        assert_eq!(c.transactions, 12345);
        assert_eq!(c.failed, 0);
        assert_eq!(c.orders_per_sec, 617.25);
        assert_eq!(c.latency_avg_ms, 25.1);
        assert!(parse("nothing").is_err());
        let counted = parse("number of transactions actually processed: 1/1\ntps = 63.2 (x)\n");
        assert_eq!(counted.unwrap().transactions, 1);
    }
}
