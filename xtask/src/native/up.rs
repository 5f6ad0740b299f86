//! `cargo xtask up`: the platform as local processes. A private PostgreSQL
//! cluster under the state directory, one database and login per service, and
//! every replica of every service started with the environment the model
//! renders for compose and Kubernetes, with loopback addresses.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use loja_testkit::pg::{self, Cluster};

use super::launcher;
use super::plan::{self, Plan};
use super::state::{Instance, StateDir, UpRecord};
use crate::Workspace;
use crate::dev::build::{self, Prebuilt};

/// Start the platform as local processes (or, with --compose, as the
/// generated compose stack); it runs until `down`.
#[derive(Debug, Clone, clap::Args)]
pub struct Up {
    /// Replicas of every service; without a number, each service's `replicas.min`.
    #[arg(long, num_args = 0..=1, conflicts_with = "compose")]
    pub replicas: Option<Option<u32>>,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
    /// Seconds to wait for every replica to be ready [default: 60, 300 with --compose].
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Build the images and start generated/docker-compose.yml on the Docker engine.
    #[arg(long)]
    pub compose: bool,
}

impl Up {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if self.compose {
            let timeout = Duration::from_secs(self.timeout.unwrap_or(300));
            return crate::docker::compose::up(ws, self.prebuilt, timeout);
        }
        let options = Options {
            // `--replicas` alone means each service's minimum; no flag, one each.
            replicas: self.replicas.unwrap_or(Some(1)),
            prebuilt: self.prebuilt,
            bin_dir: build::release_dir(ws),
            timeout: Duration::from_secs(self.timeout.unwrap_or(60)),
        };
        let state = ws.state();
        let running = run(ws, &state, &options)?;
        print_summary(ws, &state, &running)
    }
}

/// How to bring the platform up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Replicas of every service: `Some(n)`, or `None` for each one's `replicas.min`.
    pub replicas: Option<u32>,
    /// Whether to build the release binaries into `bin_dir` first (tests
    /// that built their own binaries skip it).
    pub prebuilt: Prebuilt,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// Longest wait for every replica to answer `/ready`.
    pub timeout: Duration,
}

/// What runs after a successful `up`.
#[derive(Debug, Clone)]
pub struct Running {
    /// Every service replica (and Prometheus), in start order.
    pub instances: Vec<Instance>,
    /// How each service replica was started (`restart` and the drill start
    /// successors the same way).
    pub launches: Vec<super::launcher::Launch>,
    /// The admin token and where it came from.
    pub admin_token: (String, String),
    /// What was deliberately not started, and why.
    pub notes: Vec<String>,
}

/// Brings the platform up natively from the workspace's model: PostgreSQL,
/// the per-service databases and logins, then every replica of every service
/// (the services a service calls start before it), and waits until all are ready.
pub fn run(ws: &Workspace, state: &StateDir, options: &Options) -> Result<Running> {
    let model = ws.model()?;
    let alive: Vec<String> = state
        .instances()?
        .iter()
        .filter(|i| i.is_alive())
        .map(Instance::name)
        .collect();
    if !alive.is_empty() {
        bail!(
            "the platform already runs ({}): `cargo xtask status` shows it, `cargo xtask down` stops it",
            alive.join(", ")
        );
    }
    pg::check_binaries()?;
    let names: Vec<String> = plan::start_order(model)?
        .iter()
        .map(|s| s.name.clone())
        .collect();
    options.prebuilt.ensure(ws, &names)?;

    let cluster = Cluster::new(state.postgres_dir(), model.postgres.native_port);
    println!(
        "up: PostgreSQL {} on 127.0.0.1:{} (data in {})",
        model.postgres.version,
        cluster.port(),
        state.postgres_dir().display()
    );
    cluster.start()?;
    let logins: Vec<String> = model.database_services().map(|s| s.snake.clone()).collect();
    create_databases(&cluster, &logins)?;

    let mut notes = Vec::new();
    let admin_token = state.admin_token(ws.root())?;
    let services = launches(ws, state, options, &mut notes)?;
    state.record_up(&UpRecord {
        replicas: options.replicas,
    })?;
    let mut all = services.clone();
    all.extend(plan::prometheus(ws, model, state, &services, &mut notes)?);
    let instances = match launcher::start_all(state, &all, options.timeout) {
        Ok(instances) => instances,
        Err(err) => {
            let _ = cluster.stop();
            return Err(err);
        }
    };
    Ok(Running {
        instances,
        launches: services,
        admin_token,
        notes,
    })
}

/// Every service replica `up` starts (and `restart` replaces): the model's
/// environment with the admin token of the state directory, database
/// passwords from the environment or `.env` (the native cluster trusts
/// loopback connections, so a password only has to be present in the URL),
/// and traces sent where a collector listens.
pub fn launches(
    ws: &Workspace,
    state: &StateDir,
    options: &Options,
    notes: &mut Vec<String>,
) -> Result<Vec<super::launcher::Launch>> {
    let model = ws.model()?;
    let admin_token = state.admin_token(ws.root())?.0;
    let secret = |name: &str| match name {
        "ADMIN_TOKEN" => admin_token.clone(),
        other => ws.secret(other).unwrap_or_else(|| "native".into()),
    };
    Plan {
        model,
        replicas: options.replicas,
        bin_dir: options.bin_dir.clone(),
        secret: &secret,
        otlp: plan::otlp_endpoint(model, notes),
    }
    .launches()
}

/// Creates (idempotently) one login and one database per service, owned by that login.
pub fn create_databases(cluster: &Cluster, logins: &[String]) -> Result<()> {
    for login in logins {
        let sql = format!(
            "SELECT 'CREATE ROLE \"{login}\" LOGIN' WHERE NOT EXISTS \
               (SELECT FROM pg_roles WHERE rolname = '{login}') \\gexec\n\
             SELECT 'CREATE DATABASE \"{login}\" OWNER \"{login}\"' WHERE NOT EXISTS \
               (SELECT FROM pg_database WHERE datname = '{login}') \\gexec\n"
        );
        pg::psql(&cluster.url("postgres"), &sql)
            .with_context(|| format!("creating database {login}"))?;
    }
    Ok(())
}

/// Prints what runs where and how to use and stop it.
pub fn print_summary(ws: &Workspace, state: &StateDir, running: &Running) -> Result<()> {
    let model = ws.model()?;
    println!("\n{:<16} {:>8}  URL", "INSTANCE", "PID");
    for i in &running.instances {
        println!("{:<16} {:>8}  http://127.0.0.1:{}", i.name(), i.pid, i.port);
    }
    println!(
        "{:<16} {:>8}  postgres://127.0.0.1:{}",
        "postgres", "", model.postgres.native_port
    );
    for note in &running.notes {
        println!("note: {note}");
    }
    let gateway = model.service(&model.project.gateway);
    if let Some(port) = gateway.and_then(|g| g.native_ports.first()) {
        println!("\nThe platform answers on http://localhost:{port}");
    }
    println!(
        "admin token: {}\nlogs: cargo xtask logs [service] [-f]   (files in {})\nstop: cargo xtask down",
        running.admin_token.1,
        state.root().join("logs").display()
    );
    Ok(())
}
