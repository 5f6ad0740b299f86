//! The release build of the service binaries, one for every use: statically
//! linked, so `cargo xtask up`, `cargo xtask bench` and the images run the very
//! same files, and one build serves all three.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Workspace;

/// The target the binaries are built for; the Dockerfiles copy from
/// `target/<TRIPLE>/release/`.
pub const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// The flag of every command that builds the binaries before it runs them.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Prebuilt {
    /// Skip the build: use the release binaries (and images) already built.
    #[arg(long)]
    pub no_build: bool,
}

impl Prebuilt {
    /// Builds `services` unless `--no-build` was given.
    pub fn ensure(&self, ws: &Workspace, services: &[String]) -> Result<()> {
        if self.no_build {
            return Ok(());
        }
        build_release(ws, services)
    }
}

/// Where the release binaries are.
pub fn release_dir(ws: &Workspace) -> PathBuf {
    ws.target_dir().join(TRIPLE).join("release")
}

/// `cargo build --release --target TRIPLE` with `+crt-static`. RUSTFLAGS
/// reach only the target's crates when `--target` is given, so build scripts
/// and proc macros keep their host build.
pub fn build_release(ws: &Workspace, services: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} -C target-feature=+crt-static"),
        _ => "-C target-feature=+crt-static".into(),
    };
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", TRIPLE])
        .env("RUSTFLAGS", rustflags)
        .current_dir(ws.root());
    for s in services {
        cmd.args(["-p", s]);
    }
    println!("build: {} (release, static, {TRIPLE})", services.join(", "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the release binaries failed");
    }
    Ok(())
}
