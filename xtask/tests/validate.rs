//! `cargo xtask validate` passes on what the templates render, for four and
//! five services, and catches a deliberately broken template.

mod common;

use common::{copy_dir, project_root};

use std::path::Path;

use xtask::generate::{files, openapi};
use xtask::{Workspace, validate};

/// Renders `config` with the real templates (after `corrupt` edits them)
/// into a scratch tree and returns the failed validators with their output.
fn failures(config: &Path, corrupt: impl FnOnce(&Path)) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(config, root.join("loja.toml")).unwrap();
    copy_dir(&project_root().join("templates"), &root.join("templates"));
    corrupt(&root.join("templates"));
    // The five-service fixture's `entregas` exists only there: its document
    // is the one a crate of that name would register.
    let mut documents = openapi::service_documents().unwrap();
    documents.insert(
        "entregas".into(),
        serde_json::from_str(include_str!("fixtures/entregas.openapi.json")).unwrap(),
    );
    files::generate_with(&Workspace::at(root), false, &documents).unwrap();
    validate::validate(&Workspace::at(root))
        .unwrap()
        .into_iter()
        .filter(|o| !o.ok)
        .map(|o| (o.name, o.detail))
        .collect()
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks `{from}`", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn everything_rendered_from_loja_toml_passes_every_validator() {
    let failed = failures(&project_root().join("loja.toml"), |_| {});
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn everything_rendered_for_five_services_passes_every_validator() {
    let config = project_root().join("xtask/tests/fixtures/five-services.toml");
    let failed = failures(&config, |_| {});
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn a_deployment_template_with_an_unknown_field_fails_schema_validation() {
    let failed = failures(&project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/deployments/__service__.yaml.j2"),
            "containerPort:",
            "containerPorts:",
        );
    });
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("kubernetes manifests")),
        "{failed:#?}"
    );
}

#[test]
fn a_service_targeting_an_undeclared_port_fails_the_cross_reference_check() {
    let detail = cross_reference_problems(
        "k8s/services/__service__.yaml.j2",
        "targetPort: http",
        "targetPort: web",
    );
    assert_reported(
        &detail,
        "Service pedidos: targetPort \"web\" is not a container port of Deployment pedidos",
    );
}

#[test]
fn a_network_policy_admitting_undeclared_callers_is_caught() {
    let failed = failures(&project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/networkpolicies/__service__.yaml.j2"),
            "{% for caller in service.callers %}",
            "{% for caller in model.services | map(attribute='name') %}",
        );
    });
    assert!(
        failed
            .iter()
            .any(|(n, d)| n.starts_with("kubernetes cross-references")
                && d.contains("NetworkPolicy estoque")),
        "{failed:#?}"
    );
}

#[test]
fn broken_compose_and_prometheus_templates_are_caught() {
    let failed = failures(&project_root().join("loja.toml"), |t| {
        edit(
            &t.join("docker-compose.yml.j2"),
            "stop_grace_period:",
            "stop_grace_periods:",
        );
        edit(
            &t.join("observability/alerts.yml.j2"),
            "for: 1m",
            "for: one-minute",
        );
    });
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.starts_with("compose schema")),
        "{failed:#?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("prometheus")),
        "{failed:#?}"
    );
}

/// What the Kubernetes cross-reference check reports once one line of one
/// template is changed; every other validator must still pass.
fn cross_reference_problems(template: &str, from: &str, to: &str) -> String {
    let failed = failures(&project_root().join("loja.toml"), |t| {
        edit(&t.join(template), from, to)
    });
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].0.starts_with("kubernetes cross-references"),
        "{failed:#?}"
    );
    failed[0].1.clone()
}

fn assert_reported(detail: &str, problem: &str) {
    assert!(detail.contains(problem), "`{problem}` not in:\n{detail}");
}

#[test]
fn a_rollout_that_takes_a_replica_away_first_is_caught() {
    let detail = cross_reference_problems(
        "k8s/deployments/__service__.yaml.j2",
        "maxUnavailable: {{ service.rollout.max_unavailable }}",
        "maxUnavailable: 1",
    );
    assert_reported(
        &detail,
        "Deployment pedidos: strategy must be RollingUpdate with maxUnavailable 0 and maxSurge >= 1 for a zero-downtime rollout (found type \"RollingUpdate\", maxSurge 1, maxUnavailable 1)",
    );
    assert_reported(
        &detail,
        "Deployment pedidos: rollingUpdate maxSurge 1 and maxUnavailable 1 differ from loja.toml's rollout (max_surge 1, max_unavailable 0)",
    );
}

