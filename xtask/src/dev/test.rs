//! `cargo xtask test`: the whole test suite with everything it needs. Starts a
//! private PostgreSQL cluster for the run, points `DATABASE_URL` at it, runs
//! the workspace's tests with cargo-nextest (or `cargo test` without it), and
//! stops the cluster afterwards, whatever the outcome.

use std::process::Command;

use anyhow::{Context, Result, bail};

use loja_testkit::pg::Cluster;

/// Runs the test suite; `args` go to the test runner (e.g. a filter).
pub fn run(args: &[String]) -> Result<()> {
    let port = loja_testkit::free_port();
    let dir = std::env::temp_dir().join(format!("loja-test-pg-{port}"));
    let cluster = Cluster::new(&dir, port);
    println!(
        "test: starting PostgreSQL on 127.0.0.1:{port} ({})",
        dir.display()
    );
    cluster.start()?;
    let outcome = run_suite(&cluster, args);
    if let Err(err) = cluster.stop() {
        eprintln!("test: could not stop PostgreSQL: {err:#}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn run_suite(cluster: &Cluster, args: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new(&cargo);
    if nextest {
        cmd.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        println!("test: cargo-nextest not found, using `cargo test`");
        cmd.args(["test", "--workspace", "--no-fail-fast"]);
    }
    let status = cmd
        .args(args)
        .env("DATABASE_URL", cluster.url("postgres"))
        .current_dir(crate::project_root())
        .status()
        .context("running the test runner")?;
    if !status.success() {
        bail!("tests failed");
    }
    Ok(())
}
