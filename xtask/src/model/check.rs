//! Turns the raw file into a [`Model`]: parses it, resolves each service
//! (see [`super::defaults`]), then checks the rules that span services,
//! collecting all problems before anything is rendered.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml::Spanned;

use super::defaults;
use super::env::MANAGED;
use super::raw::RawConfig;
use super::*;

/// Collects problems with their location in the source text.
pub(super) struct Reporter<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<Diagnostic>,
}

impl Reporter<'_> {
    /// Records `what` at `span`, quoting the source text found there.
    pub(super) fn error(&mut self, span: Range<usize>, what: &str, allowed: &str) {
        let found = self.text.get(span.clone()).unwrap_or("").trim();
        let found = found.lines().next().unwrap_or("");
        let message = format!("{what} (found `{found}`; {allowed})");
        self.at(span.start, message);
    }

    fn at(&mut self, offset: usize, message: String) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        self.found.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message,
        });
    }
}

pub(super) fn parse(file: &str, text: &str) -> Result<Model, Diagnostics> {
    let mut rep = Reporter {
        file,
        text,
        found: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            let message = err.message().trim().to_string();
            match message.strip_prefix("unknown field ") {
                Some(rest) => {
                    let (_, allowed) = rest.split_once(", ").unwrap_or(("", "see README.md"));
                    rep.error(span, "unknown key", allowed);
                }
                None => {
                    let found = text.get(span.clone()).unwrap_or("").trim();
                    let found = found.lines().next().unwrap_or("");
                    rep.at(
                        span.start,
                        format!(
                            "{message} (found `{found}`; see the loja.toml reference in README.md)"
                        ),
                    );
                }
            }
            return Err(Diagnostics(rep.found));
        }
    };
    let model = resolve(&raw, &mut rep);
    if rep.found.is_empty() {
        Ok(model)
    } else {
        rep.found.sort();
        rep.found.dedup();
        Err(Diagnostics(rep.found))
    }
}

