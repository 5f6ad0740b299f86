//! Applies `[defaults]` to one `[services.NAME]` table and checks the
//! settings that concern that service alone (replicas, thresholds, timing).

use toml::Spanned;

use super::check::{Reporter, percent, pick};
use super::raw::{self, RawService, RawSettings};
use super::*;

/// Applies `[defaults]` to one service and checks its own settings.
pub(super) fn resolve_service(
    rep: &mut Reporter,
    key: &Spanned<String>,
    svc: &RawService,
    d: &RawSettings,
) -> Service {
    let name = key.get_ref().clone();
    let missing = |rep: &mut Reporter, what: &str| {
        rep.error(
            key.span(),
            &format!("service `{name}` has no `{what}`"),
            &format!("set `{what}` in [services.{name}] or in [defaults]"),
        );
    };
    let port = pick(&svc.port, &d.port).map_or(0, |p| *p.get_ref());
    let shutdown = pick(&svc.shutdown_timeout_secs, &d.shutdown_timeout_secs);
    let drain = pick(&svc.drain_delay_ms, &d.drain_delay_ms);
    let prestop = pick(&svc.prestop_sleep_secs, &d.prestop_sleep_secs);
    let grace = pick(&svc.termination_grace_secs, &d.termination_grace_secs);
    let (shutdown_v, drain_v, prestop_v, grace_v) = match (&shutdown, &drain, &prestop, &grace) {
        (Some(s), Some(dr), Some(p), Some(g)) => {
            (*s.get_ref(), *dr.get_ref(), *p.get_ref(), *g.get_ref())
        }
        _ => {
            missing(
                rep,
                "shutdown_timeout_secs, drain_delay_ms, prestop_sleep_secs and termination_grace_secs",
            );
            (0, 0, 0, 1)
        }
    };
    // A pod stops in three phases: the preStop sleep, the drain delay (still
    // accepting, unready) and at most the shutdown timeout for in-flight
    // requests; the kubelet kills it when the grace period ends.
    let drain_secs = u64::from(drain_v).div_ceil(1000);
    let needed = u64::from(prestop_v) + drain_secs + u64::from(shutdown_v);
    if u64::from(grace_v) <= needed {
        let span = grace.as_ref().map_or(key.span(), |g| g.span());
        rep.error(
            span,
            &format!(
                "termination grace of `{name}` leaves no time to drain ({grace_v}s <= {prestop_v}s preStop sleep + {drain_secs}s drain delay ({drain_v}ms rounded up) + {shutdown_v}s shutdown = {needed}s)"
            ),
            "termination_grace_secs > prestop_sleep_secs + ceil(drain_delay_ms / 1000) + shutdown_timeout_secs",
        );
    }
    let log_format = pick(&svc.log_format, &d.log_format);
    if let Some(f) = &log_format
        && !matches!(f.get_ref().as_str(), "text" | "json")
    {
        rep.error(f.span(), "invalid log format", "\"text\" or \"json\"");
    }

    let own_r = svc.replicas.as_ref();
    let def_r = d.replicas.as_ref();
    let min = own_r
        .and_then(|r| r.get_ref().min)
        .or(def_r.and_then(|r| r.get_ref().min));
    let max = own_r
        .and_then(|r| r.get_ref().max)
        .or(def_r.and_then(|r| r.get_ref().max));
    let replicas_span = own_r.or(def_r).map_or(key.span(), |r| r.span());
    let replicas = match (min, max) {
        (Some(min), Some(max)) => {
            if min > max {
                rep.error(
                    replicas_span,
                    &format!("replicas of `{name}`: min {min} > max {max}"),
                    "1 <= min <= max",
                );
            } else if min < 1 {
                rep.error(
                    replicas_span,
                    &format!("replicas of `{name}`: min is 0"),
                    "1 <= min <= max",
                );
            }
            Replicas { min, max }
        }
        _ => {
            missing(rep, "replicas.min and replicas.max");
            Replicas { min: 1, max: 1 }
        }
    };

    let own_a = svc.autoscaling.clone().unwrap_or_default();
    let def_a = d.autoscaling.clone().unwrap_or_default();
    let autoscaling = Autoscaling {
        cpu_percent: percent(
            rep,
            pick(&own_a.cpu_percent, &def_a.cpu_percent),
            "CPU autoscaling threshold",
        ),
        memory_percent: percent(
            rep,
            pick(&own_a.memory_percent, &def_a.memory_percent),
            "memory autoscaling threshold",
        ),
    };
    let resources = |rep: &mut Reporter,
                     own: &Option<raw::RawResources>,
                     def: &Option<raw::RawResources>,
                     what: &str| {
        let o = own.unwrap_or_default();
        let f = def.unwrap_or_default();
        match (o.cpu_millis.or(f.cpu_millis), o.memory_mib.or(f.memory_mib)) {
            (Some(cpu_millis), Some(memory_mib)) => Resources {
                cpu_millis,
                memory_mib,
            },
            _ => {
                missing(rep, what);
                Resources {
                    cpu_millis: 1,
                    memory_mib: 1,
                }
            }
        }
    };
    let requests = resources(rep, &svc.requests, &d.requests, "requests");
    let limits = resources(rep, &svc.limits, &d.limits, "limits");
    let (ro, rd) = (
        svc.rollout.clone().unwrap_or_default(),
        d.rollout.clone().unwrap_or_default(),
    );
    let surge = pick(&ro.max_surge, &rd.max_surge);
    let unavailable = pick(&ro.max_unavailable, &rd.max_unavailable);
    // A deploy must never take a serving replica away before its successor is
    // ready: the platform's promise of deploys without failed requests.
    if let Some(u) = unavailable.as_ref().filter(|u| *u.get_ref() != 0) {
        rep.error(
            u.span(),
            &format!(
                "rollout of `{name}` may stop {} serving replica(s) before their successors are ready",
                u.get_ref()
            ),
            "rollout.max_unavailable = 0 (a rollout adds a replica, waits until it is ready, then stops an old one)",
        );
    }
    if let Some(s) = surge.as_ref().filter(|s| *s.get_ref() == 0) {
        rep.error(
            s.span(),
            &format!("rollout of `{name}` has max_surge = 0: with no replica ever unavailable it could never replace one"),
            "rollout.max_surge >= 1",
        );
    }
    let rollout = Rollout {
        max_surge: surge.map_or(1, |s| *s.get_ref()),
        max_unavailable: unavailable.map_or(0, |u| *u.get_ref()),
    };
    let (po, pd) = (
        svc.db_pool.unwrap_or_default(),
        d.db_pool.unwrap_or_default(),
    );
    let db_pool = DbPool {
        max_connections: po.max_connections.or(pd.max_connections).unwrap_or(10),
        acquire_timeout_ms: po
            .acquire_timeout_ms
            .or(pd.acquire_timeout_ms)
            .unwrap_or(3000),
    };

    Service {
        upper_snake: name.replace('-', "_").to_uppercase(),
        snake: name.replace('-', "_"),
        name,
        is_gateway: false,
        port,
        log_format: log_format.map_or_else(|| "text".into(), |f| f.get_ref().clone()),
        log_level: pick(&svc.log_level, &d.log_level).unwrap_or_else(|| "info".into()),
        max_body_bytes: pick(&svc.max_body_bytes, &d.max_body_bytes).unwrap_or(65536),
        shutdown_timeout_secs: shutdown_v,
        drain_delay_ms: drain_v,
        prestop_sleep_secs: prestop_v,
        termination_grace_secs: grace_v,
        replicas,
        autoscaling,
        requests,
        limits,
        rollout,
        db_pool,
        routes: svc.routes.iter().map(|r| r.get_ref().clone()).collect(),
        calls: svc.calls.iter().map(|c| c.get_ref().clone()).collect(),
        callers: Vec::new(),
        database: svc.database,
        admin_token: svc.admin_token,
        public_port: svc.public_port.as_ref().map(|p| *p.get_ref()),
        node_port: svc.node_port.as_ref().map(|p| *p.get_ref()),
        native_ports: svc.native_ports.iter().map(|p| *p.get_ref()).collect(),
        env: svc
            .env
            .iter()
            .map(|(k, v)| (k.get_ref().clone(), v.clone()))
            .collect(),
    }
}
