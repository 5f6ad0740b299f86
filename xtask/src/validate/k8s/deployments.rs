//! Checks on each Deployment: its probes, its drain timing, its rollout, and
//! what loja.toml says of its service (rollout, preStop, grace, drain
//! settings, autoscaler bounds).

use serde_json::Value;

use super::{Manifests, Object, num, shown, str_at, u64_at};
use crate::model::Model;

/// The first container of a Deployment.
fn container(d: &Object) -> Value {
    d.doc
        .pointer("/spec/template/spec/containers/0")
        .cloned()
        .unwrap_or_default()
}

/// The drain settings of a Deployment: (grace, preStop sleep, the ConfigMap
/// it loads, SHUTDOWN_TIMEOUT_SECS, DRAIN_DELAY_MS).
struct Timing {
    grace: Option<u64>,
    sleep: Option<u64>,
    configmap: String,
    shutdown: Option<u64>,
    drain_ms: Option<u64>,
}

fn timing(m: &Manifests, d: &Object) -> Timing {
    let c = container(d);
    let configmap = str_at(&c, "/envFrom/0/configMapRef/name").to_string();
    let setting = |name: &str| {
        m.config_value(&configmap, name)
            .and_then(|s| s.parse::<u64>().ok())
    };
    Timing {
        grace: u64_at(&d.doc, "/spec/template/spec/terminationGracePeriodSeconds"),
        sleep: u64_at(&c, "/lifecycle/preStop/sleep/seconds"),
        shutdown: setting("SHUTDOWN_TIMEOUT_SECS"),
        drain_ms: setting("DRAIN_DELAY_MS"),
        configmap,
    }
}

/// Readiness probes `/ready`, liveness `/health`.
pub fn probes_are_ready_and_health(m: &Manifests, _: &Model) -> Vec<String> {
    m.of("Deployment")
        .filter(|d| {
            let c = container(d);
            str_at(&c, "/readinessProbe/httpGet/path") != "/ready"
                || str_at(&c, "/livenessProbe/httpGet/path") != "/health"
        })
        .map(|d| {
            format!(
                "Deployment {}: readiness must probe /ready and liveness /health",
                d.name
            )
        })
        .collect()
}

/// preStop sleep, then the drain delay, then in-flight requests: all within
/// the grace period.
pub fn drain_fits_in_the_grace_period(m: &Manifests, _: &Model) -> Vec<String> {
    let mut problems = Vec::new();
    for d in m.of("Deployment") {
        let t = timing(m, d);
        let drain_secs = t.drain_ms.map(|ms| ms.div_ceil(1000));
        let needed = match (t.sleep, drain_secs, t.shutdown) {
            (Some(s), Some(dr), Some(sh)) => Some(s.saturating_add(dr).saturating_add(sh)),
            _ => None,
        };
        if !matches!((t.grace, needed), (Some(g), Some(n)) if g > n) {
            problems.push(format!(
                "Deployment {}: terminationGracePeriodSeconds ({}) must exceed preStop sleep ({}) + DRAIN_DELAY_MS rounded up to seconds ({} from {}ms) + SHUTDOWN_TIMEOUT_SECS ({}) from ConfigMap `{}`",
                d.name,
                num(t.grace),
                num(t.sleep),
                num(drain_secs),
                num(t.drain_ms),
                num(t.shutdown),
                t.configmap,
            ));
        }
    }
    problems
}

/// Zero downtime: a new pod is ready before an old one goes away.
pub fn rollouts_keep_every_replica(m: &Manifests, _: &Model) -> Vec<String> {
    let mut problems = Vec::new();
    for d in m.of("Deployment") {
        let strategy = d.doc.pointer("/spec/strategy").cloned().unwrap_or_default();
        let surge = u64_at(&strategy, "/rollingUpdate/maxSurge");
        let unavailable = u64_at(&strategy, "/rollingUpdate/maxUnavailable");
        let zero_downtime = str_at(&strategy, "/type") == "RollingUpdate"
            && unavailable == Some(0)
            && surge.is_some_and(|s| s >= 1);
        if !zero_downtime {
            problems.push(format!(
                "Deployment {}: strategy must be RollingUpdate with maxUnavailable 0 and maxSurge >= 1 for a zero-downtime rollout (found type {}, maxSurge {}, maxUnavailable {})",
                d.name,
                shown(&strategy, "/type"),
                shown(&strategy, "/rollingUpdate/maxSurge"),
                shown(&strategy, "/rollingUpdate/maxUnavailable"),
            ));
        }
    }
    problems
}

