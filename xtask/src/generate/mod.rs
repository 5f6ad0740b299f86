//! `cargo xtask gen [--check]`: renders every artifact from `loja.toml`.

use std::path::Path;

use anyhow::{Result, bail};

/// Renders from `root/loja.toml` and `root/templates` into `root`.
pub fn run(root: &Path, check: bool) -> Result<()> {
    let drift = xtask::files::generate(root, check)?;
    let lines = drift.lines();
    if check {
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
