//! The figures of one overload run, each step's and the targets of issue
//! 15 evaluated from them: written as JSON and printed as tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::perf::bench::report::Target;
use crate::perf::invariants::{self, Check};
use crate::perf::oha::Answers;
use crate::perf::wrk::Load;

/// What the platform answered with one status in one step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub count: u64,
    /// Of every request sent in the step, in percent.
    pub share_percent: f64,
    /// Latencies in ms; `None` where the generator reports none per status (wrk).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One step of the scenario.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    pub label: String,
    /// Requests per second offered (open loop); `None`: a closed loop.
    pub rate: Option<f64>,
    pub connections: u32,
    /// From the first request to the last answer (or give-up): a loop's
    /// duration plus the requests still in flight at its end.
    pub seconds: f64,
    pub sent: u64,
    /// Orders of the step that pedidos' database holds as confirmed.
    pub confirmed: u64,
    /// Confirmed orders whose client never saw the 201 (it gave up first).
    pub late: u64,
    /// `confirmed` per second of the step.
    pub goodput: f64,
    /// Answers by status.
    pub statuses: BTreeMap<u16, Status>,
    /// p50 / p99 of the answers 201 (of every answer for wrk), in ms.
    pub confirmed_p50_ms: Option<f64>,
    pub confirmed_p99_ms: Option<f64>,
    /// p99 of every answer, in ms.
    pub p99_ms: Option<f64>,
    /// p99 of the rejections (429, 503), in ms.
    pub rejected_p99_ms: Option<f64>,
    pub client_timeouts: u64,
    /// Requests that got no status and did not time out.
    pub socket_errors: u64,
}

/// 429 `rate_limited` and 503 `overloaded` (or `upstream_unavailable`):
/// answers that turn work away rather than fail it.
fn is_rejection(status: u16) -> bool {
    matches!(status, 429 | 503)
}

impl Step {
    /// A step measured by oha, every answer's latency known.
    pub fn from_oha(
        label: &str,
        rate: Option<f64>,
        connections: u32,
        a: &Answers,
        confirmed: u64,
        elapsed: Duration,
    ) -> Step {
        let socket_errors: u64 = a.errors.values().sum();
        let sent = a.answered() + a.client_timeouts + socket_errors;
        let statuses = a
            .latencies
            .iter()
            .map(|(status, l)| {
                let status_of = |q| crate::perf::oha::quantile(l, q);
                let figures = Status {
                    count: l.len() as u64,
                    share_percent: share(l.len() as u64, sent),
                    p50_ms: status_of(0.5),
                    p99_ms: status_of(0.99),
                };
                (*status, figures)
            })
            .collect();
        let seconds = elapsed.as_secs_f64();
        Step {
            label: label.into(),
            rate,
            connections,
            seconds,
            sent,
            confirmed,
            late: confirmed.saturating_sub(a.count(201)),
            goodput: confirmed as f64 / seconds,
            statuses,
            confirmed_p50_ms: a.quantile(|s| s == 201, 0.5),
            confirmed_p99_ms: a.quantile(|s| s == 201, 0.99),
            p99_ms: a.quantile(|_| true, 0.99),
            rejected_p99_ms: a.quantile(is_rejection, 0.99),
            client_timeouts: a.client_timeouts,
            socket_errors,
        }
    }

    /// The capacity step, measured by wrk (`secs` from start to its
    /// report): latencies of all answers only.
    pub fn from_wrk(label: &str, connections: u32, l: &Load, confirmed: u64, secs: f64) -> Step {
        let sent = l.requests + l.socket_errors;
        let statuses = l
            .statuses
            .iter()
            .filter_map(|(s, n)| Some((s.parse().ok()?, *n)))
            .map(|(s, n)| {
                let figures = Status {
                    count: n,
                    share_percent: share(n, sent),
                    p50_ms: None,
                    p99_ms: None,
                };
                (s, figures)
            })
            .collect();
        let ms = |us: u64| Some(us as f64 / 1000.0);
        let answered = l.statuses.get("201").copied().unwrap_or(0);
        Step {
            label: label.into(),
            rate: None,
            connections,
            seconds: secs,
            sent,
            confirmed,
            late: confirmed.saturating_sub(answered),
            goodput: confirmed as f64 / secs.max(f64::MIN_POSITIVE),
            statuses,
            confirmed_p50_ms: ms(l.p50_us),
            confirmed_p99_ms: ms(l.p99_us),
            p99_ms: ms(l.p99_us),
            rejected_p99_ms: None,
            client_timeouts: 0,
            socket_errors: l.socket_errors,
        }
    }

    /// Answers 504.
    fn gateway_timeouts(&self) -> u64 {
        self.statuses.get(&504).map_or(0, |s| s.count)
    }
}

