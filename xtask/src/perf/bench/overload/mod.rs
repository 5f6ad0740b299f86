//! `cargo xtask bench --scenario overload`: what the platform does past its
//! capacity, in one run on one machine. First its capacity, closed loop as
//! the order bench measures it; then oha's open loop at 0.5×, 1×, 2× and 4×
//! that rate; then closed loops at 32 and 1024 connections. Every step
//! places orders for customers of its own, so pedidos' database tells how
//! many it confirmed (its goodput); the platform settles between steps, and
//! the shared invariants judge the aftermath. Figures and targets go to
//! `<target>/bench/overload-<timestamp>-<rev>.json`, a table to stdout and a
//! picture of the whole run beside the JSON.

mod report;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use loja_testkit::pg::query;

use super::Bench;
use crate::Workspace;
use crate::model::Model;
use crate::native::access;
use crate::native::platform::Platform;
use crate::perf::oha::{self, Answers};
use crate::perf::plot::{self, Band};
use crate::perf::{invariants, orders};
use report::{Report, Step};

/// The open-loop rates, as multiples of the measured capacity.
const MULTIPLES: [f64; 4] = [0.5, 1.0, 2.0, 4.0];
/// The closed-loop connection counts.
const CONNECTIONS: [u32; 2] = [32, 1024];
/// The most requests oha keeps in flight in an open loop: far above what
/// the platform can serve at once, so the rate, not this, sets the load.
const OPEN_LOOP_CONNECTIONS: u32 = 512;
/// How long the platform may take to finish every order between steps.
const SETTLE: Duration = Duration::from_secs(120);

/// The model with the gateway's per-client rate limits on, and what they
/// are. This scenario turns them on to show them working (issue 15, item
/// 1), but the model has no rate-limit keys yet: until it gains them, set
/// the scenario's limits here (per client, above one client's share of
/// the capacity, since every request of this bench comes from one host)
/// and the platform runs with them; meanwhile it runs as `up` starts it.
fn with_rate_limits(model: &Model) -> (Model, String) {
    (
        model.clone(),
        "none: the model has no rate-limit keys (hook: overload::with_rate_limits)".into(),
    )
}

/// How long each step runs.
struct Timing {
    step: Duration,
    warmup: Duration,
}

