//! `cargo xtask restart [service...] [--rolling]`: replaces the processes
//! `up` started with new ones built from the current code and `loja.toml`.
//!
//! `--rolling` follows the discipline the generated Deployments ask of
//! Kubernetes (maxSurge 1, maxUnavailable 0): for one replica at a time, the
//! successor starts on the same port (the services bind with `SO_REUSEPORT`),
//! and only once it answers `/ready` itself is the old process sent SIGTERM; it
//! then drains (unready, `Connection: close`, in-flight requests finish)
//! within the service's termination grace period. Without `--rolling`, every
//! replica of a service stops first and then all start again, as a quick
//! restart in development does.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::model::Model;
use crate::runstate::{self, Instance, StateDir};
use crate::up::{self, Launch};

/// What `cargo xtask restart` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Services to restart, in the order given; every service when empty.
    pub services: Vec<String>,
    /// One replica at a time, each successor ready before its predecessor stops.
    pub rolling: bool,
    /// Build the release binaries first.
    pub build: bool,
    /// Longest wait for a new replica to answer `/ready`.
    pub timeout: Duration,
}

/// One replica replaced.
#[derive(Debug, Clone)]
pub struct Replaced {
    /// `pedidos-1`.
    pub name: String,
    pub old_pid: Option<u32>,
    pub new_pid: u32,
    /// From the successor's start to its first ready answer.
    pub ready_after: Duration,
    /// From SIGTERM to the predecessor's exit.
    pub drained_after: Duration,
}

/// Restarts the platform that `up` started in `state`.
pub fn run(project: &Path, model: &Model, state: &StateDir, options: &Options) -> Result<()> {
    let record = state
        .up_record()?
        .context("no platform started by `cargo xtask up` here (nothing to restart)")?;
    let running: Vec<Instance> = state
        .instances()?
        .into_iter()
        .filter(Instance::is_alive)
        .collect();
    if running.is_empty() {
        bail!("the platform does not run: start it with `cargo xtask up`");
    }
    for name in &options.services {
        if model.service(name).is_none() {
            let known: Vec<&str> = model.services.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "no service `{name}` in loja.toml (services: {})",
                known.join(", ")
            );
        }
    }
    let services: Vec<String> = if options.services.is_empty() {
        up::start_order(model)?
            .iter()
            .map(|s| s.name.clone())
            .collect()
    } else {
        options.services.clone()
    };
    if options.build {
        crate::build::build_release(project, &services)?;
    }
    let up_options = up::Options {
        replicas: record.replicas,
        build: false,
        bin_dir: crate::build::release_dir(project),
        timeout: options.timeout,
    };
    let mut notes = Vec::new();
    let launches = up::plan(project, model, state, &up_options, &mut notes)?;
    if options.rolling {
        allow_queue_handover();
    }
    for service in &services {
        if options.rolling {
            for replaced in rolling(model, state, &launches, service, options.timeout)? {
                print_replaced(&replaced);
            }
        } else {
            let old: Vec<Instance> = state
                .instances()?
                .into_iter()
                .filter(|i| &i.service == service)
                .collect();
            up::stop(state, &old, grace_period(model, service));
            let mine: Vec<Launch> = launches
                .iter()
                .filter(|l| &l.service == service)
                .cloned()
                .collect();
            let started = up::start(state, &mine, options.timeout)?;
            println!("restart: {service}: {} replica(s) started", started.len());
        }
    }
    Ok(())
}

fn print_replaced(r: &Replaced) {
    let old = r.old_pid.map_or("none".to_owned(), |p| p.to_string());
    println!(
        "restart: {:<14} pid {old} -> {}  ready after {} ms, predecessor drained in {} ms",
        r.name,
        r.new_pid,
        r.ready_after.as_millis(),
        r.drained_after.as_millis()
    );
}

/// How long a stopping replica of `service` may drain before it is killed:
/// its termination grace period, as in Kubernetes.
pub fn grace_period(model: &Model, service: &str) -> Duration {
    let secs = model
        .service(service)
        .map_or(30, |s| s.termination_grace_secs);
    Duration::from_secs(u64::from(secs))
}

