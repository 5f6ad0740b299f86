//! `cargo xtask status`: each process `up` started, its port, readiness and uptime.

use anyhow::Result;
use loja_testkit::pg::Cluster;

use super::state::StateDir;
use crate::Workspace;
use crate::util::{self, http};

/// Show each process `up` started: port, readiness, uptime.
#[derive(Debug, Clone, clap::Args)]
pub struct Status {}

impl Status {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        print(&ws.state())
    }
}

/// Prints one row per recorded process and the database's state.
fn print(state: &StateDir) -> Result<()> {
    let instances = state.instances()?;
    if instances.is_empty() {
        println!("nothing runs: start the platform with `cargo xtask up`");
        return Ok(());
    }
    println!(
        "{:<16} {:>8} {:>6}  {:<9} {:>8}",
        "INSTANCE", "PID", "PORT", "STATE", "UPTIME"
    );
    for i in &instances {
        let state = if !i.is_alive() {
            "exited"
        } else if http::probe(i.port, &i.ready_path).is_some_and(|a| a.status == 200) {
            "ready"
        } else {
            "not ready"
        };
        let uptime = util::now().saturating_sub(i.started_at);
        println!(
            "{:<16} {:>8} {:>6}  {:<9} {:>8}",
            i.name(),
            i.pid,
            i.port,
            state,
            format_duration(uptime)
        );
    }
    let pg = if Cluster::new(state.postgres_dir(), 0).is_running() {
        "running"
    } else {
        "stopped"
    };
    println!("postgres: {pg} ({})", state.postgres_dir().display());
    Ok(())
}

fn format_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::format_duration(5), "5s");
        assert_eq!(super::format_duration(65), "1m05s");
        assert_eq!(super::format_duration(3720), "1h02m");
    }
}
