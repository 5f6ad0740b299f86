//! Cross-object checks on the rendered Kubernetes manifests that schema
//! validation cannot do, each a named function returning its findings:
//! selectors match pod labels, Services target declared container ports,
//! HPAs and PDBs target existing workloads, shutdown fits in the grace
//! period, rollouts never take a replica away before its replacement is
//! ready, and what loja.toml says about each service (rollout, replicas,
//! preStop sleep, grace period, drain settings, callers admitted by its
//! NetworkPolicy) is what the manifests say; and, per environment, what the
//! environment promises (see [`environment`]).

mod deployments;
mod environment;
mod selectors;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::model::Model;

/// One parsed manifest.
pub(super) struct Object {
    pub kind: String,
    pub name: String,
    pub doc: Value,
}

/// Every parsed manifest, with the lookups the checks share.
pub(super) struct Manifests {
    pub objects: Vec<Object>,
}

/// A named check: the manifests and the model in, one line per problem out.
type Check = fn(&Manifests, &Model) -> Vec<String>;

/// Every check, in the order their findings are listed.
const CHECKS: &[(&str, Check)] = &[
    ("workload selectors", selectors::workloads_select_their_pods),
    ("probes", deployments::probes_are_ready_and_health),
    ("drain timing", deployments::drain_fits_in_the_grace_period),
    (
        "zero-downtime rollout",
        deployments::rollouts_keep_every_replica,
    ),
    (
        "loja.toml per deployment",
        deployments::deployments_follow_loja_toml,
    ),
    (
        "autoscaler bounds",
        deployments::autoscalers_follow_loja_toml,
    ),
    ("service ports", selectors::services_target_container_ports),
    (
        "autoscaler targets",
        selectors::autoscalers_target_deployments,
    ),
    ("disruption budgets", selectors::budgets_leave_room_to_drain),
    (
        "network policies",
        selectors::policies_admit_declared_callers,
    ),
    (
        "egress policies",
        environment::egress_follows_the_call_graph,
    ),
    (
        "pod security",
        environment::pods_meet_the_restricted_profile,
    ),
    ("public entry", environment::the_entry_is_loja_tomls),
    ("pinned images", environment::images_are_pinned),
];

/// Returns every problem found in `built`, the objects of one environment
/// as `kubectl kustomize` outputs them, against `model`, that environment's
/// model (empty when all holds).
pub fn check(model: &Model, built: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(built).with_context(|| format!("reading {}", built.display()))?;
    let manifests = Manifests::parse(&text)?;
    Ok(CHECKS
        .iter()
        .flat_map(|(name, check)| {
            check(&manifests, model)
                .into_iter()
                .map(move |problem| format!("{name}: {problem}"))
        })
        .collect())
}

impl Manifests {
    /// The objects of a multi-document YAML stream.
    pub fn parse(text: &str) -> Result<Manifests> {
        let mut objects = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let doc = Value::deserialize(document).context("parsing the built manifests")?;
            if doc.is_null() {
                continue;
            }
            objects.push(Object {
                kind: str_at(&doc, "/kind").to_string(),
                name: str_at(&doc, "/metadata/name").to_string(),
                doc,
            });
        }
        Ok(Manifests { objects })
    }

    /// Objects of one kind.
    pub fn of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.iter().filter(move |o| o.kind == kind)
    }

    /// Deployments and StatefulSets.
    pub fn workloads(&self) -> Vec<&Object> {
        self.objects
            .iter()
            .filter(|o| o.kind == "Deployment" || o.kind == "StatefulSet")
            .collect()
    }

    /// The value of `name` in ConfigMap `configmap`.
    pub fn config_value(&self, configmap: &str, name: &str) -> Option<String> {
        self.of("ConfigMap")
            .find(|o| o.name == configmap)
            .and_then(|o| o.doc.pointer(&format!("/data/{name}")))
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// The HorizontalPodAutoscaler scaling Deployment `name`.
    pub fn autoscaler_of(&self, name: &str) -> Option<&Object> {
        self.of("HorizontalPodAutoscaler").find(|o| {
            str_at(&o.doc, "/spec/scaleTargetRef/kind") == "Deployment"
                && str_at(&o.doc, "/spec/scaleTargetRef/name") == name
        })
    }
}

pub(super) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn u64_at(v: &Value, pointer: &str) -> Option<u64> {
    v.pointer(pointer).and_then(Value::as_u64)
}

/// The value at `pointer` as written (JSON syntax), or `missing`.
pub(super) fn shown(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .map_or_else(|| "missing".to_string(), Value::to_string)
}

/// An optional number for a message: the number, or `missing`.
pub(super) fn num(v: Option<u64>) -> String {
    v.map_or_else(|| "missing".to_string(), |n| n.to_string())
}

pub(super) fn labels(v: &Value, pointer: &str) -> BTreeMap<String, String> {
    v.pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn selects(selector: &BTreeMap<String, String>, pod: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// The pod labels of a workload.
pub(super) fn pod_labels(workload: &Object) -> BTreeMap<String, String> {
    labels(&workload.doc, "/spec/template/metadata/labels")
}
