//! `cargo xtask drill`: deploys and failures under load, on the native
//! platform (release builds, two replicas of every service, free ports, a
//! temporary state directory), with the benchmark's order load running.
//!
//! 1. **Rolling restarts**: every service is restarted replica by replica
//!    (`restart --rolling`), the whole platform twice, while orders flow.
//!    Target: 0 failed requests.
//! 2. **Chaos**: at a steady pace a random replica of pedidos, estoque or
//!    pagamentos is killed with SIGKILL and started again (as a supervisor
//!    would), and PostgreSQL crashes once (immediate stop) and restarts.
//! 3. **Aftermath**: once the reconciler and the reservation TTL have run,
//!    the invariants of [`invariants`] are checked in the databases.
//!
//! Figures go to `<target>/drill/<timestamp>-<rev>.json` and a table to stdout;
//! the command fails when a request failed during the rolling restarts or an
//! invariant does not hold.

mod chaos;
mod report;

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{invariants, orders, wrk};
use crate::Workspace;
use crate::dev::build::Prebuilt;
use crate::model::Model;
use crate::native::access::{self, CallGraph};
use crate::native::launcher::Launch;
use crate::native::platform::Platform;
use crate::native::restart;
use crate::native::state::StateDir;

/// Rolling restarts and chaos (SIGKILL, a PostgreSQL crash) under order
/// load, then the invariants checked in the databases.
#[derive(Debug, Clone, clap::Args)]
pub struct Drill {
    /// Concurrent connections of the order load.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Times every service is restarted replica by replica.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Seconds of the chaos phase.
    #[arg(long, default_value_t = 60)]
    pub chaos: u64,
    /// Seconds between two faults.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub fault_every: u64,
    /// Seed of the fault sequence, to replay a run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// The short run CI makes: at most 8 connections, 12 s of chaos, a fault every 2 s.
    #[arg(long)]
    pub smoke: bool,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
}

/// The settings of one drill, `--smoke` applied.
#[derive(Debug, Clone)]
pub struct Options {
    pub connections: u32,
    pub rounds: u32,
    pub chaos: Duration,
    pub fault_every: Duration,
}

impl Drill {
    fn options(&self) -> Options {
        let mut o = Options {
            connections: self.connections,
            rounds: self.rounds,
            chaos: Duration::from_secs(self.chaos),
            fault_every: Duration::from_secs(self.fault_every),
        };
        if self.smoke {
            o.connections = o.connections.min(8);
            o.chaos = o.chaos.min(Duration::from_secs(12));
            o.fault_every = o.fault_every.min(Duration::from_secs(2));
        }
        o
    }

    pub fn run(self, ws: &Workspace) -> Result<()> {
        drill(ws, &self.options(), self.seed, self.prebuilt)
    }
}

/// Replicas of every service: one can go while the other serves.
const REPLICAS: u32 = 2;

