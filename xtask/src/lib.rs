//! `cargo xtask` as a library, one module per domain: the validated model of
//! `loja.toml` ([`model`]), the files rendered from it ([`generate`]) and
//! their validators ([`validate`]); the platform as local processes
//! ([`native`]), on Docker ([`docker`]) and on Kubernetes ([`deploy`]); its
//! benchmark and drill ([`perf`]); the developer's own commands ([`dev`]);
//! and small shared helpers ([`util`]). The subcommands and their tests use it.

pub mod deploy;
pub mod dev;
pub mod docker;
pub mod generate;
pub mod model;
pub mod native;
pub mod perf;
pub mod util;
pub mod validate;
mod workspace;

pub use workspace::{LOJA_TOML, Workspace};
