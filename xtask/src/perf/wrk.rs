//! One closed-loop HTTP load: wrk running `xtask/bench/load.lua`, whose
//! `done()` prints the latency percentiles and every status count as a JSON
//! line that is read back here.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::Workspace;
use serde::{Deserialize, Serialize};

/// What one wrk run measured. Latencies are in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Load {
    pub requests: u64,
    pub duration_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    /// Connect, read, write errors and timeouts (no status at all).
    pub socket_errors: u64,
    /// Responses by HTTP status.
    pub statuses: BTreeMap<String, u64>,
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
}

/// What to load.
pub struct Spec<'a> {
    /// Base URL, such as `http://127.0.0.1:8080`.
    pub url: &'a str,
    /// `orders` or `products` (see load.lua).
    pub mode: &'a str,
    pub connections: u32,
    pub duration: Duration,
    /// Makes Idempotency-Keys unique across runs.
    pub run_id: &'a str,
    /// Catalog size.
    pub skus: u32,
}

/// Runs wrk once and parses its report.
pub fn run(ws: &Workspace, spec: &Spec) -> Result<Load> {
    finish(spawn(ws, spec)?, false)
}

/// Starts wrk for `spec.duration`; [`finish`] collects its report.
pub fn spawn(ws: &Workspace, spec: &Spec) -> Result<Child> {
    let script = ws.root().join("xtask/bench/load.lua");
    // wrk's threads share the machine with the platform: two are plenty to
    // keep every connection busy at these rates.
    let threads = spec.connections.clamp(1, 2);
    let secs = spec.duration.as_secs().max(1);
    Command::new("wrk")
        .args(["-t", &threads.to_string()])
        .args(["-c", &spec.connections.to_string()])
        .args(["-d", &format!("{secs}s"), "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(spec.url)
        .args(["--", spec.mode, spec.run_id, &spec.skus.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running wrk (`cargo xtask tools` installs it)")
}

/// Waits for wrk's report; with `interrupt`, stops the load first (wrk
/// reports on SIGINT as at the end of its duration).
pub fn finish(child: Child, interrupt: bool) -> Result<Load> {
    if interrupt {
        crate::util::signal(child.id(), "INT");
    }
    let out = child.wait_with_output().context("waiting for wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse(&stdout).with_context(|| format!("reading wrk's report:\n{stdout}"))
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
}
