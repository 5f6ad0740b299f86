//! The release build of the service binaries, one for every use: statically
//! linked, so `cargo xtask up`, `cargo xtask bench` and the images run the very
//! same files, and one build serves all three. The images are built for both
//! architectures an environment's nodes may have: the arm64 binaries are
//! cross-built with Debian's aarch64 toolchain ([`triple`]).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Workspace;

use crate::model::Arch;

/// The target the binaries of this machine (and of the amd64 images) are
/// built for; the Dockerfiles copy from `target/<TRIPLE>/release/`.
pub const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Every architecture the images are built for.
pub const ARCHES: [Arch; 2] = [Arch::Amd64, Arch::Arm64];

/// The Rust target of `arch`'s static binaries.
pub fn triple(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => TRIPLE,
        Arch::Arm64 => "aarch64-unknown-linux-gnu",
    }
}

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
        self.ensure_for(ws, services, Arch::Amd64)
    }

    /// Builds `services` for `arch` unless `--no-build` was given.
    pub fn ensure_for(&self, ws: &Workspace, services: &[String], arch: Arch) -> Result<()> {
        if self.no_build {
            return Ok(());
        }
        build_release_for(ws, services, arch)
    }
}

/// Where the release binaries of this machine are.
pub fn release_dir(ws: &Workspace) -> PathBuf {
    release_dir_for(ws, Arch::Amd64)
}

/// Where the release binaries of `arch` are.
pub fn release_dir_for(ws: &Workspace, arch: Arch) -> PathBuf {
    ws.target_dir().join(triple(arch)).join("release")
}

/// The release binaries of this machine (see [`build_release_for`]).
pub fn build_release(ws: &Workspace, services: &[String]) -> Result<()> {
    build_release_for(ws, services, Arch::Amd64)
}

/// `cargo build --release --target <triple>` with `+crt-static`. RUSTFLAGS
/// reach only the target's crates when `--target` is given, so build scripts
/// and proc macros keep their host build. arm64 links (and compiles any C)
/// with `aarch64-linux-gnu-gcc` against Debian's static arm64 glibc
/// (`cargo xtask tools` installs both, and the Rust target).
pub fn build_release_for(ws: &Workspace, services: &[String], arch: Arch) -> Result<()> {
    let target = triple(arch);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} -C target-feature=+crt-static"),
        _ => "-C target-feature=+crt-static".into(),
    };
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", target])
        .env("RUSTFLAGS", rustflags)
        .current_dir(ws.root());
    if arch == Arch::Arm64 {
        cmd.env(
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
            "aarch64-linux-gnu-gcc",
        )
        .env("CC_aarch64_unknown_linux_gnu", "aarch64-linux-gnu-gcc");
    }
    for s in services {
        cmd.args(["-p", s]);
    }
    println!("build: {} (release, static, {target})", services.join(", "));
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the release binaries failed");
    }
    Ok(())
}
