//! The Loja Veloz generator as a library: the validated model of `loja.toml`,
//! the renderer of every deployment artifact, and the checks on the result,
//! shared by the `cargo xtask` subcommands and their tests; and the native
//! runtime (`up`, `down`, `status`, `logs`), `deploy` and `test`.

pub mod bench;
pub mod build;
pub mod compose;
pub mod deploy;
pub mod down;
pub mod drill;
pub mod files;
pub mod images;
pub mod logs;
pub mod model;
pub mod render;
pub mod restart;
pub mod runstate;
pub mod status;
pub mod test;
pub mod up;
pub mod validate;

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding `loja.toml`).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The native runtime's state directory: `.loja/` in the project root, or
/// `LOJA_STATE_DIR` when set.
pub fn state_dir(root: &Path) -> runstate::StateDir {
    runstate::StateDir::new(
        std::env::var_os("LOJA_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".loja")),
    )
}
