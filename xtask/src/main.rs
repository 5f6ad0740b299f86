//! `cargo xtask`: renders, checks, builds and runs the Loja Veloz platform from `loja.toml`.

mod generate;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use xtask::project_root;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Loja Veloz tasks driven by loja.toml")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render every deployment artifact from loja.toml.
    Gen {
        /// Write nothing; fail listing every stale, missing or orphaned file.
        #[arg(long)]
        check: bool,
    },
    /// Run every generated artifact through its real validator.
    Validate,
    /// Install the validators `validate` needs (pip and apt).
    Tools,
}

fn main() -> Result<()> {
    let root = project_root();
    match Cli::parse().command {
        Command::Gen { check } => generate::run(&root, check),
        Command::Validate => xtask::validate::run(&root),
        Command::Tools => tools::run(),
    }
}
