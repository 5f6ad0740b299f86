//! A running platform to measure or to break: one started for the occasion
//! the way `up` starts it (on free ports, in a temporary state directory of
//! its own, stopped and removed when dropped), or the one `cargo xtask up`
//! started in this checkout. `bench`, `drill` and the tests that drive the
//! whole platform use it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use loja_testkit::{free_port, pg::Cluster};

use super::launcher::Launch;
use super::state::{Instance, StateDir};
use super::{down, up};
use crate::Workspace;
use crate::dev::build::{self, Prebuilt};
use crate::model::Model;

/// A running platform.
pub struct Platform {
    /// The checkout, with the model the platform was started from (the
    /// ports it really uses).
    pub ws: Workspace,
    /// Base URL of the first gateway replica.
    pub gateway: String,
    /// Base URLs of every gateway replica (loads spread over them).
    pub gateways: Vec<String>,
    /// Every service replica (Prometheus aside).
    pub instances: Vec<Instance>,
    pub admin_token: String,
    /// Superuser URL of its PostgreSQL server, without database.
    pub postgres: Option<String>,
    pub state: StateDir,
    /// How each replica is started again (restarts, chaos).
    pub launches: Vec<Launch>,
    /// What it was started with.
    pub options: up::Options,
    /// Started here: stopped and removed when dropped.
    owned: bool,
}

impl Drop for Platform {
    fn drop(&mut self) {
        if self.owned {
            let _ = down::run(&self.state, Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(self.state.root());
        }
    }
}

impl Platform {
    /// Starts `model` the way `up` does, `replicas` of every service, on
    /// free ports, in a temporary state directory named after `purpose`.
    /// Binaries come from `bin_dir` (built there first unless `prebuilt` says not to).
    pub fn start(
        ws: &Workspace,
        model: &Model,
        replicas: u32,
        prebuilt: Prebuilt,
        bin_dir: Option<PathBuf>,
        purpose: &str,
    ) -> Result<Platform> {
        let mut model = model.clone();
        for service in &mut model.services {
            service.native_ports = (0..replicas.max(1)).map(|_| free_port()).collect();
        }
        model.postgres.native_port = free_port();
        model.observability.prometheus_port = free_port();
        let ws = Workspace::with_model(ws.root(), model);
        let state = StateDir::new(std::env::temp_dir().join(format!(
            "loja-{purpose}-{}-{}",
            std::process::id(),
            free_port()
        )));
        let options = up::Options {
            replicas: Some(replicas.max(1)),
            prebuilt,
            bin_dir: bin_dir.unwrap_or_else(|| build::release_dir(&ws)),
            timeout: Duration::from_secs(60),
        };
        let postgres = format!(
            "postgres://postgres@127.0.0.1:{}",
            ws.model()?.postgres.native_port
        );
        let mut platform = Platform {
            ws,
            gateway: String::new(),
            gateways: Vec::new(),
            instances: Vec::new(),
            admin_token: String::new(),
            postgres: Some(postgres),
            state,
            launches: Vec::new(),
            options,
            owned: true,
        };
        // From here on, whatever `up` started is stopped when `platform` drops.
        let running = up::run(&platform.ws, &platform.state, &platform.options)?;
        platform.launches = running.launches;
        platform.admin_token = running.admin_token.0;
        platform.adopt(running.instances)?;
        Ok(platform)
    }

    /// The platform `cargo xtask up` started in this checkout, reached at `url`.
    pub fn attach(ws: &Workspace, url: &str) -> Result<Platform> {
        crate::util::http::authority(url)?;
        let model = ws.model()?;
        let state = ws.state();
        let record = state.up_record()?;
        let cluster = Cluster::new(state.postgres_dir(), model.postgres.native_port);
        let options = up::Options {
            replicas: record.and_then(|r| r.replicas),
            prebuilt: Prebuilt { no_build: true },
            bin_dir: build::release_dir(ws),
            timeout: Duration::from_secs(60),
        };
        let mut platform = Platform {
            ws: Workspace::with_model(ws.root(), model.clone()),
            gateway: String::new(),
            gateways: Vec::new(),
            instances: Vec::new(),
            admin_token: state.admin_token(ws.root())?.0,
            postgres: cluster
                .is_running()
                .then(|| format!("postgres://postgres@127.0.0.1:{}", cluster.port())),
            launches: up::launches(ws, &state, &options, &mut Vec::new())?,
            state: state.clone(),
            options,
            owned: false,
        };
        let alive = state
            .instances()?
            .into_iter()
            .filter(Instance::is_alive)
            .collect();
        platform.adopt(alive)?;
        platform.gateway = url.trim_end_matches('/').to_owned();
        platform.gateways = vec![platform.gateway.clone()];
        Ok(platform)
    }

    /// Keeps the model's service replicas among `instances` and finds the gateway.
    fn adopt(&mut self, instances: Vec<Instance>) -> Result<()> {
        let model = self.ws.model()?;
        self.instances = instances
            .into_iter()
            .filter(|i| model.service(&i.service).is_some())
            .collect();
        self.gateways = self
            .instances
            .iter()
            .filter(|i| i.service == model.project.gateway)
            .map(|i| format!("http://127.0.0.1:{}", i.port))
            .collect();
        self.gateway = self
            .gateways
            .first()
            .cloned()
            .context("the gateway does not run")?;
        Ok(())
    }

    /// The model the platform runs.
    pub fn model(&self) -> &Model {
        self.ws.model().expect("a platform's model is loaded")
    }

    /// The loopback port of `service`'s first replica.
    pub fn port_of(&self, service: &str) -> Option<u16> {
        self.instances
            .iter()
            .find(|i| i.service == service)
            .map(|i| i.port)
    }

    /// The PostgreSQL cluster it runs on (for crashes and restarts).
    pub fn cluster(&self) -> Cluster {
        Cluster::new(self.state.postgres_dir(), self.model().postgres.native_port)
    }
}
