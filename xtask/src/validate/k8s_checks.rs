//! Cross-object checks on the rendered Kubernetes manifests that schema
//! validation cannot do: selectors match pod labels, Services target
//! declared container ports, HPAs and PDBs target existing workloads,
//! shutdown fits in the grace period, and NetworkPolicies admit exactly the
//! callers that loja.toml declares.

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
        let grace = d
            .doc
            .pointer("/spec/template/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_u64);
        let sleep = c
            .pointer("/lifecycle/preStop/sleep/seconds")
            .and_then(Value::as_u64);
        let cm = str_at(&c, "/envFrom/0/configMapRef/name");
        let shutdown =
            config_value(&objects, cm, "SHUTDOWN_TIMEOUT_SECS").and_then(|s| s.parse::<u64>().ok());
        match (grace, sleep, shutdown) {
            (Some(g), Some(s), Some(t)) if g > s + t => {}
            _ => problems.push(format!(
                "Deployment {}: terminationGracePeriodSeconds ({grace:?}) must exceed preStop sleep ({sleep:?}) + SHUTDOWN_TIMEOUT_SECS ({shutdown:?}) from ConfigMap `{cm}`",
                d.name
            )),
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
