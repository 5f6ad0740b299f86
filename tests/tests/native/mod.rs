//! The platform started by the code path of `cargo xtask up`, on free ports
//! and in a temporary state directory, for the tests that drive it as a whole
//! (`mod native;` in each of them).

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use loja_tests::{free_port, process::binaries};
use xtask::model::Model;
use xtask::runstate::StateDir;
use xtask::{down, up};

/// A running platform; everything `up` started stops when it is dropped,
/// whether the test passed or failed.
pub struct Native {
    pub root: PathBuf,
    /// The model it was started from, with the ports it really uses.
    pub model: Model,
    pub state: StateDir,
    pub options: up::Options,
    pub running: up::Running,
}

impl Drop for Native {
    fn drop(&mut self) {
        let _ = down::run(&self.state, Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(self.state.root());
    }
}

impl Native {
    /// Starts one replica of every service with the test build's binaries.
    pub async fn start() -> Result<Native> {
        let bins = tokio::task::spawn_blocking(binaries).await??;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut model = Model::load(&root.join("loja.toml"))?;
        for service in &mut model.services {
            service.native_ports = vec![free_port()];
        }
        model.postgres.native_port = free_port();
        model.observability.prometheus_port = free_port();
        let state = StateDir::new(std::env::temp_dir().join(format!("loja-up-{}", free_port())));
        let options = up::Options {
            replicas: Some(1),
            build: false,
            bin_dir: bins,
            timeout: Duration::from_secs(60),
        };
        let running = {
            let (root, model, state, options) =
                (root.clone(), model.clone(), state.clone(), options.clone());
            tokio::task::spawn_blocking(move || up::run(&root, &model, &state, &options)).await?
        };
        // Whatever `up` started before failing is stopped by `down`.
        let running = match running {
            Ok(running) => running,
            Err(err) => {
                let _ = down::run(&state, Duration::from_secs(10));
                return Err(err);
            }
        };
        Ok(Native {
            root,
            model,
            state,
            options,
            running,
        })
    }

    /// The loopback port of `service`'s first replica.
    pub fn port_of(&self, service: &str) -> u16 {
        self.running
            .instances
            .iter()
            .find(|i| i.service == service)
            .map(|i| i.port)
            .unwrap_or_else(|| panic!("{service} is not running"))
    }

    /// The gateway's base URL.
    pub fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.port_of("api-gateway"))
    }

    /// The admin token the platform runs with.
    pub fn token(&self) -> &str {
        &self.running.admin_token.0
    }
}
