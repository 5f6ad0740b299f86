//! What runs in the cluster, as [`plan`](super::plan) objects: the objects
//! an environment's manifests would apply, read back with `kubectl get`, and
//! those the platform created there before that the manifests no longer
//! have. A live object carries fields the API server fills in (status,
//! defaults, uids); only the fields the manifests set are compared.

use serde_json::Value;

use super::plan::{Key, Objects};

/// The kinds the manifests create; a live one of them that the manifests no
/// longer have is removed by `deploy`.
pub const KINDS: &str = "deployments,services,configmaps,horizontalpodautoscalers,poddisruptionbudgets,networkpolicies,ingresses,jobs,statefulsets";

/// The label selector of the objects `deploy` created in environment `env`.
pub fn selector(env: &str) -> String {
    format!("app.kubernetes.io/managed-by=cargo-xtask,loja-veloz/environment={env}")
}

/// The objects of a `kubectl get -o json` answer (a List, or one object).
pub fn parse(json: &str) -> anyhow::Result<Objects> {
    let doc: Value = serde_json::from_str(json)?;
    let items = match doc["kind"].as_str() {
        Some(kind) if kind.ends_with("List") => {
            doc["items"].as_array().cloned().unwrap_or_default()
        }
        _ => vec![doc],
    };
    Ok(items
        .into_iter()
        .map(|item| {
            let key = Key {
                kind: item["kind"].as_str().unwrap_or("").to_string(),
                name: item["metadata"]["name"].as_str().unwrap_or("").to_string(),
            };
            (key, item)
        })
        .collect())
}

/// `live` cut down to the shape of `desired`: only the keys `desired` has,
/// and list entries matched as the plan matches them. What is left differs
/// from `desired` only where the cluster really holds something else.
pub fn restrict(live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => Value::Object(
            d.iter()
                .filter_map(|(k, dv)| l.get(k).map(|lv| (k.clone(), restrict(lv, dv))))
                .collect(),
        ),
        (Value::Array(l), Value::Array(d)) if l.len() == d.len() => {
            Value::Array(l.iter().zip(d).map(|(lv, dv)| restrict(lv, dv)).collect())
        }
        _ => live.clone(),
    }
}

/// The cluster's side of the plan: each desired object as it is live
/// (restricted to the desired fields), plus the live objects of the
/// environment that nothing desires any more (whole).
pub fn baseline(desired: &Objects, live: &Objects) -> Objects {
    live.iter()
        .map(|(key, obj)| match desired.get(key) {
            Some(want) => (key.clone(), restrict(obj, want)),
            None => (key.clone(), obj.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::{Change, diff};

    #[test]
    fn server_filled_fields_are_not_changes_and_real_differences_are() {
        let desired: Objects = parse(
            r#"{"kind": "List", "items": [
                {"kind": "Deployment", "metadata": {"name": "pedidos"},
                 "spec": {"template": {"spec": {"containers": [{"name": "pedidos", "image": "x:2"}]}}}},
                {"kind": "Service", "metadata": {"name": "pedidos"}, "spec": {"ports": [{"port": 8080}]}}
            ]}"#,
        )
        .unwrap();
        let live = parse(
            r#"{"kind": "List", "items": [
                {"kind": "Deployment", "metadata": {"name": "pedidos", "uid": "u1"}, "status": {"replicas": 2},
                 "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "pedidos", "image": "x:1", "terminationMessagePath": "/dev/termination-log"}]}}}},
                {"kind": "Service", "metadata": {"name": "pedidos"}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 8080, "protocol": "TCP"}]}},
                {"kind": "ConfigMap", "metadata": {"name": "entregas-config"}, "data": {}}
            ]}"#,
        )
        .unwrap();
        let changes = diff(&baseline(&desired, &live), &desired);
        assert_eq!(changes.len(), 2, "{changes:#?}");
        match &changes[1] {
            Change::Changed(key, fields) => {
                assert_eq!(key.to_string(), "Deployment/pedidos");
                assert_eq!(fields.len(), 1, "{fields:#?}");
                assert_eq!(
                    fields[0].path,
                    "spec.template.spec.containers[pedidos].image"
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            changes[0],
            Change::Removed(Key {
                kind: "ConfigMap".into(),
                name: "entregas-config".into()
            })
        );
    }
}
