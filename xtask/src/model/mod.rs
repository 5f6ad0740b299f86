//! The validated model of `loja.toml`: parsed once, defaults applied, every
//! rule checked; templates only ever see this.

mod capacity;
mod diagnostics;
mod env;
mod environments;
mod layer;
mod rate_limits;
mod raw;
mod resolve;
mod service;
mod slo;
mod terraform;
mod timeouts;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

pub use capacity::Capacity;
pub use diagnostics::{Diagnostic, Diagnostics};
pub use env::{EnvValue, EnvVar, MANAGED, Target};
pub use rate_limits::{RateLimits, RouteLimit};
pub use slo::{Objective, Slo};

/// Everything the generator knows about the platform.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    pub project: Project,
    /// Sorted by name.
    pub services: Vec<Service>,
    pub postgres: Postgres,
    pub observability: Observability,
    pub ci: Ci,
    /// `[environments.NAME]`, sorted by name: where the platform is deployed.
    pub environments: Vec<Environment>,
    /// `[capacity]`, when declared: the peak `cargo xtask calibrate` sizes for.
    pub capacity: Option<Capacity>,
    /// `[slos.NAME]`, sorted by name.
    pub slos: Vec<Slo>,
    /// The gateway's per-client limits where this model runs (in an
    /// environment's model: that environment's).
    pub rate_limits: Option<RateLimits>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub name: String,
    pub namespace: String,
    pub gateway: String,
    pub registry: String,
    pub image_prefix: String,
    pub tag: String,
}

/// One service with every default applied.
#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub name: String,
    /// `api-gateway` -> `API_GATEWAY`, the prefix of its `<NAME>_URL` variable.
    pub upper_snake: String,
    /// `api-gateway` -> `api_gateway`, its database and login name.
    pub snake: String,
    pub is_gateway: bool,
    pub port: u16,
    pub log_format: String,
    pub log_level: String,
    pub max_body_bytes: u64,
    pub shutdown_timeout_secs: u32,
    /// How long a replica keeps accepting, unready, after SIGTERM (`DRAIN_DELAY_MS`).
    pub drain_delay_ms: u32,
    pub prestop_sleep_secs: u32,
    pub termination_grace_secs: u32,
    pub replicas: Replicas,
    pub autoscaling: Autoscaling,
    pub requests: Resources,
    pub limits: Resources,
    pub rollout: Rollout,
    pub db_pool: DbPool,
    pub http: Http,
    /// How long this service waits for a service it calls
    /// (`UPSTREAM_TIMEOUT_MS`); set exactly for services that call others.
    pub upstream_timeout_ms: Option<u32>,
    pub routes: Vec<String>,
    /// Services this one calls; for the gateway, every route owner too. Sorted.
    pub calls: Vec<String>,
    /// Services that call this one. Sorted.
    pub callers: Vec<String>,
    pub database: bool,
    pub admin_token: bool,
    pub public_port: Option<u16>,
    pub node_port: Option<u16>,
    pub native_ports: Vec<u16>,
    pub env: BTreeMap<String, String>,
    /// Where the service's table starts in `loja.toml`, for rules that
    /// concern it after resolution.
    #[serde(skip)]
    pub span: std::ops::Range<usize>,
}

