//! One closed-loop HTTP load: wrk running `xtask/bench/load.lua`, whose
//! `done()` prints the latency percentiles and every status count as a JSON
//! line that is read back here, and writes the id of every order answered
//! 201. A load over several gateway replicas runs one wrk per replica, the
//! connections split between them, and adds their reports up.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::Workspace;

/// What one load measured. Latencies are in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Load {
    pub requests: u64,
    pub duration_us: u64,
    /// Over several wrk processes: the largest of their percentiles, an
    /// upper bound of the whole load's (wrk reports no histogram to merge).
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Connect, read, write errors and timeouts (no status at all).
    pub socket_errors: u64,
    /// Responses by HTTP status.
    pub statuses: BTreeMap<String, u64>,
    /// The id of every order answered 201, for the invariants.
    #[serde(skip)]
    pub acknowledged: Vec<String>,
}

impl Load {
    /// Responses with `status` per second.
    pub fn rate(&self, status: u16) -> f64 {
        let n = self.statuses.get(&status.to_string()).copied().unwrap_or(0);
        n as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// Responses that were not `expected`, by status.
    pub fn unexpected(&self, expected: u16) -> BTreeMap<String, u64> {
        let mut other = self.statuses.clone();
        other.remove(&expected.to_string());
        other
    }

    /// Every response that was not `expected`, plus socket errors.
    pub fn errors(&self, expected: u16) -> u64 {
        self.unexpected(expected).values().sum::<u64>() + self.socket_errors
    }

    /// Two loads that ran side by side, as one.
    fn add(mut self, other: Load) -> Load {
        let total = (self.requests + other.requests).max(1) as f64;
        self.mean_us =
            (self.mean_us * self.requests as f64 + other.mean_us * other.requests as f64) / total;
        self.requests += other.requests;
        self.duration_us = self.duration_us.max(other.duration_us);
        self.p50_us = self.p50_us.max(other.p50_us);
        self.p90_us = self.p90_us.max(other.p90_us);
        self.p99_us = self.p99_us.max(other.p99_us);
        self.max_us = self.max_us.max(other.max_us);
        self.socket_errors += other.socket_errors;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_insert(0) += n;
        }
        self.acknowledged.extend(other.acknowledged);
        self
    }
}

/// What to load.
pub struct Spec<'a> {
    /// Base URLs of the gateway replicas, such as `http://127.0.0.1:8080`.
    pub urls: &'a [String],
    /// `orders` or `products` (see load.lua).
    pub mode: &'a str,
    /// Connections in all, split between the URLs.
    pub connections: u32,
    pub duration: Duration,
    /// Makes Idempotency-Keys unique across runs.
    pub run_id: &'a str,
    /// Catalog size.
    pub skus: u32,
}

/// A load in progress: one wrk per URL and the file it writes its order ids to.
pub struct Running {
    processes: Vec<(Child, PathBuf)>,
}

/// Runs the load once and parses its reports.
pub fn run(ws: &Workspace, spec: &Spec) -> Result<Load> {
    finish(spawn(ws, spec)?, false)
}

/// Starts the load for `spec.duration`; [`finish`] collects its reports.
pub fn spawn(ws: &Workspace, spec: &Spec) -> Result<Running> {
    let script = ws.root().join("xtask/bench/load.lua");
    let secs = spec.duration.as_secs().max(1);
    let share = (spec.connections / spec.urls.len().max(1) as u32).max(1);
    let mut processes = Vec::new();
    for (n, url) in spec.urls.iter().enumerate() {
        let ids = std::env::temp_dir().join(format!(
            "loja-wrk-{}-{}-{n}.ids",
            std::process::id(),
            spec.run_id
        ));
        // wrk's threads share the machine with the platform: two are plenty
        // to keep every connection busy at these rates.
        let threads = share.clamp(1, 2);
        let child = Command::new("wrk")
            .args(["-t", &threads.to_string()])
            .args(["-c", &share.to_string()])
            .args(["-d", &format!("{secs}s"), "--timeout", "10s", "-s"])
            .arg(&script)
            .arg(url)
            .args(["--", spec.mode, &format!("{}-{n}", spec.run_id)])
            .arg(spec.skus.to_string())
            .arg(&ids)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running wrk (`cargo xtask tools` installs it)")?;
        processes.push((child, ids));
    }
    Ok(Running { processes })
}

/// Waits for every report; with `interrupt`, stops the load first (wrk
/// reports on SIGINT as at the end of its duration).
pub fn finish(running: Running, interrupt: bool) -> Result<Load> {
    if interrupt {
        for (child, _) in &running.processes {
            crate::util::signal(child.id(), "INT");
        }
    }
    let mut total: Option<Load> = None;
    for (child, ids) in running.processes {
        let out = child.wait_with_output().context("waiting for wrk")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "wrk failed: {}{}",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut load =
            parse(&stdout).with_context(|| format!("reading wrk's report:\n{stdout}"))?;
        if let Ok(text) = std::fs::read_to_string(&ids) {
            load.acknowledged = text.lines().map(str::to_owned).collect();
        }
        let _ = std::fs::remove_file(&ids);
        total = Some(match total {
            None => load,
            Some(t) => t.add(load),
        });
    }
    total.context("a load without any wrk process")
}

/// The `BENCH-JSON` line of wrk's output.
pub fn parse(stdout: &str) -> Result<Load> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BENCH-JSON "))
        .context("no BENCH-JSON line")?;
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_is_found_and_counts_are_split_by_status() {
        let out = "Running 1s test\nBENCH-JSON {\"requests\":10,\"duration_us\":2000000,\
                   \"p50_us\":1,\"p90_us\":2,\"p99_us\":3,\"max_us\":4,\"mean_us\":1.5,\
                   \"socket_errors\":1,\"statuses\":{\"201\":8,\"503\":2}}\n";
        let load = parse(out).unwrap();
        assert_eq!(load.rate(201), 4.0);
        assert_eq!(load.errors(201), 3);
        assert_eq!(load.unexpected(201).get("503"), Some(&2));
        assert!(parse("no report").is_err());
    }

    #[test]
    fn loads_side_by_side_add_their_counts_and_keep_the_worst_latencies() {
        let a = Load {
            requests: 10,
            mean_us: 1.0,
            p99_us: 5,
            statuses: BTreeMap::from([("201".into(), 10)]),
            acknowledged: vec!["a".into()],
            ..Load::default()
        };
        let b = Load {
            requests: 30,
            mean_us: 3.0,
            p99_us: 9,
            socket_errors: 2,
            statuses: BTreeMap::from([("201".into(), 28)]),
            acknowledged: vec!["b".into()],
            ..Load::default()
        };
        let sum = a.add(b);
        assert_eq!((sum.requests, sum.p99_us, sum.socket_errors), (40, 9, 2));
        assert_eq!(sum.statuses["201"], 38);
        assert_eq!(sum.mean_us, 2.5);
        assert_eq!(sum.acknowledged, ["a", "b"]);
    }
}
