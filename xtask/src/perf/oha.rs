//! One order load by oha: open loop (a rate, with its latency corrected for
//! coordinated omission) or closed loop (a number of connections), its
//! bodies one per line from a file. oha stores every answered request in a
//! SQLite file; reading it back gives each status its own latencies, which
//! wrk's summary cannot. A load over several gateway replicas runs one oha
//! per replica, the rate and connections split between them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::perf::orders;

/// How long a client waits for an answer before it gives up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to load.
pub struct Spec<'a> {
    /// Base URLs of the gateway replicas.
    pub urls: &'a [String],
    /// Requests per second in all (open loop); `None` is a closed loop.
    pub rate: Option<f64>,
    /// Connections in all: the most requests in flight at once.
    pub connections: u32,
    pub duration: Duration,
    /// One JSON order per line.
    pub bodies: &'a Path,
}

/// What one load measured: every answer's latency by status, and the
/// requests that got none.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answers {
    /// Latencies in milliseconds by HTTP status, sorted.
    #[serde(skip)]
    pub latencies: BTreeMap<u16, Vec<f64>>,
    /// Requests the client gave up on after [`CLIENT_TIMEOUT`].
    pub client_timeouts: u64,
    /// Requests that failed without a status (connect, reset), by oha's message.
    pub errors: BTreeMap<String, u64>,
}

impl Answers {
    /// Answers with `status`.
    pub fn count(&self, status: u16) -> u64 {
        self.latencies.get(&status).map_or(0, |l| l.len() as u64)
    }

    /// Every answer, whatever its status.
    pub fn answered(&self) -> u64 {
        self.latencies.values().map(|l| l.len() as u64).sum()
    }

    /// The `q` quantile (0-1) of the answers whose status `keep` accepts, in ms.
    pub fn quantile(&self, keep: impl Fn(u16) -> bool, q: f64) -> Option<f64> {
        let mut all: Vec<f64> = self
            .latencies
            .iter()
            .filter(|(s, _)| keep(**s))
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        all.sort_by(f64::total_cmp);
        quantile(&all, q)
    }

    fn add(mut self, other: Answers) -> Answers {
        for (status, l) in other.latencies {
            self.latencies.entry(status).or_default().extend(l);
        }
        for l in self.latencies.values_mut() {
            l.sort_by(f64::total_cmp);
        }
        self.client_timeouts += other.client_timeouts;
        for (e, n) in other.errors {
            *self.errors.entry(e).or_insert(0) += n;
        }
        self
    }
}

/// The nearest-rank `q` quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
    sorted.get(rank).copied()
}

/// Writes `n` orders of the bench catalog, one JSON body per line, each for
/// customer `<customer>-<k>` so that pedidos' database tells which load
/// placed it. Lines as load.lua builds them: 1 to 3, line k from the k-th
/// third of the catalog, card or pix.
pub fn write_bodies(path: &Path, customer: &str, n: u32) -> Result<()> {
    let third = orders::SKUS / 3;
    // A fixed linear congruential sequence: reproducible bodies.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |m: u32| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) % u64::from(m)) as u32
    };
    let mut text = String::new();
    for k in 0..n {
        let lines: Vec<String> = (0..1 + next(3))
            .map(|line| {
                let sku = line * third + 1 + next(third);
                format!(r#"{{"sku":"BENCH-{sku:04}","quantity":{}}}"#, 1 + next(3))
            })
            .collect();
        let payment = if next(2) == 0 {
            r#"{"method":"card","token":"tok_visa"}"#
        } else {
            r#"{"method":"pix"}"#
        };
        text.push_str(&format!(
            r#"{{"customer_id":"{customer}-{k}","items":[{}],"payment":{payment}}}"#,
            lines.join(",")
        ));
        text.push('\n');
    }
    crate::util::fs::write_atomic(path, text.as_bytes())
}

/// Runs the load and reads back every answer.
pub fn run(spec: &Spec) -> Result<Answers> {
    let n = spec.urls.len().max(1);
    let mut running: Vec<(Child, PathBuf)> = Vec::new();
    for (i, url) in spec.urls.iter().enumerate() {
        let db = std::env::temp_dir().join(format!(
            "loja-oha-{}-{}-{i}.db",
            std::process::id(),
            loja_testkit::free_port()
        ));
        let _ = std::fs::remove_file(&db);
        let mut cmd = Command::new(crate::dev::tools::oha());
        cmd.args(["-z", &format!("{}ms", spec.duration.as_millis())])
            .args(["-c", &(spec.connections as usize).div_ceil(n).to_string()])
            .args(["-t", &format!("{}ms", CLIENT_TIMEOUT.as_millis())])
            // Requests still in flight at the end are waited for, not
            // counted as failures of the platform.
            .args(["-w", "--no-tui", "--output-format", "json", "-m", "POST"])
            .args(["-T", "application/json", "-Z"])
            .arg(spec.bodies)
            .arg("--db-url")
            .arg(&db);
        if let Some(rate) = spec.rate {
            cmd.args([
                "-q",
                &format!("{:.1}", rate / n as f64),
                "--latency-correction",
            ]);
        }
        let child = cmd
            .arg(format!("{}/api/v1/orders", url.trim_end_matches('/')))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running oha (`cargo xtask tools` installs it)")?;
        running.push((child, db));
    }
    let mut total = Answers::default();
    for (child, db) in running {
        let out = child.wait_with_output().context("waiting for oha")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "oha failed: {}{}",
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let mut answers = failures(&stdout)?;
        answers.latencies = latencies(&db)?;
        let _ = std::fs::remove_file(&db);
        total = total.add(answers);
    }
    Ok(total)
}

