//! The drill's figures: JSON for the record, a table for people, a verdict.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;

use super::chaos::Fault;
use crate::native::access::CallGraph;
use crate::perf::invariants::{self, Check};
use crate::perf::wrk::Load;

#[derive(Debug, Serialize)]
pub struct Report {
    pub timestamp: String,
    pub git_revision: String,
    pub cores: usize,
    pub connections: u32,
    pub rolling: Rolling,
    pub chaos: Chaos,
    /// From the end of the load until nothing was pending or held.
    pub settled_ms: u64,
    pub invariants: Vec<Check>,
    /// The service-to-service calls the traffic showed, against loja.toml's.
    pub calls: CallGraph,
}

#[derive(Debug, Serialize)]
pub struct Rolling {
    /// When the phase began and ended, in microseconds since the epoch.
    pub from_us: i64,
    pub to_us: i64,
    pub rounds: u32,
    pub replaced: Vec<Replacement>,
    pub load: Load,
}

#[derive(Debug, Serialize)]
pub struct Replacement {
    /// Microseconds since the epoch when the predecessor was gone.
    pub at_us: i64,
    pub round: u32,
    pub replica: String,
    pub ready_ms: u64,
    pub drained_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Chaos {
    pub from_us: i64,
    pub to_us: i64,
    pub seed: u64,
    pub duration_secs: u64,
    pub faults: Vec<Fault>,
    pub load: Load,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Requests sent, failed (anything but 201, socket errors included) and
/// orders confirmed, on one line.
fn load_line(load: &Load) -> String {
    let confirmed = load.statuses.get("201").copied().unwrap_or(0);
    let mut line = format!(
        "{} requests sent, {} failed, {confirmed} orders confirmed; p99 {:.1} ms",
        load.requests,
        load.errors(201),
        load.p99_us as f64 / 1000.0
    );
    let other = load.unexpected(201);
    if !other.is_empty() || load.socket_errors > 0 {
        let parts: Vec<String> = other.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let _ = write!(
            line,
            " (failures: {}{}socket errors: {})",
            parts.join(", "),
            if parts.is_empty() { "" } else { ", " },
            load.socket_errors
        );
    }
    line
}

impl Report {
    /// The table printed at the end of a run (and pasted into the README).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "drill {} ({}), {} cores, {} connections",
            self.timestamp, self.git_revision, self.cores, self.connections
        );
        let r = &self.rolling;
        let _ = writeln!(
            out,
            "rolling restarts: {} replicas replaced, every service {} time(s)",
            r.replaced.len(),
            r.rounds
        );
        let _ = writeln!(out, "  {}", load_line(&r.load));
        let c = &self.chaos;
        let kills = c
            .faults
            .iter()
            .filter(|f| f.what.starts_with("kill"))
            .count();
        let crashes = c.faults.len() - kills;
        let _ = writeln!(
            out,
            "chaos: {} s, {kills} replicas killed with SIGKILL, {crashes} PostgreSQL crash(es), seed {}",
            c.duration_secs, c.seed
        );
        let _ = writeln!(out, "  {}", load_line(&c.load));
        let _ = writeln!(
            out,
            "aftermath: settled {:.1} s after the load",
            self.settled_ms as f64 / 1000.0
        );
        for check in &self.invariants {
            let verdict = if check.holds { "ok  " } else { "FAIL" };
            let _ = writeln!(out, "  {verdict} {}: {}", check.name, check.detail);
        }
        let g = &self.calls;
        let observed: Vec<String> = g
            .observed
            .iter()
            .map(|(c, n)| format!("{c} ({n})"))
            .collect();
        let _ = writeln!(out, "calls seen in the traces: {}", observed.join(", "));
        let verdict = if g.undeclared.is_empty() {
            "ok  "
        } else {
            "FAIL"
        };
        let _ = writeln!(
            out,
            "  {verdict} every call is declared in loja.toml: undeclared {}",
            list(&g.undeclared)
        );
        let _ = writeln!(out, "  note declared but never seen: {}", list(&g.unseen));
        out
    }

    /// Fails when a request failed during the rolling restarts or an
    /// invariant does not hold. Failed requests during chaos are reported,
    /// not judged: a killed replica takes its in-flight requests with it.
    pub fn verdict(&self) -> Result<()> {
        let failed = self.rolling.load.errors(201);
        let broken = invariants::broken(&self.invariants);
        let undeclared = &self.calls.undeclared;
        if failed > 0
            || !broken.is_empty()
            || !undeclared.is_empty()
            || self.rolling.load.requests == 0
        {
            bail!(
                "drill failed: {failed} failed requests during rolling restarts; broken invariants: {}; calls loja.toml does not declare: {}",
                if broken.is_empty() {
                    "none".into()
                } else {
                    broken.join("; ")
                },
                list(undeclared)
            );
        }
        Ok(())
    }

    /// The picture of the run: the gateway's answers over both phases,
    /// every replacement, kill and crash marked.
    pub fn plot(&self, gateway: &[&crate::native::access::Hop]) -> String {
        use crate::perf::plot::{self, Band, Mark};
        let (from, to) = (self.rolling.from_us, self.chaos.to_us);
        let bands = [
            Band {
                from_us: self.rolling.from_us,
                to_us: self.rolling.to_us,
                label: "rolling restarts".into(),
            },
            Band {
                from_us: self.chaos.from_us,
                to_us: self.chaos.to_us,
                label: "chaos".into(),
            },
        ];
        let mut marks: Vec<Mark> = self
            .rolling
            .replaced
            .iter()
            .map(|r| Mark {
                at_us: r.at_us,
                label: format!("restart {}", r.replica),
            })
            .collect();
        marks.extend(self.chaos.faults.iter().map(|f| Mark {
            at_us: self.chaos.from_us + (f.at_secs * 1e6) as i64,
            label: f.what.clone(),
        }));
        let title = format!(
            "cargo xtask drill {} ({}): gateway answers, {} connections",
            self.timestamp, self.git_revision, self.connections
        );
        plot::svg(
            &title,
            from,
            &plot::seconds(gateway, from, to),
            &bands,
            &marks,
        )
    }

    /// Writes the JSON into `dir` as `<timestamp>-<rev>.json`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}-{}.json", self.timestamp, self.git_revision));
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(path)
    }
}
