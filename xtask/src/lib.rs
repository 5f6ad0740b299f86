//! The Loja Veloz generator as a library: the validated model of `loja.toml`,
//! the renderer of every deployment artifact, and the checks on the result,
//! shared by the `cargo xtask` subcommands and their tests.

pub mod files;
pub mod model;
pub mod render;
pub mod validate;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding `loja.toml`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