fn share(n: u64, of: u64) -> f64 {
    100.0 * n as f64 / of.max(1) as f64
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub timestamp: String,
    pub git_revision: String,
    pub cores: usize,
    pub smoke: bool,
    pub step_secs: u64,
    /// The gateway's rate limits during the run.
    pub rate_limits: String,
    pub capacity_orders_per_sec: f64,
    pub steps: Vec<Step>,
    pub invariants: Vec<Check>,
    pub targets: Vec<Target>,
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"))
}

impl Report {
    fn step(&self, label: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.label == label)
    }

    /// Fills `targets` from the steps (issue 15, section 3).
    pub fn evaluate(&mut self) {
        let mut t = Vec::new();
        let capacity = self.capacity_orders_per_sec.max(f64::MIN_POSITIVE);
        for label in ["open 2x", "open 4x"] {
            if let Some(s) = self.step(label) {
                let ratio = s.goodput / capacity;
                t.push(Target {
                    name: format!("goodput at {}, 504s", &label[5..]),
                    value: format!(
                        "{:.0} % of capacity ({:.1}/s), {} 504s",
                        100.0 * ratio,
                        s.goodput,
                        s.gateway_timeouts()
                    ),
                    goal: ">= 90 %, 0".into(),
                    met: ratio >= 0.9 && s.gateway_timeouts() == 0,
                });
            }
        }
        let worst = self
            .steps
            .iter()
            .filter_map(|s| s.rejected_p99_ms.map(|p| (p, &s.label)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        t.push(Target {
            name: "rejections (429/503) p99, worst step".into(),
            value: match worst {
                Some((p, label)) => format!("{p:.1} ms ({label})"),
                None => "none answered: nothing was shed".into(),
            },
            goal: "<= 10 ms".into(),
            met: worst.is_some_and(|(p, _)| p <= 10.0),
        });
        if let (Some(low), Some(high)) = (self.step("open 0.5x"), self.step("open 4x")) {
            let (a, b) = (low.confirmed_p99_ms, high.confirmed_p99_ms);
            t.push(Target {
                name: "confirmed p99 at 4x vs 4 × at 0.5x".into(),
                value: format!("{} vs 4 × {}", ms(b), ms(a)),
                goal: "<=".into(),
                met: matches!((a, b), (Some(a), Some(b)) if b <= 4.0 * a),
            });
        }
        if let (Some(few), Some(many)) = (self.step("closed 32"), self.step("closed 1024")) {
            let ratio = many.goodput / few.goodput.max(f64::MIN_POSITIVE);
            t.push(Target {
                name: "goodput at 1024 conns vs at 32".into(),
                value: format!(
                    "{:.0} % ({:.1} vs {:.1}/s)",
                    100.0 * ratio,
                    many.goodput,
                    few.goodput
                ),
                goal: ">= 80 %".into(),
                met: ratio >= 0.8,
            });
        }
        if let Some(low) = self.step("open 0.5x") {
            t.push(Target {
                name: "open-loop p99 at 0.5x".into(),
                value: ms(low.p99_ms),
                goal: "<= 25 ms".into(),
                met: low.p99_ms.is_some_and(|p| p <= 25.0),
            });
        }
        self.targets = t;
    }

    /// The tables printed to stdout and pasted into the README.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "cargo xtask bench --scenario overload: {} cores, rev {}, {} s per step{}\n\
             capacity {:.1} confirmed orders/s; rate limits: {}",
            self.cores,
            self.git_revision,
            self.step_secs,
            if self.smoke { ", SMOKE RUN" } else { "" },
            self.capacity_orders_per_sec,
            self.rate_limits
        );
        let mut row = |cells: [&str; 9]| {
            let _ = writeln!(
                s,
                "| {:<22} | {:>6} | {:>8} | {:>8} | {:>21} | {:<30} | {:>4} | {:>8} | {:>5} |",
                cells[0],
                cells[1],
                cells[2],
                cells[3],
                cells[4],
                cells[5],
                cells[6],
                cells[7],
                cells[8]
            );
        };
        row([
            "step",
            "sent",
            "goodput",
            "% of cap",
            "201 p50 / p99",
            "other answers: share (p99)",
            "504s",
            "timeouts",
            "late",
        ]);
        row(["---"; 9]);
        let capacity = self.capacity_orders_per_sec.max(f64::MIN_POSITIVE);
        for st in &self.steps {
            let other: Vec<String> = st
                .statuses
                .iter()
                .filter(|(code, _)| **code != 201)
                .map(|(code, f)| {
                    let p99 = f.p99_ms.map_or(String::new(), |p| format!(" ({p:.1} ms)"));
                    format!("{code}: {:.1} %{p99}", f.share_percent)
                })
                .collect();
            let mut other = other.join(", ");
            if st.socket_errors > 0 {
                let _ = write!(
                    other,
                    "{}socket {}",
                    if other.is_empty() { "" } else { ", " },
                    st.socket_errors
                );
            }
            row([
                &st.label,
                &st.sent.to_string(),
                &format!("{:.1}/s", st.goodput),
                &format!("{:.0} %", 100.0 * st.goodput / capacity),
                &format!("{} / {}", ms(st.confirmed_p50_ms), ms(st.confirmed_p99_ms)),
                if other.is_empty() { "none" } else { &other },
                &st.gateway_timeouts().to_string(),
                &st.client_timeouts.to_string(),
                &st.late.to_string(),
            ]);
        }
        let _ = writeln!(s);
        for c in &self.invariants {
            let _ = writeln!(
                s,
                "invariant {}: {} ({})",
                if c.holds { "holds" } else { "BROKEN" },
                c.name,
                c.detail
            );
        }
        let _ = writeln!(s);
        let mut row = |k: &str, v: &str, g: &str, m: &str| {
            let _ = writeln!(s, "| {k:<38} | {v:<44} | {g:<10} | {m:<4} |");
        };
        row("target", "measured", "goal", "met");
        row(&"-".repeat(38), &"-".repeat(44), &"-".repeat(10), "----");
        for t in &self.targets {
            row(&t.name, &t.value, &t.goal, if t.met { "yes" } else { "NO" });
        }
        s
    }

    /// Fails when an invariant broke, a step confirmed nothing, or a step
    /// saw more 201s than pedidos confirmed. Targets are shown, never
    /// enforced here.
    pub fn check(&self) -> Result<()> {
        let broken = invariants::broken(&self.invariants);
        if !broken.is_empty() {
            bail!("overload: invariants broken: {}", broken.join("; "));
        }
        if let Some(s) = self.steps.iter().find(|s| s.confirmed == 0) {
            bail!("overload: step `{}` confirmed no order", s.label);
        }
        // Every 201 a client saw is an order pedidos confirmed: the step's
        // confirmed orders are at least its 201s.
        if let Some(s) = self
            .steps
            .iter()
            .find(|s| s.statuses.get(&201).is_some_and(|f| f.count > s.confirmed))
        {
            bail!(
                "overload: step `{}` answered more 201s than pedidos confirmed",
                s.label
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(u16, &[f64])], timeouts: u64) -> Answers {
        Answers {
            latencies: pairs.iter().map(|(s, l)| (*s, l.to_vec())).collect(),
            client_timeouts: timeouts,
            errors: BTreeMap::new(),
        }
    }

    fn report(steps: Vec<Step>) -> Report {
        let mut r = Report {
            timestamp: "t".into(),
            git_revision: "r".into(),
            cores: 2,
            smoke: false,
            step_secs: 10,
            rate_limits: "none".into(),
            capacity_orders_per_sec: 100.0,
            steps,
            invariants: Vec::new(),
            targets: Vec::new(),
        };
        r.evaluate();
        r
    }

    fn step(label: &str, confirmed: u64, a: &Answers) -> Step {
        Step::from_oha(label, None, 32, a, confirmed, Duration::from_secs(10))
    }

    #[test]
    fn a_platform_that_sheds_meets_the_targets() {
        let fast = answers(&[(201, &[5.0, 8.0]), (503, &[1.0, 2.0])], 0);
        let r = report(vec![
            step("open 0.5x", 500, &answers(&[(201, &[5.0, 10.0])], 0)),
            step("open 2x", 950, &fast),
            step("open 4x", 920, &fast),
            step("closed 32", 1000, &fast),
            step("closed 1024", 900, &fast),
        ]);
        let failed: Vec<&Target> = r.targets.iter().filter(|t| !t.met).collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(r.targets.len(), 6);
        assert!(r.table().contains("503: 50.0 % (2.0 ms)"), "{}", r.table());
    }

    #[test]
    fn a_platform_that_queues_misses_them_and_says_why() {
        let queued = answers(&[(201, &[900.0, 4000.0]), (504, &[2000.0])], 7);
        let r = report(vec![
            step("open 0.5x", 500, &answers(&[(201, &[5.0, 30.0])], 0)),
            step("open 2x", 600, &queued),
            step("open 4x", 300, &queued),
            step("closed 32", 1000, &queued),
            step("closed 1024", 500, &queued),
        ]);
        assert!(r.targets.iter().all(|t| !t.met), "{:?}", r.targets);
        assert!(r.targets[2].value.contains("nothing was shed"));
        let s = &r.steps[1];
        assert_eq!(
            (s.sent, s.client_timeouts, s.gateway_timeouts()),
            (10, 7, 1)
        );
        assert_eq!(s.statuses[&504].share_percent, 10.0);
        // 600 confirmed, 2 of them seen as 201 before the client gave up.
        assert_eq!(s.late, 598);
    }

    #[test]
    fn more_201s_than_confirmed_orders_fail_the_run() {
        let r = report(vec![step("open 1x", 1, &answers(&[(201, &[1.0, 2.0])], 0))]);
        assert!(r.check().is_err());
        let r = report(vec![step("open 1x", 2, &answers(&[(201, &[1.0, 2.0])], 0))]);
        assert!(r.check().is_ok());
    }
}