/// The requests oha's JSON summary counts as errors: timeouts apart.
fn failures(json: &str) -> Result<Answers> {
    let summary: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("reading oha's summary:\n{json}"))?;
    let mut answers = Answers::default();
    let errors = summary["errorDistribution"]
        .as_object()
        .context("oha's summary has no errorDistribution")?;
    for (message, n) in errors {
        let n = n.as_u64().unwrap_or(0);
        if message.to_lowercase().contains("timeout") {
            answers.client_timeouts += n;
        } else {
            *answers.errors.entry(message.clone()).or_insert(0) += n;
        }
    }
    Ok(answers)
}

/// Every answered request of oha's SQLite file: its status and its latency
/// from when it should have been sent (the corrected start, in an open loop).
fn latencies(db: &Path) -> Result<BTreeMap<u16, Vec<f64>>> {
    let sql =
        "SELECT status, (\"end\" - COALESCE(start_latency_correction, start)) * 1000 FROM oha";
    let out = Command::new("sqlite3")
        .args(["-batch", "-separator", "\t"])
        .arg(db)
        .arg(sql)
        .output()
        .context("running sqlite3 (`cargo xtask tools` installs it)")?;
    if !out.status.success() {
        bail!(
            "reading {}: {}",
            db.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_rows(&String::from_utf8_lossy(&out.stdout))
}

/// `status<TAB>milliseconds` lines; anything else fails.
fn parse_rows(text: &str) -> Result<BTreeMap<u16, Vec<f64>>> {
    let mut out: BTreeMap<u16, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let (status, ms) = line
            .split_once('\t')
            .with_context(|| format!("an unreadable row of oha's results: `{line}`"))?;
        let status = status
            .parse()
            .with_context(|| format!("status of `{line}`"))?;
        let ms = ms.parse().with_context(|| format!("latency of `{line}`"))?;
        out.entry(status).or_default().push(ms);
    }
    for l in out.values_mut() {
        l.sort_by(f64::total_cmp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_split_latencies_by_status_and_bad_rows_fail() {
        let rows = parse_rows("201\t12.5\n503\t0.8\n201\t3.0\n").unwrap();
        assert_eq!(rows[&201], [3.0, 12.5]);
        assert_eq!(rows[&503], [0.8]);
        assert!(parse_rows("201\n").is_err());
        assert!(parse_rows("ok\t1.0\n").is_err());
    }

    #[test]
    fn timeouts_are_told_apart_from_other_failures() {
        let json =
            r#"{"errorDistribution":{"timeout":3,"connection closed before message completed":2}}"#;
        let a = failures(json).unwrap();
        assert_eq!(a.client_timeouts, 3);
        assert_eq!(a.errors.values().sum::<u64>(), 2);
        assert!(failures("{}").is_err());
    }

    #[test]
    fn quantiles_take_the_nearest_rank_of_the_kept_statuses() {
        let a = Answers {
            latencies: BTreeMap::from([(201, vec![1.0, 2.0, 3.0, 4.0]), (503, vec![0.5])]),
            ..Answers::default()
        };
        assert_eq!(a.quantile(|s| s == 201, 0.5), Some(2.0));
        assert_eq!(a.quantile(|s| s == 201, 0.99), Some(4.0));
        assert_eq!(a.quantile(|_| true, 0.0), Some(0.5));
        assert_eq!(a.quantile(|s| s == 429, 0.99), None);
        assert_eq!((a.count(201), a.answered()), (4, 5));
    }

    #[test]
    fn bodies_are_one_order_per_line_for_distinct_customers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bodies");
        write_bodies(&path, "ov-s1", 50).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 50);
        for (k, line) in lines.iter().enumerate() {
            let order: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(order["customer_id"], format!("ov-s1-{k}"));
            let items = order["items"].as_array().unwrap();
            assert!((1..=3).contains(&items.len()), "{line}");
        }
    }
}