/// Runs the scenario for `bench`'s platform options.
pub fn run(bench: &Bench, ws: &Workspace) -> Result<()> {
    if !crate::dev::tools::oha().exists() && loja_testkit::pg::which("oha").is_none() {
        bail!("oha is not installed: run `cargo xtask tools`");
    }
    let timing = if bench.smoke {
        Timing {
            step: Duration::from_secs(3),
            warmup: Duration::from_secs(1),
        }
    } else {
        Timing {
            step: Duration::from_secs(bench.duration),
            warmup: Duration::from_secs(bench.warmup),
        }
    };
    let (model, rate_limits) = with_rate_limits(ws.model()?);
    let platform = match &bench.url {
        None => Platform::start(ws, &model, bench.replicas, bench.prebuilt, None, "overload")?,
        Some(url) => Platform::attach(ws, url)?,
    };
    let server = platform
        .postgres
        .clone()
        .context("the overload scenario counts orders in pedidos' database: no PostgreSQL found")?;
    let unix = crate::util::now();
    let run_id = format!("ov{unix}");
    println!("overload: seeding {} products", orders::SKUS);
    orders::seed(&platform.gateway, &platform.admin_token)?;
    let started_us = crate::util::now_us();
    let mut steps: Vec<Step> = Vec::new();
    let mut bands = Vec::new();
    let mut acknowledged = Vec::new();

    // Capacity: the order bench's closed loop, every 201's order id kept.
    if !timing.warmup.is_zero() {
        let warm = format!("{run_id}-warm");
        orders::load(
            ws,
            &platform.gateways,
            bench.connections,
            timing.warmup,
            &warm,
        )?;
        invariants::settle(&server, SETTLE)?;
    }
    let name = format!("{run_id}-capacity");
    let (from, clock) = (crate::util::now_us(), Instant::now());
    let load = orders::load(
        ws,
        &platform.gateways,
        bench.connections,
        timing.step,
        &name,
    )?;
    let secs = clock.elapsed().as_secs_f64();
    invariants::settle(&server, SETTLE)?;
    let confirmed = confirmed_orders(&server, &name)?;
    let capacity = confirmed as f64 / timing.step.as_secs_f64();
    println!("overload: capacity {capacity:.1} confirmed orders/s");
    acknowledged.extend(load.acknowledged.iter().cloned());
    steps.push(Step::from_wrk(
        "capacity (closed, wrk)",
        bench.connections,
        &load,
        confirmed,
        secs,
    ));
    bands.push(band(from, "capacity"));

    let mut plan: Vec<(String, Option<f64>, u32)> = MULTIPLES
        .iter()
        .map(|m| {
            (
                format!("open {m}x"),
                Some(capacity * m),
                OPEN_LOOP_CONNECTIONS,
            )
        })
        .collect();
    plan.extend(
        CONNECTIONS
            .iter()
            .map(|c| (format!("closed {c}"), None, *c)),
    );
    for (n, (label, rate, connections)) in plan.into_iter().enumerate() {
        let customer = format!("{run_id}-s{n}");
        let bodies = std::env::temp_dir().join(format!("loja-{customer}.bodies"));
        let expected = rate.unwrap_or(2000.0) * timing.step.as_secs_f64();
        oha::write_bodies(&bodies, &customer, (expected as u32).clamp(100, 50_000))?;
        match rate {
            Some(r) => println!("overload: {label}: {r:.1} orders/s for {:?}", timing.step),
            None => println!(
                "overload: {label}: {connections} connections for {:?}",
                timing.step
            ),
        }
        let (from, clock) = (crate::util::now_us(), Instant::now());
        let answers = oha::run(&oha::Spec {
            urls: &platform.gateways,
            rate,
            connections,
            duration: timing.step,
            bodies: &bodies,
        });
        let _ = std::fs::remove_file(&bodies);
        let answers: Answers = answers?;
        // Until the last request in flight was answered or given up on.
        let elapsed = clock.elapsed();
        bands.push(band(from, &label));
        invariants::settle(&server, SETTLE)?;
        let confirmed = confirmed_orders(&server, &customer)?;
        steps.push(Step::from_oha(
            &label,
            rate,
            connections,
            &answers,
            confirmed,
            elapsed,
        ));
    }
    let to_us = crate::util::now_us();

    println!("overload: invariants");
    invariants::settle(&server, SETTLE)?;
    let checks = invariants::check(&invariants::snapshot(&server)?, &acknowledged);
    let (hops, _) = access::read(&platform.state.root().join("logs"))?;
    let gateway = platform.model().project.gateway.clone();
    drop(platform);

    let mut report = Report {
        timestamp: crate::perf::timestamp(unix),
        git_revision: crate::perf::git_revision(ws),
        cores: crate::perf::cores(),
        smoke: bench.smoke,
        step_secs: timing.step.as_secs(),
        rate_limits,
        capacity_orders_per_sec: capacity,
        steps,
        invariants: checks,
        targets: Vec::new(),
    };
    report.evaluate();
    let dir = ws.target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!(
        "overload-{}-{}.json",
        report.timestamp, report.git_revision
    ));
    crate::util::fs::write_atomic(&path, &serde_json::to_vec_pretty(&report)?)?;
    let answers: Vec<&access::Hop> = hops.iter().filter(|h| h.service == gateway).collect();
    let title = format!(
        "cargo xtask bench --scenario overload {} ({})",
        report.timestamp, report.git_revision
    );
    let seconds = plot::seconds(&answers, started_us, to_us);
    let picture = plot::svg(&title, started_us, &seconds, &bands, &[]);
    let svg = path.with_extension("svg");
    crate::util::fs::write_atomic(&svg, picture.as_bytes())?;
    println!("\n{}", report.table());
    println!(
        "overload: figures in {}, picture in {}",
        path.display(),
        svg.display()
    );
    report.check()
}

/// The phase from `from_us` to now, for the picture.
fn band(from_us: i64, label: &str) -> Band {
    Band {
        from_us,
        to_us: crate::util::now_us(),
        label: label.into(),
    }
}

/// Orders of the customers `<prefix>-...` that pedidos confirmed.
fn confirmed_orders(server: &str, prefix: &str) -> Result<u64> {
    // The prefix is made here of letters, digits and '-': nothing to escape.
    let sql = format!(
        "SELECT count(*) FROM orders WHERE status = 'confirmed' AND customer_id LIKE '{prefix}-%'"
    );
    let rows = query(&format!("{server}/pedidos"), &sql)?;
    let value = rows
        .first()
        .and_then(|r| r.first())
        .context("no count of confirmed orders")?;
    value
        .parse()
        .with_context(|| format!("confirmed orders: `{value}` is not a number"))
}
