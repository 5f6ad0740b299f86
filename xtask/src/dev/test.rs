//! `cargo xtask test`: the whole test suite with everything it needs. Installs
//! the tools the tests run that are missing (as `cargo xtask tools` does),
//! starts a private PostgreSQL cluster for the run, points `DATABASE_URL` at
//! it, runs the workspace's tests with cargo-nextest (or `cargo test` without
//! it), and stops the cluster afterwards, whatever the outcome.

use std::process::Command;

use anyhow::{Context, Result, bail};
use loja_testkit::pg::Cluster;

use crate::Workspace;

/// Run the test suite against a private PostgreSQL cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct Test {
    /// Passed to the test runner (e.g. a test name filter, or `-p estoque`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl Test {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        super::tools::ensure().context("the tests need these tools")?;
        let port = loja_testkit::free_port();
        let dir = std::env::temp_dir().join(format!("loja-test-pg-{port}"));
        let cluster = Cluster::new(&dir, port);
        println!(
            "test: starting PostgreSQL on 127.0.0.1:{port} ({})",
            dir.display()
        );
        cluster.start()?;
        let outcome = run_suite(ws, &cluster, &self.args);
        if let Err(err) = cluster.stop() {
            eprintln!("test: could not stop PostgreSQL: {err:#}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        outcome
    }
}

fn run_suite(ws: &Workspace, cluster: &Cluster, args: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let nextest = Command::new(&cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = Command::new(&cargo);
    if nextest {
        cmd.args(["nextest", "run", "--no-fail-fast"]);
    } else {
        println!("test: cargo-nextest not found, using `cargo test`");
        cmd.args(["test", "--no-fail-fast"]);
    }
    // `-p estoque` narrows the run to some packages; otherwise it is all of them.
    let narrowed = args
        .iter()
        .any(|a| a == "-p" || a == "--package" || a.starts_with("--package="));
    if !narrowed {
        cmd.arg("--workspace");
    }
    let status = cmd
        .args(args)
        .env("DATABASE_URL", cluster.url("postgres"))
        .current_dir(ws.root())
        .status()
        .context("running the test runner")?;
    if !status.success() {
        bail!("tests failed");
    }
    Ok(())
}
