//! The checkout xtask works on: its root, found at run time (never baked in
//! at build time, so a copied checkout sharing a target directory works on
//! itself), `loja.toml` loaded once, and the places derived from the root.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Result, bail};

use crate::model::Model;
use crate::native::state::StateDir;

/// The file every artifact is rendered from.
pub const LOJA_TOML: &str = "loja.toml";

/// One checkout of the project.
#[derive(Debug)]
pub struct Workspace {
    root: PathBuf,
    model: OnceLock<Model>,
}

impl Workspace {
    /// The checkout xtask runs in: the parent of `CARGO_MANIFEST_DIR`, which
    /// `cargo run` (and so `cargo xtask`) sets for the process, when it holds
    /// `loja.toml`; else the nearest folder holding `loja.toml` from the
    /// working directory up.
    pub fn find() -> Result<Workspace> {
        let from_cargo = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .and_then(|xtask| xtask.parent().map(Path::to_path_buf))
            .filter(|root| root.join(LOJA_TOML).is_file());
        if let Some(root) = from_cargo {
            return Ok(Workspace::at(root));
        }
        let cwd = std::env::current_dir()?;
        match cwd.ancestors().find(|dir| dir.join(LOJA_TOML).is_file()) {
            Some(root) => Ok(Workspace::at(root)),
            None => bail!(
                "no {LOJA_TOML} in {} or any folder above it: run cargo xtask inside the project",
                cwd.display()
            ),
        }
    }

    /// The checkout at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Workspace {
        Workspace {
            root: root.into(),
            model: OnceLock::new(),
        }
    }

    /// A checkout whose model is already known (a test's modified copy).
    pub fn with_model(root: impl Into<PathBuf>, model: Model) -> Workspace {
        let ws = Workspace::at(root);
        let _ = ws.model.set(model);
        ws
    }

    /// The folder holding `loja.toml`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `loja.toml`, parsed and checked on first use; the error lists every problem.
    pub fn model(&self) -> Result<&Model> {
        if let Some(model) = self.model.get() {
            return Ok(model);
        }
        let model = Model::load(&self.root.join(LOJA_TOML))?;
        Ok(self.model.get_or_init(|| model))
    }

    /// The minijinja templates.
    pub fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }

    /// The native runtime's state: `LOJA_STATE_DIR` when set, else `.loja/`.
    pub fn state(&self) -> StateDir {
        StateDir::new(
            std::env::var_os("LOJA_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| self.root.join(".loja")),
        )
    }

    /// A secret's value: from the environment, else from the git-ignored
    /// `.env` at the root (`KEY=value` lines).
    pub fn secret(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| crate::native::state::dotenv_value(&self.root.join(".env"), name))
    }

    /// Cargo's target directory: `CARGO_TARGET_DIR`, else `target/`.
    pub fn target_dir(&self) -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.root.join("target"))
    }
}
