//! `cargo xtask bench`: order throughput and latency through the gateway, the
//! pgbench ceiling of the same SQL, the gateway's overhead on reads, and the
//! footprint, in one run on one machine. The platform runs natively (release
//! builds, started by `up`'s code path on free ports in a temporary state
//! directory), or is one already started by `cargo xtask up` (`--url`).
//! Results go to `<target>/bench/<timestamp>-<rev>.json` and a table to stdout.

mod ceiling;
mod cpu;
mod dbstats;
mod footprint;
mod gateway;
pub(crate) mod http;
pub(crate) mod orders;
pub(crate) mod report;
pub(crate) mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::model::Model;
use crate::runstate::{Instance, StateDir};
use crate::{down, up};
use loja_testkit::{free_port, pg::Cluster};

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent connections of every load (and pgbench clients).
    pub connections: u32,
    /// Length of each measured run.
    pub duration: Duration,
    /// Unmeasured load before each measured run.
    pub warmup: Duration,
    /// Base URL of the gateway of a platform already started by `cargo xtask up`.
    pub url: Option<String>,
    /// Replicas of every service when the bench starts the platform.
    pub replicas: u32,
    /// Build the release binaries first.
    pub build: bool,
    /// A few seconds at low load: checks that the bench works, measures nothing.
    pub smoke: bool,
}

impl Options {
    /// The settings of `--smoke`.
    pub fn smoke(mut self) -> Self {
        self.connections = self.connections.min(4);
        self.duration = Duration::from_secs(2);
        self.warmup = Duration::from_secs(1);
        self.smoke = true;
        self
    }
}

/// The platform under load.
pub(crate) struct Platform {
    /// The model it was started from, with the ports it really uses.
    pub model: Model,
    pub gateway: String,
    pub instances: Vec<Instance>,
    pub admin_token: String,
    /// Superuser URL of its PostgreSQL server, without database.
    pub postgres: Option<String>,
    pub state: StateDir,
    pub bin_dir: PathBuf,
    /// Started by the bench: stopped and removed at the end.
    owned: bool,
}

