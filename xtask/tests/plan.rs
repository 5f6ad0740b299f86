//! `cargo xtask plan`: real changes to loja.toml (a port, a replica bound, a
//! new service) become the object changes a reviewer expects, field by
//! field, and nothing else.

mod common;

use common::project_root;

use xtask::deploy::plan::{self, Change, Field};
use xtask::generate::render;
use xtask::model::Model;

/// The objects of `env` rendered for loja.toml after `edit`.
fn objects(edit: impl Fn(String) -> String, env: &str) -> plan::Objects {
    let text = edit(std::fs::read_to_string(project_root().join("loja.toml")).unwrap());
    let model = Model::parse("loja.toml", &text).unwrap();
    let rendered = render::render(&model, &project_root().join("templates")).unwrap();
    plan::rendered_objects(&rendered, env).unwrap()
}

/// The plan of `edit` for `env`, as (object, changed field paths).
fn plan_of(edit: impl Fn(String) -> String, env: &str) -> Vec<Change> {
    plan::diff(&objects(|t| t, env), &objects(edit, env))
}

fn fields<'a>(changes: &'a [Change], object: &str) -> &'a [Field] {
    changes
        .iter()
        .find_map(|c| match c {
            Change::Changed(k, f) if k.to_string() == object => Some(f.as_slice()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{object} did not change: {changes:#?}"))
}

fn change(field: &Field) -> String {
    let shown = |v: &Option<serde_json::Value>| v.as_ref().map_or("-".into(), |v| v.to_string());
    format!(
        "{}: {} -> {}",
        field.path,
        shown(&field.before),
        shown(&field.after)
    )
}

#[test]
fn an_unchanged_loja_toml_plans_nothing() {
    assert_eq!(plan_of(|t| t, "prod"), []);
}

#[test]
fn a_port_change_reaches_every_object_that_names_the_port_and_no_other() {
    let changes = plan_of(
        |t| t.replace("[services.pedidos]\n", "[services.pedidos]\nport = 8081\n"),
        "prod",
    );
    let objects: Vec<String> = changes.iter().map(|c| c.key().to_string()).collect();
    assert_eq!(
        objects,
        [
            "ConfigMap/api-gateway-config",
            "ConfigMap/pedidos-config",
            "Deployment/api-gateway",
            "Deployment/pedidos",
            "NetworkPolicy/api-gateway",
            "NetworkPolicy/pedidos",
            "Service/pedidos",
        ]
    );
    let service: Vec<String> = fields(&changes, "Service/pedidos")
        .iter()
        .map(change)
        .collect();
    assert_eq!(service, ["spec.ports[http].port: 8080 -> 8081"]);
    let deployment: Vec<String> = fields(&changes, "Deployment/pedidos")
        .iter()
        .map(change)
        .collect();
    assert!(
        deployment.contains(
            &"spec.template.spec.containers[pedidos].ports[http].containerPort: 8080 -> 8081"
                .to_string()
        ),
        "{deployment:#?}"
    );
    let gateway: Vec<String> = fields(&changes, "ConfigMap/api-gateway-config")
        .iter()
        .map(change)
        .collect();
    assert_eq!(
        gateway,
        ["data.PEDIDOS_URL: \"http://pedidos:8080\" -> \"http://pedidos:8081\""]
    );
    assert!(changes.iter().all(|c| matches!(c, Change::Changed(..))));
}

#[test]
fn a_replica_bound_in_one_environment_changes_its_autoscaler_and_node_group_only() {
    let edit = |t: String| {
        t.replace(
            "[environments.prod.services.api-gateway]\nreplicas = { min = 3, max = 12 }",
            "[environments.prod.services.api-gateway]\nreplicas = { min = 3, max = 40 }",
        )
    };
    let changes = plan_of(edit, "prod");
    let hpa: Vec<String> = fields(&changes, "HorizontalPodAutoscaler/api-gateway")
        .iter()
        .map(change)
        .collect();
    assert_eq!(hpa, ["spec.maxReplicas: 12 -> 40"]);
    // At most 40 x 250m + 18 x 100m = 11800m: 7 nodes of 1900m, plus a spare.
    let nodes: Vec<String> = fields(&changes, "TerraformVariables/prod")
        .iter()
        .map(change)
        .collect();
    assert_eq!(nodes, ["node_max_size: 4 -> 8"]);
    assert_eq!(changes.len(), 2, "{changes:#?}");
    // staging and dev are untouched.
    assert_eq!(plan_of(edit, "staging"), []);
    assert_eq!(plan_of(edit, "dev"), []);
}

#[test]
fn a_new_service_adds_its_objects_and_changes_those_of_its_callers_and_callees() {
    let fixture =
        std::fs::read_to_string(project_root().join("xtask/tests/fixtures/five-services.toml"))
            .unwrap();
    let changes = plan_of(|_| fixture.clone(), "staging");
    let added: Vec<String> = changes
        .iter()
        .filter(|c| matches!(c, Change::Added(_)))
        .map(|c| c.key().to_string())
        .collect();
    assert_eq!(
        added,
        [
            "ConfigMap/entregas-config",
            "Deployment/entregas",
            "HorizontalPodAutoscaler/entregas",
            "NetworkPolicy/entregas",
            "PodDisruptionBudget/entregas",
            "Service/entregas",
        ]
    );
    assert!(
        !changes.iter().any(|c| matches!(c, Change::Removed(_))),
        "{changes:#?}"
    );
    // The gateway routes to it; pedidos admits it; the Job creates its login.
    let gateway: Vec<String> = fields(&changes, "ConfigMap/api-gateway-config")
        .iter()
        .map(change)
        .collect();
    assert!(
        gateway
            .iter()
            .any(|f| f.starts_with("data.ENTREGAS_URL: - -> ")),
        "{gateway:#?}"
    );
    assert!(
        fields(&changes, "NetworkPolicy/pedidos")
            .iter()
            .any(|f| f.path.starts_with("spec.ingress")),
        "{changes:#?}"
    );
    assert!(
        fields(&changes, "Job/postgres-init")
            .iter()
            .any(|f| f.path.contains("ENTREGAS_DB_PASSWORD")),
        "{changes:#?}"
    );
    let vars: Vec<String> = fields(&changes, "TerraformVariables/staging")
        .iter()
        .map(change)
        .collect();
    assert!(vars.iter().any(|f| f.starts_with("services:")), "{vars:#?}");
}

#[test]
fn against_another_environment_the_plan_shows_what_differs_between_them() {
    let prod = objects(|t| t, "prod");
    let staging = objects(|t| t, "staging");
    let changes = plan::diff(&staging, &prod);
    let ingress: Vec<String> = fields(&changes, "Ingress/api-gateway")
        .iter()
        .map(change)
        .collect();
    assert!(
        ingress.contains(
            &"spec.rules[0].host: \"staging.lojaveloz.com.br\" -> \"lojaveloz.com.br\"".to_string()
        ),
        "{ingress:#?}"
    );
    let dev = objects(|t| t, "dev");
    let changes = plan::diff(&dev, &prod);
    assert!(changes.contains(&Change::Added(plan::Key {
        kind: "Ingress".into(),
        name: "api-gateway".into()
    })));
    assert!(changes.contains(&Change::Removed(plan::Key {
        kind: "StatefulSet".into(),
        name: "postgres".into()
    })));
}
