//! Turns the text of `loja.toml` into a [`Model`]: parses it, resolves each
//! service (see [`super::service`]), then applies the rules that span
//! services, each a named function, collecting every problem before anything
//! is rendered.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::capacity;
use super::diagnostics::{Diagnostics, Reporter};
use super::env::MANAGED;
use super::environments;
use super::raw::{RawConfig, RawService};
use super::service::{self, percent};
use super::timeouts;
use super::*;

/// Parses and checks `text`; problems are reported against `file`.
pub(super) fn parse(file: &str, text: &str) -> Result<Model, Diagnostics> {
    let mut rep = Reporter::new(file, text);
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            syntax_error(&mut rep, &err);
            rep.finish()?;
            unreachable!("a syntax error was reported");
        }
    };
    let model = resolve(&raw, &mut rep);
    rep.finish().map(|()| model)
}

/// A file that is not TOML, or not of `loja.toml`'s shape (unknown keys,
/// missing tables, wrong types).
fn syntax_error(rep: &mut Reporter, err: &toml::de::Error) {
    let span = err.span().unwrap_or(0..0);
    let message = err.message().trim().to_string();
    match message.strip_prefix("unknown field ") {
        Some(rest) => {
            let (_, allowed) = rest.split_once(", ").unwrap_or(("", "see README.md"));
            rep.error(span, "unknown key", allowed);
        }
        None => {
            let found = rep.quote(span.clone());
            rep.at(
                span.start,
                format!("{message} (found `{found}`; see the loja.toml reference in README.md)"),
            );
        }
    }
}

fn resolve(raw: &RawConfig, rep: &mut Reporter) -> Model {
    check_names(raw, rep);
    check_defaults_are_inheritable(&raw.defaults, rep);
    let declared: BTreeSet<&str> = raw.services.keys().map(|k| k.get_ref().as_str()).collect();
    check_gateway(raw, &declared, rep);
    check_ports(raw, rep);
    check_routes(raw, rep);
    let mut services = Vec::new();
    for (key, svc) in &raw.services {
        check_calls(key, svc, &declared, rep);
        check_env(svc, rep);
        let mut s = service::resolve(rep, key, svc, &raw.defaults);
        s.is_gateway = s.name == *raw.project.gateway.get_ref();
        services.push(s);
    }
    link_calls(&mut services, &declared);
    timeouts::check(rep, &services);
    let mut model = model(raw, services, rep);
    let routes: BTreeSet<&str> = model
        .services
        .iter()
        .flat_map(|s| s.routes.iter().map(String::as_str))
        .collect();
    let limits = raw
        .rate_limits
        .as_ref()
        .map(|r| super::rate_limits::resolve(rep, r, &routes));
    model.environments =
        environments::resolve(raw, &model.observability, &declared, limits.as_ref(), rep);
    model.rate_limits = limits;
    model.slos = super::slo::resolve(rep, &raw.slos, &model.services);
    model
}

/// RFC 1123 label: what Kubernetes accepts as a Service or namespace name.
pub(super) fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

const DNS_ALLOWED: &str = "a lowercase RFC 1123 label: a-z, 0-9 and '-', at most 63 characters, starting and ending alphanumeric";

pub(super) fn check_name(rep: &mut Reporter, name: &Spanned<String>, what: &str) {
    if !is_dns_label(name.get_ref()) {
        rep.error(name.span(), &format!("invalid {what}"), DNS_ALLOWED);
    }
}

/// Names that become Kubernetes names are RFC 1123 labels.
fn check_names(raw: &RawConfig, rep: &mut Reporter) {
    let p = &raw.project;
    check_name(rep, &p.name, "project name");
    check_name(rep, &p.namespace, "namespace");
    check_name(rep, &p.image_prefix, "image prefix");
    check_name(
        rep,
        &raw.observability.monitoring_namespace,
        "monitoring namespace",
    );
    for key in raw.services.keys() {
        check_name(rep, key, "service name");
    }
}

/// `[defaults]` holds what every service inherits; what only a service can
/// say about itself (its routes, its calls, its ports...) has no meaning there.
fn check_defaults_are_inheritable(d: &RawService, rep: &mut Reporter) {
    let allowed = "set it in the [services.NAME] table it belongs to";
    let mut own: Vec<(std::ops::Range<usize>, &str)> = Vec::new();
    own.extend(d.routes.first().map(|r| (r.span(), "routes")));
    own.extend(d.calls.first().map(|c| (c.span(), "calls")));
    own.extend(d.database.as_ref().map(|v| (v.span(), "database")));
    own.extend(d.admin_token.as_ref().map(|v| (v.span(), "admin_token")));
    own.extend(d.public_port.as_ref().map(|v| (v.span(), "public_port")));
    own.extend(d.node_port.as_ref().map(|v| (v.span(), "node_port")));
    own.extend(d.native_ports.first().map(|v| (v.span(), "native_ports")));
    own.extend(d.env.keys().next().map(|k| (k.span(), "env")));
    own.extend(
        d.upstream_timeout_ms
            .as_ref()
            .map(|v| (v.span(), "upstream_timeout_ms")),
    );
    for (span, key) in own {
        rep.error(
            span,
            &format!("`{key}` belongs to one service, not to [defaults]"),
            allowed,
        );
    }
}

