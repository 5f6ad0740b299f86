//! `cargo xtask gen [--check]`: renders every artifact from `loja.toml`
//! ([`render`]) and the public API's OpenAPI document from the services'
//! code ([`openapi`]) and writes them, or with `--check` only compares it with the
//! tree ([`files`]): the same code path, so the check never disagrees.

pub mod files;
pub mod openapi;
pub mod render;

use anyhow::{Result, bail};

use crate::Workspace;

/// Render every deployment artifact from loja.toml.
#[derive(Debug, Clone, clap::Args)]
pub struct Gen {
    /// Write nothing; fail listing every stale, missing or orphaned file.
    #[arg(long)]
    pub check: bool,
}

impl Gen {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let drift = files::generate(ws, self.check)?;
        let lines = drift.lines();
        if self.check {
            if !drift.is_empty() {
                for line in &lines {
                    eprintln!("{line}");
                }
                bail!(
                    "{} generated file(s) out of date with loja.toml; run `cargo xtask gen`",
                    lines.len()
                );
            }
            println!("gen --check: all generated files are up to date");
            return Ok(());
        }
        for line in &lines {
            let line = line
                .replacen("stale:", "updated:", 1)
                .replacen("missing:", "created:", 1)
                .replacen("orphaned:", "removed:", 1);
            println!("{line}");
        }
        println!("gen: {} file(s) changed", lines.len());
        Ok(())
    }
}
