//! The figures of one run: written as JSON (one file per run) and printed as
//! a short table with each target of the issue and whether it was met.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::ceiling::Ceiling;
use super::dbstats::PerOrder;
use super::footprint::{Gen, Memory, Startup, median};
use super::gateway::ReadPath;
use crate::perf::wrk::Load;

/// Everything one run measured, and where.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub timestamp: String,
    pub git_revision: String,
    pub cores: usize,
    pub smoke: bool,
    pub connections: u32,
    pub duration_secs: u64,
    pub warmup_secs: u64,
    pub orders: Load,
    /// PostgreSQL work per confirmed order during the measured run.
    pub per_order: Option<PerOrder>,
    /// One 8 kB write + fdatasync on the database's disk, in ms (median).
    pub flush_ms: Option<f64>,
    /// CPU time (user + system) per confirmed order of each process, in ms.
    pub cpu_ms_per_order: BTreeMap<String, f64>,
    pub ceiling: Option<Ceiling>,
    pub reads: Option<ReadPath>,
    pub memory: Vec<Memory>,
    pub startup: Vec<Startup>,
    pub generate: Option<Gen>,
    pub targets: Vec<Target>,
}

/// One target of the issue, as measured.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub value: String,
    pub goal: String,
    pub met: bool,
}