/// Runs the drill and reports.
fn drill(ws: &Workspace, options: &Options, seed: Option<u64>, prebuilt: Prebuilt) -> Result<()> {
    if loja_testkit::pg::which("wrk").is_none() {
        bail!("`wrk` is not on PATH: install it (`cargo xtask tools`)");
    }
    let mut model = ws.model()?.clone();
    settle_quickly(&mut model);
    println!("drill: starting the platform, {REPLICAS} replicas of every service");
    let platform = Platform::start(ws, &model, REPLICAS, prebuilt, None, "drill")?;
    let postgres = platform
        .postgres
        .clone()
        .context("the drill's platform has its own PostgreSQL")?;
    println!("drill: seeding {} products", orders::SKUS);
    orders::seed(&platform.gateway, &platform.admin_token)?;
    restart::allow_queue_handover();
    let unix = crate::util::now();
    let load = |phase: &str| {
        wrk::spawn(
            ws,
            &wrk::Spec {
                urls: &platform.gateways,
                mode: "orders",
                connections: options.connections,
                // Stopped by the drill when its phase is over.
                duration: Duration::from_secs(3600),
                run_id: &format!("drill-{unix}-{phase}"),
                skus: orders::SKUS,
            },
        )
    };

    println!(
        "drill: rolling restarts under load, every service {} time(s)",
        options.rounds
    );
    let rolling_from = crate::util::now_us();
    let wrk = load("rolling")?;
    let restarts = rolling(
        platform.model(),
        &platform.state,
        &platform.launches,
        options.rounds,
    );
    let rolling_load = wrk::finish(wrk, true)?;
    let rolling_to = crate::util::now_us();
    let restarts = restarts?;

    println!("drill: chaos under load for {:?}", options.chaos);
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let wrk = load("chaos")?;
    let chaos_from = crate::util::now_us();
    let faults = chaos::run(&platform, options, seed);
    let chaos_load = wrk::finish(wrk, true)?;
    let chaos_to = crate::util::now_us();
    let faults = faults?;

    println!("drill: waiting for the reconciler and the reservation TTL");
    let settled = invariants::settle(&postgres, Duration::from_secs(120))?;
    let acknowledged: Vec<String> = rolling_load
        .acknowledged
        .iter()
        .chain(&chaos_load.acknowledged)
        .cloned()
        .collect();
    let checks = invariants::check(&invariants::snapshot(&postgres)?, &acknowledged);
    let (hops, _) = access::read(&platform.state.root().join("logs"))?;
    let calls = CallGraph::of(platform.model(), &access::calls(&hops));
    let report_gateway = platform.model().project.gateway.clone();
    drop(platform);

    let report = report::Report {
        timestamp: super::timestamp(unix),
        git_revision: super::git_revision(ws),
        cores: super::cores(),
        connections: options.connections,
        rolling: report::Rolling {
            from_us: rolling_from,
            to_us: rolling_to,
            rounds: options.rounds,
            replaced: restarts,
            load: rolling_load,
        },
        chaos: report::Chaos {
            from_us: chaos_from,
            to_us: chaos_to,
            seed,
            duration_secs: options.chaos.as_secs(),
            faults,
            load: chaos_load,
        },
        settled_ms: settled.as_millis() as u64,
        invariants: checks,
        calls,
    };
    let path = report.write(&ws.target_dir().join("drill"))?;
    let gateway: Vec<&access::Hop> = hops
        .iter()
        .filter(|h| h.service == report_gateway)
        .collect();
    let picture = path.with_extension("svg");
    crate::util::fs::write_atomic(&picture, report.plot(&gateway).as_bytes())?;
    println!("\n{}", report.table());
    println!(
        "drill: figures in {}, picture in {}",
        path.display(),
        picture.display()
    );
    report.verdict()
}

/// The drill's own settings on top of loja.toml: reservations expire and
/// unfinished orders are resumed within seconds, so the aftermath settles
/// quickly. Everything else runs as configured.
fn settle_quickly(model: &mut Model) {
    for service in &mut model.services {
        let env = &mut service.env;
        for (key, value) in [
            ("RESERVATION_TTL_SECS", "10"),
            ("SWEEP_INTERVAL_SECS", "1"),
            ("RECONCILE_AFTER_SECS", "3"),
            ("RECONCILE_INTERVAL_SECS", "1"),
        ] {
            if env.contains_key(key) {
                env.insert(key.into(), value.into());
            }
        }
    }
}

/// Every service restarted replica by replica, callees first, `rounds` times.
fn rolling(
    model: &Model,
    state: &StateDir,
    launches: &[Launch],
    rounds: u32,
) -> Result<Vec<report::Replacement>> {
    // Let the load reach every replica before the first restart.
    std::thread::sleep(Duration::from_secs(2));
    let mut replaced = Vec::new();
    for round in 1..=rounds {
        for service in crate::native::plan::start_order(model)? {
            let timeout = Duration::from_secs(60);
            for r in restart::rolling(model, state, launches, &service.name, timeout)? {
                println!(
                    "drill: round {round}: {} replaced (ready after {} ms, drained in {} ms)",
                    r.name,
                    r.ready_after.as_millis(),
                    r.drained_after.as_millis()
                );
                replaced.push(report::Replacement {
                    at_us: r.at_us,
                    round,
                    replica: r.name,
                    ready_ms: r.ready_after.as_millis() as u64,
                    drained_ms: r.drained_after.as_millis() as u64,
                });
            }
            // The load spreads over the new replicas before the next service.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    Ok(replaced)
}
