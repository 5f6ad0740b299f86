//! Where an order's time goes in PostgreSQL: committed transactions per
//! database and WAL flushes (fsyncs), read from `pg_stat_database` and
//! `pg_stat_wal` before and after the measured order load.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Counters at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    commits: BTreeMap<String, u64>,
    wal_syncs: u64,
    connections: BTreeMap<String, u64>,
}

/// Counter deltas over the measured run, divided by the confirmed orders.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PerOrder {
    /// Committed transactions (each autocommitted statement counts) per
    /// service database, per confirmed order.
    pub commits: BTreeMap<String, f64>,
    /// WAL flushes per confirmed order (lower than the commits when
    /// concurrent commits share a flush).
    pub wal_syncs: f64,
    /// Server connections open to each database at the end (the pools' size).
    pub connections: BTreeMap<String, u64>,
}

/// Reads the counters of `databases`. `server` is a superuser URL without database.
pub fn snapshot(server: &str, databases: &[String]) -> Result<Snapshot> {
    // The statistics of a backend reach the shared counters up to a second late.
    std::thread::sleep(Duration::from_millis(1200));
    let list = databases
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(",");
    let sql = format!(
        "SELECT datname, xact_commit FROM pg_stat_database WHERE datname IN ({list}) \
         UNION ALL SELECT 'wal_sync', wal_sync FROM pg_stat_wal \
         UNION ALL SELECT 'connections:' || datname, count(*) FROM pg_stat_activity \
         WHERE datname IN ({list}) GROUP BY datname"
    );
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-F", " ", "-c", &sql])
        .arg(format!("{server}/postgres"))
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let mut snap = Snapshot::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((name, n)) = line.split_once(' ') else {
            continue;
        };
        let n: u64 = n.trim().parse().unwrap_or(0);
        if name == "wal_sync" {
            snap.wal_syncs = n;
        } else if let Some(db) = name.strip_prefix("connections:") {
            snap.connections.insert(db.to_owned(), n);
        } else {
            snap.commits.insert(name.to_owned(), n);
        }
    }
    Ok(snap)
}

/// What happened between two snapshots, per order.
pub fn per_order(before: &Snapshot, after: &Snapshot, orders: u64) -> PerOrder {
    let orders = orders.max(1) as f64;
    PerOrder {
        commits: after
            .commits
            .iter()
            .map(|(db, n)| {
                let was = before.commits.get(db).copied().unwrap_or(0);
                (db.clone(), n.saturating_sub(was) as f64 / orders)
            })
            .collect(),
        wal_syncs: after.wal_syncs.saturating_sub(before.wal_syncs) as f64 / orders,
        connections: after.connections.clone(),
    }
}

/// Median time of one 8 kB write plus fdatasync in `dir`, in milliseconds:
/// the price of every durable commit on this disk, and so the floor of an
/// order's latency, which waits for several commits one after another.
pub fn flush_ms(dir: &Path) -> Result<f64> {
    use std::io::Write;
    let path = dir.join("bench-flush-probe");
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let page = [0u8; 8192];
    let mut samples = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(super::footprint::median(&samples))
}
