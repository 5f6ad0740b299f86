//! `cargo xtask bench`: order throughput and latency through the gateway, the
//! pgbench ceiling of the same SQL, the gateway's overhead on reads, and the
//! footprint, in one run on one machine. The platform runs natively (release
//! builds, started by `up`'s code path on free ports in a temporary state
//! directory), or is one already started by `cargo xtask up` (`--url`).
//! Results go to `<target>/bench/<timestamp>-<rev>.json` and a table to stdout.

pub mod ceiling;
pub(crate) mod cpu;
mod dbstats;
mod footprint;
mod gateway;
mod overload;
pub(crate) mod report;

use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use super::orders;
use crate::Workspace;
use crate::dev::build::Prebuilt;
use crate::native::access;
use crate::native::platform::Platform;
use crate::perf::plot::{self, Band};

/// Measure order throughput, the pgbench ceiling, gateway overhead and footprint.
#[derive(Debug, Clone, clap::Args)]
pub struct Bench {
    /// Concurrent connections of every load (and pgbench clients).
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Seconds of each measured run.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// Seconds of unmeasured load before each measured run.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Gateway URL of a platform already started by `cargo xtask up`.
    #[arg(long)]
    pub url: Option<String>,
    /// Replicas of every service of the platform the bench starts.
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// A few seconds at low load, to check that the bench still works.
    #[arg(long)]
    pub smoke: bool,
    /// What to measure: the order bench, or the platform past its capacity.
    #[arg(long, value_enum, default_value_t = Scenario::Orders)]
    pub scenario: Scenario,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
}

impl Bench {
    /// The load of a run: `--smoke` caps it and shortens it.
    fn load(&self) -> LoadSettings {
        if self.smoke {
            LoadSettings {
                connections: self.connections.min(4),
                duration: Duration::from_secs(2),
                warmup: Duration::from_secs(1),
            }
        } else {
            LoadSettings {
                connections: self.connections,
                duration: Duration::from_secs(self.duration),
                warmup: Duration::from_secs(self.warmup),
            }
        }
    }

    /// Runs every measurement and reports.
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if self.scenario == Scenario::Overload {
            return overload::run(&self, ws);
        }
        for (tool, from) in [
            ("wrk", "`cargo xtask tools`"),
            ("pgbench", "the PostgreSQL client package"),
        ] {
            if Command::new(tool).arg("--version").output().is_err() {
                bail!("`{tool}` is not on PATH: install it ({from})");
            }
        }
        let platform = match &self.url {
            None => Platform::start(ws, ws.model()?, self.replicas, self.prebuilt, None, "bench")?,
            Some(url) => Platform::attach(ws, url)?,
        };
        let load = self.load();
        let unix = crate::util::now();
        let mut run = Run {
            ws,
            postmaster: cpu::postmaster(&platform.state.postgres_dir().join("data")),
            platform,
            load,
            report: report::Report {
                timestamp: super::timestamp(unix),
                git_revision: super::git_revision(ws),
                cores: super::cores(),
                smoke: self.smoke,
                connections: load.connections,
                duration_secs: load.duration.as_secs(),
                warmup_secs: load.warmup.as_secs(),
                ..Default::default()
            },
        };
        let orders_from = crate::util::now_us();
        run.orders(&format!("bench-{unix}"))?;
        let orders_to = crate::util::now_us();
        run.ceiling()?;
        run.reads()?;
        run.footprint(if self.smoke { 1 } else { 3 })?;
        let (hops, _) = access::read(&run.platform.state.root().join("logs"))?;
        let Run {
            mut report,
            platform,
            ..
        } = run;
        let gateway = platform.model().project.gateway.clone();
        drop(platform);
        // The order run, whose rate the read path would dwarf.
        let measured_from = orders_to - load.duration.as_micros() as i64;
        let bands = [Band {
            from_us: measured_from,
            to_us: orders_to,
            label: "measured (after the warm-up)".into(),
        }];
        let answers: Vec<&access::Hop> = hops.iter().filter(|h| h.service == gateway).collect();
        let title = format!(
            "cargo xtask bench {} ({}): orders through the gateway, {} connections",
            report.timestamp, report.git_revision, load.connections
        );
        let seconds = plot::seconds(&answers, orders_from, orders_to);
        let picture = plot::svg(&title, orders_from, &seconds, &bands, &[]);
        report.generate = Some(footprint::gen_time(ws, if self.smoke { 1 } else { 5 })?);