/// RFC 1123 label: what Kubernetes accepts as a Service or namespace name.
fn is_dns_label(name: &str) -> bool {
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

fn check_name(rep: &mut Reporter, name: &Spanned<String>, what: &str) {
    if !is_dns_label(name.get_ref()) {
        rep.error(name.span(), &format!("invalid {what}"), DNS_ALLOWED);
    }
}

/// The service's value if set, else the default's.
pub(super) fn pick<T: Clone>(own: &Option<T>, default: &Option<T>) -> Option<T> {
    own.clone().or_else(|| default.clone())
}

pub(super) fn percent(rep: &mut Reporter, value: Option<Spanned<i64>>, what: &str) -> u8 {
    match value {
        Some(v) if (1..=100).contains(v.get_ref()) => *v.get_ref() as u8,
        Some(v) => {
            rep.error(
                v.span(),
                &format!("{what} outside 1-100"),
                "an integer percent from 1 to 100",
            );
            1
        }
        None => 1,
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

fn resolve(raw: &RawConfig, rep: &mut Reporter) -> Model {
    let p = &raw.project;
    check_name(rep, &p.name, "project name");
    check_name(rep, &p.namespace, "namespace");
    check_name(rep, &p.image_prefix, "image prefix");
    check_name(
        rep,
        &raw.observability.monitoring_namespace,
        "monitoring namespace",
    );
    let declared: BTreeSet<&str> = raw.services.keys().map(|k| k.get_ref().as_str()).collect();
    if !declared.contains(p.gateway.get_ref().as_str()) {
        rep.error(
            p.gateway.span(),
            "the gateway is not a declared service",
            &format!(
                "one of: {}",
                declared.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }

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
    native.add(
        rep,
        &raw.postgres.native_port,
        "PostgreSQL".into(),
        "native",
    );
    if *raw.postgres.port.get_ref() == 0 {
        rep.error(
            raw.postgres.port.span(),
            "port 0 is not a usable port",
            "1-65535",
        );
    }

    let mut route_owner: Vec<(Spanned<String>, String)> = Vec::new();
    let mut services = Vec::new();
    for (key, svc) in &raw.services {
        let name = key.get_ref().clone();
        check_name(rep, key, "service name");
        let s = defaults::resolve_service(rep, key, svc, &raw.defaults);
        let is_gateway = name == *p.gateway.get_ref();
        if let Some(pp) = &svc.public_port {
            if !is_gateway {
                rep.error(
                    pp.span(),
                    &format!("service `{name}` publishes a port but is not the gateway"),
                    "only the gateway named in [project] may have public_port",
                );
            }
            published.add(rep, pp, format!("service `{name}`"), "published");
        }
        if let Some(np) = &svc.node_port {
            if !(30000..=32767).contains(np.get_ref()) {
                rep.error(
                    np.span(),
                    "node port outside the Kubernetes range",
                    "30000-32767",
                );
            }
            node.add(rep, np, format!("service `{name}`"), "node");
        }
        for np in &svc.native_ports {
            native.add(rep, np, format!("service `{name}`"), "native");
        }
        if s.port == 0 || svc.native_ports.is_empty() {
            rep.error(
                key.span(),
                &format!("service `{name}` has no port"),
                "set `port` (here or in [defaults]) and a non-empty `native_ports`",
            );
        }
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
            for (other, owner) in &route_owner {
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
            route_owner.push((route.clone(), name.clone()));
        }
        for call in &svc.calls {
            let c = call.get_ref();
            if c == &name {
                rep.error(
                    call.span(),
                    "a service calls itself",
                    "the name of another service",
                );
            } else if !declared.contains(c.as_str()) {
                rep.error(
                    call.span(),
                    &format!("`{name}` calls an undeclared service"),
                    &format!(
                        "one of: {}",
                        declared.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
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
        services.push(Service { is_gateway, ..s });
    }

    // The gateway forwards every route, so it calls every route owner.
    let owners: BTreeSet<String> = route_owner.iter().map(|(_, o)| o.clone()).collect();
    for s in &mut services {
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
    for s in &mut services {
        s.callers = callers[&s.name].clone();
    }

    let alerts = &obs.alerts;
    let error_rate = percent(
        rep,
        Some(alerts.error_rate_percent.clone()),
        "alert error rate",
    );
    let t = &raw.terraform;
    Model {
        project: Project {
            name: p.name.get_ref().clone(),
            namespace: p.namespace.get_ref().clone(),
            gateway: p.gateway.get_ref().clone(),
            registry: p.registry.clone(),
            image_prefix: p.image_prefix.get_ref().clone(),
            tag: p.tag.clone(),
        },
        services,
        postgres: Postgres {
            version: raw.postgres.version,
            port: *raw.postgres.port.get_ref(),
            native_port: *raw.postgres.native_port.get_ref(),
            storage_gib: raw.postgres.storage_gib,
            requests: Resources {
                cpu_millis: raw.postgres.requests.cpu_millis,
                memory_mib: raw.postgres.requests.memory_mib,
            },
            limits: Resources {
                cpu_millis: raw.postgres.limits.cpu_millis,
                memory_mib: raw.postgres.limits.memory_mib,
            },
        },
        observability: Observability {
            jaeger_ui_port: *obs.jaeger_ui_port.get_ref(),
            otlp_grpc_port: *obs.otlp_grpc_port.get_ref(),
            otlp_http_port: *obs.otlp_http_port.get_ref(),
            prometheus_port: *obs.prometheus_port.get_ref(),
            scrape_interval_secs: obs.scrape_interval_secs,
            monitoring_namespace: obs.monitoring_namespace.get_ref().clone(),
            kubernetes_otlp_endpoint: obs.kubernetes_otlp_endpoint.clone(),
            alerts: Alerts {
                error_rate_percent: error_rate,
                p99_latency_ms: alerts.p99_latency_ms,
                for_minutes: alerts.for_minutes,
            },
        },
        ci: Ci {
            registry: raw.ci.registry.clone(),
            username_secret: raw.ci.username_secret.clone(),
            token_secret: raw.ci.token_secret.clone(),
            rust_toolchain: raw.ci.rust_toolchain.clone(),
        },
        terraform: Terraform {
            region: t.region.clone(),
            kubernetes_version: t.kubernetes_version.clone(),
            node_instance_type: t.node_instance_type.clone(),
            node_allocatable: Resources {
                cpu_millis: t.node_allocatable.cpu_millis,
                memory_mib: t.node_allocatable.memory_mib,
            },
            db_instance_class: t.db_instance_class.clone(),
        },
    }
}
