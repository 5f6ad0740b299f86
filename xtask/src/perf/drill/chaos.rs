//! The chaos phase: at a steady pace, a random replica of a service that owns
//! data (pedidos, estoque, pagamentos) is killed with SIGKILL and started
//! again, as a supervisor would; halfway through, PostgreSQL crashes
//! (immediate stop) and restarts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::Options;
use crate::native::launcher::Launch;
use crate::native::platform::Platform;
use crate::native::restart;

/// One fault and how the platform came back from it.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    /// Seconds into the phase.
    pub at_secs: f64,
    /// `kill -9 pedidos-2` or `PostgreSQL crash`.
    pub what: String,
    /// Until the replacement answered ready, or PostgreSQL accepted
    /// connections again.
    pub back_after_ms: u64,
}

/// A small deterministic generator: the same seed picks the same replicas.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Runs faults until `options.chaos` has passed.
pub fn run(platform: &Platform, options: &Options, seed: u64) -> Result<Vec<Fault>> {
    let victims: Vec<&Launch> = platform
        .launches
        .iter()
        .filter(|l| {
            platform
                .model()
                .service(&l.service)
                .is_some_and(|s| s.database)
        })
        .collect();
    let cluster = platform.cluster();
    let mut rng = XorShift(seed.max(1));
    let start = Instant::now();
    let mut postgres_crashed = false;
    let mut faults = Vec::new();
    while start.elapsed() + options.fault_every <= options.chaos {
        std::thread::sleep(options.fault_every);
        let at_secs = start.elapsed().as_secs_f64();
        let mut fault = if !postgres_crashed && start.elapsed() >= options.chaos / 2 {
            postgres_crashed = true;
            let t = Instant::now();
            cluster
                .crash_restart()
                .context("restarting PostgreSQL after its crash")?;
            Fault {
                at_secs: 0.0,
                what: "PostgreSQL crash (immediate stop), then start".into(),
                back_after_ms: t.elapsed().as_millis() as u64,
            }
        } else {
            let launch = victims[rng.below(victims.len())];
            kill(platform, launch)?
        };
        fault.at_secs = at_secs;
        println!(
            "drill: {:>5.1}s {} (back after {} ms)",
            fault.at_secs, fault.what, fault.back_after_ms
        );
        faults.push(fault);
    }
    Ok(faults)
}

/// SIGKILL to one replica, then its replacement on the same port.
fn kill(platform: &Platform, launch: &Launch) -> Result<Fault> {
    let name = format!("{}-{}", launch.service, launch.replica);
    let victim = platform
        .state
        .instances()?
        .into_iter()
        .find(|i| i.service == launch.service && i.replica == launch.replica)
        .with_context(|| format!("{name} is not recorded"))?;
    let t = Instant::now();
    crate::util::signal(victim.pid, "KILL");
    while victim.is_alive() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let grace = restart::grace_period(platform.model(), &launch.service);
    restart::replace(&platform.state, launch, Duration::from_secs(60), grace)?;
    Ok(Fault {
        at_secs: 0.0,
        what: format!("kill -9 {name}"),
        back_after_ms: t.elapsed().as_millis() as u64,
    })
}