        report.evaluate();
        let path = report.write(&ws.target_dir().join("bench"))?;
        let svg = path.with_extension("svg");
        crate::util::fs::write_atomic(&svg, picture.as_bytes())?;
        println!("\n{}", report.table());
        println!(
            "bench: figures in {}, picture in {}",
            path.display(),
            svg.display()
        );
        if self.smoke {
            smoke_check(&report)?;
        }
        Ok(())
    }
}

/// The measurements `bench` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Throughput, latency, the pgbench ceiling, the read path, the footprint.
    Orders,
    /// Open and closed loops past the capacity ([`overload`]).
    Overload,
}

/// How hard and how long every load of one run is.
#[derive(Debug, Clone, Copy)]
struct LoadSettings {
    connections: u32,
    duration: Duration,
    warmup: Duration,
}

/// One bench run in progress: the platform under load and what it measured so far.
struct Run<'a> {
    ws: &'a Workspace,
    platform: Platform,
    load: LoadSettings,
    /// The PostgreSQL server's main process, whose children are its backends.
    postmaster: Option<u32>,
    report: report::Report,
}

impl Run<'_> {
    /// Measurement 1: orders through the gateway, after a warm-up, with
    /// what each costs (CPU per process, commits, WAL flushes).
    fn orders(&mut self, run_id: &str) -> Result<()> {
        let (ws, p, load) = (self.ws, &self.platform, self.load);
        println!("bench: seeding {} products", orders::SKUS);
        orders::seed(&p.gateway, &p.admin_token)?;
        println!("bench: orders through the gateway");
        if !load.warmup.is_zero() {
            let warm_id = format!("{run_id}-warmup");
            orders::load(ws, &p.gateways, load.connections, load.warmup, &warm_id)?;
        }
        let databases: Vec<String> = p
            .model()
            .database_services()
            .map(|s| s.snake.clone())
            .collect();
        let stats = |server: &String| dbstats::snapshot(server, &databases);
        let before = p.postgres.as_ref().map(stats).transpose()?;
        let cpu_before = cpu::snapshot(&p.instances, self.postmaster);
        let orders = orders::load(ws, &p.gateways, load.connections, load.duration, run_id)?;
        let confirmed = orders.statuses.get("201").copied().unwrap_or(0);
        let cpu_after = cpu::snapshot(&p.instances, self.postmaster);
        self.report.cpu_ms_per_order = cpu::per_order(&cpu_before, &cpu_after, confirmed);
        if let (Some(server), Some(before)) = (&p.postgres, &before) {
            self.report.per_order = Some(dbstats::per_order(before, &stats(server)?, confirmed));
        }
        self.report.orders = orders;
        Ok(())
    }

    /// Measurement 2: the pgbench replay of the order's SQL.
    fn ceiling(&mut self) -> Result<()> {
        let Some(server) = &self.platform.postgres else {
            println!("bench: no PostgreSQL of `cargo xtask up` found, ceiling skipped");
            return Ok(());
        };
        println!("bench: pgbench ceiling");
        let load = self.load;
        self.report.ceiling = Some(ceiling::run(
            self.ws,
            server,
            load.connections,
            load.warmup,
            load.duration,
            self.postmaster,
        )?);
        Ok(())
    }

    /// Measurement 3: product reads through the gateway and direct.
    fn reads(&mut self) -> Result<()> {
        let p = &self.platform;
        let Some(estoque) = p.instances.iter().find(|i| i.service == "estoque") else {
            println!("bench: no estoque replica of `cargo xtask up` found, read path skipped");
            return Ok(());
        };
        println!("bench: product reads, gateway and direct");
        let load = self.load;
        self.report.reads = Some(gateway::run(
            self.ws,
            &p.gateway,
            &format!("http://127.0.0.1:{}", estoque.port),
            load.connections,
            load.warmup,
            load.duration,
            &p.instances,
            self.postmaster,
        )?);
        Ok(())
    }

    /// Measurement 4: memory, binaries, start-up and the disk's flush time.
    fn footprint(&mut self, samples: usize) -> Result<()> {
        let p = &self.platform;
        println!("bench: footprint");
        self.report.flush_ms = dbstats::flush_ms(&p.state.postgres_dir())
            .map_err(|err| eprintln!("bench: disk flush not measured: {err:#}"))
            .ok();
        self.report.memory = footprint::memory(&p.instances);
        let scratch = tempfile_dir("bench-startup")?;
        let startup = footprint::startup(&scratch, &p.options.bin_dir, &p.instances, samples);
        let _ = std::fs::remove_dir_all(&scratch);
        self.report.startup = startup?;
        Ok(())
    }
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

/// A fresh scratch folder under the system's temporary directory.
fn tempfile_dir(purpose: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "loja-{purpose}-{}-{}",
        std::process::id(),
        loja_testkit::free_port()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
