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
mod invariants;
mod report;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::bench::{self, orders, wrk};
use crate::model::Model;
use crate::{restart, up};

/// What `cargo xtask drill` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent connections of the order load.
    pub connections: u32,
    /// Times every service is restarted replica by replica.
    pub rounds: u32,
    /// Length of the chaos phase.
    pub chaos: Duration,
    /// Pause between two faults.
    pub fault_every: Duration,
    /// Seed of the fault sequence (replicas picked); from the clock when absent.
    pub seed: Option<u64>,
    /// Build the release binaries first.
    pub build: bool,
}

impl Options {
    /// The short run CI makes: fewer connections, a shorter chaos phase.
    pub fn smoke(mut self) -> Self {
        self.connections = self.connections.min(8);
        self.chaos = self.chaos.min(Duration::from_secs(12));
        self.fault_every = self.fault_every.min(Duration::from_secs(2));
        self
    }
}

/// Replicas of every service: one can go while the other serves.
const REPLICAS: u32 = 2;

/// Runs the drill and reports.
pub fn run(root: &Path, options: &Options) -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("`wrk` is not on PATH: install it (`cargo xtask tools`)");
    }
    let mut model = Model::load(&root.join("loja.toml"))?;
    settle_quickly(&mut model);
    println!("drill: starting the platform, {REPLICAS} replicas of every service");
    let platform = bench::start(root, &model, REPLICAS, options.build, "drill")?;
    let postgres = platform
        .postgres
        .clone()
        .context("the drill's platform has its own PostgreSQL")?;
    println!("drill: seeding {} products", orders::SKUS);
    orders::seed(&platform.gateway, &platform.admin_token)?;
    restart::allow_queue_handover();
    let launches = up::plan(
        root,
        &platform.model,
        &platform.state,
        &bench::up_options(root, REPLICAS, false),
        &mut Vec::new(),
    )?;
    let unix = crate::runstate::now();
    let load = |phase: &str| {
        wrk::spawn(
            root,
            &wrk::Spec {
                url: &platform.gateway,
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
    let wrk = load("rolling")?;
    let restarts = rolling(&platform.model, &platform.state, &launches, options.rounds);
    let rolling_load = wrk::finish(wrk, true)?;
    let restarts = restarts?;

    println!("drill: chaos under load for {:?}", options.chaos);
    let seed = options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let wrk = load("chaos")?;
    let faults = chaos::run(&platform, &launches, options, seed);
    let chaos_load = wrk::finish(wrk, true)?;
    let faults = faults?;

    println!("drill: waiting for the reconciler and the reservation TTL");
    let settled = invariants::settle(&postgres, Duration::from_secs(120))?;
    let confirmed_answers = rolling_load.statuses.get("201").copied().unwrap_or(0)
        + chaos_load.statuses.get("201").copied().unwrap_or(0);
    let checks = invariants::check(&postgres, confirmed_answers)?;
    drop(platform);

    let report = report::Report {
        timestamp: bench::report::timestamp(unix),
        git_revision: bench::git_revision(root),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        connections: options.connections,
        rolling: report::Rolling {
            rounds: options.rounds,
            replaced: restarts,
            load: rolling_load,
        },
        chaos: report::Chaos {
            seed,
            duration_secs: options.chaos.as_secs(),
            faults,
            load: chaos_load,
        },
        settled_ms: settled.as_millis() as u64,
        invariants: checks,
    };
    let path = report.write(&crate::build::target_dir(root).join("drill"))?;
    println!("\n{}", report.table());
    println!("drill: figures in {}", path.display());
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
    state: &crate::runstate::StateDir,
    launches: &[up::Launch],
    rounds: u32,
) -> Result<Vec<report::Replacement>> {
    // Let the load reach every replica before the first restart.
    std::thread::sleep(Duration::from_secs(2));
    let mut replaced = Vec::new();
    for round in 1..=rounds {
        for service in up::start_order(model)? {
            let timeout = Duration::from_secs(60);
            for r in restart::rolling(model, state, launches, &service.name, timeout)? {
                println!(
                    "drill: round {round}: {} replaced (ready after {} ms, drained in {} ms)",
                    r.name,
                    r.ready_after.as_millis(),
                    r.drained_after.as_millis()
                );
                replaced.push(report::Replacement {
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
