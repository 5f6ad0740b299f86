//! `[environments.NAME]`: each environment's services (its overrides layered
//! over the base file, see [`super::layer`]) and the rules that concern an
//! environment: what its tier allows (tags, entry, database, TLS), what its
//! overrides may name, its collector; its Terraform is [`super::terraform`]'s.

use std::collections::BTreeSet;

use toml::Spanned;

use super::diagnostics::Reporter;
use super::raw::{RawConfig, RawEnvironment, RawService};
use super::resolve::{check_env, check_name, is_dns_label, link_calls, one_of};
use super::service;
use super::terraform;
use super::timeouts;
use super::*;

/// Every environment of `raw`, sorted by name.
pub(super) fn resolve(
    raw: &RawConfig,
    observability: &Observability,
    declared: &BTreeSet<&str>,
    rate_limits: Option<&RateLimits>,
    rep: &mut Reporter,
) -> Vec<Environment> {
    raw.environments
        .iter()
        .map(|(key, env)| {
            let mut e = environment(raw, key, env, observability, declared, rep);
            e.rate_limits = rate_limits
                .filter(|_| env.rate_limits != Some(false))
                .cloned();
            e
        })
        .collect()
}

fn environment(
    raw: &RawConfig,
    key: &Spanned<String>,
    env: &RawEnvironment,
    observability: &Observability,
    declared: &BTreeSet<&str>,
    rep: &mut Reporter,
) -> Environment {
    let name = key.get_ref().clone();
    check_name(rep, key, "environment name");
    let tier = tier(rep, &env.tier);
    let arch = arch(rep, &env.arch);
    check_overrides(rep, &name, env, declared);
    let services = services(raw, env, declared, rep);
    let image_tag = image_tag(rep, &name, tier, env.image_tag.as_ref(), &raw.project.tag);
    let ingress = ingress(rep, raw, key, tier, env);
    let database = database(rep, &name, tier, env);
    let (observability, collector) = env_observability(rep, env, observability, &raw.observability);
    let terraform = env
        .terraform
        .as_ref()
        .map(|t| terraform::resolve(rep, &name, tier, arch, t, &raw.terraform));
    let private_zone = terraform
        .as_ref()
        .map(|_| format!("{name}.{}.internal", raw.project.name.get_ref()));
    Environment {
        private_zone,
        name,
        tier,
        arch,
        image_tag,
        database,
        ingress,
        observability,
        collector,
        services,
        terraform,
        rate_limits: None,
    }
}

fn tier(rep: &mut Reporter, value: &Spanned<String>) -> Tier {
    match value.get_ref().as_str() {
        "development" => Tier::Development,
        "staging" => Tier::Staging,
        "production" => Tier::Production,
        _ => {
            rep.error(
                value.span(),
                "unknown environment tier",
                "\"development\", \"staging\" or \"production\"",
            );
            Tier::Development
        }
    }
}

fn arch(rep: &mut Reporter, value: &Spanned<String>) -> Arch {
    match value.get_ref().as_str() {
        "amd64" => Arch::Amd64,
        "arm64" => Arch::Arm64,
        _ => {
            rep.error(
                value.span(),
                "unknown node architecture",
                "\"amd64\" or \"arm64\"",
            );
            Arch::Amd64
        }
    }
}

/// An environment overrides what `[defaults]` may set (and extra `env`),
/// for services that exist.
fn check_overrides(rep: &mut Reporter, env: &str, raw: &RawEnvironment, declared: &BTreeSet<&str>) {
    let mut tables: Vec<(String, &RawService)> =
        vec![(format!("[environments.{env}.defaults]"), &raw.defaults)];
    for (key, svc) in &raw.services {
        if !declared.contains(key.get_ref().as_str()) {
            rep.error(
                key.span(),
                &format!("environment `{env}` overrides an undeclared service"),
                &one_of(declared),
            );
        }
        tables.push((
            format!("[environments.{env}.services.{}]", key.get_ref()),
            svc,
        ));
    }
    for (table, svc) in tables {
        check_env(svc, rep);
        let mut own: Vec<(std::ops::Range<usize>, &str)> = Vec::new();
        own.extend(svc.routes.first().map(|r| (r.span(), "routes")));
        own.extend(svc.calls.first().map(|c| (c.span(), "calls")));
        own.extend(svc.database.as_ref().map(|v| (v.span(), "database")));
        own.extend(svc.admin_token.as_ref().map(|v| (v.span(), "admin_token")));
        own.extend(svc.public_port.as_ref().map(|v| (v.span(), "public_port")));
        own.extend(svc.node_port.as_ref().map(|v| (v.span(), "node_port")));
        own.extend(svc.native_ports.first().map(|v| (v.span(), "native_ports")));
        own.extend(svc.port.as_ref().map(|v| (v.span(), "port")));
        for (span, what) in own {
            rep.error(
                span,
                &format!("`{what}` cannot differ between environments ({table})"),
                "an environment overrides what [defaults] may set, and `env`",
            );
        }
    }
}

