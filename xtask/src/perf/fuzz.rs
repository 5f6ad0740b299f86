//! `cargo xtask fuzz`: schemathesis against the running platform, through
//! the gateway, from the document the gateway serves at `/openapi.json`.
//! Every check runs (`--checks all`): no 5xx, and every answer conforms to
//! the document (status codes, content types, headers, schemas), including
//! for the invalid inputs it generates. The platform is started the way
//! `up` starts it (release builds, free ports, a temporary state directory,
//! stopped at the end), or is one already started by `cargo xtask up`
//! (`--url`). What schemathesis is told beyond the document, with the
//! reasons, is in `xtask/fuzz/schemathesis.toml`.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::dev::build::Prebuilt;
use crate::generate::openapi;
use crate::native::platform::Platform;
use crate::util::http::{Request, authority};

/// The schemathesis configuration, relative to the repository root.
pub const CONFIG: &str = "xtask/fuzz/schemathesis.toml";

/// Fuzz the public API with schemathesis, from the served OpenAPI document.
#[derive(Debug, Clone, clap::Args)]
pub struct Fuzz {
    /// Gateway URL of a platform already started by `cargo xtask up`.
    #[arg(long)]
    pub url: Option<String>,
    /// Test cases per operation and phase (schemathesis `--max-examples`).
    #[arg(long, default_value_t = 100)]
    pub max_examples: u32,
    /// Concurrent schemathesis workers. One by default: with several
    /// threads, CPython 3.11's `ast.parse` (which hypothesis calls to
    /// describe its strategies) can fail with "AST constructor recursion
    /// depth mismatch" (python/cpython#106905), a crash of the fuzzer, not a
    /// finding about the platform.
    #[arg(long, default_value_t = 1)]
    pub workers: u32,
    /// Seed, to replay a run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// A bounded run for CI: 25 cases per operation.
    #[arg(long)]
    pub smoke: bool,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
}

impl Fuzz {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if Command::new("schemathesis")
            .arg("--version")
            .output()
            .is_err()
        {
            bail!("`schemathesis` is not on PATH: install it with `cargo xtask tools`");
        }
        let platform = match &self.url {
            None => Platform::start(ws, ws.model()?, 1, self.prebuilt, None, "fuzz")?,
            Some(url) => Platform::attach(ws, url)?,
        };
        served_is_generated(ws, &platform.gateway)?;
        let examples = if self.smoke {
            self.max_examples.min(25)
        } else {
            self.max_examples
        };
        let scratch = ws.target_dir().join("fuzz");
        std::fs::create_dir_all(&scratch).context("creating the fuzz folder")?;
        let mut cmd = Command::new("schemathesis");
        cmd.arg("--config-file")
            .arg(ws.root().join(CONFIG))
            .arg("run")
            .arg(format!("{}/openapi.json", platform.gateway))
            .args(["--url", &platform.gateway])
            .args(["--checks", "all"])
            .args(["--max-examples", &examples.to_string()])
            .args(["--workers", &self.workers.to_string()])
            .args(["--no-color"])
            .arg("--header")
            .arg(format!("Authorization: Bearer {}", platform.admin_token))
            // Its cache and reports stay out of the checkout.
            .current_dir(&scratch);
        if let Some(seed) = self.seed {
            cmd.args(["--seed", &seed.to_string()]);
        }
        println!(
            "fuzz: schemathesis on {} ({examples} cases per operation and phase)",
            platform.gateway
        );
        let status = cmd.status().context("running schemathesis")?;
        drop(platform);
        if !status.success() {
            bail!("schemathesis found failures (above); each names the request that reproduces it");
        }
        println!("fuzz: no failure");
        Ok(())
    }
}

/// The gateway must serve the document `gen` wrote: a binary built before
/// the last `gen` would be fuzzed against a stale contract.
fn served_is_generated(ws: &Workspace, gateway: &str) -> Result<()> {
    let served = Request::get("/openapi.json")
        .send(authority(gateway)?)
        .context("fetching the served document")?;
    let generated = std::fs::read_to_string(ws.root().join(openapi::PATH))
        .with_context(|| format!("reading {}", openapi::PATH))?;
    if served.status != 200 || served.body != generated {
        bail!(
            "the gateway at {gateway} does not serve {} as it is (status {}): rebuild it \
             (`cargo xtask gen`, then restart the platform)",
            openapi::PATH,
            served.status
        );
    }
    Ok(())
}