fn target(name: &str, value: String, goal: &str, met: bool) -> Target {
    Target {
        name: name.into(),
        value,
        goal: goal.into(),
        met,
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

impl Report {
    /// Confirmed orders per second.
    pub fn confirmed_per_sec(&self) -> f64 {
        self.orders.rate(201)
    }

    /// Fills `targets` from the figures.
    pub fn evaluate(&mut self) {
        let mut t = Vec::new();
        let errors = self.orders.errors(201);
        if let Some(c) = &self.ceiling {
            let ratio = self.confirmed_per_sec() / c.orders_per_sec.max(f64::MIN_POSITIVE);
            t.push(target(
                "orders/s vs pgbench ceiling, 0 errors",
                format!("{:.0} % ({errors} errors)", ratio * 100.0),
                ">= 50 %, 0",
                ratio >= 0.5 && errors == 0,
            ));
        }
        t.push(target(
            "p99 order latency",
            ms(self.orders.p99_us),
            "<= 25 ms",
            self.orders.p99_us <= 25_000,
        ));
        if let Some(r) = &self.reads {
            t.push(target(
                "gateway read throughput vs direct",
                format!("{:.0} %", r.ratio() * 100.0),
                ">= 85 %",
                r.ratio() >= 0.85,
            ));
        }
        if !self.memory.is_empty() {
            let worst = self.memory.iter().max_by_key(|m| m.peak_rss_kib).unwrap();
            t.push(target(
                "peak RSS per service after load",
                format!(
                    "{:.1} MB ({})",
                    worst.peak_rss_kib as f64 / 1024.0,
                    worst.instance
                ),
                "<= 30 MB",
                worst.peak_rss_kib <= 30 * 1024,
            ));
        }
        if let Some(slowest) = self
            .startup
            .iter()
            .max_by(|a, b| a.ready_median_ms().total_cmp(&b.ready_median_ms()))
        {
            let v = slowest.ready_median_ms();
            t.push(target(
                "start to /ready (median)",
                format!("{v:.0} ms ({})", slowest.service),
                "<= 200 ms",
                v <= 200.0,
            ));
        }
        if let Some(g) = &self.generate {
            let v = median(&g.process_ms);
            t.push(target(
                "xtask gen, whole tree (median)",
                format!("{v:.0} ms"),
                "< 100 ms",
                v < 100.0,
            ));
        }
        self.targets = t;
    }

    /// The short table printed to stdout and pasted into the README.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "cargo xtask bench: {} cores, rev {}, {} connections, {} s (+{} s warm-up){}",
            self.cores,
            self.git_revision,
            self.connections,
            self.duration_secs,
            self.warmup_secs,
            if self.smoke { ", SMOKE RUN" } else { "" }
        );
        let mut rows = vec![
            ("measure".to_owned(), "value".to_owned()),
            ("-".repeat(36), "-".repeat(60)),
        ];
        rows.extend(self.order_rows());
        rows.extend(self.database_rows());
        rows.extend(self.read_rows());
        rows.extend(self.footprint_rows());
        for (k, v) in rows {
            let _ = writeln!(s, "| {k:<36} | {v:<60} |");
        }
        let _ = writeln!(s);
        let mut row = |k: &str, v: &str, g: &str, m: &str| {
            let _ = writeln!(s, "| {k:<38} | {v:<26} | {g:<11} | {m:<4} |");
        };
        row("target", "measured", "goal", "met");
        row(&"-".repeat(38), &"-".repeat(26), &"-".repeat(11), "----");
        for t in &self.targets {
            row(&t.name, &t.value, &t.goal, if t.met { "yes" } else { "NO" });
        }
        s
    }

    /// Throughput, latency, failures and CPU of the order run.
    fn order_rows(&self) -> Vec<(String, String)> {
        let o = &self.orders;
        let mut rows = vec![
            (
                "confirmed orders/s".into(),
                format!("{:.1}", self.confirmed_per_sec()),
            ),
            (
                "order latency p50 / p90 / p99 / max".into(),
                format!(
                    "{} / {} / {} / {}",
                    ms(o.p50_us),
                    ms(o.p90_us),
                    ms(o.p99_us),
                    ms(o.max_us)
                ),
            ),
        ];
        let mut other: Vec<String> = o
            .unexpected(201)
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        if o.socket_errors > 0 {
            other.push(format!("socket errors: {}", o.socket_errors));
        }
        let other = if other.is_empty() {
            "none".into()
        } else {
            other.join(", ")
        };
        rows.push(("order responses other than 201".into(), other));
        if !self.cpu_ms_per_order.is_empty() {
            let cpu: Vec<String> = self
                .cpu_ms_per_order
                .iter()
                .map(|(name, ms)| format!("{} {ms:.2}", name.trim_end_matches("-1")))
                .collect();
            rows.push(("CPU ms per order".into(), cpu.join(", ")));
        }
        rows
    }

    /// What an order costs the database, and the pgbench ceiling.
    fn database_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        let joined = |m: &BTreeMap<String, f64>, digits: usize| -> String {
            m.iter()
                .map(|(db, n)| format!("{db} {n:.digits$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(p) = &self.per_order {
            rows.push(("commits per order".into(), joined(&p.commits, 1)));
            rows.push((
                "WAL flushes per order".into(),
                format!("{:.2}", p.wal_syncs),
            ));
            if let Some(f) = self.flush_ms {
                rows.push(("disk flush (8 kB + fdatasync)".into(), format!("{f:.2} ms")));
            }
            let conns: Vec<String> = p
                .connections
                .iter()
                .map(|(db, n)| format!("{db} {n}"))
                .collect();
            rows.push(("DB connections open".into(), conns.join(", ")));
        }
        if let Some(c) = &self.ceiling {
            rows.push((
                "pgbench ceiling (order SQL/s)".into(),
                format!(
                    "{:.1} ({} failed, latency avg {:.1} ms, postgres CPU {:.2} ms/order)",
                    c.orders_per_sec, c.failed, c.latency_avg_ms, c.postgres_cpu_ms_per_order
                ),
            ));
            let share = self.confirmed_per_sec() / c.orders_per_sec.max(f64::MIN_POSITIVE);
            rows.push((
                "platform / ceiling".into(),
                format!("{:.0} %", 100.0 * share),
            ));
        }
        rows
    }

    /// The read path, through the gateway and direct.
    fn read_rows(&self) -> Vec<(String, String)> {
        let Some(r) = &self.reads else {
            return Vec::new();
        };
        let mut rows = vec![
            (
                "product reads/s gateway / direct".into(),
                format!(
                    "{:.0} / {:.0} ({:.0} %)",
                    r.gateway.rate(200),
                    r.direct.rate(200),
                    r.ratio() * 100.0
                ),
            ),
            (
                "product read p99 gateway / direct".into(),
                format!(
                    "{} / {} ({:+.2} ms)",
                    ms(r.gateway.p99_us),
                    ms(r.direct.p99_us),
                    r.p99_overhead_ms()
                ),
            ),
        ];
        for (label, cpu) in [("gateway", &r.gateway_cpu_us), ("direct", &r.direct_cpu_us)] {
            let parts: Vec<String> = cpu
                .iter()
                .filter(|(_, us)| **us >= 0.5)
                .map(|(name, us)| format!("{} {us:.0}", name.trim_end_matches("-1")))
                .collect();
            rows.push((format!("CPU us per read, {label}"), parts.join(", ")));
        }
        rows
    }

    /// Memory, binaries, start-up and the generator's time.
    fn footprint_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        for m in &self.memory {
            rows.push((
                format!("peak RSS {}", m.instance),
                format!(
                    "{:.1} MB (now {:.1} MB)",
                    m.peak_rss_kib as f64 / 1024.0,
                    m.rss_kib as f64 / 1024.0
                ),
            ));
        }
        for st in &self.startup {
            rows.push((
                format!("{} binary / start to ready", st.service),
                format!(
                    "{:.1} MB / {:.0} ms",
                    st.binary_bytes as f64 / 1_048_576.0,
                    st.ready_median_ms()
                ),
            ));
        }
        if let Some(g) = &self.generate {
            rows.push((
                "xtask gen --check (process / render)".into(),
                format!(
                    "{:.0} ms / {:.0} ms",
                    median(&g.process_ms),
                    median(&g.in_process_ms)
                ),
            ));
        }
        rows
    }

    /// Writes the JSON into `dir` as `<timestamp>-<rev>.json`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}-{}.json", self.timestamp, self.git_revision));
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }
}
