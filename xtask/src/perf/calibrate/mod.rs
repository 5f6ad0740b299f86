//! `cargo xtask calibrate`: sizes every service for `[capacity]`'s peak
//! from a measurement, not a guess. One replica of each service runs
//! natively; after a closed loop finds the platform's capacity, an open
//! loop (oha) steps the order rate up until the p99 of confirmed orders
//! leaves the objective. Each step notes the CPU every process spent and
//! the requests each service served (from the access logs); the last step
//! within the objective is the knee, and [`propose`] turns the knee into
//! each service's `requests.cpu_millis`, `autoscaling.cpu_percent` and
//! `replicas.max`, shown as a diff of `loja.toml` that `--write` applies
//! ([`edit`]).

mod edit;
mod propose;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::Workspace;
use crate::dev::build::Prebuilt;
use crate::native::access;
use crate::native::platform::Platform;
use crate::perf::bench::cpu;
use crate::perf::oha;
use crate::perf::orders;
use propose::{Measured, Proposal};

/// Measure each service on one replica and propose its CPU request,
/// autoscaling target and replica bound for `[capacity]`'s peak.
#[derive(Debug, Clone, clap::Args)]
pub struct Calibrate {
    /// Apply the proposal to loja.toml (after showing it).
    #[arg(long)]
    pub write: bool,
    /// Seconds of each load step.
    #[arg(long, default_value_t = 10)]
    pub step_secs: u64,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
}

/// The rates of the steps, as shares of the closed-loop capacity.
const STEPS: [f64; 7] = [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0];

/// One step of the load.
#[derive(Debug, Clone)]
struct Step {
    rate: f64,
    confirmed_per_sec: f64,
    p99_ms: Option<f64>,
    /// CPU ms per confirmed order, by service (and `postgres`).
    cpu_ms_per_order: BTreeMap<String, f64>,
    /// Requests each service served per confirmed order.
    requests_per_order: BTreeMap<String, f64>,
}

impl Calibrate {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let model = ws.model()?;
        let capacity = model.capacity.clone().context(
            "loja.toml has no [capacity] table: declare the peak to size for (README: \"Calibration\")",
        )?;
        let platform = Platform::start(ws, model, 1, self.prebuilt, None, "calibrate")?;
        let postmaster = cpu::postmaster(&platform.state.postgres_dir().join("data"));
        let step = Duration::from_secs(self.step_secs.max(2));
        orders::seed(&platform.gateway, &platform.admin_token)?;
        let run = format!("cal{}", crate::util::now());
        let closed = orders::load(ws, &platform.gateways, 32, step, &format!("{run}-closed"))?;
        let ceiling = closed.rate(201);
        println!("calibrate: closed-loop capacity {ceiling:.1} orders/s on one replica each");
        let mut steps = Vec::new();
        for (n, share) in STEPS.iter().enumerate() {
            let rate = ceiling * share;
            let bodies = std::env::temp_dir().join(format!("loja-{run}-{n}.bodies"));
            oha::write_bodies(&bodies, &format!("{run}-s{n}"), 5000)?;
            let (from, before) = (
                crate::util::now_us(),
                cpu::snapshot(&platform.instances, postmaster),
            );
            let answers = oha::run(&oha::Spec {
                urls: &platform.gateways,
                rate: Some(rate),
                connections: 512,
                duration: step,
                bodies: &bodies,
            });
            let _ = std::fs::remove_file(&bodies);
            let answers = answers?;
            let after = cpu::snapshot(&platform.instances, postmaster);
            let to = crate::util::now_us();
            let confirmed = answers.count(201);
            let (hops, _) = access::read(&platform.state.root().join("logs"))?;
            let mut requests_per_order: BTreeMap<String, f64> = BTreeMap::new();
            for h in hops.iter().filter(|h| h.end_us >= from && h.end_us <= to) {
                *requests_per_order.entry(h.service.clone()).or_default() += 1.0;
            }
            for n in requests_per_order.values_mut() {
                *n /= confirmed.max(1) as f64;
            }
            let s = Step {
                rate,
                confirmed_per_sec: confirmed as f64 / step.as_secs_f64(),
                p99_ms: answers.quantile(|s| s == 201, 0.99),
                cpu_ms_per_order: cpu::per_order(&before, &after, confirmed)
                    .into_iter()
                    .map(|(k, v)| (k.trim_end_matches("-1").to_owned(), v))
                    .collect(),
                requests_per_order,
            };
            println!(
                "calibrate: {rate:.1} orders/s offered: {:.1} confirmed/s, p99 {}",
                s.confirmed_per_sec,
                s.p99_ms.map_or("-".into(), |p| format!("{p:.1} ms"))
            );
            let over = s
                .p99_ms
                .is_none_or(|p| p > f64::from(capacity.p99_objective_ms));
            steps.push(s);
            if over {
                break;
            }
        }
        drop(platform);
        let objective = f64::from(capacity.p99_objective_ms);
        let within = steps
            .iter()
            .rev()
            .find(|s| s.p99_ms.is_some_and(|p| p <= objective));
        if within.is_none() {
            println!(
                "calibrate: the p99 objective ({objective} ms) was not kept even at the lowest step: \
                 the proposal sizes for that step's rate, an optimistic knee"
            );
        }
        let knee = within
            .or(steps.first())
            .context("no load step ran")?
            .clone();
        let measured: Vec<Measured> = model
            .services
            .iter()
            .map(|svc| Measured {
                service: svc.name.clone(),
                cpu_ms_per_order: knee.cpu_ms_per_order.get(&svc.name).copied().unwrap_or(0.0),
                requests_per_order: knee
                    .requests_per_order
                    .get(&svc.name)
                    .copied()
                    .unwrap_or(0.0),
                knee_orders_per_sec: knee.confirmed_per_sec,
                // The base table's bound serves every environment that keeps it.
                replicas_min: model
                    .environments
                    .iter()
                    .flat_map(|e| e.services.iter().filter(|s| s.name == svc.name))
                    .map(|s| s.replicas.min)
                    .fold(svc.replicas.min, u32::max),
            })
            .collect();
        let proposals: BTreeMap<String, Proposal> = measured
            .iter()
            .map(|m| (m.service.clone(), propose::propose(m, &capacity)))
            .collect();
        println!("\n{}", table(ws, &capacity, &knee, &measured, &proposals)?);
        let path = ws.root().join("loja.toml");
        let old = std::fs::read_to_string(&path).context("reading loja.toml")?;
        let new = edit::checked("loja.toml", &old, &proposals)?;
        let diff = edit::diff("loja.toml", &old, &new);
        if diff.is_empty() {
            println!("calibrate: loja.toml already declares this proposal");
        } else if self.write {
            println!("{diff}");
            edit::write(&path, &old, &new)?;
            println!("calibrate: loja.toml written; run `cargo xtask gen` to render it");
        } else {
            println!("{diff}");
            println!(
                "calibrate: nothing written; `cargo xtask calibrate --write` applies this diff"
            );
        }
        Ok(())
    }
}