/// The services as they run in `env`: its `[environments.NAME.services.X]`
/// over its `[environments.NAME.defaults]` over `[services.X]`, then
/// `[defaults]`; each checked with the rules of a service.
fn services(
    raw: &RawConfig,
    env: &RawEnvironment,
    declared: &BTreeSet<&str>,
    rep: &mut Reporter,
) -> Vec<Service> {
    let none = RawService::default();
    let mut services: Vec<Service> = raw
        .services
        .iter()
        .map(|(key, svc)| {
            let own = env.services.get(key).unwrap_or(&none);
            let layered = own.over(&env.defaults.over(svc));
            let mut s = service::resolve(rep, key, &layered, &raw.defaults);
            s.is_gateway = s.name == *raw.project.gateway.get_ref();
            s
        })
        .collect();
    link_calls(&mut services, declared);
    timeouts::check(rep, &services);
    services
}

/// Outside development an image is named by a tag that never moves, so
/// that what runs is what was tested and reviewed.
fn image_tag(
    rep: &mut Reporter,
    env: &str,
    tier: Tier,
    own: Option<&Spanned<String>>,
    project: &Spanned<String>,
) -> String {
    let tag = own.unwrap_or(project);
    let value = tag.get_ref().trim();
    if tier != Tier::Development && (value.is_empty() || value == "latest") {
        let inherited = if own.is_none() {
            " (inherited from [project] tag)"
        } else {
            ""
        };
        rep.error(
            tag.span(),
            &format!(
                "environment `{env}` would deploy the mutable image tag `{value}`{inherited}"
            ),
            "outside development, set `image_tag` to a tag that never moves (a release or a git sha); `cargo xtask deploy --image-tag` sets the one it deploys",
        );
    }
    tag.get_ref().clone()
}

