//! `cargo xtask up`: the platform as local processes. A private PostgreSQL
//! cluster under the state directory, one database and login per service, and
//! every replica of every service started with the environment the model
//! renders for compose and Kubernetes, with loopback addresses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::postgres::Cluster;
use crate::runstate::{self, Instance, StateDir};

/// One process to start.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Service name; also the binary's name.
    pub service: String,
    /// Replica number, from 1.
    pub replica: u32,
    /// Loopback port it listens on.
    pub port: u16,
    /// Its complete environment (on top of PATH and HOME).
    pub env: BTreeMap<String, String>,
}

/// Starts every launch from `bin_dir`, then waits until each answers `/ready`.
/// When one fails to start or to become ready in `timeout`, its last log lines
/// are shown and everything started here is stopped again.
pub fn start(
    state: &StateDir,
    bin_dir: &Path,
    launches: &[Launch],
    timeout: Duration,
) -> Result<Vec<Instance>> {
    std::fs::create_dir_all(state.root().join("logs"))?;
    let mut started = Vec::new();
    for launch in launches {
        match spawn(state, bin_dir, launch) {
            Ok(instance) => started.push(instance),
            Err(err) => {
                stop(state, &started, Duration::from_secs(5));
                return Err(err);
            }
        }
    }
    if let Err(err) = wait_ready(state, &started, timeout) {
        stop(state, &started, Duration::from_secs(5));
        return Err(err);
    }
    Ok(started)
}

fn spawn(state: &StateDir, bin_dir: &Path, launch: &Launch) -> Result<Instance> {
    let binary = bin_dir.join(&launch.service);
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
    let mut cmd = Command::new(&binary);
    cmd.env_clear()
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
    };
    state.record(&instance)?;
    Ok(instance)
}

/// PATH, HOME and the locale pass through; everything else a service reads
/// comes from the rendered environment, so native runs match the cluster's.
fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(k, _)| matches!(k.as_str(), "PATH" | "HOME" | "LANG" | "TZ"))
}

fn wait_ready(state: &StateDir, instances: &[Instance], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&Instance> = instances.iter().collect();
    let total = pending.len();
    while !pending.is_empty() {
        if let Some(dead) = pending.iter().find(|i| !i.is_alive()) {
            bail!(
                "{} exited during start-up; last lines of {}:\n{}",
                dead.name(),
                state.log_path(&dead.name()).display(),
                tail(&state.log_path(&dead.name()), 20)
            );
        }
        pending.retain(|i| runstate::http_status(i.port, "/ready") != Some(200));
        print!("\rup: {}/{} ready", total - pending.len(), total);
        let _ = std::io::Write::flush(&mut std::io::stdout());
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let late = pending[0];
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
        let out = Command::new("psql")
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-X"])
            .arg(cluster.url("postgres"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(sql.as_bytes())?;
                child.wait_with_output()
            })
            .context("running psql (it comes with the PostgreSQL client package)")?;
        if !out.status.success() {
            bail!(
                "creating database {login}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// The directory cargo puts release binaries in.
pub fn release_dir(project: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project.join("target"))
        .join("release")
}

/// Builds the service binaries in release mode.
pub fn build_release(project: &Path, services: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet"])
        .current_dir(project);
    for s in services {
        cmd.args(["-p", s]);
    }
    println!("up: building {} (release)", services.join(", "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    Ok(())
}