#[test]
fn a_pre_stop_sleep_that_leaves_no_time_for_the_drain_delay_is_caught() {
    // 14s + 20s shutdown would fit in the 35s grace; the 1s drain does not.
    let detail = cross_reference_problems(
        "k8s/deployments/__service__.yaml.j2",
        "seconds: {{ service.prestop_sleep_secs }}",
        "seconds: 14",
    );
    assert_reported(
        &detail,
        "Deployment pedidos: terminationGracePeriodSeconds (35) must exceed preStop sleep (14) + DRAIN_DELAY_MS rounded up to seconds (1 from 1000ms) + SHUTDOWN_TIMEOUT_SECS (20) from ConfigMap `pedidos-config`",
    );
    assert_reported(
        &detail,
        "Deployment pedidos: preStop sleep (14) differs from loja.toml's prestop_sleep_secs (5)",
    );
}

#[test]
fn a_drain_delay_in_the_config_map_beyond_the_grace_period_is_caught() {
    let detail = cross_reference_problems(
        "k8s/configmaps/__service__.yaml.j2",
        "{{ value|q }}",
        "{{ (\"10001\" if name == \"DRAIN_DELAY_MS\" else value)|q }}",
    );
    assert_reported(
        &detail,
        "Deployment estoque: terminationGracePeriodSeconds (35) must exceed preStop sleep (5) + DRAIN_DELAY_MS rounded up to seconds (11 from 10001ms) + SHUTDOWN_TIMEOUT_SECS (20) from ConfigMap `estoque-config`",
    );
    assert_reported(
        &detail,
        "Deployment estoque: DRAIN_DELAY_MS (10001) in ConfigMap `estoque-config` differs from loja.toml (1000)",
    );
}

#[test]
fn a_grace_period_other_than_loja_tomls_is_caught() {
    let detail = cross_reference_problems(
        "k8s/deployments/__service__.yaml.j2",
        "terminationGracePeriodSeconds: {{ service.termination_grace_secs }}",
        "terminationGracePeriodSeconds: {{ service.termination_grace_secs + 10 }}",
    );
    assert_reported(
        &detail,
        "Deployment pagamentos: terminationGracePeriodSeconds (45) differs from loja.toml's termination_grace_secs (35)",
    );
    assert!(!detail.contains("must exceed"), "{detail}");
}

#[test]
fn hpa_bounds_other_than_loja_tomls_are_caught() {
    let detail = cross_reference_problems(
        "k8s/hpa/__service__.yaml.j2",
        "maxReplicas: {{ service.replicas.max }}",
        "maxReplicas: {{ service.replicas.max + 1 }}",
    );
    assert_reported(
        &detail,
        "HorizontalPodAutoscaler api-gateway: minReplicas 2 and maxReplicas 11 differ from loja.toml's replicas of `api-gateway` (min 2, max 10)",
    );
    assert_reported(
        &detail,
        "HorizontalPodAutoscaler pedidos: minReplicas 2 and maxReplicas 7 differ from loja.toml's replicas of `pedidos` (min 2, max 6)",
    );
}

#[test]
fn deployment_replicas_outside_the_hpa_bounds_are_caught() {
    let detail = cross_reference_problems(
        "k8s/deployments/__service__.yaml.j2",
        "  revisionHistoryLimit: 5",
        "  replicas: {{ service.replicas.max + 1 }}\n  revisionHistoryLimit: 5",
    );
    assert_reported(
        &detail,
        "Deployment pedidos: replicas 7 outside the bounds of HorizontalPodAutoscaler pedidos (2-6)",
    );
}

#[test]
fn a_pdb_that_blocks_every_drain_is_caught() {
    let detail = cross_reference_problems(
        "k8s/pdb/__service__.yaml.j2",
        "minAvailable: {{ service.replicas.min - 1 }}",
        "minAvailable: {{ service.replicas.min }}",
    );
    assert_reported(
        &detail,
        "PodDisruptionBudget pedidos: minAvailable 2 >= HPA minReplicas 2 blocks every drain",
    );
}
