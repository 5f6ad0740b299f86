//! One `[services.NAME]` table with `[defaults]` applied, and the rules that
//! concern that service alone (timing, replicas, thresholds, rollout). Every
//! setting comes from the service's table or from `[defaults]`: the values in
//! `loja.toml` are the only defaults, none is hidden in code.

use std::ops::Range;

use toml::Spanned;

use super::diagnostics::Reporter;
use super::raw::{RawResources, RawService};
use super::*;

/// The service's value if set, else the default's.
fn pick<T: Clone>(own: &Option<T>, default: &Option<T>) -> Option<T> {
    own.clone().or_else(|| default.clone())
}

/// A percentage from 1 to 100; out of range is reported (and taken as 1).
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

/// Resolves one service: its own values over `[defaults]`, checked.
pub(super) fn resolve(
    rep: &mut Reporter,
    key: &Spanned<String>,
    svc: &RawService,
    d: &RawService,
) -> Service {
    let s = Settings {
        key,
        name: key.get_ref().as_str(),
        own: svc,
        defaults: d,
    };
    let (shutdown, drain, prestop, grace) = s.timing(rep);
    let database = svc.database.as_ref().is_some_and(|v| *v.get_ref());
    Service {
        upper_snake: s.name.replace('-', "_").to_uppercase(),
        snake: s.name.replace('-', "_"),
        name: s.name.to_owned(),
        is_gateway: false,
        port: pick(&svc.port, &d.port).map_or(0, |p| *p.get_ref()),
        log_format: s.log_format(rep),
        log_level: s.required(
            rep,
            &svc.log_level.clone().map(Spanned::into_inner),
            &d.log_level.clone().map(Spanned::into_inner),
            "log_level",
            String::new(),
        ),
        max_body_bytes: s.required(
            rep,
            &svc.max_body_bytes,
            &d.max_body_bytes,
            "max_body_bytes",
            0,
        ),
        shutdown_timeout_secs: shutdown,
        drain_delay_ms: drain,
        prestop_sleep_secs: prestop,
        termination_grace_secs: grace,
        replicas: s.replicas(rep),
        autoscaling: s.autoscaling(rep),
        requests: s.resources(rep, &svc.requests, &d.requests, "requests"),
        limits: s.resources(rep, &svc.limits, &d.limits, "limits"),
        rollout: s.rollout(rep),
        db_pool: s.db_pool(rep, database),
        http: s.http(rep),
        upstream_timeout_ms: svc.upstream_timeout_ms.as_ref().map(|t| *t.get_ref()),
        routes: svc.routes.iter().map(|r| r.get_ref().clone()).collect(),
        calls: svc.calls.iter().map(|c| c.get_ref().clone()).collect(),
        callers: Vec::new(),
        database,
        admin_token: svc.admin_token.as_ref().is_some_and(|v| *v.get_ref()),
        public_port: svc.public_port.as_ref().map(|p| *p.get_ref()),
        node_port: svc.node_port.as_ref().map(|p| *p.get_ref()),
        native_ports: svc.native_ports.iter().map(|p| *p.get_ref()).collect(),
        env: svc
            .env
            .iter()
            .map(|(k, v)| (k.get_ref().clone(), v.clone()))
            .collect(),
        span: key.span(),
    }
}

/// One service's table beside `[defaults]`.
struct Settings<'a> {
    key: &'a Spanned<String>,
    name: &'a str,
    own: &'a RawService,
    defaults: &'a RawService,
}

