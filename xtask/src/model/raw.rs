//! The shape of `loja.toml` as written: every key optional where a default may
//! fill it, unknown keys rejected, values kept with their byte spans so that
//! every error can point at a line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub project: RawProject,
    #[serde(default)]
    pub defaults: RawService,
    pub services: BTreeMap<Spanned<String>, RawService>,
    pub postgres: RawPostgres,
    pub observability: RawObservability,
    pub ci: RawCi,
    pub terraform: RawTerraform,
    /// `[capacity]`: the peak that `cargo xtask calibrate` sizes for.
    pub capacity: Option<super::capacity::RawCapacity>,
    /// `[rate_limits]`: the gateway's per-client limits (see
    /// [`super::rate_limits`]).
    pub rate_limits: Option<RawRateLimits>,
    /// `[environments.NAME]`: where the platform is deployed, each with its
    /// own overrides (see [`RawEnvironment`]).
    #[serde(default)]
    pub environments: BTreeMap<Spanned<String>, RawEnvironment>,
    /// `[slos.NAME]`: service level objectives (see [`super::slo`]).
    #[serde(default)]
    pub slos: BTreeMap<Spanned<String>, super::slo::RawSlo>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    pub name: Spanned<String>,
    pub namespace: Spanned<String>,
    pub gateway: Spanned<String>,
    pub registry: String,
    pub image_prefix: Spanned<String>,
    pub tag: Spanned<String>,
}

/// One `[services.NAME]` table, or `[defaults]`: the settings every service
/// inherits from `[defaults]` and may override, then what only a service can
/// say about itself (which `[defaults]` may not set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub port: Option<Spanned<u16>>,
    pub log_format: Option<Spanned<String>>,
    pub log_level: Option<Spanned<String>>,
    pub max_body_bytes: Option<u64>,
    pub shutdown_timeout_secs: Option<Spanned<u32>>,
    pub drain_delay_ms: Option<Spanned<u32>>,
    pub prestop_sleep_secs: Option<Spanned<u32>>,
    pub termination_grace_secs: Option<Spanned<u32>>,
    pub replicas: Option<Spanned<RawReplicas>>,
    pub autoscaling: Option<RawAutoscaling>,
    pub requests: Option<RawResources>,
    pub limits: Option<RawResources>,
    pub rollout: Option<RawRollout>,
    pub db_pool: Option<RawDbPool>,
    pub http: Option<RawHttp>,
    pub upstream_timeout_ms: Option<Spanned<u32>>,

    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    #[serde(default)]
    pub calls: Vec<Spanned<String>>,
    pub database: Option<Spanned<bool>>,
    pub admin_token: Option<Spanned<bool>>,
    pub public_port: Option<Spanned<u16>>,
    pub node_port: Option<Spanned<u16>>,
    #[serde(default)]
    pub native_ports: Vec<Spanned<u16>>,
    #[serde(default)]
    pub env: BTreeMap<Spanned<String>, String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplicas {
    pub min: Option<u32>,
    pub max: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoscaling {
    pub cpu_percent: Option<Spanned<i64>>,
    pub memory_percent: Option<Spanned<i64>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    pub cpu_millis: Option<u32>,
    pub memory_mib: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    pub max_surge: Option<Spanned<u32>>,
    pub max_unavailable: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDbPool {
    pub max_connections: Option<u32>,
    pub acquire_timeout_ms: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub header_read_timeout_ms: Option<Spanned<u32>>,
    pub idle_timeout_ms: Option<Spanned<u32>>,
    pub max_connections: Option<Spanned<u32>>,
    pub max_header_bytes: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPostgres {
    pub version: u32,
    pub port: Spanned<u16>,
    pub native_port: Spanned<u16>,
    pub storage_gib: u32,
    pub requests: RawAllocatable,
    pub limits: RawAllocatable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObservability {
    pub jaeger_ui_port: Spanned<u16>,
    pub otlp_grpc_port: Spanned<u16>,
    pub otlp_http_port: Spanned<u16>,
    pub prometheus_port: Spanned<u16>,
    pub scrape_interval_secs: u32,
    pub monitoring_namespace: Spanned<String>,
    pub kubernetes_otlp_endpoint: Spanned<String>,
    pub alerts: RawAlerts,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub error_rate_percent: Spanned<i64>,
    pub p99_latency_ms: u32,
    pub for_minutes: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCi {
    pub registry: String,
    pub username_secret: String,
    pub token_secret: String,
    pub rust_toolchain: String,
}

/// `[terraform]`, the values every environment's Terraform inherits, and
/// `[environments.NAME.terraform]`, which may override any of them: every
/// key is optional here and the model reports one that neither gives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTerraform {
    pub region: Option<Spanned<String>>,
    pub kubernetes_version: Option<Spanned<String>>,
    pub node_instance_type: Option<Spanned<String>>,
    pub node_allocatable: Option<RawAllocatable>,
    pub db_instance_class: Option<Spanned<String>>,
    pub db_multi_az: Option<Spanned<bool>>,
    pub db_deletion_protection: Option<Spanned<bool>>,
    pub vpc_cidr: Option<Spanned<String>>,
    pub state_bucket: Option<Spanned<String>>,
    pub cluster_endpoint_public_access_cidrs: Option<Spanned<Vec<String>>>,
}

/// One `[environments.NAME]` table: what differs from the base file where
/// the platform runs as NAME. `defaults` and `services.NAME` have the shape
/// of `[defaults]` and override it, and the services' own tables, there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub tier: Spanned<String>,
    pub arch: Spanned<String>,
    pub image_tag: Option<Spanned<String>>,
    pub database: Spanned<String>,
    pub ingress: Option<Spanned<RawIngress>>,
    pub observability: Option<RawEnvObservability>,
    pub terraform: Option<Spanned<RawTerraform>>,
    /// `false`: the environment's gateway applies no `[rate_limits]`.
    pub rate_limits: Option<bool>,
    #[serde(default)]
    pub defaults: RawService,
    #[serde(default)]
    pub services: BTreeMap<Spanned<String>, RawService>,
}

/// The public entry of an environment reached through a host name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngress {
    pub host: Spanned<String>,
    pub class: Spanned<String>,
    /// Where the ingress controller's pods run: the only namespace the
    /// gateway's NetworkPolicy admits.
    pub controller_namespace: Spanned<String>,
    pub tls: Option<RawTls>,
}

/// The certificate of an ingress: issued by a cert-manager issuer, or a
/// Secret created beforehand.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cluster_issuer: Option<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvObservability {
    pub monitoring_namespace: Option<Spanned<String>>,
    pub kubernetes_otlp_endpoint: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllocatable {
    pub cpu_millis: u32,
    pub memory_mib: u32,
}

/// `[rate_limits]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub trusted_proxies: Vec<Spanned<String>>,
    #[serde(default)]
    pub routes: BTreeMap<Spanned<String>, RawRouteLimit>,
}

/// `routes."PREFIX" = { per_second, burst }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteLimit {
    pub per_second: Spanned<i64>,
    pub burst: Spanned<i64>,
}
