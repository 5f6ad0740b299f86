//! `cargo xtask validate` passes on what the templates render, for four and
//! five services, and catches a deliberately broken template.

use std::path::Path;

use xtask::{files, project_root, validate};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Renders `config` with the real templates (after `corrupt` edits them)
/// into a scratch tree and returns the failed validators with their output.
fn failures(config: &Path, corrupt: impl FnOnce(&Path)) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(config, root.join("loja.toml")).unwrap();
    copy_dir(&project_root().join("templates"), &root.join("templates"));
    corrupt(&root.join("templates"));
    files::generate(root, false).unwrap();
    validate::validate(root)
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
    let failed = failures(&project_root().join("loja.toml"), |t| {
        edit(
            &t.join("k8s/services/__service__.yaml.j2"),
            "targetPort: http",
            "targetPort: web",
        );
    });
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0].0.starts_with("kubernetes cross-references"),
        "{failed:#?}"
    );
    assert!(
        failed[0].1.contains(
            "Service pedidos: targetPort \"web\" is not a container port of Deployment pedidos"
        ),
        "{failed:#?}"
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
