//! The platform on a Docker engine: the service images from the generated
//! Dockerfiles ([`images`]), the generated compose stack (`up --compose`,
//! [`compose`]), and `compose-check`, which runs that stack for real
//! ([`check`]) with local stand-ins for images that cannot be pulled
//! ([`stand_ins`]) and reads the containers' hardening ([`hardening`]);
//! `arm64-check`, which runs the arm64 build under emulation ([`arm64`]).

pub mod arm64;
pub mod check;
pub mod compose;
pub mod hardening;
pub mod images;
pub mod stand_ins;

use std::path::PathBuf;

use anyhow::Result;

use crate::Workspace;

/// A private folder for compose-check's env file and the debootstrap tree,
/// in the target directory (never in git).
fn scratch_dir(ws: &Workspace) -> Result<PathBuf> {
    let dir = ws.target_dir().join("compose-check");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