/// The figures behind the proposal, service by service.
fn table(
    ws: &Workspace,
    c: &crate::model::Capacity,
    knee: &Step,
    measured: &[Measured],
    proposals: &BTreeMap<String, Proposal>,
) -> Result<String> {
    let model = ws.model()?;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cargo xtask calibrate: {} cores, rev {}; knee {:.1} confirmed orders/s (offered {:.1}, p99 {:.1} ms, objective {} ms{})\n\
         peak {} orders/s; load growth {} %/min over a {} s scale-up lag = {:.2}x, so scale at {} %",
        crate::perf::cores(),
        crate::perf::git_revision(ws),
        knee.confirmed_per_sec,
        knee.rate,
        knee.p99_ms.unwrap_or(f64::NAN),
        c.p99_objective_ms,
        if knee
            .p99_ms
            .is_some_and(|p| p <= f64::from(c.p99_objective_ms))
        {
            ""
        } else {
            ": NOT kept"
        },
        c.peak_orders_per_sec,
        c.growth_percent_per_min,
        c.scale_up_lag_secs,
        propose::growth_over_lag(c),
        propose::cpu_percent(c),
    );
    let mut row = |cells: [&str; 8]| {
        let _ = writeln!(
            s,
            "| {:<12} | {:>9} | {:>8} | {:>9} | {:>8} | {:>14} | {:>12} | {:>12} |",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        );
    };
    row([
        "service",
        "CPU ms/o",
        "req/o",
        "CPU ms/r",
        "knee m",
        "cpu_millis",
        "cpu_percent",
        "replicas.max",
    ]);
    row(["---"; 8]);
    for m in measured {
        let (p, now) = (
            &proposals[&m.service],
            model.service(&m.service).context("service")?,
        );
        row([
            &m.service,
            &format!("{:.3}", m.cpu_ms_per_order),
            &format!("{:.2}", m.requests_per_order),
            &format!("{:.3}", m.cpu_ms_per_request()),
            &format!("{:.0}", m.knee_millicores()),
            &format!("{} -> {}", now.requests.cpu_millis, p.cpu_millis),
            &format!("{} -> {}", now.autoscaling.cpu_percent, p.cpu_percent),
            &format!("{} -> {}", now.replicas.max, p.replicas_max),
        ]);
    }
    if let Some(pg) = knee.cpu_ms_per_order.get("postgres") {
        let _ = writeln!(
            s,
            "postgres: {pg:.3} CPU ms per order ({:.0} m at the knee; sized by [postgres], not here)",
            pg * knee.confirmed_per_sec
        );
    }
    for env in &model.environments {
        let own: Vec<&str> = env
            .services
            .iter()
            .filter(|svc| {
                model.service(&svc.name).is_some_and(|base| {
                    base.requests.cpu_millis != svc.requests.cpu_millis
                        || base.autoscaling.cpu_percent != svc.autoscaling.cpu_percent
                        || base.replicas.max != svc.replicas.max
                })
            })
            .map(|svc| svc.name.as_str())
            .collect();
        if !own.is_empty() {
            let _ = writeln!(
                s,
                "note: environment `{}` sets its own values for {}: the proposal changes the base tables only",
                env.name,
                own.join(", ")
            );
        }
    }
    Ok(s)
}
