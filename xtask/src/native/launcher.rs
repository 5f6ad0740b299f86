//! The one process harness: a [`Launch`] (what to start, with the
//! environment the model renders) becomes a [`Replica`] (a running process
//! whose exit is noticed through its handle), which waits for its own
//! `/ready`, and is stopped gracefully or killed. `up`, `restart`, `bench`,
//! `drill` and the cross-service tests all start processes through here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::state::{Instance, StateDir};
use crate::util::{self, http};

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
    /// Its complete environment (on top of PATH, HOME and the locale).
    pub env: BTreeMap<String, String>,
}

impl Launch {
    /// `pedidos-1`: the name of its record and log file.
    pub fn name(&self) -> String {
        format!("{}-{}", self.service, self.replica)
    }

    /// Starts the process, appending its output to `log`. It runs in a
    /// process group of its own: a Ctrl-C in this terminal must not reach
    /// the platform, which keeps running until `down`.
    pub fn spawn(&self, log: &Path) -> Result<Replica> {
        if !self.program.is_file() {
            bail!("{} is missing: build it first", self.program.display());
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(inherited_env())
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        Ok(Replica {
            instance: Instance {
                service: self.service.clone(),
                replica: self.replica,
                pid: child.id(),
                port: self.port,
                started_at: util::now(),
                ready_path: self.ready_path.clone(),
            },
            child,
            log: log.to_path_buf(),
        })
    }
}

/// PATH, HOME and the locale pass through; everything else a service reads
/// comes from the rendered environment, so native runs match the cluster's.
fn inherited_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars().filter(|(k, _)| matches!(k.as_str(), "PATH" | "HOME" | "LANG" | "TZ"))
}

/// A process started from a [`Launch`].
#[derive(Debug)]
pub struct Replica {
    /// What a record of it in the state directory says.
    pub instance: Instance,
    child: Child,
    log: PathBuf,
}

impl Replica {
    pub fn pid(&self) -> u32 {
        self.instance.pid
    }

    /// The exit status once the process has exited. Right after `spawn` a
    /// process may not run the service's binary yet, so `/proc` proves
    /// nothing; the handle does.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// True once this very process answers its ready path: with a 200 whose
    /// JSON body names its `pid` (the services' `/ready`; during a rolling
    /// restart two processes share the port), or a 200 at all for programs
    /// whose body names none.
    pub fn is_ready(&self) -> bool {
        let Some(answer) = http::probe(self.instance.port, &self.instance.ready_path) else {
            return false;
        };
        if answer.status != 200 {
            return false;
        }
        let pid = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|b| b.get("pid").and_then(serde_json::Value::as_u64));
        pid.is_none_or(|pid| pid == u64::from(self.pid()))
    }

    /// Waits until the process is ready; fails with its last log lines when
    /// it exits first or is not ready within `timeout`.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive()?;
            if self.is_ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready after {timeout:?}; last lines of {}:\n{}",
                    self.instance.name(),
                    self.log.display(),
                    self.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fails with the last log lines when the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.exited() {
            None => Ok(()),
            Some(status) => bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.instance.name(),
                self.log.display(),
                self.log_tail(20)
            ),
        }
    }

    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        util::tail(&self.log, n)
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Sends a signal: `STOP` freezes it (sockets open, nothing answered:
    /// what a hung service looks like), `CONT` thaws it.
    pub fn signal(&self, signal: &str) -> bool {
        util::signal(self.pid(), signal)
    }

    /// SIGTERM, then SIGKILL once `grace` has passed; returns when it is gone.
    pub fn stop(mut self, grace: Duration) {
        stop(&self.instance, grace);
        let _ = self.child.wait();
    }

    /// SIGKILL: it dies at once, mid-request if need be.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM to a recorded process, then SIGKILL once `grace` has passed;
/// returns when it is gone.
pub fn stop(instance: &Instance, grace: Duration) {
    if !instance.is_alive() {
        return;
    }
    util::signal(instance.pid, "TERM");
    let deadline = Instant::now() + grace;
    while instance.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if instance.is_alive() {
        eprintln!(
            "{} did not stop within {grace:?}, killing it",
            instance.name()
        );
        util::signal(instance.pid, "KILL");
        while instance.is_alive() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Starts every launch, records each in `state`, then waits until every one
/// is ready. When one fails to start or to become ready in `timeout`, the
/// error carries its last log lines and everything started here is stopped.
pub fn start_all(
    state: &StateDir,
    launches: &[Launch],
    timeout: Duration,
) -> Result<Vec<Instance>> {
    let mut started: Vec<Replica> = Vec::new();
    let mut outcome = Ok(());
    for launch in launches {
        match launch.spawn(&state.log_path(&launch.name())) {
            Ok(replica) => {
                let recorded = state.record(&replica.instance);
                started.push(replica);
                if let Err(err) = recorded {
                    outcome = Err(err);
                    break;
                }
            }
            Err(err) => {
                outcome = Err(err);
                break;
            }
        }
    }
    if outcome.is_ok() {
        outcome = wait_all_ready(&mut started, timeout);
    }
    if let Err(err) = outcome {
        for replica in started {
            let _ = state.forget(&replica.instance);
            replica.stop(Duration::from_secs(5));
        }
        return Err(err);
    }
    Ok(started.into_iter().map(|r| r.instance).collect())
}

/// Waits until every replica is ready, with a line of progress.
fn wait_all_ready(replicas: &mut [Replica], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let total = replicas.len();
    let mut pending: Vec<usize> = (0..total).collect();
    while !pending.is_empty() {
        for &n in &pending {
            replicas[n].check_alive()?;
        }
        pending.retain(|&n| !replicas[n].is_ready());
        print!("\rup: {}/{total} ready", total - pending.len());
        let _ = std::io::Write::flush(&mut std::io::stdout());
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let late = &replicas[pending[0]];
            bail!(
                "\n{} was not ready after {timeout:?}; last lines of {}:\n{}",
                late.instance.name(),
                late.log.display(),
                late.log_tail(20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!();
    Ok(())
}

/// Stops recorded processes gracefully (SIGTERM, then SIGKILL after
/// `grace`), all at once, and forgets them.
pub fn stop_all(state: &StateDir, instances: &[Instance], grace: Duration) {
    for i in instances.iter().filter(|i| i.is_alive()) {
        util::signal(i.pid, "TERM");
    }
    let deadline = Instant::now() + grace;
    while instances.iter().any(Instance::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in instances {
        stop(i, Duration::ZERO);
        let _ = state.forget(i);
    }
}
