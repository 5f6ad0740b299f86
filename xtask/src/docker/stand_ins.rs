//! Stand-ins for the third-party images that cannot be pulled here: a
//! Debian base imported from a debootstrap tree, and PostgreSQL and
//! Prometheus built on it from Debian's packages (`tests/compose`).

use std::process::Command;

use anyhow::{Context, Result, ensure};

use super::images;
use crate::Workspace;

/// The Debian base the stand-ins build on, imported from a debootstrap tree.
pub const BASE_IMAGE: &str = "loja-veloz/debian-base:bookworm";
/// Stand-in images and their build directories under `tests/compose`; the
/// tags are the ones `tests/compose/override.yml` names.
pub const STAND_INS: &[(&str, &str)] = &[
    ("loja-veloz/postgres-standin:15", "postgres"),
    ("loja-veloz/prometheus-standin:bookworm", "prometheus"),
];
/// The one third-party service without a stand-in.
pub const LEFT_OUT: &str = "jaeger";

/// The Debian base (imported from a fresh debootstrap tree unless an image
/// with its tag exists) and the stand-ins built on it.
pub fn build(ws: &Workspace) -> Result<()> {
    let exists = Command::new("docker")
        .args(["image", "inspect", BASE_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        println!("compose-check: {BASE_IMAGE} exists, reused");
    } else {
        import_base(ws)?;
    }
    for (image, dir) in STAND_INS {
        let context = ws.root().join("tests/compose").join(dir);
        println!("compose-check: building stand-in {image}");
        images::docker_build(&context.join("Dockerfile"), image, &context)?;
    }
    Ok(())
}

fn import_base(ws: &Workspace) -> Result<()> {
    let tree = super::scratch_dir(ws)?.join("debroot");
    // debootstrap refuses to finish a half-made tree from an interrupted run.
    let _ = std::fs::remove_dir_all(&tree);
    println!(
        "compose-check: debootstrap --variant=minbase bookworm {}",
        tree.display()
    );
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tree)
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null())
        .status()
        .context("running debootstrap (`cargo xtask tools` installs it)")?;
    ensure!(status.success(), "debootstrap failed");
    let tar = format!(
        "tar -C '{}' -c . | docker import - {BASE_IMAGE}",
        tree.display()
    );
    let status = Command::new("sh").args(["-c", &tar]).status()?;
    let _ = std::fs::remove_dir_all(&tree);
    ensure!(
        status.success(),
        "docker import of the debootstrap tree failed"
    );
    Ok(())
}
