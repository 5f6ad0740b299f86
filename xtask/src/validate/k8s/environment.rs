//! Checks of what an environment promises: every pod meets the restricted
//! Pod Security profile the namespace enforces, egress follows the call
//! graph, the entry is what loja.toml says (an Ingress with TLS, or the
//! development node port), and images outside development are pinned.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Manifests, Object, labels, str_at};
use crate::model::{DatabaseKind, Environment, Model, Tier};

/// The environment a model was made for ([`Model::in_environment`]).
fn environment(model: &Model) -> Option<&Environment> {
    model.environments.first()
}

/// Pod templates: of Deployments, StatefulSets and Jobs.
fn pod_specs(m: &Manifests) -> impl Iterator<Item = (&Object, &Value)> {
    m.objects
        .iter()
        .filter(|o| matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "Job"))
        .filter_map(|o| o.doc.pointer("/spec/template/spec").map(|s| (o, s)))
}

fn containers(spec: &Value) -> Vec<&Value> {
    ["containers", "initContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect()
}

/// The namespace enforces `restricted`, and every pod meets it: the API
/// server would refuse one that does not.
pub fn pods_meet_the_restricted_profile(m: &Manifests, _: &Model) -> Vec<String> {
    let mut problems = Vec::new();
    for ns in m.of("Namespace") {
        let enforce = str_at(
            &ns.doc,
            "/metadata/labels/pod-security.kubernetes.io~1enforce",
        );
        if enforce != "restricted" {
            problems.push(format!(
                "Namespace {}: pod-security.kubernetes.io/enforce is `{enforce}`, not `restricted`",
                ns.name
            ));
        }
    }
    const VOLUMES: &[&str] = &[
        "configMap",
        "emptyDir",
        "projected",
        "secret",
        "downwardAPI",
        "persistentVolumeClaim",
        "ephemeral",
        "csi",
    ];
    for (o, spec) in pod_specs(m) {
        let mut fail = |what: String| problems.push(format!("{} {}: {what}", o.kind, o.name));
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            if spec[key].as_bool() == Some(true) {
                fail(format!("{key} is not allowed"));
            }
        }
        for volume in spec["volumes"].as_array().into_iter().flatten() {
            let kind = volume
                .as_object()
                .and_then(|v| v.keys().find(|k| *k != "name").cloned())
                .unwrap_or_default();
            if !VOLUMES.contains(&kind.as_str()) {
                fail(format!("volume type `{kind}` is not allowed"));
            }
        }
        let pod = &spec["securityContext"];
        for c in containers(spec) {
            let own = &c["securityContext"];
            let name = c["name"].as_str().unwrap_or("?");
            let either = |key: &str| {
                let v = &own[key];
                if v.is_null() { &pod[key] } else { v }
            };
            if either("runAsNonRoot").as_bool() != Some(true) {
                fail(format!("container {name} may run as root (runAsNonRoot)"));
            }
            if either("runAsUser").as_u64() == Some(0) {
                fail(format!("container {name} runs as uid 0"));
            }
            let seccomp = either("seccompProfile")["type"].as_str().unwrap_or("");
            if !matches!(seccomp, "RuntimeDefault" | "Localhost") {
                fail(format!(
                    "container {name} has no seccomp profile (RuntimeDefault)"
                ));
            }
            if own["allowPrivilegeEscalation"].as_bool() != Some(false) {
                fail(format!("container {name} allows privilege escalation"));
            }
            if own["privileged"].as_bool() == Some(true) {
                fail(format!("container {name} is privileged"));
            }
            let drop = &own["capabilities"]["drop"];
            if !drop
                .as_array()
                .is_some_and(|d| d.iter().any(|c| c == "ALL"))
            {
                fail(format!("container {name} does not drop ALL capabilities"));
            }
            for add in own["capabilities"]["add"].as_array().into_iter().flatten() {
                if add != "NET_BIND_SERVICE" {
                    fail(format!("container {name} adds capability {add}"));
                }
            }
        }
    }
    problems
}

