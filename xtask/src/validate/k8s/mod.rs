//! Cross-object checks on the rendered Kubernetes manifests that schema
//! validation cannot do: selectors match pod labels, Services target
//! declared container ports, HPAs and PDBs target existing workloads,
//! shutdown fits in the grace period, rollouts never take a replica away
//! before its replacement is ready, and what loja.toml says about each
//! service (rollout, replicas, preStop sleep, grace period, drain settings,
//! callers admitted by its NetworkPolicy) is what the manifests say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::model::Model;

/// One parsed manifest.
struct Object {
    file: String,
    kind: String,
    name: String,
    doc: Value,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn u64_at(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

/// The value at `pointer` as written (JSON syntax), or `missing`.
fn shown(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .map_or_else(|| "missing".to_string(), Value::to_string)
}

/// An optional number for a message: the number, or `missing`.
fn num(v: Option<u64>) -> String {
    v.map_or_else(|| "missing".to_string(), |n| n.to_string())
}

fn labels(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// The value of `name` in the ConfigMap that a workload loads.
fn config_value(objects: &[Object], configmap: &str, name: &str) -> Option<String> {
    objects
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.name == configmap)
        .and_then(|o| o.doc.pointer(&format!("/data/{name}")))
        .and_then(Value::as_str)
        .map(String::from)
}

/// Returns every problem found (empty when all holds).
pub fn check(model: &Model, manifests: &[PathBuf]) -> Result<Vec<String>> {
    let mut objects = Vec::new();
    for path in manifests {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let doc: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        objects.push(Object {
            file: path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            kind: str_at(&doc, "/kind").to_string(),
            name: str_at(&doc, "/metadata/name").to_string(),
            doc,
        });
    }
    let mut problems = Vec::new();
    let workloads: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind == "Deployment" || o.kind == "StatefulSet")
        .collect();

    for w in &workloads {
        let pod = labels(&w.doc, "/spec/template/metadata/labels");
        if !selects(&labels(&w.doc, "/spec/selector/matchLabels"), &pod) {
            problems.push(format!(
                "{} {}: selector does not match its pod labels",
                w.kind, w.name
            ));
        }
    }
    for d in objects.iter().filter(|o| o.kind == "Deployment") {
        let c = d
            .doc
            .pointer("/spec/template/spec/containers/0")
            .cloned()
            .unwrap_or_default();
        if str_at(&c, "/readinessProbe/httpGet/path") != "/ready"
            || str_at(&c, "/livenessProbe/httpGet/path") != "/health"
        {
            problems.push(format!(
                "Deployment {}: readiness must probe /ready and liveness /health",
                d.name
            ));
        }
        let grace = u64_at(&d.doc, "/spec/template/spec/terminationGracePeriodSeconds");
        let sleep = u64_at(&c, "/lifecycle/preStop/sleep/seconds");
        let cm = str_at(&c, "/envFrom/0/configMapRef/name");
        let setting =
            |name: &str| config_value(&objects, cm, name).and_then(|s| s.parse::<u64>().ok());
        let shutdown = setting("SHUTDOWN_TIMEOUT_SECS");
        let drain_ms = setting("DRAIN_DELAY_MS");
        let drain_secs = drain_ms.map(|ms| ms.div_ceil(1000));
        // preStop sleep, then the drain delay, then in-flight requests.
        let needed = match (sleep, drain_secs, shutdown) {
            (Some(s), Some(dr), Some(t)) => Some(s.saturating_add(dr).saturating_add(t)),
            _ => None,
        };
        if !matches!((grace, needed), (Some(g), Some(n)) if g > n) {
            problems.push(format!(
                "Deployment {}: terminationGracePeriodSeconds ({}) must exceed preStop sleep ({}) + DRAIN_DELAY_MS rounded up to seconds ({} from {}ms) + SHUTDOWN_TIMEOUT_SECS ({}) from ConfigMap `{cm}`",
                d.name,
                num(grace),
                num(sleep),
                num(drain_secs),
                num(drain_ms),
                num(shutdown),
            ));
        }

        // Zero downtime: a new pod is ready before an old one goes away.
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

        // Deployments are named after the services of loja.toml.
        let Some(svc) = model.service(&d.name) else {
            problems.push(format!(
                "Deployment {}: loja.toml declares no service of that name",
                d.name
            ));
            continue;
        };
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
        if sleep != Some(u64::from(svc.prestop_sleep_secs)) {
            problems.push(format!(
                "Deployment {}: preStop sleep ({}) differs from loja.toml's prestop_sleep_secs ({})",
                d.name,
                num(sleep),
                svc.prestop_sleep_secs
            ));
        }
        if grace != Some(u64::from(svc.termination_grace_secs)) {
            problems.push(format!(
                "Deployment {}: terminationGracePeriodSeconds ({}) differs from loja.toml's termination_grace_secs ({})",
                d.name,
                num(grace),
                svc.termination_grace_secs
            ));
        }
        for (name, found, declared) in [
            (
                "SHUTDOWN_TIMEOUT_SECS",
                shutdown,
                u64::from(svc.shutdown_timeout_secs),
            ),
            ("DRAIN_DELAY_MS", drain_ms, u64::from(svc.drain_delay_ms)),
        ] {
            if found != Some(declared) {
                problems.push(format!(
                    "Deployment {}: {name} ({}) in ConfigMap `{cm}` differs from loja.toml ({declared})",
                    d.name,
                    num(found),
                ));
            }
        }

        // The HPA scales between the bounds loja.toml declares.
        let hpa = objects.iter().find(|o| {
            o.kind == "HorizontalPodAutoscaler"
                && str_at(&o.doc, "/spec/scaleTargetRef/kind") == "Deployment"
                && str_at(&o.doc, "/spec/scaleTargetRef/name") == d.name
        });
        let Some(hpa) = hpa else {
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

    for s in objects.iter().filter(|o| o.kind == "Service") {
        let selector = labels(&s.doc, "/spec/selector");
        let targets: Vec<&&Object> = workloads
            .iter()
            .filter(|w| selects(&selector, &labels(&w.doc, "/spec/template/metadata/labels")))
            .collect();
        if targets.is_empty() {
            problems.push(format!(
                "Service {}: selector matches no workload's pods",
                s.name
            ));
        }
        for port in s
            .doc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let target = port
                .get("targetPort")
                .cloned()
                .unwrap_or_else(|| port["port"].clone());
            for w in &targets {
                let declared = w
                    .doc
                    .pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["ports"].as_array().cloned().unwrap_or_default())
                    .any(|p| p["name"] == target || p["containerPort"] == target);
                if !declared {
                    problems.push(format!(
                        "Service {}: targetPort {target} is not a container port of {} {}",
                        s.name, w.kind, w.name
                    ));
                }
            }
        }
    }

    let deployments: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o.kind == "Deployment")
        .map(|o| o.name.as_str())
        .collect();
    for h in objects
        .iter()
        .filter(|o| o.kind == "HorizontalPodAutoscaler")
    {
        let target = str_at(&h.doc, "/spec/scaleTargetRef/name");
        if str_at(&h.doc, "/spec/scaleTargetRef/kind") != "Deployment"
            || !deployments.contains(target)
        {
            problems.push(format!(
                "HorizontalPodAutoscaler {}: targets no existing Deployment ({target})",
                h.name
            ));
        }
        let min = h
            .doc
            .pointer("/spec/minReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let pdb = objects
            .iter()
            .find(|o| o.kind == "PodDisruptionBudget" && o.name == h.name);
        if let Some(pdb) = pdb {
            let min_available = pdb
                .doc
                .pointer("/spec/minAvailable")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if min_available >= min {
                problems.push(format!(
                    "PodDisruptionBudget {}: minAvailable {min_available} >= HPA minReplicas {min} blocks every drain",
                    pdb.name
                ));
            }
        }
    }
    for p in objects.iter().filter(|o| o.kind == "PodDisruptionBudget") {
        let selector = labels(&p.doc, "/spec/selector/matchLabels");
        if !workloads
            .iter()
            .any(|w| selects(&selector, &labels(&w.doc, "/spec/template/metadata/labels")))
        {
            problems.push(format!(
                "PodDisruptionBudget {}: selector matches no workload's pods",
                p.name
            ));
        }
    }

    // Each service's policy admits exactly its declared callers.
    for svc in &model.services {
        let Some(policy) = objects.iter().find(|o| {
            o.kind == "NetworkPolicy"
                && labels(&o.doc, "/spec/podSelector/matchLabels").get("app.kubernetes.io/name")
                    == Some(&svc.name)
        }) else {
            problems.push(format!(
                "service {}: no NetworkPolicy selects its pods",
                svc.name
            ));
            continue;
        };
        let admitted: BTreeSet<String> = policy
            .doc
            .pointer("/spec/ingress")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|rule| rule["from"].as_array().cloned().unwrap_or_default())
            .filter_map(|peer| {
                peer.pointer("/podSelector/matchLabels/app.kubernetes.io~1name")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        let declared: BTreeSet<String> = svc.callers.iter().cloned().collect();
        if admitted != declared {
            problems.push(format!(
                "NetworkPolicy {} ({}): admits {admitted:?} but loja.toml declares callers {declared:?}",
                policy.name, policy.file
            ));
        }
    }
    Ok(problems)
}