impl Settings<'_> {
    /// Reports that neither the service nor `[defaults]` sets `what`.
    fn missing(&self, rep: &mut Reporter, what: &str) {
        let name = self.name;
        rep.error(
            self.key.span(),
            &format!("service `{name}` has no `{what}`"),
            &format!("set `{what}` in [services.{name}] or in [defaults]"),
        );
    }

    /// A setting the service or `[defaults]` must give; `placeholder` stands
    /// in once the absence is reported.
    fn required<T: Clone>(
        &self,
        rep: &mut Reporter,
        own: &Option<T>,
        default: &Option<T>,
        what: &str,
        placeholder: T,
    ) -> T {
        pick(own, default).unwrap_or_else(|| {
            self.missing(rep, what);
            placeholder
        })
    }

    /// Shutdown timeout, drain delay, preStop sleep and grace period, which
    /// must leave time to drain.
    fn timing(&self, rep: &mut Reporter) -> (u32, u32, u32, u32) {
        let (o, d) = (self.own, self.defaults);
        let shutdown = pick(&o.shutdown_timeout_secs, &d.shutdown_timeout_secs);
        let drain = pick(&o.drain_delay_ms, &d.drain_delay_ms);
        let prestop = pick(&o.prestop_sleep_secs, &d.prestop_sleep_secs);
        let grace = pick(&o.termination_grace_secs, &d.termination_grace_secs);
        let (Some(s), Some(dr), Some(p), Some(g)) = (&shutdown, &drain, &prestop, &grace) else {
            self.missing(
                rep,
                "shutdown_timeout_secs, drain_delay_ms, prestop_sleep_secs and termination_grace_secs",
            );
            return (0, 0, 0, 1);
        };
        let (shutdown, drain, prestop, grace_v) =
            (*s.get_ref(), *dr.get_ref(), *p.get_ref(), *g.get_ref());
        // A pod stops in three phases: the preStop sleep, the drain delay
        // (still accepting, unready) and at most the shutdown timeout for
        // in-flight requests; the kubelet kills it when the grace period ends.
        let drain_secs = u64::from(drain).div_ceil(1000);
        let needed = u64::from(prestop) + drain_secs + u64::from(shutdown);
        if u64::from(grace_v) <= needed {
            let name = self.name;
            rep.error(
                g.span(),
                &format!(
                    "termination grace of `{name}` leaves no time to drain ({grace_v}s <= {prestop}s preStop sleep + {drain_secs}s drain delay ({drain}ms rounded up) + {shutdown}s shutdown = {needed}s)"
                ),
                "termination_grace_secs > prestop_sleep_secs + ceil(drain_delay_ms / 1000) + shutdown_timeout_secs",
            );
        }
        (shutdown, drain, prestop, grace_v)
    }

    fn log_format(&self, rep: &mut Reporter) -> String {
        let Some(f) = pick(&self.own.log_format, &self.defaults.log_format) else {
            self.missing(rep, "log_format");
            return "text".into();
        };
        if !matches!(f.get_ref().as_str(), "text" | "json") {
            rep.error(f.span(), "invalid log format", "\"text\" or \"json\"");
        }
        f.into_inner()
    }

    /// Replica bounds: each may come from the service or `[defaults]`.
    fn replicas(&self, rep: &mut Reporter) -> Replicas {
        let own = self.own.replicas.as_ref();
        let def = self.defaults.replicas.as_ref();
        let min = own
            .and_then(|r| r.get_ref().min)
            .or(def.and_then(|r| r.get_ref().min));
        let max = own
            .and_then(|r| r.get_ref().max)
            .or(def.and_then(|r| r.get_ref().max));
        let span: Range<usize> = own.or(def).map_or(self.key.span(), |r| r.span());
        let (Some(min), Some(max)) = (min, max) else {
            self.missing(rep, "replicas.min and replicas.max");
            return Replicas { min: 1, max: 1 };
        };
        let name = self.name;
        if min > max {
            rep.error(
                span,
                &format!("replicas of `{name}`: min {min} > max {max}"),
                "1 <= min <= max",
            );
        } else if min < 1 {
            rep.error(
                span,
                &format!("replicas of `{name}`: min is 0"),
                "1 <= min <= max",
            );
        }
        Replicas { min, max }
    }

    fn autoscaling(&self, rep: &mut Reporter) -> Autoscaling {
        let own = self.own.autoscaling.clone().unwrap_or_default();
        let def = self.defaults.autoscaling.clone().unwrap_or_default();
        let cpu = pick(&own.cpu_percent, &def.cpu_percent);
        let memory = pick(&own.memory_percent, &def.memory_percent);
        if cpu.is_none() || memory.is_none() {
            self.missing(
                rep,
                "autoscaling.cpu_percent and autoscaling.memory_percent",
            );
        }
        Autoscaling {
            cpu_percent: percent(rep, cpu, "CPU autoscaling threshold"),
            memory_percent: percent(rep, memory, "memory autoscaling threshold"),
        }
    }

    fn resources(
        &self,
        rep: &mut Reporter,
        own: &Option<RawResources>,
        def: &Option<RawResources>,
        what: &str,
    ) -> Resources {
        let (o, f) = (own.unwrap_or_default(), def.unwrap_or_default());
        match (o.cpu_millis.or(f.cpu_millis), o.memory_mib.or(f.memory_mib)) {
            (Some(cpu_millis), Some(memory_mib)) => Resources {
                cpu_millis,
                memory_mib,
            },
            _ => {
                self.missing(rep, what);
                Resources {
                    cpu_millis: 1,
                    memory_mib: 1,
                }
            }
        }
    }

    /// A deploy must never take a serving replica away before its successor
    /// is ready: the platform's promise of deploys without failed requests.
    fn rollout(&self, rep: &mut Reporter) -> Rollout {
        let own = self.own.rollout.clone().unwrap_or_default();
        let def = self.defaults.rollout.clone().unwrap_or_default();
        let (Some(surge), Some(unavailable)) = (
            pick(&own.max_surge, &def.max_surge),
            pick(&own.max_unavailable, &def.max_unavailable),
        ) else {
            self.missing(rep, "rollout.max_surge and rollout.max_unavailable");
            return Rollout {
                max_surge: 1,
                max_unavailable: 0,
            };
        };
        let name = self.name;
        if *unavailable.get_ref() != 0 {
            rep.error(
                unavailable.span(),
                &format!(
                    "rollout of `{name}` may stop {} serving replica(s) before their successors are ready",
                    unavailable.get_ref()
                ),
                "rollout.max_unavailable = 0 (a rollout adds a replica, waits until it is ready, then stops an old one)",
            );
        }
        if *surge.get_ref() == 0 {
            rep.error(
                surge.span(),
                &format!("rollout of `{name}` has max_surge = 0: with no replica ever unavailable it could never replace one"),
                "rollout.max_surge >= 1",
            );
        }
        Rollout {
            max_surge: surge.into_inner(),
            max_unavailable: unavailable.into_inner(),
        }
    }

    /// The pool of a service with a database; others have none to size.
    /// The `HTTP_*` limits of the service's server, each within what a
    /// server can sensibly be held to.
    fn http(&self, rep: &mut Reporter) -> Http {
        let own = self.own.http.clone().unwrap_or_default();
        let def = self.defaults.http.clone().unwrap_or_default();
        let mut limit = |own: Option<Spanned<u32>>,
                         def: Option<Spanned<u32>>,
                         key: &str,
                         range: std::ops::RangeInclusive<u32>| {
            match own.or(def) {
                Some(v) if range.contains(v.get_ref()) => *v.get_ref(),
                Some(v) => {
                    rep.error(
                        v.span(),
                        &format!("http.{key} outside {}-{}", range.start(), range.end()),
                        &format!("an integer from {} to {}", range.start(), range.end()),
                    );
                    *range.start()
                }
                None => {
                    self.missing(rep, &format!("http.{key}"));
                    *range.start()
                }
            }
        };
        Http {
            header_read_timeout_ms: limit(
                own.header_read_timeout_ms,
                def.header_read_timeout_ms,
                "header_read_timeout_ms",
                100..=120_000,
            ),
            idle_timeout_ms: limit(
                own.idle_timeout_ms,
                def.idle_timeout_ms,
                "idle_timeout_ms",
                100..=3_600_000,
            ),
            max_connections: limit(
                own.max_connections,
                def.max_connections,
                "max_connections",
                1..=1_000_000,
            ),
            max_header_bytes: limit(
                own.max_header_bytes,
                def.max_header_bytes,
                "max_header_bytes",
                1024..=65_536,
            ),
        }
    }

    fn db_pool(&self, rep: &mut Reporter, database: bool) -> DbPool {
        let own = self.own.db_pool.unwrap_or_default();
        let def = self.defaults.db_pool.unwrap_or_default();
        let max = own.max_connections.or(def.max_connections);
        let acquire = own.acquire_timeout_ms.or(def.acquire_timeout_ms);
        if database && (max.is_none() || acquire.is_none()) {
            self.missing(
                rep,
                "db_pool.max_connections and db_pool.acquire_timeout_ms",
            );
        }
        DbPool {
            max_connections: max.unwrap_or(0),
            acquire_timeout_ms: acquire.unwrap_or(0),
        }
    }
}