/// What one client can make a server hold (the runtime's `HTTP_*` limits).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Http {
    pub header_read_timeout_ms: u32,
    pub idle_timeout_ms: u32,
    pub max_connections: u32,
    pub max_header_bytes: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Replicas {
    pub min: u32,
    pub max: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Autoscaling {
    pub cpu_percent: u8,
    pub memory_percent: u8,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Resources {
    pub cpu_millis: u32,
    pub memory_mib: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rollout {
    pub max_surge: u32,
    pub max_unavailable: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct DbPool {
    pub max_connections: u32,
    pub acquire_timeout_ms: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Postgres {
    pub version: u32,
    pub port: u16,
    pub native_port: u16,
    pub storage_gib: u32,
    /// The in-cluster server's container resources.
    pub requests: Resources,
    pub limits: Resources,
}

#[derive(Debug, Clone, Serialize)]
pub struct Observability {
    pub jaeger_ui_port: u16,
    pub otlp_grpc_port: u16,
    pub otlp_http_port: u16,
    pub prometheus_port: u16,
    pub scrape_interval_secs: u32,
    pub monitoring_namespace: String,
    /// Where pods send traces (an OTLP/gRPC collector in the cluster).
    pub kubernetes_otlp_endpoint: String,
    pub alerts: Alerts,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alerts {
    pub error_rate_percent: u8,
    pub p99_latency_ms: u32,
    pub for_minutes: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ci {
    pub registry: String,
    pub username_secret: String,
    pub token_secret: String,
    pub rust_toolchain: String,
}

/// The Terraform variables of one environment: `[terraform]` with that
/// environment's overrides applied.
#[derive(Debug, Clone, Serialize)]
pub struct Terraform {
    pub region: String,
    pub kubernetes_version: String,
    pub node_instance_type: String,
    pub node_allocatable: Resources,
    pub db_instance_class: String,
    pub db_multi_az: bool,
    pub db_deletion_protection: bool,
    pub vpc_cidr: String,
    /// The S3 bucket holding every environment's state, one key each.
    pub state_bucket: String,
    /// Who may reach the EKS API endpoint (the CD runners among them).
    pub cluster_endpoint_public_access_cidrs: Vec<String>,
}

/// What an environment is for; decides which rules apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// A local or throwaway cluster: mutable tags, NodePort, in-cluster database.
    Development,
    Staging,
    Production,
}

/// The CPU architecture of an environment's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Amd64,
    Arm64,
}

/// Where an environment's PostgreSQL runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseKind {
    /// A StatefulSet in the namespace; the logins are created on first start.
    InCluster,
    /// The RDS instance of the environment's Terraform, reached through an
    /// ExternalName Service; a Job creates the logins on every deploy.
    Managed,
}

/// The public entry of an environment reached by host name.
#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub host: String,
    pub class: String,
    pub controller_namespace: String,
    pub tls: Option<Tls>,
}

/// An ingress certificate: the Secret holding it, and the cert-manager
/// ClusterIssuer that fills that Secret (none: the Secret is created by hand).
#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub secret: String,
    pub cluster_issuer: Option<String>,
}

/// The OTLP collector pods send traces to, as the egress policies need it.
#[derive(Debug, Clone, Serialize)]
pub struct Collector {
    pub namespace: String,
    pub port: u16,
}

/// One `[environments.NAME]`: the services with that environment's
/// overrides applied, and what only an environment says.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub name: String,
    pub tier: Tier,
    pub arch: Arch,
    /// The tag the manifests name; `deploy --image-tag` replaces it.
    pub image_tag: String,
    pub database: DatabaseKind,
    /// None: the gateway's node port is the entry (development only).
    pub ingress: Option<Ingress>,
    /// `[observability]` with this environment's endpoints.
    pub observability: Observability,
    pub collector: Collector,
    /// Sorted by name, like [`Model::services`].
    pub services: Vec<Service>,
    /// None: the cluster is not provisioned by the generated Terraform.
    pub terraform: Option<Terraform>,
    /// `[rate_limits]`, unless the environment turned them off.
    pub rate_limits: Option<RateLimits>,
    /// The Route 53 zone of the environment's VPC (`NAME.PROJECT.internal`)
    /// where the Terraform names the managed database `postgres`; with
    /// Terraform only.
    pub private_zone: Option<String>,
}

impl Model {
    /// Reads and validates a `loja.toml`; the error lists every problem.
    pub fn load(path: &Path) -> anyhow::Result<Model> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = path
            .file_name()
            .map_or_else(|| "loja.toml".into(), |n| n.to_string_lossy().into_owned());
        Ok(Model::parse(&file, &text)?)
    }

    /// Parses and validates `text`, reporting problems against `file`.
    pub fn parse(file: &str, text: &str) -> Result<Model, Diagnostics> {
        resolve::parse(file, text)
    }

    /// The service called `name`, if declared.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The gateway's `GATEWAY_ROUTES`: `prefix=service` pairs sorted by prefix.
    pub fn gateway_routes(&self) -> String {
        let mut routes: Vec<(&str, &str)> = self
            .services
            .iter()
            .flat_map(|s| s.routes.iter().map(move |r| (r.as_str(), s.name.as_str())))
            .collect();
        routes.sort();
        routes
            .iter()
            .map(|(prefix, svc)| format!("{prefix}={svc}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Services that own a database, sorted by name.
    pub fn database_services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| s.database)
    }

    /// The environment called `name`, if declared.
    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The platform as it runs in `env`: this model with the environment's
    /// services, observability endpoints and image tag in place of the base
    /// ones (and `environments` holding only `env`), so that everything
    /// computed from a model (the environment of each service, the checks of
    /// `validate`) holds for that environment.
    pub fn in_environment(&self, env: &Environment) -> Model {
        let mut model = self.clone();
        model.services = env.services.clone();
        model.observability = env.observability.clone();
        model.project.tag = env.image_tag.clone();
        model.rate_limits = env.rate_limits.clone();
        model.environments = vec![env.clone()];
        model
    }
}
