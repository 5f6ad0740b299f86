//! `cargo xtask validate` passes on what the templates render, for four and
//! five services in every environment, and catches a deliberately broken
//! template or overlay.

mod common;

use common::{copy_dir, project_root};

use std::path::Path;

use xtask::generate::{files, openapi};
use xtask::validate::Groups;
use xtask::{Workspace, validate};

/// Renders `config` with the real templates (after `corrupt` edits them)
/// into a scratch tree and returns the failed validators with their output.
fn failures(config: &Path, corrupt: impl FnOnce(&Path)) -> Vec<(String, String)> {
    failures_of(Groups::All, config, corrupt)
}

/// [`failures`] of the validators of `groups` only (checkov takes seconds
/// per run; a broken cross-reference needs only the Kubernetes group).
fn failures_of(
    groups: Groups,
    config: &Path,
    corrupt: impl FnOnce(&Path),
) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(config, root.join("loja.toml")).unwrap();
    // The checkov skips are listed there.
    std::fs::copy(project_root().join("README.md"), root.join("README.md")).unwrap();
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
    validate::validate_groups(&Workspace::at(root), groups)
        .unwrap()
        .into_iter()
        .filter(|o| !o.ok)
        .map(|o| (o.name, o.detail))
        .collect()
}

const KUBERNETES: Groups = Groups::Only(&["kubernetes"]);

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
    let failed = failures_of(KUBERNETES, &project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/__env__/deployments/__service__.yaml.j2"),
            "containerPort:",
            "containerPorts:",
        );
    });
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    for env in ["dev", "staging", "prod"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("kubernetes manifests of {env}"))),
            "{failed:#?}"
        );
    }
}

#[test]
fn a_service_targeting_an_undeclared_port_fails_the_cross_reference_check() {
    let detail = cross_reference_problems(
        "prod",
        "k8s/__env__/services/__service__.yaml.j2",
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
    let failed = failures_of(KUBERNETES, &project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/__env__/networkpolicies/__service__.yaml.j2"),
            "{% for caller in service.callers %}",
            "{% for caller in model.services | map(attribute='name') %}",
        );
    });
    assert!(
        failed.iter().any(
            |(n, d)| n.starts_with("kubernetes cross-references of prod")
                && d.contains("NetworkPolicy estoque")
        ),
        "{failed:#?}"
    );
}

#[test]
fn broken_compose_and_prometheus_templates_are_caught() {
    let failed = failures_of(
        Groups::Only(&["compose", "prometheus"]),
        &project_root().join("loja.toml"),
        |t| {
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
        },
    );
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

#[test]
fn an_slo_alert_that_no_longer_pages_on_a_fast_burn_fails_its_rule_tests() {
    let failed = failures_of(
        Groups::Only(&["prometheus"]),
        &project_root().join("loja.toml"),
        |t| {
            edit(
                &t.join("observability/_slo.j2"),
                r#"[["1h", "5m", 14.4], ["6h", "30m", 6]]"#,
                r#"[["1h", "5m", 30], ["6h", "30m", 30]]"#,
            );
        },
    );
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["SLO alert tests (promtool test rules)"],
        "{failed:#?}"
    );
}

/// What the Kubernetes cross-reference check of `env` reports once one line
/// of one template is changed; only the cross-reference checks may fail.
fn cross_reference_problems(env: &str, template: &str, from: &str, to: &str) -> String {
    let failed = failures_of(KUBERNETES, &project_root().join("loja.toml"), |t| {
        edit(&t.join(template), from, to)
    });
    assert!(
        failed
            .iter()
            .all(|(n, _)| n.starts_with("kubernetes cross-references of ")),
        "{failed:#?}"
    );
    let name = format!("kubernetes cross-references of {env} ");
    failed
        .iter()
        .find(|(n, _)| n.starts_with(&name))
        .unwrap_or_else(|| panic!("{name} passed: {failed:#?}"))
        .1
        .clone()
}

fn assert_reported(detail: &str, problem: &str) {
    assert!(detail.contains(problem), "`{problem}` not in:\n{detail}");
}

#[test]
fn a_rollout_that_takes_a_replica_away_first_is_caught() {
    let detail = cross_reference_problems(
        "prod",
        "k8s/__env__/deployments/__service__.yaml.j2",
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
        "prod",
        "k8s/__env__/deployments/__service__.yaml.j2",
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
        "prod",
        "k8s/__env__/configmaps/__service__.yaml.j2",
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
        "prod",
        "k8s/__env__/deployments/__service__.yaml.j2",
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
        "prod",
        "k8s/__env__/hpa/__service__.yaml.j2",
        "maxReplicas: {{ service.replicas.max }}",
        "maxReplicas: {{ service.replicas.max + 1 }}",
    );
    assert_reported(
        &detail,
        "HorizontalPodAutoscaler api-gateway: minReplicas 3 and maxReplicas 13 differ from loja.toml's replicas of `api-gateway` (min 3, max 12)",
    );
    assert_reported(
        &detail,
        "HorizontalPodAutoscaler pedidos: minReplicas 3 and maxReplicas 7 differ from loja.toml's replicas of `pedidos` (min 3, max 6)",
    );
}

#[test]
fn deployment_replicas_outside_the_hpa_bounds_are_caught() {
    let detail = cross_reference_problems(
        "prod",
        "k8s/__env__/deployments/__service__.yaml.j2",
        "  revisionHistoryLimit: 5",
        "  replicas: {{ service.replicas.max + 1 }}\n  revisionHistoryLimit: 5",
    );
    assert_reported(
        &detail,
        "Deployment pedidos: replicas 7 outside the bounds of HorizontalPodAutoscaler pedidos (3-6)",
    );
}

