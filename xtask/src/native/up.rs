//! `cargo xtask up`: the platform as local processes. A private PostgreSQL
//! cluster under the state directory, one database and login per service, and
//! every replica of every service started with the environment the model
//! renders for compose and Kubernetes, with loopback addresses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::model::{Model, Service, Target};
use crate::runstate::{self, Instance, StateDir};
use loja_testkit::pg::Cluster;

/// One process to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Service name, such as `pedidos` (or `prometheus`).
    pub service: String,
    /// The executable and its arguments.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The path that answers 200 once the process is ready.
    pub ready_path: String,
    /// Replica number, from 1.
    pub replica: u32,
    /// Loopback port it listens on.
    pub port: u16,
    /// Its complete environment (on top of PATH and HOME).
    pub env: BTreeMap<String, String>,
}

/// Starts every launch, then waits until each answers its ready path.
/// When one fails to start or to become ready in `timeout`, its last log lines
/// are shown and everything started here is stopped again.
pub fn start(state: &StateDir, launches: &[Launch], timeout: Duration) -> Result<Vec<Instance>> {
    std::fs::create_dir_all(state.root().join("logs"))?;
    let mut started = Vec::new();
    let mut outcome = Ok(());
    for launch in launches {
        match spawn(state, launch) {
            Ok(child) => started.push(child),
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = wait_ready(state, &mut started, timeout);
    }
    let instances: Vec<Instance> = started.into_iter().map(|(i, _)| i).collect();
    if let Err(err) = outcome {
        stop(state, &instances, Duration::from_secs(5));
        return Err(err);
    }
    Ok(instances)
}

fn spawn(state: &StateDir, launch: &Launch) -> Result<(Instance, Child)> {
    let (instance, child) = spawn_unrecorded(state, launch)?;
    state.record(&instance)?;
    Ok((instance, child))
}

/// Starts `launch` without recording it: a successor in a rolling restart is
/// recorded only once it is ready and its predecessor has stopped.
pub(crate) fn spawn_unrecorded(state: &StateDir, launch: &Launch) -> Result<(Instance, Child)> {
    let binary = &launch.program;
    if !binary.is_file() {
        bail!("{} is missing: build it first", binary.display());
    }
    let name = format!("{}-{}", launch.service, launch.replica);
    let log_path = state.log_path(&name);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut cmd = Command::new(binary);
    cmd.args(&launch.args)
        .env_clear()
        .envs(inherited_env())
        .envs(&launch.env)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // Its own process group: a Ctrl-C in this terminal must not reach the
    // platform, which keeps running until `down`.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let instance = Instance {
        service: launch.service.clone(),
        replica: launch.replica,
        pid: child.id(),
        port: launch.port,
        started_at: runstate::now(),
        ready_path: launch.ready_path.clone(),
    };
    Ok((instance, child))
}

/// PATH, HOME and the locale pass through; everything else a service reads
/// comes from the rendered environment, so native runs match the cluster's.
fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(k, _)| matches!(k.as_str(), "PATH" | "HOME" | "LANG" | "TZ"))
}

