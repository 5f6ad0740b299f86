//! `cargo xtask arm64-check`: the arm64 build runs. The gateway's static
//! arm64 binary (cross-built as the images' is) is started under
//! `qemu-aarch64-static` with the environment `loja.toml` gives it and must
//! answer `/ready`; then, where this machine lets binfmt_misc run arm64
//! executables for containers too, its arm64 image is started with
//! `--platform linux/arm64` and must answer `/ready` as well.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::images;
use crate::Workspace;
use crate::dev::build::{self, Prebuilt};
use crate::model::{Arch, Target};
use crate::native::launcher::Launch;
use crate::util::http;

/// The binfmt_misc entry this check registers when none runs arm64 binaries
/// in containers: the `F` flag opens the interpreter now, so it works inside
/// any container's filesystem.
const BINFMT_NAME: &str = "loja-qemu-aarch64";
const BINFMT: &str = r":loja-qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F";
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// Run the gateway's arm64 binary under qemu, and its arm64 image where binfmt allows, until each answers /ready.
#[derive(Debug, Clone, clap::Args)]
pub struct Arm64Check {
    #[command(flatten)]
    pub prebuilt: Prebuilt,
    /// Seconds each start may take (emulation is slow).
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

impl Arm64Check {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let model = ws.model()?;
        let gateway = model
            .services
            .iter()
            .find(|s| s.is_gateway)
            .context("loja.toml has no gateway")?;
        self.prebuilt
            .ensure_for(ws, std::slice::from_ref(&gateway.name), Arch::Arm64)?;
        let binary = build::release_dir_for(ws, Arch::Arm64).join(&gateway.name);
        images::check_static(&binary)?;
        let port = loja_testkit::free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut env: std::collections::BTreeMap<String, String> = model
            .service_env(
                gateway,
                Target::Native {
                    replica: 0,
                    replicas: Some(1),
                },
            )
            .iter()
            .map(|v| (v.name.clone(), v.render(|_| String::new())))
            .collect();
        env.insert("LISTEN_ADDR".into(), listen.clone());
        let timeout = Duration::from_secs(self.timeout);

        let qemu = loja_testkit::pg::which("qemu-aarch64-static").context(
            "qemu-aarch64-static is not on PATH (Debian package qemu-user-static; `cargo xtask tools`)",
        )?;
        let launch = Launch {
            service: gateway.name.clone(),
            program: qemu,
            args: vec![binary.to_string_lossy().into_owned()],
            ready_path: "/ready".into(),
            replica: 1,
            port,
            env: env.clone(),
        };
        let log = ws.target_dir().join("arm64-check").join("qemu.log");
        let started = Instant::now();
        let mut replica = launch.spawn(&log)?;
        let ready = replica.wait_ready(timeout);
        replica.stop(Duration::from_secs(5));
        ready?;
        println!(
            "arm64-check: {} (aarch64) under qemu-aarch64-static answered /ready after {} ms",
            gateway.name,
            started.elapsed().as_millis()
        );

        if let Err(why) = binfmt() {
            println!(
                "arm64-check: the arm64 container was not run: {why:#}; the binary above is what it would run"
            );
            return Ok(());
        }
        let built = images::build_one(ws, &gateway.name, Arch::Arm64)?;
        let arch = images::architecture(&built.image)?;
        if arch != "arm64" {
            bail!("{} is an image for {arch}, not arm64", built.image);
        }
        container(&built.image, &env, port, timeout)?;
        println!(
            "arm64-check: image {} (linux/arm64) answered /ready",
            built.image
        );
        Ok(())
    }
}

/// Makes sure the kernel runs arm64 executables inside containers: an
/// entry with the `F` flag, registered here (as root) when none exists.
fn binfmt() -> Result<()> {
    let dir = Path::new(BINFMT_DIR);
    if !dir.join("register").exists() {
        let out = Command::new("mount")
            .args(["-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR])
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "binfmt_misc is not mounted and cannot be ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    let usable = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .any(|entry| {
            entry.starts_with("enabled")
                && entry.contains("qemu-aarch64")
                && entry
                    .lines()
                    .any(|l| l.starts_with("flags:") && l.contains('F'))
        });
    if usable {
        return Ok(());
    }
    if !Path::new("/usr/bin/qemu-aarch64-static").exists() {
        bail!("/usr/bin/qemu-aarch64-static is missing (`cargo xtask tools` installs it)");
    }
    std::fs::write(dir.join("register"), BINFMT)
        .with_context(|| format!("registering {BINFMT_NAME} in {BINFMT_DIR}/register"))?;
    Ok(())
}

/// Starts `image` for linux/arm64 on the host network with `env`, waits for
/// `/ready` on `port`, then removes the container.
fn container(
    image: &str,
    env: &std::collections::BTreeMap<String, String>,
    port: u16,
    timeout: Duration,
) -> Result<()> {
    let mut run = Command::new("docker");
    run.args([
        "run",
        "--detach",
        "--rm",
        "--platform",
        "linux/arm64",
        "--network",
        "host",
    ]);
    for (k, v) in env {
        run.args(["--env", &format!("{k}={v}")]);
    }
    let out = run.arg(image).output().context("running docker run")?;
    if !out.status.success() {
        bail!(
            "docker run {image}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let deadline = Instant::now() + timeout;
    let outcome = loop {
        if http::probe(port, "/ready").is_some_and(|a| a.status == 200) {
            break Ok(());
        }
        if Instant::now() > deadline {
            let logs = Command::new("docker")
                .args(["logs", "--tail", "20", &id])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            break Err(anyhow::anyhow!(
                "the arm64 container was not ready after {timeout:?}:\n{logs}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("docker")
        .args(["stop", "--time", "10", &id])
        .output();
    outcome
}
