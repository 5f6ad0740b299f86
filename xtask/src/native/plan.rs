//! How the platform runs as local processes: every replica of every service
//! as a [`Launch`] with the environment the model renders for it (the same
//! variables compose and Kubernetes get, loopback addresses instead of
//! service names), callees before their callers; and Prometheus beside them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::launcher::Launch;
use super::state::StateDir;
use crate::Workspace;
use crate::model::{Model, Service, Target};

/// What decides the launches of a platform.
pub struct Plan<'a> {
    pub model: &'a Model,
    /// Replicas of every service: `Some(n)`, or `None` for each one's `replicas.min`.
    pub replicas: Option<u32>,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// The value of each secret variable (`ADMIN_TOKEN`, `<SERVICE>_DB_PASSWORD`).
    pub secret: &'a dyn Fn(&str) -> String,
    /// Where traces go; `None` leaves `OTEL_EXPORTER_OTLP_ENDPOINT` unset.
    pub otlp: Option<String>,
}

impl Plan<'_> {
    /// Replica `replica` (from 0) of `svc`, on its `replica`-th native port.
    pub fn launch(&self, svc: &Service, replica: usize) -> Launch {
        let target = Target::Native {
            replica,
            replicas: self.replicas,
        };
        let mut env: BTreeMap<String, String> = self
            .model
            .service_env(svc, target)
            .iter()
            .map(|v| (v.name.clone(), v.render(self.secret)))
            .collect();
        match &self.otlp {
            Some(endpoint) => env.insert("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()),
            None => env.remove("OTEL_EXPORTER_OTLP_ENDPOINT"),
        };
        Launch {
            service: svc.name.clone(),
            program: self.bin_dir.join(&svc.name),
            args: Vec::new(),
            ready_path: "/ready".into(),
            replica: replica as u32 + 1,
            port: svc.native_ports[replica % svc.native_ports.len()],
            env,
        }
    }

    /// Every replica of every service, callees first.
    pub fn launches(&self) -> Result<Vec<Launch>> {
        let mut launches = Vec::new();
        for svc in start_order(self.model)? {
            for replica in 0..svc.native_replicas(self.replicas) {
                launches.push(self.launch(svc, replica));
            }
        }
        Ok(launches)
    }
}

/// Services ordered so that each starts after every service it calls.
pub fn start_order(model: &Model) -> Result<Vec<&Service>> {
    let mut order: Vec<&Service> = Vec::new();
    let mut left: Vec<&Service> = model.services.iter().collect();
    while !left.is_empty() {
        let (ready, blocked): (Vec<&Service>, Vec<&Service>) = left
            .into_iter()
            .partition(|s| s.calls.iter().all(|c| order.iter().any(|o| &o.name == c)));
        if ready.is_empty() {
            let names: Vec<&str> = blocked.iter().map(|s| s.name.as_str()).collect();
            bail!("services call each other in a cycle: {}", names.join(", "));
        }
        order.extend(ready);
        left = blocked;
    }
    Ok(order)
}

/// The collector traces go to: `OTEL_EXPORTER_OTLP_ENDPOINT` when set, else
/// the rendered loopback endpoint when something listens there, else none
/// (and a note saying so).
pub fn otlp_endpoint(model: &Model, notes: &mut Vec<String>) -> Option<String> {
    if let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        && !endpoint.is_empty()
    {
        return Some(endpoint);
    }
    let port = model.observability.otlp_grpc_port;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        return Some(format!("http://127.0.0.1:{port}"));
    }
    notes.push(format!(
        "traces: not exported, no OTLP collector on 127.0.0.1:{port} \
         (start one, e.g. Jaeger, or set OTEL_EXPORTER_OTLP_ENDPOINT)"
    ));
    None
}

/// Prometheus scraping every replica, with the same rendered configuration
/// and alert rules as compose, when a `prometheus` binary is installed.
pub fn prometheus(
    ws: &Workspace,
    model: &Model,
    state: &StateDir,
    services: &[Launch],
    notes: &mut Vec<String>,
) -> Result<Option<Launch>> {
    let Some(program) = loja_testkit::pg::which("prometheus") else {
        notes.push(
            "metrics: Prometheus not started, no `prometheus` binary on PATH \
             (Debian: apt-get install prometheus); every service still serves /metrics"
                .into(),
        );
        return Ok(None);
    };
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for launch in services {
        targets
            .entry(launch.service.clone())
            .or_default()
            .push(format!("127.0.0.1:{}", launch.port));
    }
    let dir = state.root().join("prometheus");
    let config = crate::generate::render::render_prometheus(model, &ws.templates(), &targets)?;
    crate::util::fs::write_atomic(&dir.join("prometheus.yml"), config.as_bytes())?;
    std::fs::copy(
        ws.root().join("generated/observability/alerts.yml"),
        dir.join("alerts.yml"),
    )
    .context("copying the alert rules: run `cargo xtask gen`")?;
    let port = model.observability.prometheus_port;
    Ok(Some(Launch {
        service: "prometheus".into(),
        program,
        args: vec![
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        ready_path: "/-/ready".into(),
        replica: 1,
        port,
        env: BTreeMap::new(),
    }))
}
