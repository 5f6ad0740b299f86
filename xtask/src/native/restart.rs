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

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::launcher::{self, Launch};
use super::state::{Instance, StateDir};
use super::{plan, up};
use crate::Workspace;
use crate::dev::build::{self, Prebuilt};
use crate::model::Model;

/// Replace the processes `up` started with the current code and loja.toml.
#[derive(Debug, Clone, clap::Args)]
pub struct Restart {
    /// Services to restart; every service (callees first) when omitted.
    pub services: Vec<String>,
    /// One replica at a time: each successor starts on the same port and
    /// is ready before its predecessor drains and stops.
    #[arg(long)]
    pub rolling: bool,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
    /// Seconds to wait for each new replica to be ready.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
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
    /// When the predecessor was gone, in microseconds since the epoch.
    pub at_us: i64,
}

impl Restart {
    /// Restarts the platform that `up` started in the workspace's state.
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let model = ws.model()?;
        let state = ws.state();
        let record = state
            .up_record()?
            .context("no platform started by `cargo xtask up` here (nothing to restart)")?;
        if !state.instances()?.iter().any(Instance::is_alive) {
            bail!("the platform does not run: start it with `cargo xtask up`");
        }
        for name in &self.services {
            if model.service(name).is_none() {
                let known: Vec<&str> = model.services.iter().map(|s| s.name.as_str()).collect();
                bail!(
                    "no service `{name}` in loja.toml (services: {})",
                    known.join(", ")
                );
            }
        }
        let services: Vec<String> = if self.services.is_empty() {
            plan::start_order(model)?
                .iter()
                .map(|s| s.name.clone())
                .collect()
        } else {
            self.services.clone()
        };
        self.prebuilt.ensure(ws, &services)?;
        let timeout = Duration::from_secs(self.timeout);
        let options = up::Options {
            replicas: record.replicas,
            prebuilt: Prebuilt { no_build: true },
            bin_dir: build::release_dir(ws),
            timeout,
        };
        let launches = up::launches(ws, &state, &options, &mut Vec::new())?;
        if self.rolling {
            allow_queue_handover();
        }
        for service in &services {
            if self.rolling {
                for replaced in rolling(model, &state, &launches, service, timeout)? {
                    print_replaced(&replaced);
                }
            } else {
                let old: Vec<Instance> = state
                    .instances()?
                    .into_iter()
                    .filter(|i| &i.service == service)
                    .collect();
                launcher::stop_all(&state, &old, grace_period(model, service));
                let mine: Vec<Launch> = launches
                    .iter()
                    .filter(|l| &l.service == service)
                    .cloned()
                    .collect();
                let started = launcher::start_all(&state, &mine, timeout)?;
                println!("restart: {service}: {} replica(s) started", started.len());
            }
        }
        Ok(())
    }
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

/// Replaces every replica of `service` (its entries in `launches`), one at
/// a time, each predecessor getting the service's grace period to drain.
/// Stops at the first successor that does not become ready: it is stopped,
/// its predecessor keeps serving, and the error carries its last log lines.
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
    let mut new = launch.spawn(&state.log_path(&launch.name()))?;
    if let Err(err) = new.wait_ready(timeout) {
        new.kill();
        return Err(err.context("the new replica was stopped and the old one keeps serving"));
    }
    let ready_after = started.elapsed();
    let drained = Instant::now();
    if let Some(old) = &old {
        launcher::stop(old, grace);
    }
    state.record(&new.instance)?;
    Ok(Replaced {
        name: launch.name(),
        old_pid: old.map(|o| o.pid),
        new_pid: new.pid(),
        ready_after,
        drained_after: drained.elapsed(),
        at_us: crate::util::now_us(),
    })
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
