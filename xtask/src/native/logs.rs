//! `cargo xtask logs [service] [-f]`: the log files of the native runtime.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Workspace;

/// Show the logs of one service (all replicas) or of everything.
#[derive(Debug, Clone, clap::Args)]
pub struct Logs {
    /// Service name; all services when omitted.
    pub service: Option<String>,
    /// Keep printing new lines.
    #[arg(short, long)]
    pub follow: bool,
}

impl Logs {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        print(&ws.state(), self.service.as_deref(), self.follow)
    }
}

/// Prints (or follows) the logs of one service's replicas, or of everything.
fn print(state: &super::state::StateDir, service: Option<&str>, follow: bool) -> Result<()> {
    let dir = state.root().join("logs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("no logs in {}: has `cargo xtask up` run?", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.ends_with(".log")
                && service.is_none_or(|s| {
                    name.strip_prefix(s)
                        .and_then(|rest| rest.strip_prefix('-'))
                        .is_some_and(|rest| rest.trim_end_matches(".log").parse::<u32>().is_ok())
                })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no log files for {}", service.unwrap_or("any service"));
    }
    // `tail` prefixes each file's lines with its name when given several.
    let mut cmd = Command::new("tail");
    cmd.args(if follow {
        ["-n", "20", "-F"].as_slice()
    } else {
        ["-n", "+1"].as_slice()
    });
    let status = cmd.args(&files).status().context("running tail")?;
    if !status.success() {
        bail!("tail failed");
    }
    Ok(())
}