/// Replaces every replica of `service` (its entries in `launches`, the plan
/// of [`up::plan`]), one at a time, each predecessor getting the service's
/// grace period to drain. Stops at the first successor that does not become
/// ready: it is stopped, its predecessor keeps serving, and the error carries
/// its last log lines.
pub fn rolling(
    model: &Model,
    state: &StateDir,
    launches: &[Launch],
    service: &str,
    timeout: Duration,
) -> Result<Vec<Replaced>> {
    let grace = grace_period(model, service);
    launches
        .iter()
        .filter(|l| l.service == service)
        .map(|l| replace(state, l, timeout, grace))
        .collect()
}

/// Replaces one replica: starts its successor on the same port, waits until
/// the successor itself answers ready, then drains the predecessor.
pub fn replace(
    state: &StateDir,
    launch: &Launch,
    timeout: Duration,
    grace: Duration,
) -> Result<Replaced> {
    let old = state
        .instances()?
        .into_iter()
        .find(|i| i.service == launch.service && i.replica == launch.replica)
        .filter(Instance::is_alive);
    let started = Instant::now();
    let (new, mut child) = up::spawn_unrecorded(state, launch)?;
    if let Err(err) = wait_ready(state, &new, &mut child, timeout) {
        runstate::signal(new.pid, "KILL");
        let _ = child.wait();
        return Err(err);
    }
    let ready_after = started.elapsed();
    let drained = Instant::now();
    if let Some(old) = &old {
        stop_one(old, grace);
    }
    state.record(&new)?;
    Ok(Replaced {
        name: new.name(),
        old_pid: old.map(|o| o.pid),
        new_pid: new.pid,
        ready_after,
        drained_after: drained.elapsed(),
    })
}

/// Waits until `/ready` on the shared port is answered by `new` itself.
fn wait_ready(
    state: &StateDir,
    new: &Instance,
    child: &mut Child,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "the new {} exited during start-up ({status}); the old one keeps serving. Last lines of {}:\n{}",
                new.name(),
                state.log_path(&new.name()).display(),
                up::tail(&state.log_path(&new.name()), 20)
            );
        }
        // Both processes share the port: each attempt is a new connection,
        // which the kernel hands to either of them.
        if runstate::ready_pid(new.port, &new.ready_path) == Some(new.pid) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the new {} was not ready after {timeout:?}; it was stopped and the old one keeps serving. Last lines of {}:\n{}",
                new.name(),
                state.log_path(&new.name()).display(),
                up::tail(&state.log_path(&new.name()), 20)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then SIGKILL once `grace` has passed; returns when it is gone.
fn stop_one(instance: &Instance, grace: Duration) {
    runstate::signal(instance.pid, "TERM");
    let deadline = Instant::now() + grace;
    while instance.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if instance.is_alive() {
        eprintln!(
            "restart: {} did not stop within {grace:?}, killing it",
            instance.name()
        );
        runstate::signal(instance.pid, "KILL");
    }
}

/// When a listener of a shared port closes, Linux resets the connections
/// still queued on it unless `net.ipv4.tcp_migrate_req` hands them to the
/// other listener (the successor). Turns it on when allowed, else says what
/// may happen.
pub fn allow_queue_handover() {
    let path = "/proc/sys/net/ipv4/tcp_migrate_req";
    match std::fs::read_to_string(path) {
        Ok(v) if v.trim() == "1" => {}
        Ok(_) => match std::fs::write(path, "1") {
            Ok(()) => println!(
                "restart: set net.ipv4.tcp_migrate_req=1: connections queued on a stopping replica move to its successor"
            ),
            Err(_) => eprintln!(
                "restart: net.ipv4.tcp_migrate_req is 0 and cannot be changed here: a connection \
                 opened at the instant a replica's listener closes may be reset"
            ),
        },
        Err(_) => {}
    }
}
