//! Checks that objects select what they mean to: workloads their pods,
//! Services their pods' declared ports, autoscalers and budgets existing
//! workloads, network policies exactly the callers loja.toml declares.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Manifests, labels, pod_labels, selects, str_at, u64_at};
use crate::model::Model;

/// A workload's selector matches its own pod template.
pub fn workloads_select_their_pods(m: &Manifests, _: &Model) -> Vec<String> {
    m.workloads()
        .into_iter()
        .filter(|w| {
            !selects(
                &labels(&w.doc, "/spec/selector/matchLabels"),
                &pod_labels(w),
            )
        })
        .map(|w| {
            format!(
                "{} {}: selector does not match its pod labels",
                w.kind, w.name
            )
        })
        .collect()
}

/// Every Service selects some workload's pods, and each of its target ports
/// is a container port of those pods.
pub fn services_target_container_ports(m: &Manifests, _: &Model) -> Vec<String> {
    let workloads = m.workloads();
    let mut problems = Vec::new();
    // An ExternalName Service names a server outside the cluster: no pods.
    for s in m
        .of("Service")
        .filter(|s| str_at(&s.doc, "/spec/type") != "ExternalName")
    {
        let selector = labels(&s.doc, "/spec/selector");
        let targets: Vec<_> = workloads
            .iter()
            .filter(|w| selects(&selector, &pod_labels(w)))
            .collect();
        if targets.is_empty() {
            problems.push(format!(
                "Service {}: selector matches no workload's pods",
                s.name
            ));
        }
        let ports = s.doc.pointer("/spec/ports").and_then(Value::as_array);
        for port in ports.into_iter().flatten() {
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
    problems
}

/// Every autoscaler scales an existing Deployment.
pub fn autoscalers_target_deployments(m: &Manifests, _: &Model) -> Vec<String> {
    let deployments: BTreeSet<&str> = m.of("Deployment").map(|o| o.name.as_str()).collect();
    m.of("HorizontalPodAutoscaler")
        .filter_map(|h| {
            let target = str_at(&h.doc, "/spec/scaleTargetRef/name");
            let ok = str_at(&h.doc, "/spec/scaleTargetRef/kind") == "Deployment"
                && deployments.contains(target);
            (!ok).then(|| {
                format!(
                    "HorizontalPodAutoscaler {}: targets no existing Deployment ({target})",
                    h.name
                )
            })
        })
        .collect()
}

/// A budget selects some workload's pods and stays below its autoscaler's
/// minimum, or no node could ever be drained.
pub fn budgets_leave_room_to_drain(m: &Manifests, _: &Model) -> Vec<String> {
    let workloads = m.workloads();
    let mut problems = Vec::new();
    for pdb in m.of("PodDisruptionBudget") {
        let selector = labels(&pdb.doc, "/spec/selector/matchLabels");
        if !workloads.iter().any(|w| selects(&selector, &pod_labels(w))) {
            problems.push(format!(
                "PodDisruptionBudget {}: selector matches no workload's pods",
                pdb.name
            ));
        }
        let hpa = m.of("HorizontalPodAutoscaler").find(|h| h.name == pdb.name);
        if let Some(hpa) = hpa {
            let min = u64_at(&hpa.doc, "/spec/minReplicas").unwrap_or(1);
            let min_available = u64_at(&pdb.doc, "/spec/minAvailable").unwrap_or(0);
            if min_available >= min {
                problems.push(format!(
                    "PodDisruptionBudget {}: minAvailable {min_available} >= HPA minReplicas {min} blocks every drain",
                    pdb.name
                ));
            }
        }
    }
    problems
}

/// Each service's policy admits exactly its declared callers.
pub fn policies_admit_declared_callers(m: &Manifests, model: &Model) -> Vec<String> {
    let mut problems = Vec::new();
    for svc in &model.services {
        let Some(policy) = m.of("NetworkPolicy").find(|o| {
            labels(&o.doc, "/spec/podSelector/matchLabels").get("app.kubernetes.io/name")
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
                "NetworkPolicy {}: admits {admitted:?} but loja.toml declares callers {declared:?}",
                policy.name
            ));
        }
    }
    problems
}