/// The pod names (`app.kubernetes.io/name`) a policy's egress rules reach.
fn egress_pods(policy: &Object) -> BTreeSet<String> {
    policy.doc["spec"]["egress"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|rule| rule["to"].as_array().cloned().unwrap_or_default())
        .filter(|peer| peer.get("namespaceSelector").is_none())
        .filter_map(|peer| {
            peer.pointer("/podSelector/matchLabels/app.kubernetes.io~1name")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect()
}

/// Everything is denied unless allowed, and each service may reach exactly
/// the services it calls (plus PostgreSQL in the cluster when it owns a
/// database), the DNS and the trace collector.
pub fn egress_follows_the_call_graph(m: &Manifests, model: &Model) -> Vec<String> {
    let Some(env) = environment(model) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let deny_all = m.of("NetworkPolicy").any(|p| {
        p.doc
            .pointer("/spec/podSelector")
            .is_some_and(|s| s.as_object().is_some_and(|o| o.is_empty()))
            && ["Ingress", "Egress"].iter().all(|t| {
                p.doc["spec"]["policyTypes"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == t))
            })
    });
    if !deny_all {
        problems.push("no NetworkPolicy denies ingress and egress to every pod by default".into());
    }
    for svc in &model.services {
        let Some(policy) = m.of("NetworkPolicy").find(|o| {
            labels(&o.doc, "/spec/podSelector/matchLabels").get("app.kubernetes.io/name")
                == Some(&svc.name)
        }) else {
            continue;
        };
        let mut declared: BTreeSet<String> = svc.calls.iter().cloned().collect();
        if svc.database && env.database == DatabaseKind::InCluster {
            declared.insert("postgres".into());
        }
        let allowed = egress_pods(policy);
        if allowed != declared {
            problems.push(format!(
                "NetworkPolicy {}: egress reaches pods {allowed:?} but loja.toml gives {} {declared:?}",
                policy.name, svc.name
            ));
        }
        let text = policy.doc["spec"]["egress"].to_string();
        let collector = format!("\"port\":{}", env.collector.port);
        if !text.contains(&collector) || !text.contains(&format!("\"{}\"", env.collector.namespace))
        {
            problems.push(format!(
                "NetworkPolicy {}: no egress to the trace collector ({} port {})",
                policy.name, env.collector.namespace, env.collector.port
            ));
        }
        if !text.contains("\"port\":53") {
            problems.push(format!(
                "NetworkPolicy {}: no egress to the cluster DNS",
                policy.name
            ));
        }
    }
    problems
}

/// Outside development the entry is an Ingress of loja.toml's class and
/// host, with TLS, to the gateway; no Service is a NodePort. In
/// development without an ingress, the gateway's node port is loja.toml's.
pub fn the_entry_is_loja_tomls(m: &Manifests, model: &Model) -> Vec<String> {
    let Some(env) = environment(model) else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let gateway = model.services.iter().find(|s| s.is_gateway);
    let node_ports: Vec<&Object> = m
        .of("Service")
        .filter(|s| str_at(&s.doc, "/spec/type") == "NodePort")
        .collect();
    match &env.ingress {
        Some(ingress) => {
            for s in &node_ports {
                problems.push(format!(
                    "Service {}: NodePort, but {} is reached through its Ingress",
                    s.name, env.name
                ));
            }
            let found: Vec<&Object> = m.of("Ingress").collect();
            if found.len() != 1 {
                problems.push(format!(
                    "{} Ingress objects, loja.toml declares one",
                    found.len()
                ));
            }
            for i in found {
                let spec = &i.doc["spec"];
                if spec["ingressClassName"] != ingress.class.as_str() {
                    problems.push(format!(
                        "Ingress {}: class {} is not loja.toml's `{}`",
                        i.name, spec["ingressClassName"], ingress.class
                    ));
                }
                if str_at(spec, "/rules/0/host") != ingress.host {
                    problems.push(format!(
                        "Ingress {}: host is not loja.toml's `{}`",
                        i.name, ingress.host
                    ));
                }
                let backend = str_at(spec, "/rules/0/http/paths/0/backend/service/name");
                if gateway.is_some_and(|g| g.name != backend) {
                    problems.push(format!(
                        "Ingress {}: routes to `{backend}`, not the gateway",
                        i.name
                    ));
                }
                let tls_hosts = spec.pointer("/tls/0/hosts").and_then(Value::as_array);
                let has_tls = tls_hosts
                    .is_some_and(|h| h.iter().any(|x| x == ingress.host.as_str()))
                    && !str_at(spec, "/tls/0/secretName").is_empty();
                if ingress.tls.is_some() && !has_tls {
                    problems.push(format!("Ingress {}: no TLS for {}", i.name, ingress.host));
                }
            }
        }
        None => {
            let expected = gateway.and_then(|g| g.node_port);
            let published: Vec<(String, Option<u64>)> = node_ports
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.doc
                            .pointer("/spec/ports/0/nodePort")
                            .and_then(Value::as_u64),
                    )
                })
                .collect();
            let wanted: Vec<(String, Option<u64>)> = gateway
                .map(|g| vec![(g.name.clone(), expected.map(u64::from))])
                .unwrap_or_default();
            if published != wanted {
                problems.push(format!(
                    "NodePort Services {published:?}, loja.toml publishes {wanted:?}"
                ));
            }
        }
    }
    problems
}

/// Outside development every image has a tag that is not `latest`, and is
/// pulled each time a pod starts.
pub fn images_are_pinned(m: &Manifests, model: &Model) -> Vec<String> {
    let Some(env) = environment(model) else {
        return Vec::new();
    };
    if env.tier == Tier::Development {
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (o, spec) in pod_specs(m) {
        for c in containers(spec) {
            let image = c["image"].as_str().unwrap_or("");
            let tag = image
                .rsplit_once(':')
                .map(|(_, t)| t)
                .filter(|t| !t.contains('/'));
            if !image.contains("@sha256:") && matches!(tag, None | Some("latest")) {
                problems.push(format!(
                    "{} {}: image `{image}` has no pinned tag",
                    o.kind, o.name
                ));
            }
            if c["imagePullPolicy"] != "Always" {
                problems.push(format!(
                    "{} {}: imagePullPolicy of `{image}` is not Always",
                    o.kind, o.name
                ));
            }
        }
    }
    problems
}
