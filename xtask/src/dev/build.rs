//! The release build of the service binaries, one for every use: statically
//! linked, so `cargo xtask up`, `cargo xtask bench` and the images run the very
//! same files, and one build serves all three.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The target the binaries are built for; the Dockerfiles copy from
/// `target/<TRIPLE>/release/`.
pub const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target/` in the project.
pub fn target_dir(project: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project.join("target"))
}

/// Where the release binaries are.
pub fn release_dir(project: &Path) -> PathBuf {
    target_dir(project).join(TRIPLE).join("release")
}

/// `cargo build --release --target TRIPLE` with `+crt-static`. RUSTFLAGS
/// reach only the target's crates when `--target` is given, so build scripts
/// and proc macros keep their host build.
pub fn build_release(project: &Path, services: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} -C target-feature=+crt-static"),
        _ => "-C target-feature=+crt-static".into(),
    };
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", TRIPLE])
        .env("RUSTFLAGS", rustflags)
        .current_dir(project);
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