/// A host name: dot-separated RFC 1123 labels.
fn is_host(name: &str) -> bool {
    name.contains('.') && name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// Staging and production are reached through an Ingress with TLS; only
/// development uses the gateway's node port.
fn ingress(
    rep: &mut Reporter,
    raw: &RawConfig,
    key: &Spanned<String>,
    tier: Tier,
    env: &RawEnvironment,
) -> Option<Ingress> {
    let name = key.get_ref();
    let Some(spanned) = &env.ingress else {
        if tier != Tier::Development {
            rep.error(
                key.span(),
                &format!("environment `{name}` has no ingress"),
                &format!(
                    "outside development the entry is an Ingress with TLS, never a node port: add [environments.{name}.ingress] with host, class, controller_namespace and tls"
                ),
            );
        } else {
            let gateway = raw.services.get(&raw.project.gateway);
            if gateway.is_some_and(|g| g.node_port.is_none()) {
                rep.error(
                    key.span(),
                    &format!("environment `{name}` has neither an ingress nor a node port"),
                    "give the gateway a `node_port`, or the environment an [environments.NAME.ingress]",
                );
            }
        }
        return None;
    };
    let ing = spanned.get_ref();
    if !is_host(ing.host.get_ref()) {
        rep.error(
            ing.host.span(),
            "invalid ingress host",
            "a fully qualified host name, e.g. \"loja.example.com\"",
        );
    }
    check_name(rep, &ing.class, "ingress class");
    check_name(
        rep,
        &ing.controller_namespace,
        "ingress controller namespace",
    );
    let tls = match &ing.tls {
        None => {
            if tier != Tier::Development {
                rep.error(
                    spanned.span(),
                    &format!("the ingress of `{name}` has no TLS"),
                    "outside development set `tls = { cluster_issuer = \"...\" }` (cert-manager) or `tls = { secret = \"...\" }`",
                );
            }
            None
        }
        Some(tls) => {
            if tls.cluster_issuer.is_none() && tls.secret.is_none() {
                rep.error(
                    spanned.span(),
                    &format!("the TLS of `{name}` names no certificate"),
                    "`cluster_issuer` (cert-manager fills the Secret) or `secret` (created beforehand), or both",
                );
            }
            for value in [&tls.cluster_issuer, &tls.secret].into_iter().flatten() {
                check_name(rep, value, "TLS issuer or secret name");
            }
            Some(Tls {
                secret: tls.secret.as_ref().map_or_else(
                    || format!("{}-tls", raw.project.name.get_ref()),
                    |s| s.get_ref().clone(),
                ),
                cluster_issuer: tls.cluster_issuer.as_ref().map(|i| i.get_ref().clone()),
            })
        }
    };
    Some(Ingress {
        host: ing.host.get_ref().clone(),
        class: ing.class.get_ref().clone(),
        controller_namespace: ing.controller_namespace.get_ref().clone(),
        tls,
    })
}

/// A single in-cluster replica has no failover or managed backups: only
/// development runs one. A managed database is created by the Terraform.
fn database(rep: &mut Reporter, name: &str, tier: Tier, env: &RawEnvironment) -> DatabaseKind {
    let kind = match env.database.get_ref().as_str() {
        "in-cluster" => DatabaseKind::InCluster,
        "managed" => DatabaseKind::Managed,
        _ => {
            rep.error(
                env.database.span(),
                "unknown database kind",
                "\"in-cluster\" or \"managed\"",
            );
            return DatabaseKind::InCluster;
        }
    };
    if kind == DatabaseKind::InCluster && tier != Tier::Development {
        rep.error(
            env.database.span(),
            &format!("environment `{name}` runs its database in the cluster"),
            "outside development the database is \"managed\" (RDS, Multi-AZ capable, with backups)",
        );
    }
    if kind == DatabaseKind::Managed && env.terraform.is_none() {
        rep.error(
            env.database.span(),
            &format!("the managed database of `{name}` has no Terraform to create it"),
            &format!("add [environments.{name}.terraform] (it may be empty: [terraform] gives every value)"),
        );
    }
    kind
}

/// The base observability with the environment's endpoints; the collector
/// is a Service in the cluster, so egress to it can name its namespace.
fn env_observability(
    rep: &mut Reporter,
    env: &RawEnvironment,
    base: &Observability,
    raw: &raw::RawObservability,
) -> (Observability, Collector) {
    let own = env.observability.clone().unwrap_or_default();
    let monitoring = own
        .monitoring_namespace
        .unwrap_or_else(|| raw.monitoring_namespace.clone());
    check_name(rep, &monitoring, "monitoring namespace");
    let endpoint = own
        .kubernetes_otlp_endpoint
        .unwrap_or_else(|| raw.kubernetes_otlp_endpoint.clone());
    let collector = collector(endpoint.get_ref()).unwrap_or_else(|| {
        rep.error(
            endpoint.span(),
            "the OTLP endpoint is not a Service in the cluster",
            "http://NAME.NAMESPACE.svc.cluster.local:PORT (egress is allowed to that namespace and port only)",
        );
        Collector {
            namespace: String::new(),
            port: 0,
        }
    });
    let mut observability = base.clone();
    observability.monitoring_namespace = monitoring.into_inner();
    observability.kubernetes_otlp_endpoint = endpoint.into_inner();
    (observability, collector)
}

/// `http://NAME.NAMESPACE.svc[.cluster.local]:PORT` -> its namespace and port.
pub(super) fn collector(endpoint: &str) -> Option<Collector> {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':')?;
    let host = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    let (service, namespace) = host.split_once('.')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    (is_dns_label(service) && is_dns_label(namespace)).then(|| Collector {
        namespace: namespace.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_namespace_and_port_come_from_the_endpoint() {
        let c = collector("http://otel-collector.monitoring.svc.cluster.local:4317").unwrap();
        assert_eq!((c.namespace.as_str(), c.port), ("monitoring", 4317));
        assert!(collector("http://collector:4317").is_none());
        assert!(collector("https://otlp.example.com:443").is_none());
    }
}