/// Deployments are named after the services of loja.toml, and their
/// rollout, preStop sleep, grace period and drain settings are loja.toml's.
pub fn deployments_follow_loja_toml(m: &Manifests, model: &Model) -> Vec<String> {
    let mut problems = Vec::new();
    for d in m.of("Deployment") {
        let Some(svc) = model.service(&d.name) else {
            problems.push(format!(
                "Deployment {}: loja.toml declares no service of that name",
                d.name
            ));
            continue;
        };
        let strategy = d.doc.pointer("/spec/strategy").cloned().unwrap_or_default();
        let surge = u64_at(&strategy, "/rollingUpdate/maxSurge");
        let unavailable = u64_at(&strategy, "/rollingUpdate/maxUnavailable");
        if surge != Some(u64::from(svc.rollout.max_surge))
            || unavailable != Some(u64::from(svc.rollout.max_unavailable))
        {
            problems.push(format!(
                "Deployment {}: rollingUpdate maxSurge {} and maxUnavailable {} differ from loja.toml's rollout (max_surge {}, max_unavailable {})",
                d.name,
                shown(&strategy, "/rollingUpdate/maxSurge"),
                shown(&strategy, "/rollingUpdate/maxUnavailable"),
                svc.rollout.max_surge,
                svc.rollout.max_unavailable,
            ));
        }
        let t = timing(m, d);
        if t.sleep != Some(u64::from(svc.prestop_sleep_secs)) {
            problems.push(format!(
                "Deployment {}: preStop sleep ({}) differs from loja.toml's prestop_sleep_secs ({})",
                d.name,
                num(t.sleep),
                svc.prestop_sleep_secs
            ));
        }
        if t.grace != Some(u64::from(svc.termination_grace_secs)) {
            problems.push(format!(
                "Deployment {}: terminationGracePeriodSeconds ({}) differs from loja.toml's termination_grace_secs ({})",
                d.name,
                num(t.grace),
                svc.termination_grace_secs
            ));
        }
        for (name, found, declared) in [
            (
                "SHUTDOWN_TIMEOUT_SECS",
                t.shutdown,
                u64::from(svc.shutdown_timeout_secs),
            ),
            ("DRAIN_DELAY_MS", t.drain_ms, u64::from(svc.drain_delay_ms)),
        ] {
            if found != Some(declared) {
                problems.push(format!(
                    "Deployment {}: {name} ({}) in ConfigMap `{}` differs from loja.toml ({declared})",
                    d.name,
                    num(found),
                    t.configmap,
                ));
            }
        }
    }
    problems
}

/// Each Deployment's autoscaler scales between the bounds loja.toml
/// declares, and the Deployment's own replica count lies within them.
pub fn autoscalers_follow_loja_toml(m: &Manifests, model: &Model) -> Vec<String> {
    let mut problems = Vec::new();
    for d in m.of("Deployment") {
        let Some(svc) = model.service(&d.name) else {
            continue;
        };
        let Some(hpa) = m.autoscaler_of(&d.name) else {
            problems.push(format!(
                "Deployment {}: no HorizontalPodAutoscaler targets it, but loja.toml sets replicas {}-{}",
                d.name, svc.replicas.min, svc.replicas.max
            ));
            continue;
        };
        // Kubernetes' default when minReplicas is left out.
        let min = u64_at(&hpa.doc, "/spec/minReplicas").unwrap_or(1);
        let max = u64_at(&hpa.doc, "/spec/maxReplicas");
        if min != u64::from(svc.replicas.min) || max != Some(u64::from(svc.replicas.max)) {
            problems.push(format!(
                "HorizontalPodAutoscaler {}: minReplicas {min} and maxReplicas {} differ from loja.toml's replicas of `{}` (min {}, max {})",
                hpa.name,
                num(max),
                svc.name,
                svc.replicas.min,
                svc.replicas.max
            ));
        }
        if let Some(replicas) = d.doc.pointer("/spec/replicas") {
            let within = replicas
                .as_u64()
                .is_some_and(|r| r >= min && max.is_some_and(|m| r <= m));
            if !within {
                problems.push(format!(
                    "Deployment {}: replicas {replicas} outside the bounds of HorizontalPodAutoscaler {} ({min}-{})",
                    d.name,
                    hpa.name,
                    num(max)
                ));
            }
        }
    }
    problems
}
