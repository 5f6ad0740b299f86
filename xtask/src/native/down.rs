//! `cargo xtask down`: stops exactly what `up` started, callers before the
//! services they call, gracefully first, then the PostgreSQL cluster.

use std::time::Duration;

use anyhow::Result;
use loja_testkit::pg::Cluster;

use super::launcher;
use super::state::StateDir;
use crate::Workspace;

/// Stop what `up` started (gracefully, then forcibly); data is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct Down {
    /// Seconds each process gets to drain before it is killed.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// Stop the compose stack `up --compose` started.
    #[arg(long)]
    pub compose: bool,
}

impl Down {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if self.compose {
            return crate::docker::compose::down(ws);
        }
        run(&ws.state(), Duration::from_secs(self.grace))
    }
}

/// Stops every recorded process in reverse start order, then PostgreSQL.
pub fn run(state: &StateDir, grace: Duration) -> Result<()> {
    let mut instances = state.instances()?;
    // Records are listed by name; `started_at` order is start order, so the
    // reverse stops the gateway before the services it calls.
    instances.sort_by_key(|i| std::cmp::Reverse((i.started_at, i.pid)));
    for instance in &instances {
        println!("down: stopping {} (pid {})", instance.name(), instance.pid);
        launcher::stop_all(state, std::slice::from_ref(instance), grace);
    }
    let cluster = Cluster::new(state.postgres_dir(), 0);
    if cluster.is_running() {
        println!(
            "down: stopping PostgreSQL (data kept in {})",
            state.postgres_dir().display()
        );
        cluster.stop()?;
    }
    if instances.is_empty() {
        println!("down: nothing was running");
    }
    Ok(())
}