impl Drop for Platform {
    fn drop(&mut self) {
        if self.owned {
            let _ = down::run(&self.state, Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(self.state.root());
        }
    }
}

/// Runs every measurement and reports.
pub fn run(root: &Path, options: &Options) -> Result<()> {
    for (tool, from) in [
        ("wrk", "`cargo xtask tools`"),
        ("pgbench", "the PostgreSQL client package"),
    ] {
        if Command::new(tool).arg("--version").output().is_err() {
            bail!("`{tool}` is not on PATH: install it ({from})");
        }
    }
    let model = Model::load(&root.join("loja.toml"))?;
    let platform = match &options.url {
        None => start(root, &model, options.replicas, options.build, "bench")?,
        Some(url) => attach(root, &model, url)?,
    };
    let target_dir = crate::build::target_dir(root);
    let unix = crate::runstate::now();
    let mut report = report::Report {
        timestamp: report::timestamp(unix),
        git_revision: git_revision(root),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        smoke: options.smoke,
        connections: options.connections,
        duration_secs: options.duration.as_secs(),
        warmup_secs: options.warmup.as_secs(),
        orders: Default::default(),
        per_order: None,
        flush_ms: None,
        cpu_ms_per_order: Default::default(),
        ceiling: None,
        reads: None,
        memory: Vec::new(),
        startup: Vec::new(),
        generate: None,
        targets: Vec::new(),
    };

    println!("bench: seeding {} products", orders::SKUS);
    orders::seed(&platform.gateway, &platform.admin_token)?;
    println!("bench: orders through the gateway");
    let run_id = format!("bench-{unix}");
    if !options.warmup.is_zero() {
        let warm_id = format!("{run_id}-warmup");
        let gw = &platform.gateway;
        orders::load(root, gw, options.connections, options.warmup, &warm_id)?;
    }
    let databases: Vec<String> = model.database_services().map(|s| s.snake.clone()).collect();
    let stats = |server: &String| dbstats::snapshot(server, &databases);
    let before = platform.postgres.as_ref().map(stats).transpose()?;
    let postmaster = cpu::postmaster(&platform.state.postgres_dir().join("data"));
    let cpu_before = cpu::snapshot(&platform.instances, postmaster);
    report.orders = orders::load(
        root,
        &platform.gateway,
        options.connections,
        options.duration,
        &run_id,
    )?;
    let confirmed = report.orders.statuses.get("201").copied().unwrap_or(0);
    let cpu_after = cpu::snapshot(&platform.instances, postmaster);
    report.cpu_ms_per_order = cpu::per_order(&cpu_before, &cpu_after, confirmed);
    if let (Some(server), Some(before)) = (&platform.postgres, &before) {
        report.per_order = Some(dbstats::per_order(before, &stats(server)?, confirmed));
    }
    match &platform.postgres {
        Some(server) => {
            println!("bench: pgbench ceiling");
            report.ceiling = Some(ceiling::run(
                root,
                server,
                options.connections,
                options.warmup,
                options.duration,
                postmaster,
            )?);
        }
        None => println!("bench: no PostgreSQL of `cargo xtask up` found, ceiling skipped"),
    }
    match platform.instances.iter().find(|i| i.service == "estoque") {
        Some(estoque) => {
            println!("bench: product reads, gateway and direct");
            report.reads = Some(gateway::run(
                root,
                &platform.gateway,
                &format!("http://127.0.0.1:{}", estoque.port),
                options.connections,
                options.warmup,
                options.duration,
                &platform.instances,
                postmaster,
            )?);
        }
        None => println!("bench: no estoque replica of `cargo xtask up` found, read path skipped"),
    }
    println!("bench: footprint");
    report.flush_ms = dbstats::flush_ms(&platform.state.postgres_dir())
        .map_err(|err| eprintln!("bench: disk flush not measured: {err:#}"))
        .ok();
    report.memory = footprint::memory(&platform.instances);
    let samples = if options.smoke { 1 } else { 3 };
    report.startup = footprint::startup(
        &platform.state,
        &platform.bin_dir,
        &platform.instances,
        samples,
    )?;
    report.generate = Some(footprint::gen_time(
        root,
        if options.smoke { 1 } else { 5 },
    )?);
    drop(platform);

    report.evaluate();
    let path = report.write(&target_dir.join("bench"))?;
    println!("\n{}", report.table());
    println!("bench: figures in {}", path.display());
    if options.smoke {
        smoke_check(&report)?;
    }
    Ok(())
}

/// A smoke run passes when every part produced figures and nothing failed.
fn smoke_check(report: &report::Report) -> Result<()> {
    let o = &report.orders;
    if o.rate(201) <= 0.0 || o.errors(201) > 0 {
        bail!(
            "smoke: orders did not all succeed: {:?}, {} socket errors",
            o.statuses,
            o.socket_errors
        );
    }
    if let Some(c) = &report.ceiling
        && (c.transactions == 0 || c.failed > 0)
    {
        bail!("smoke: the pgbench replay failed: {c:?}");
    }
    if let Some(r) = &report.reads
        && (r.gateway.errors(200) > 0 || r.direct.errors(200) > 0 || r.direct.rate(200) <= 0.0)
    {
        bail!("smoke: product reads failed");
    }
    Ok(())
}

/// The `up` options of a platform started by [`start`].
pub(crate) fn up_options(root: &Path, replicas: u32, build: bool) -> up::Options {
    up::Options {
        replicas: Some(replicas.max(1)),
        build,
        bin_dir: crate::build::release_dir(root),
        timeout: Duration::from_secs(60),
    }
}

/// Builds the release binaries and starts the platform the way `up` does, on
/// free ports, in a temporary state directory of its own (`loja-<purpose>-<pid>`).
pub(crate) fn start(
    root: &Path,
    model: &Model,
    replicas: u32,
    build: bool,
    purpose: &str,
) -> Result<Platform> {
    let mut model = model.clone();
    for service in &mut model.services {
        service.native_ports = (0..replicas.max(1))
            .map(|_| Ok(free_port()))
            .collect::<Result<_>>()?;
    }
    model.postgres.native_port = free_port();
    model.observability.prometheus_port = free_port();
    let state =
        StateDir::new(std::env::temp_dir().join(format!("loja-{purpose}-{}", std::process::id())));
    let up_options = up_options(root, replicas, build);
    let bin_dir = up_options.bin_dir.clone();
    let mut platform = Platform {
        model: Model::clone(&model),
        gateway: String::new(),
        instances: Vec::new(),
        admin_token: String::new(),
        postgres: Some(format!(
            "postgres://postgres@127.0.0.1:{}",
            model.postgres.native_port
        )),
        state: state.clone(),
        bin_dir,
        owned: true,
    };
    let running = up::run(root, &platform.model, &state, &up_options)?;
    let gateway = running
        .instances
        .iter()
        .find(|i| i.service == model.project.gateway)
        .context("the gateway did not start")?;
    platform.gateway = format!("http://127.0.0.1:{}", gateway.port);
    // Only the model's services: `up` may also run Prometheus.
    platform.instances = running
        .instances
        .into_iter()
        .filter(|i| model.service(&i.service).is_some())
        .collect();
    platform.admin_token = running.admin_token.0;
    Ok(platform)
}

/// The platform `cargo xtask up` started in this checkout, loaded at `url`.
fn attach(root: &Path, model: &Model, url: &str) -> Result<Platform> {
    http::authority(url)?;
    let state = crate::state_dir(root);
    let instances: Vec<Instance> = state
        .instances()?
        .into_iter()
        .filter(|i| i.is_alive() && model.service(&i.service).is_some())
        .collect();
    let cluster = Cluster::new(state.postgres_dir(), model.postgres.native_port);
    Ok(Platform {
        model: model.clone(),
        gateway: url.trim_end_matches('/').to_owned(),
        instances,
        admin_token: state.admin_token(root)?.0,
        postgres: cluster
            .is_running()
            .then(|| format!("postgres://postgres@127.0.0.1:{}", cluster.port())),
        state,
        bin_dir: crate::build::release_dir(root),
        owned: false,
    })
}

/// The short hash of HEAD, with `-dirty` when the tree has changes.
pub(crate) fn git_revision(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{rev}-dirty"),
        _ => rev,
    }
}