/// Waits until every started process answers `/ready`. Exits are noticed
/// through the child handles: right after `spawn`, a process may not have
/// become the service's binary yet, so its `/proc` entry proves nothing.
fn wait_ready(
    state: &StateDir,
    started: &mut [(Instance, Child)],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let total = started.len();
    let mut pending: Vec<usize> = (0..total).collect();
    while !pending.is_empty() {
        let mut dead = None;
        for &n in &pending {
            let (instance, child) = &mut started[n];
            if matches!(child.try_wait(), Ok(Some(_))) {
                dead = Some(instance.clone());
                break;
            }
        }
        if let Some(dead) = dead {
            bail!(
                "{} exited during start-up; last lines of {}:\n{}",
                dead.name(),
                state.log_path(&dead.name()).display(),
                tail(&state.log_path(&dead.name()), 20)
            );
        }
        pending.retain(|&n| {
            runstate::http_status(started[n].0.port, &started[n].0.ready_path) != Some(200)
        });
        print!("\rup: {}/{} ready", total - pending.len(), total);
        let _ = std::io::Write::flush(&mut std::io::stdout());
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let late = &started[pending[0]].0;
            bail!(
                "\n{} was not ready after {:?}; last lines of {}:\n{}",
                late.name(),
                timeout,
                state.log_path(&late.name()).display(),
                tail(&state.log_path(&late.name()), 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!();
    Ok(())
}

/// Stops instances gracefully (SIGTERM, then SIGKILL after `grace`) and forgets them.
pub fn stop(state: &StateDir, instances: &[Instance], grace: Duration) {
    for i in instances.iter().filter(|i| i.is_alive()) {
        runstate::signal(i.pid, "TERM");
    }
    let deadline = Instant::now() + grace;
    while instances.iter().any(Instance::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in instances.iter().filter(|i| i.is_alive()) {
        eprintln!("{} did not stop within {grace:?}, killing it", i.name());
        runstate::signal(i.pid, "KILL");
    }
    for i in instances {
        let _ = state.forget(i);
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    tail_text(&std::fs::read_to_string(path).unwrap_or_default(), n)
}

/// The last `n` lines of a text.
pub fn tail_text(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
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
        loja_testkit::pg::psql(&cluster.url("postgres"), &sql)
            .with_context(|| format!("creating database {login}"))?;
    }
    Ok(())
}

/// What `cargo xtask up` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Replicas of every service: `Some(n)`, or `None` for each one's `replicas.min`.
    pub replicas: Option<u32>,
    /// Build the release binaries into `bin_dir` first (tests that built
    /// their own binaries skip it).
    pub build: bool,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// Longest wait for every replica to answer `/ready`.
    pub timeout: Duration,
}

/// What runs after a successful `up`.
#[derive(Debug, Clone)]
pub struct Running {
    /// Every service replica, in start order.
    pub instances: Vec<Instance>,
    /// The admin token and where it came from.
    pub admin_token: (String, String),
    /// What was deliberately not started, and why.
    pub notes: Vec<String>,
}

/// Brings the platform up natively from `model`: PostgreSQL, the per-service
/// databases and logins, then every replica of every service (the services a
/// service calls start before it), and waits until all are ready.
pub fn run(project: &Path, model: &Model, state: &StateDir, options: &Options) -> Result<Running> {
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
    loja_testkit::pg::check_binaries()?;
    let order = start_order(model)?;
    if options.build {
        let names: Vec<String> = order.iter().map(|s| s.name.clone()).collect();
        crate::build::build_release(project, &names)?;
    }

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
    let admin_token = state.admin_token(project)?;
    let mut launches = plan(project, model, state, options, &mut notes)?;
    state.record_up(&runstate::UpRecord {
        replicas: options.replicas,
    })?;
    launches.extend(prometheus(project, model, state, &launches, &mut notes)?);
    let instances = match start(state, &launches, options.timeout) {
        Ok(instances) => instances,
        Err(err) => {
            let _ = cluster.stop();
            return Err(err);
        }
    };
    Ok(Running {
        instances,
        admin_token,
        notes,
    })
}

/// How every replica of every service is started, callees first: its binary
/// in `options.bin_dir`, its port, and the environment the model renders for
/// it (secrets from the environment or `.env`). `restart` uses the same plan.
pub fn plan(
    project: &Path,
    model: &Model,
    state: &StateDir,
    options: &Options,
    notes: &mut Vec<String>,
) -> Result<Vec<Launch>> {
    let admin_token = state.admin_token(project)?;
    let dotenv = crate::deploy::env_lookup(project);
    // The native cluster trusts loopback connections, so a database password
    // only has to be present in the URL, not to match anything.
    let secret = |name: &str| match name {
        "ADMIN_TOKEN" => admin_token.0.clone(),
        other => dotenv(other).unwrap_or_else(|| "native".into()),
    };
    let otlp = otlp_endpoint(model, notes);

    let mut launches = Vec::new();
    for svc in start_order(model)? {
        for replica in 0..svc.native_replicas(options.replicas) {
            let target = Target::Native {
                replica,
                replicas: options.replicas,
            };
            let mut env: BTreeMap<String, String> = model
                .service_env(svc, target)
                .iter()
                .map(|v| (v.name.clone(), v.render(secret)))
                .collect();
            match &otlp {
                Some(endpoint) => {
                    env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone())
                }
                None => env.remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
            };
            launches.push(Launch {
                service: svc.name.clone(),
                program: options.bin_dir.join(&svc.name),
                args: Vec::new(),
                ready_path: "/ready".into(),
                replica: replica as u32 + 1,
                port: svc.native_ports[replica],
                env,
            });
        }
    }
    Ok(launches)
}

/// Prometheus scraping every replica, with the same rendered configuration
/// and alert rules as compose, when a `prometheus` binary is installed.
fn prometheus(
    project: &Path,
    model: &Model,
    state: &StateDir,
    services: &[Launch],
    notes: &mut Vec<String>,
) -> Result<Option<Launch>> {
    let Some(program) = loja_testkit::pg::which("prometheus") else {
        notes.push(
            "metrics: Prometheus not started, no `prometheus` binary on PATH \
             (Debian: apt-get install prometheus); every service still serves /metrics"
                .into(),
        );
        return Ok(None);
    };
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for launch in services {
        targets
            .entry(launch.service.clone())
            .or_default()
            .push(format!("127.0.0.1:{}", launch.port));
    }
    let dir = state.root().join("prometheus");
    std::fs::create_dir_all(&dir)?;
    let config = crate::render::render_prometheus(model, &project.join("templates"), &targets)?;
    std::fs::write(dir.join("prometheus.yml"), config)?;
    std::fs::copy(
        project.join("generated/observability/alerts.yml"),
        dir.join("alerts.yml"),
    )
    .context("copying the alert rules: run `cargo xtask gen`")?;
    let port = model.observability.prometheus_port;
    Ok(Some(Launch {
        service: "prometheus".into(),
        program,
        args: vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        ready_path: "/-/ready".into(),
        replica: 1,
        port,
        env: BTreeMap::new(),
    }))
}

/// The collector traces go to: `OTEL_EXPORTER_OTLP_ENDPOINT` when set, else
/// the rendered loopback endpoint when something listens there, else none
/// (and a note saying so).
fn otlp_endpoint(model: &Model, notes: &mut Vec<String>) -> Option<String> {
    if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !endpoint.is_empty()
    {
        return Some(endpoint);
    }
    let port = model.observability.otlp_grpc_port;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        return Some(format!("http://127.0.0.1:{port}"));
    }
    notes.push(format!(
        "traces: not exported, no OTLP collector on 127.0.0.1:{port} \
         (start one, e.g. Jaeger, or set OTEL_EXPORTER_OTLP_ENDPOINT)"
    ));
    None
}

/// Services ordered so that each starts after every service it calls.
pub fn start_order(model: &Model) -> Result<Vec<&Service>> {
    let mut order: Vec<&Service> = Vec::new();
    let mut left: Vec<&Service> = model.services.iter().collect();
    while !left.is_empty() {
        let (ready, blocked): (Vec<&Service>, Vec<&Service>) = left
            .into_iter()
            .partition(|s| s.calls.iter().all(|c| order.iter().any(|o| &o.name == c)));
        if ready.is_empty() {
            let names: Vec<&str> = blocked.iter().map(|s| s.name.as_str()).collect();
            bail!("services call each other in a cycle: {}", names.join(", "));
        }
        order.extend(ready);
        left = blocked;
    }
    Ok(order)
}

/// Prints what runs where and how to use and stop it.
pub fn print_summary(model: &Model, state: &StateDir, running: &Running) {
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
}