#[test]
fn a_pdb_that_blocks_every_drain_is_caught() {
    let detail = cross_reference_problems(
        "prod",
        "k8s/__env__/pdb/__service__.yaml.j2",
        "minAvailable: {{ service.replicas.min - 1 }}",
        "minAvailable: {{ service.replicas.min }}",
    );
    assert_reported(
        &detail,
        "PodDisruptionBudget pedidos: minAvailable 3 >= HPA minReplicas 3 blocks every drain",
    );
}

#[test]
fn an_overlay_that_leaves_a_manifest_out_is_caught() {
    // The prod folder still holds ingress.yaml, but its kustomization no
    // longer applies it: `kubectl apply -k` would silently skip the entry.
    let failed = failures_of(KUBERNETES, &project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/__env__/kustomization.yaml.j2"),
            "  - ingress.yaml\n",
            "",
        );
    });
    let listed = failed
        .iter()
        .find(|(n, _)| n == "kustomization of prod lists every manifest")
        .unwrap_or_else(|| panic!("{failed:#?}"));
    assert_eq!(
        listed.1,
        "ingress.yaml is not in kustomization.yaml's resources, so it is never applied"
    );
    // What is built no longer has the entry loja.toml declares.
    assert!(
        failed.iter().any(
            |(n, d)| n.starts_with("kubernetes cross-references of prod")
                && d.contains("public entry: 0 Ingress objects, loja.toml declares one")
        ),
        "{failed:#?}"
    );
}

#[test]
fn an_overlay_naming_a_missing_file_fails_the_build_and_what_depends_on_it() {
    let failed = failures_of(
        Groups::Only(&["kubernetes", "checkov"]),
        &project_root().join("loja.toml"),
        |t| {
            edit(
                &t.join("k8s/__env__/kustomization.yaml.j2"),
                "  - postgres/service.yaml\n",
                "  - postgres/service.yaml\n  - postgres/missing.yaml\n",
            );
        },
    );
    for env in ["dev", "staging", "prod"] {
        let build = format!("kubectl kustomize generated/k8s/{env}");
        assert!(failed.iter().any(|(n, _)| *n == build), "{failed:#?}");
        for dependent in [
            "kubernetes manifests of",
            "kubernetes cross-references of",
            "checkov of",
        ] {
            let name = format!("{dependent} {env}");
            let found = failed.iter().find(|(n, _)| n.starts_with(&name));
            assert!(
                found.is_some_and(|(_, d)| d.contains("the kustomize build above failed")),
                "{name}: {failed:#?}"
            );
        }
    }
}

#[test]
fn egress_to_an_undeclared_service_is_caught() {
    let detail = cross_reference_problems(
        "staging",
        "k8s/__env__/networkpolicies/__service__.yaml.j2",
        "{% for callee in service.calls %}",
        "{% for callee in services | map(attribute='name') %}",
    );
    assert_reported(
        &detail,
        "egress policies: NetworkPolicy estoque: egress reaches pods {\"api-gateway\", \"estoque\", \"pagamentos\", \"pedidos\"} but loja.toml gives estoque {}",
    );
}

#[test]
fn a_pod_outside_the_restricted_profile_is_caught() {
    let failed = failures_of(KUBERNETES, &project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/__env__/postgres/statefulset.yaml.j2"),
            "            allowPrivilegeEscalation: false\n",
            "",
        );
    });
    let detail = failed
        .iter()
        .find(|(n, _)| n.starts_with("kubernetes cross-references of dev"))
        .unwrap_or_else(|| panic!("{failed:#?}"));
    assert_reported(
        &detail.1,
        "pod security: StatefulSet postgres: container postgres allows privilege escalation",
    );
}

#[test]
fn a_mutable_image_tag_outside_development_is_caught() {
    let failed = failures_of(KUBERNETES, &project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/__env__/deployments/__service__.yaml.j2"),
            "image: {{ service.image }}",
            "image: {{ service.image_repo }}:latest",
        );
    });
    let of = |env: &str| {
        failed
            .iter()
            .find(|(n, _)| n.starts_with(&format!("kubernetes cross-references of {env}")))
            .map(|(_, d)| d.clone())
    };
    assert!(of("dev").is_none(), "{failed:#?}");
    assert_reported(
        &of("prod").unwrap(),
        "pinned images: Deployment pedidos: image `docker.io/lojaveloz/pedidos:latest` has no pinned tag",
    );
}

#[test]
fn a_checkov_finding_fails_validate() {
    // Without the reason annotation, the deliberate choice is a failed check.
    let failed = failures_of(
        Groups::Only(&["checkov"]),
        &project_root().join("loja.toml"),
        |t| {
            edit(
                &t.join("k8s/__env__/deployments/__service__.yaml.j2"),
                "+ [\"CKV_K8S_43\"] +",
                "+",
            );
        },
    );
    let checkov = failed
        .iter()
        .find(|(n, _)| n.starts_with("checkov of prod's built manifests"))
        .unwrap_or_else(|| panic!("{failed:#?}"));
    assert!(checkov.0.contains(" 4 failed)"), "{checkov:#?}");
    assert!(
        checkov
            .1
            .contains("CKV_K8S_43 Deployment.loja-veloz.pedidos"),
        "{checkov:#?}"
    );
}
