//! `cargo xtask deploy` without a cluster: the plan of the generated
//! manifests, its order, its secret handling, and the refusal when no
//! Kubernetes API server answers.

mod common;

use common::project_root;

use std::collections::BTreeMap;

use xtask::deploy::{self, Deploy, Step};
use xtask::model::Model;

fn secrets() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("ADMIN_TOKEN", "t0ken"),
        ("POSTGRES_PASSWORD", "pg-pass"),
        ("PEDIDOS_DB_PASSWORD", "ped-pass"),
        ("PAGAMENTOS_DB_PASSWORD", "pag-pass"),
        ("ESTOQUE_DB_PASSWORD", "est-pass"),
    ])
}

fn plan(image_tag: Option<&str>) -> Vec<Step> {
    let model = Model::load(&project_root().join("loja.toml")).unwrap();
    let values = secrets();
    let lookup = |name: &str| values.get(name).map(|v| v.to_string());
    deploy::plan(
        &project_root().join("generated/k8s"),
        &model.project.namespace,
        &lookup,
        &model.project.tag,
        image_tag,
    )
    .unwrap()
}

fn position(steps: &[Step], kind: &str) -> Vec<usize> {
    steps
        .iter()
        .enumerate()
        .filter(|(_, s)| deploy::objects(&s.text).iter().any(|(k, _)| k == kind))
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn every_object_comes_after_what_it_needs() {
    let steps = plan(None);
    let first = |kind: &str| *position(&steps, kind).first().unwrap();
    let last = |kind: &str| *position(&steps, kind).last().unwrap();
    assert_eq!(first("Namespace"), 0);
    assert!(last("ConfigMap") < first("Deployment"));
    assert!(last("Secret") < first("StatefulSet"));
    assert!(last("StatefulSet") < first("Deployment"));
    assert!(last("Deployment") < first("HorizontalPodAutoscaler"));
    assert!(last("Deployment") < first("PodDisruptionBudget"));
    assert!(last("PodDisruptionBudget") < first("NetworkPolicy"));
    // Every generated manifest is in the plan, once.
    let model = Model::load(&project_root().join("loja.toml")).unwrap();
    for svc in &model.services {
        for dir in ["deployments", "services", "hpa", "pdb", "networkpolicies"] {
            let file = format!("{dir}/{}.yaml", svc.name);
            let n = steps
                .iter()
                .filter(|s| s.file.to_string_lossy() == file)
                .count();
            assert_eq!(n, 1, "{file}");
        }
    }
}

#[test]
fn secrets_are_built_in_memory_from_the_environment_and_never_reach_a_file() {
    let steps = plan(None);
    let pedidos = steps
        .iter()
        .find(|s| s.file.to_string_lossy() == "secrets/pedidos.env.example")
        .unwrap();
    assert!(pedidos.text.contains("kind: Secret"));
    assert!(pedidos.text.contains("name: pedidos-secrets"));
    assert!(pedidos.text.contains("ADMIN_TOKEN: \"t0ken\""));
    assert!(pedidos.text.contains("PEDIDOS_DB_PASSWORD: \"ped-pass\""));
    assert!(pedidos.missing.is_empty());
    // Nothing under generated/ holds a value.
    for entry in std::fs::read_dir(project_root().join("generated/k8s/secrets")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for value in secrets().values() {
            assert!(!text.contains(value));
        }
    }
}

#[test]
fn missing_secrets_are_named_in_the_plan() {
    let model = Model::load(&project_root().join("loja.toml")).unwrap();
    let steps = deploy::plan(
        &project_root().join("generated/k8s"),
        &model.project.namespace,
        &|name: &str| (name == "ADMIN_TOKEN").then(|| "x".to_string()),
        &model.project.tag,
        None,
    )
    .unwrap();
    let missing: Vec<&String> = steps.iter().flat_map(|s| &s.missing).collect();
    assert!(missing.iter().any(|m| *m == "POSTGRES_PASSWORD"));
    assert!(!missing.iter().any(|m| *m == "ADMIN_TOKEN"));
}

#[test]
fn an_image_tag_retags_only_the_platform_images() {
    let steps = plan(Some("3f2a1c9"));
    let all: String = steps.iter().map(|s| s.text.as_str()).collect();
    assert!(all.contains("image: docker.io/lojaveloz/pedidos:3f2a1c9"));
    assert!(!all.contains("lojaveloz/pedidos:latest"));
}

#[test]
fn without_a_cluster_deploy_refuses_before_applying_anything() {
    let steps = plan(None);
    let options = Deploy {
        dry_run: false,
        context: Some("loja-veloz-no-such-context".into()),
        image_tag: None,
        timeout: 5,
    };
    let err = deploy::apply(&steps, "loja-veloz", &options).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("no Kubernetes cluster answers for context loja-veloz-no-such-context"),
        "{text}"
    );
    assert!(text.contains("--dry-run"), "{text}");
}
