//! `cargo xtask burst`: the peak of issue 15 against a running platform
//! (`cargo xtask up`): many heavy orders from one client at once, each
//! answer tallied by status and problem code, so that a change in how the
//! platform sheds load shows as a before/after pair of figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::Workspace;
use crate::perf::orders::{self, SKUS};
use crate::util::http::{self, Request};

/// Place `--orders` orders of `--lines` lines each, all at once, from one client.
#[derive(Debug, Clone, clap::Args)]
pub struct Burst {
    /// The gateway of the running platform.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Orders sent at the same instant, each on its own connection.
    #[arg(long, default_value_t = 400)]
    pub orders: u32,
    /// Lines per order (distinct SKUs of the bench catalog, at most its size).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub lines: u32,
    /// How long the client waits for one answer, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Times an order shed with 503 `overloaded` or 429 `rate_limited` is
    /// sent again (same key) after its `Retry-After`; 0 tallies first answers.
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
}

impl Burst {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let (token, _) = ws.state().admin_token(ws.root())?;
        orders::seed(&self.url, &token).context("seeding the bench catalog")?;
        let authority = http::authority(&self.url)?.to_owned();
        let run = crate::util::random_hex(6)?;
        let started = Instant::now();
        let answers: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.orders)
                .map(|n| {
                    let (burst, authority, run) = (&self, &authority, &run);
                    scope.spawn(move || burst.place(authority, &format!("burst-{run}-{n}")))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| "panicked".into()))
                .collect()
        });
        let elapsed = started.elapsed();
        let mut tally: BTreeMap<String, u32> = BTreeMap::new();
        for answer in answers {
            *tally.entry(answer).or_default() += 1;
        }
        println!(
            "{} orders of {} lines from one client in {:.1}s:",
            self.orders,
            self.lines,
            elapsed.as_secs_f64()
        );
        for (answer, count) in &tally {
            println!("  {count:>5}  {answer}");
        }
        Ok(())
    }

    /// One order; its answer as `STATUS code` (`201 confirmed`, `504
    /// upstream_timeout`, `client timeout`).
    fn place(&self, authority: &str, key: &str) -> String {
        let lines = self.lines.min(SKUS);
        let items: Vec<_> = (1..=lines)
            .map(|n| json!({"sku": format!("BENCH-{n:04}"), "quantity": 1}))
            .collect();
        let body = json!({
            "customer_id": "burst",
            "items": items,
            "payment": {"method": "card", "token": "tok_visa"},
        });
        let mut request =
            Request::json("POST", "/api/v1/orders", body).header("Idempotency-Key", key);
        request.timeout = Duration::from_secs(self.timeout_secs);
        let mut tries = 0;
        loop {
            let answer = match request.send(authority) {
                Ok(answer) => answer,
                Err(err) => return format!("no answer ({})", err.root_cause()),
            };
            let json = answer.json().unwrap_or_default();
            let code = json["code"]
                .as_str()
                .or_else(|| json["status"].as_str())
                .unwrap_or("-");
            if tries < self.retries && matches!(code, "overloaded" | "rate_limited") {
                tries += 1;
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            return format!("{} {code}", answer.status);
        }
    }
}
