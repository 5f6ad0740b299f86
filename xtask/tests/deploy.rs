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

fn plan_of(env: &str, image_tag: Option<&str>) -> Vec<Step> {
    let model = Model::load(&project_root().join("loja.toml")).unwrap();
    let values = secrets();
    let lookup = |name: &str| values.get(name).map(|v| v.to_string());
    deploy::plan(
        &project_root().join("generated/k8s").join(env),
        &model.project.namespace,
        &lookup,
        &model.environment(env).unwrap().image_tag,
        image_tag,
    )
    .unwrap()
}

fn plan(image_tag: Option<&str>) -> Vec<Step> {
    plan_of("dev", image_tag)
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
    // Every generated manifest of every environment is in its plan, once.
    for env in ["dev", "staging", "prod"] {
        let dir = project_root().join("generated/k8s").join(env);
        let steps = plan_of(env, None);
        let files = xtask::util::fs::walk(&dir, |p| {
            let p = p.to_string_lossy();
            (p.ends_with(".yaml") && !p.ends_with("kustomization.yaml"))
                || p.ends_with(".env.example")
        })
        .unwrap();
        assert!(files.len() > 20, "{env}: {files:?}");
        for file in files {
            let n = steps
                .iter()
                .filter(|s| s.file.to_string_lossy() == file)
                .count();
            assert_eq!(n, 1, "{env}: {file}");
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
    for entry in std::fs::read_dir(project_root().join("generated/k8s/dev/secrets")).unwrap() {
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
        &project_root().join("generated/k8s/dev"),
        &model.project.namespace,
        &|name: &str| (name == "ADMIN_TOKEN").then(|| "x".to_string()),
        &model.project.tag,
        None,
    )
    .unwrap();
    let missing: Vec<&String> = steps.iter().flat_map(|s| &s.missing).collect();
    assert!(!steps.is_empty());
    assert!(missing.iter().any(|m| *m == "POSTGRES_PASSWORD"));
    assert!(!missing.iter().any(|m| *m == "ADMIN_TOKEN"));
}

#[test]
fn an_image_tag_retags_only_the_platform_images() {
    let steps = plan(Some("3f2a1c9"));
    let all: String = steps.iter().map(|s| s.text.as_str()).collect();
    assert!(all.contains("image: docker.io/lojaveloz/pedidos:3f2a1c9"));
    assert!(!all.contains("lojaveloz/pedidos:latest"));
    assert!(all.contains("image: postgres:15"));
    // Outside dev the pinned tag of the environment is the one replaced.
    let prod: String = plan_of("prod", Some("9c1e2d4"))
        .iter()
        .map(|s| s.text.clone())
        .collect();
    assert!(prod.contains("image: docker.io/lojaveloz/pedidos:9c1e2d4"));
    assert!(!prod.contains("lojaveloz/pedidos:0.1.0"));
}

#[test]
fn with_a_managed_database_the_login_job_runs_after_its_service_and_before_the_services() {
    for env in ["staging", "prod"] {
        let steps = plan_of(env, None);
        let at = |kind: &str, name: &str| {
            steps
                .iter()
                .position(|s| deploy::objects(&s.text).contains(&(kind.into(), name.into())))
                .unwrap_or_else(|| panic!("{env}: no {kind}/{name}"))
        };
        let job = at("Job", "postgres-init");
        assert!(at("Secret", "postgres-secrets") < job);
        assert!(at("ConfigMap", "postgres-init") < job);
        assert!(at("Service", "postgres") < job);
        assert!(job < position(&steps, "Deployment")[0]);
        assert!(at("Deployment", "api-gateway") < at("Ingress", "api-gateway"));
        assert!(position(&steps, "StatefulSet").is_empty(), "{env}");
    }
    let dev = plan_of("dev", None);
    assert!(position(&dev, "Job").is_empty());
    assert!(position(&dev, "Ingress").is_empty());
}

#[test]
fn the_dry_run_plan_lists_every_object_once_and_no_secret() {
    let steps = plan_of("prod", None);
    let desired = deploy::desired(&steps).unwrap();
    let report =
        deploy::plan::Report(&deploy::plan::diff(&Default::default(), &desired)).to_string();
    assert!(report.contains("  + Deployment/pedidos\n"), "{report}");
    assert!(report.contains("  + Job/postgres-init\n"), "{report}");
    assert!(!report.contains("Secret/"), "{report}");
    assert!(!report.contains("ped-pass"), "{report}");
    let objects = steps
        .iter()
        .map(|s| deploy::objects(&s.text).len())
        .sum::<usize>();
    let secrets = position(&steps, "Secret").len();
    assert!(report.ends_with(&format!(
        "{n} object(s): {n} added, 0 removed, 0 changed\n",
        n = objects - secrets
    )));
}

#[test]
fn without_a_cluster_deploy_refuses_before_applying_anything() {
    let steps = plan(None);
    let options = Deploy {
        env: "prod".into(),
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