pub(super) fn one_of(declared: &BTreeSet<&str>) -> String {
    format!(
        "one of: {}",
        declared.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

/// The gateway is a declared service, and only it publishes a port.
fn check_gateway(raw: &RawConfig, declared: &BTreeSet<&str>, rep: &mut Reporter) {
    let gateway = &raw.project.gateway;
    if !declared.contains(gateway.get_ref().as_str()) {
        rep.error(
            gateway.span(),
            "the gateway is not a declared service",
            &one_of(declared),
        );
    }
    for (key, svc) in &raw.services {
        let name = key.get_ref();
        if let Some(pp) = &svc.public_port
            && name != gateway.get_ref()
        {
            rep.error(
                pp.span(),
                &format!("service `{name}` publishes a port but is not the gateway"),
                "only the gateway named in [project] may have public_port",
            );
        }
    }
}

/// Registers ports that share one address space and reports clashes.
#[derive(Default)]
struct Ports(BTreeMap<u16, String>);

impl Ports {
    fn add(&mut self, rep: &mut Reporter, port: &Spanned<u16>, owner: String, space: &str) {
        let p = *port.get_ref();
        if p == 0 {
            rep.error(port.span(), "port 0 is not a usable port", "1-65535");
        } else if let Some(first) = self.0.get(&p) {
            rep.error(
                port.span(),
                &format!("{space} port {p} of {owner} is already used by {first}"),
                &format!("every {space} port must be unique"),
            );
        } else {
            self.0.insert(p, owner);
        }
    }
}

/// Published, native and node ports are unique in their address spaces,
/// node ports lie in the Kubernetes range, and every service has a port.
fn check_ports(raw: &RawConfig, rep: &mut Reporter) {
    let mut published = Ports::default();
    let mut native = Ports::default();
    let mut node = Ports::default();
    let obs = &raw.observability;
    for (port, owner) in [
        (&obs.jaeger_ui_port, "the Jaeger UI"),
        (&obs.otlp_grpc_port, "OTLP/gRPC"),
        (&obs.otlp_http_port, "OTLP/HTTP"),
        (&obs.prometheus_port, "Prometheus"),
    ] {
        published.add(rep, port, owner.into(), "published");
    }
    let pg = &raw.postgres;
    native.add(rep, &pg.native_port, "PostgreSQL".into(), "native");
    if *pg.port.get_ref() == 0 {
        rep.error(pg.port.span(), "port 0 is not a usable port", "1-65535");
    }
    for (key, svc) in &raw.services {
        let owner = format!("service `{}`", key.get_ref());
        if let Some(pp) = &svc.public_port {
            published.add(rep, pp, owner.clone(), "published");
        }
        if let Some(np) = &svc.node_port {
            if !(30000..=32767).contains(np.get_ref()) {
                rep.error(
                    np.span(),
                    "node port outside the Kubernetes range",
                    "30000-32767",
                );
            }
            node.add(rep, np, owner.clone(), "node");
        }
        for np in &svc.native_ports {
            native.add(rep, np, owner.clone(), "native");
        }
        let port = svc.port.as_ref().or(raw.defaults.port.as_ref());
        if port.is_none_or(|p| *p.get_ref() == 0) || svc.native_ports.is_empty() {
            rep.error(
                key.span(),
                &format!("service `{}` has no port", key.get_ref()),
                "set `port` (here or in [defaults]) and a non-empty `native_ports`",
            );
        }
    }
}

/// Route prefixes are well-formed, never under `/internal`, and each belongs
/// to exactly one service, none nested in another.
fn check_routes(raw: &RawConfig, rep: &mut Reporter) {
    let mut owners: Vec<(&Spanned<String>, &str)> = Vec::new();
    for (key, svc) in &raw.services {
        let name = key.get_ref();
        for route in &svc.routes {
            let r = route.get_ref();
            if !r.starts_with('/') || r.ends_with('/') || r.contains("//") {
                rep.error(
                    route.span(),
                    "invalid route prefix",
                    "a path starting with '/', without a trailing '/', e.g. \"/api/v1/orders\"",
                );
            } else if r == "/internal" || r.starts_with("/internal/") {
                rep.error(
                    route.span(),
                    "route under /internal",
                    "/internal/ paths are never forwarded by the gateway",
                );
            }
            for (other, owner) in &owners {
                let o = other.get_ref();
                let nested =
                    r == o || r.starts_with(&format!("{o}/")) || o.starts_with(&format!("{r}/"));
                if nested {
                    rep.error(
                        route.span(),
                        &format!("route prefix of `{name}` overlaps `{o}` owned by `{owner}`"),
                        "each prefix must belong to exactly one service, none nested in another",
                    );
                }
            }
            owners.push((route, name));
        }
    }
}

/// A service calls other, declared services.
fn check_calls(
    key: &Spanned<String>,
    svc: &RawService,
    declared: &BTreeSet<&str>,
    rep: &mut Reporter,
) {
    let name = key.get_ref();
    for call in &svc.calls {
        let c = call.get_ref();
        if c == name {
            rep.error(
                call.span(),
                "a service calls itself",
                "the name of another service",
            );
        } else if !declared.contains(c.as_str()) {
            rep.error(
                call.span(),
                &format!("`{name}` calls an undeclared service"),
                &one_of(declared),
            );
        }
    }
}

/// `env` adds UPPER_SNAKE_CASE variables, never one the generator sets.
pub(super) fn check_env(svc: &RawService, rep: &mut Reporter) {
    for key in svc.env.keys() {
        let k = key.get_ref();
        let well_formed = k.starts_with(|c: char| c.is_ascii_uppercase())
            && k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            rep.error(
                key.span(),
                "invalid environment variable name",
                "UPPER_SNAKE_CASE",
            );
        } else if MANAGED.contains(&k.as_str()) || k.ends_with("_URL") {
            rep.error(
                key.span(),
                "environment variable set by the generator",
                "the generator computes it from the model; remove it from env",
            );
        }
    }
}

/// The gateway forwards every route, so it calls every route owner; each
/// service learns who calls it. Calls to undeclared services (already
/// reported) are dropped.
pub(super) fn link_calls(services: &mut [Service], declared: &BTreeSet<&str>) {
    let owners: BTreeSet<String> = services
        .iter()
        .filter(|s| !s.routes.is_empty())
        .map(|s| s.name.clone())
        .collect();
    for s in services.iter_mut() {
        let mut calls: BTreeSet<String> = s.calls.iter().cloned().collect();
        if s.is_gateway {
            calls.extend(owners.iter().filter(|o| **o != s.name).cloned());
        }
        s.calls = calls
            .into_iter()
            .filter(|c| declared.contains(c.as_str()))
            .collect();
    }
    let callers: BTreeMap<String, Vec<String>> = services
        .iter()
        .map(|s| {
            let callers = services
                .iter()
                .filter(|c| c.calls.contains(&s.name))
                .map(|c| c.name.clone())
                .collect();
            (s.name.clone(), callers)
        })
        .collect();
    for s in services.iter_mut() {
        s.callers = callers[&s.name].clone();
    }
}

/// The model of the tables that need no resolving beyond their own values.
fn model(raw: &RawConfig, services: Vec<Service>, rep: &mut Reporter) -> Model {
    let (p, pg, obs) = (&raw.project, &raw.postgres, &raw.observability);
    let resources = |r: &raw::RawAllocatable| Resources {
        cpu_millis: r.cpu_millis,
        memory_mib: r.memory_mib,
    };
    let error_rate = percent(
        rep,
        Some(obs.alerts.error_rate_percent.clone()),
        "alert error rate",
    );
    Model {
        project: Project {
            name: p.name.get_ref().clone(),
            namespace: p.namespace.get_ref().clone(),
            gateway: p.gateway.get_ref().clone(),
            registry: p.registry.clone(),
            image_prefix: p.image_prefix.get_ref().clone(),
            tag: p.tag.get_ref().clone(),
        },
        services,
        postgres: Postgres {
            version: pg.version,
            port: *pg.port.get_ref(),
            native_port: *pg.native_port.get_ref(),
            storage_gib: pg.storage_gib,
            requests: resources(&pg.requests),
            limits: resources(&pg.limits),
        },
        observability: Observability {
            jaeger_ui_port: *obs.jaeger_ui_port.get_ref(),
            otlp_grpc_port: *obs.otlp_grpc_port.get_ref(),
            otlp_http_port: *obs.otlp_http_port.get_ref(),
            prometheus_port: *obs.prometheus_port.get_ref(),
            scrape_interval_secs: obs.scrape_interval_secs,
            monitoring_namespace: obs.monitoring_namespace.get_ref().clone(),
            kubernetes_otlp_endpoint: obs.kubernetes_otlp_endpoint.get_ref().clone(),
            alerts: Alerts {
                error_rate_percent: error_rate,
                p99_latency_ms: obs.alerts.p99_latency_ms,
                for_minutes: obs.alerts.for_minutes,
            },
        },
        ci: Ci {
            registry: raw.ci.registry.clone(),
            username_secret: raw.ci.username_secret.clone(),
            token_secret: raw.ci.token_secret.clone(),
            rust_toolchain: raw.ci.rust_toolchain.clone(),
        },
        environments: Vec::new(),
        capacity: raw.capacity.as_ref().map(|c| capacity::resolve(c, rep)),
        slos: Vec::new(),
        rate_limits: None,
    }
}
