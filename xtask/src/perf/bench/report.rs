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
use super::wrk::Load;

/// Everything one run measured, and where.
#[derive(Debug, Clone, Serialize)]
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
        let o = &self.orders;
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
        let mut row = |k: &str, v: String| {
            let _ = writeln!(s, "| {k:<36} | {v:<60} |");
        };
        row("measure", "value".into());
        row(&"-".repeat(36), "-".repeat(60));
        row(
            "confirmed orders/s",
            format!("{:.1}", self.confirmed_per_sec()),
        );
        row(
            "order latency p50 / p90 / p99 / max",
            format!(
                "{} / {} / {} / {}",
                ms(o.p50_us),
                ms(o.p90_us),
                ms(o.p99_us),
                ms(o.max_us)
            ),
        );
        let unexpected = o.unexpected(201);
        row(
            "order responses other than 201",
            if unexpected.is_empty() && o.socket_errors == 0 {
                "none".into()
            } else {
                let mut v: Vec<String> = unexpected
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect();
                if o.socket_errors > 0 {
                    v.push(format!("socket errors: {}", o.socket_errors));
                }
                v.join(", ")
            },
        );
        if !self.cpu_ms_per_order.is_empty() {
            let cpu: Vec<String> = self
                .cpu_ms_per_order
                .iter()
                .map(|(name, ms)| format!("{} {ms:.2}", name.trim_end_matches("-1")))
                .collect();
            row("CPU ms per order", cpu.join(", "));
        }
        if let Some(p) = &self.per_order {
            let commits: Vec<String> = p
                .commits
                .iter()
                .map(|(db, n)| format!("{db} {n:.1}"))
                .collect();
            row("commits per order", commits.join(", "));
            row("WAL flushes per order", format!("{:.2}", p.wal_syncs));
            if let Some(f) = self.flush_ms {
                row("disk flush (8 kB + fdatasync)", format!("{f:.2} ms"));
            }
            let conns: Vec<String> = p
                .connections
                .iter()
                .map(|(db, n)| format!("{db} {n}"))
                .collect();
            row("DB connections open", conns.join(", "));
        }
        if let Some(c) = &self.ceiling {
            row(
                "pgbench ceiling (order SQL/s)",
                format!(
                    "{:.1} ({} failed, latency avg {:.1} ms, postgres CPU {:.2} ms/order)",
                    c.orders_per_sec, c.failed, c.latency_avg_ms, c.postgres_cpu_ms_per_order
                ),
            );
            row(
                "platform / ceiling",
                format!(
                    "{:.0} %",
                    100.0 * self.confirmed_per_sec() / c.orders_per_sec.max(f64::MIN_POSITIVE)
                ),
            );
        }
        if let Some(r) = &self.reads {
            row(
                "product reads/s gateway / direct",
                format!(
                    "{:.0} / {:.0} ({:.0} %)",
                    r.gateway.rate(200),
                    r.direct.rate(200),
                    r.ratio() * 100.0
                ),
            );
            row(
                "product read p99 gateway / direct",
                format!(
                    "{} / {} ({:+.2} ms)",
                    ms(r.gateway.p99_us),
                    ms(r.direct.p99_us),
                    r.p99_overhead_ms()
                ),
            );
            for (label, cpu) in [("gateway", &r.gateway_cpu_us), ("direct", &r.direct_cpu_us)] {
                let parts: Vec<String> = cpu
                    .iter()
                    .filter(|(_, us)| **us >= 0.5)
                    .map(|(name, us)| format!("{} {us:.0}", name.trim_end_matches("-1")))
                    .collect();
                row(&format!("CPU us per read, {label}"), parts.join(", "));
            }
        }
        for m in &self.memory {
            row(
                &format!("peak RSS {}", m.instance),
                format!(
                    "{:.1} MB (now {:.1} MB)",
                    m.peak_rss_kib as f64 / 1024.0,
                    m.rss_kib as f64 / 1024.0
                ),
            );
        }
        for st in &self.startup {
            row(
                &format!("{} binary / start to ready", st.service),
                format!(
                    "{:.1} MB / {:.0} ms",
                    st.binary_bytes as f64 / 1_048_576.0,
                    st.ready_median_ms()
                ),
            );
        }
        if let Some(g) = &self.generate {
            row(
                "xtask gen --check (process / render)",
                format!(
                    "{:.0} ms / {:.0} ms",
                    median(&g.process_ms),
                    median(&g.in_process_ms)
                ),
            );
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

    /// Writes the JSON into `dir` as `<timestamp>-<rev>.json`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}-{}.json", self.timestamp, self.git_revision));
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC, proleptic Gregorian).
pub fn timestamp(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(0), "19700101T000000Z");
        assert_eq!(timestamp(1_798_530_000), "20261229T074000Z");
        assert_eq!(timestamp(951_782_400), "20000229T000000Z");
    }
}
