//! `cargo xtask gen`: the committed output is fresh, the full output is
//! snapshotted, a new service needs no template change, bad input writes
//! nothing, and `--check` reports every kind of drift.

mod common;

use common::{project_root, scratch};

use std::path::Path;

use xtask::Workspace;
use xtask::generate::files::{self, Drift};
use xtask::generate::render::{self, Rendered};
use xtask::model::{Model, Target};

fn render_file(path: &Path) -> Rendered {
    let model = Model::load(path).unwrap();
    render::render(&model, &project_root().join("templates")).unwrap()
}

/// The files of one environment (its manifests and Terraform variables),
/// or with `None` every other file, one after another, for a reviewable
/// snapshot.
fn flatten(rendered: &Rendered, env: Option<&str>) -> String {
    fn of(path: &str) -> Option<&str> {
        ["generated/k8s/", "generated/terraform/environments/"]
            .iter()
            .find_map(|dir| path.strip_prefix(dir))
            .map(|rest| rest.split(['/', '.']).next().unwrap_or(""))
    }
    let mut out = String::new();
    for (path, text) in &rendered.files {
        if of(path) == env {
            out.push_str(&format!("===== {path}\n{text}"));
        }
    }
    if env.is_none() {
        out.push_str(&format!(
            "===== README.md (architecture section)\n{}",
            rendered.architecture
        ));
    }
    out
}

fn five_services() -> std::path::PathBuf {
    project_root().join("xtask/tests/fixtures/five-services.toml")
}

#[test]
fn generated_files_are_fresh() {
    let drift = files::generate(&Workspace::at(project_root()), true).unwrap();
    assert!(
        drift.is_empty(),
        "run `cargo xtask gen`:\n{}",
        drift.lines().join("\n")
    );
}

#[test]
fn snapshot_of_everything_rendered_from_loja_toml_but_the_environments() {
    insta::assert_snapshot!(
        "loja",
        flatten(&render_file(&project_root().join("loja.toml")), None)
    );
}

#[test]
fn snapshot_of_each_environment_rendered_from_loja_toml() {
    let rendered = render_file(&project_root().join("loja.toml"));
    for env in ["dev", "staging", "prod"] {
        insta::assert_snapshot!(format!("loja-{env}"), flatten(&rendered, Some(env)));
    }
}

#[test]
fn snapshot_of_everything_rendered_for_five_services() {
    let rendered = render_file(&five_services());
    insta::assert_snapshot!("five-services", flatten(&rendered, None));
    insta::assert_snapshot!("five-services-prod", flatten(&rendered, Some("prod")));
}

#[test]
fn rendering_twice_gives_the_same_bytes() {
    let path = project_root().join("loja.toml");
    assert_eq!(render_file(&path), render_file(&path));
}

#[test]
fn a_fifth_service_gets_every_artifact_without_template_changes() {
    let four = render_file(&project_root().join("loja.toml"));
    let five = render_file(&five_services());
    let mut paths = vec!["generated/docker/entregas.Dockerfile".to_string()];
    for env in ["dev", "staging", "prod"] {
        for file in [
            "configmaps/entregas.yaml",
            "deployments/entregas.yaml",
            "services/entregas.yaml",
            "hpa/entregas.yaml",
            "pdb/entregas.yaml",
            "networkpolicies/entregas.yaml",
            "secrets/entregas.env.example",
        ] {
            paths.push(format!("generated/k8s/{env}/{file}"));
        }
    }
    for path in &paths {
        let path = path.as_str();
        assert!(five.files.contains_key(path), "missing {path}");
        assert!(!four.files.contains_key(path), "{path} without the service");
    }
    let file = |name: &str| five.files[name].as_str();
    assert!(file("generated/docker-compose.yml").contains("\n  entregas:\n"));
    assert!(file("generated/observability/prometheus.yml").contains("job_name: entregas"));
    assert!(file("generated/k8s/prod/kustomization.yaml").contains("deployments/entregas.yaml"));
    assert!(
        file("generated/k8s/prod/configmaps/api-gateway.yaml")
            .contains("/api/v1/shipments=entregas")
    );
    assert!(
        file("generated/k8s/prod/configmaps/api-gateway.yaml")
            .contains("ENTREGAS_URL: \"http://entregas:8080\"")
    );
    assert!(
        file("generated/k8s/prod/networkpolicies/pedidos.yaml")
            .contains("app.kubernetes.io/name: entregas")
    );
    // entregas calls pedidos: its egress admits it, and the job creates its login.
    assert!(
        file("generated/k8s/prod/networkpolicies/entregas.yaml")
            .contains("app.kubernetes.io/name: pedidos")
    );
    assert!(file("generated/k8s/prod/postgres/job.yaml").contains("ENTREGAS_DB_PASSWORD"));
    assert!(file("generated/terraform/environments/prod.tfvars").contains("\"entregas\","));
    assert!(
        file("generated/postgres/init-databases.sh")
            .contains("SELECT 'CREATE DATABASE entregas OWNER entregas' WHERE NOT EXISTS")
    );
    assert!(file(".github/workflows/ci-cd.yml").contains("docker.io/lojaveloz/entregas:latest"));
    // `cargo xtask images` builds every service of loja.toml; the workflow scans each.
    assert!(file(".github/workflows/ci-cd.yml").contains("name: Scan entregas image"));
    assert!(file(".dockerignore").contains("release/entregas"));
}

#[test]
fn the_environment_is_the_same_contract_on_every_target() {
    let model = Model::load(&project_root().join("loja.toml")).unwrap();
    let pedidos = model.service("pedidos").unwrap();
    let names = |t| {
        model
            .service_env(pedidos, t)
            .into_iter()
            .map(|v| v.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(Target::Compose), names(Target::Kubernetes));
    let native_target = Target::Native {
        replica: 1,
        replicas: Some(2),
    };
    assert_eq!(names(Target::Compose), names(native_target));
    let native = model.service_env(pedidos, native_target);
    let value = |name: &str| {
        native
            .iter()
            .find(|v| v.name == name)
            .unwrap()
            .render(|s| format!("<{s}>"))
    };
    assert_eq!(value("LISTEN_ADDR"), "127.0.0.1:18092");
    assert_eq!(
        value("ESTOQUE_URL"),
        "http://127.0.0.1:18081,http://127.0.0.1:18082"
    );
    assert_eq!(
        value("DATABASE_URL"),
        "postgres://pedidos:<PEDIDOS_DB_PASSWORD>@127.0.0.1:15432/pedidos"
    );
    assert_eq!(value("ADMIN_TOKEN"), "<ADMIN_TOKEN>");
    let single = model.service_env(
        pedidos,
        Target::Native {
            replica: 0,
            replicas: Some(1),
        },
    );
    let estoque_url = single.iter().find(|v| v.name == "ESTOQUE_URL").unwrap();
    assert_eq!(estoque_url.render(|s| s.into()), "http://127.0.0.1:18081");
    let gateway = model.service("api-gateway").unwrap();
    let routes = model
        .service_env(gateway, Target::Compose)
        .into_iter()
        .find(|v| v.name == "GATEWAY_ROUTES")
        .unwrap();
    assert_eq!(
        routes.render(|s| s.to_string()),
        "/api/v1/orders=pedidos,/api/v1/payments=pagamentos,/api/v1/products=estoque"
    );
}

#[test]
fn secrets_never_appear_as_values() {
    let rendered = render_file(&project_root().join("loja.toml"));
    let compose = &rendered.files["generated/docker-compose.yml"];
    assert!(compose.contains("ADMIN_TOKEN: \"${ADMIN_TOKEN:?"));
    let deployment = &rendered.files["generated/k8s/prod/deployments/pedidos.yaml"];
    assert!(
        deployment
            .contains("value: \"postgres://pedidos:$(PEDIDOS_DB_PASSWORD)@postgres:5432/pedidos\"")
    );
    assert!(!rendered.files["generated/k8s/prod/configmaps/pedidos.yaml"].contains("DATABASE_URL"));
    assert!(
        rendered.files["generated/k8s/prod/secrets/pedidos.env.example"]
            .contains("\nADMIN_TOKEN=\n")
    );
}

#[test]
fn a_bad_loja_toml_writes_nothing() {
    let good = std::fs::read_to_string(project_root().join("loja.toml")).unwrap();
    let dir = scratch(&good.replace(
        "replicas = { max = 10 }",
        "replicas = { min = 11, max = 10 }",
    ));
    let err = files::generate(&Workspace::at(dir.path()), false).unwrap_err();
    assert!(format!("{err:#}").contains("min 11 > max 10"), "{err:#}");
    assert!(!dir.path().join("generated").exists());
    assert!(!dir.path().join(".github").exists());
}

#[test]
fn a_failing_template_writes_nothing() {
    let good = std::fs::read_to_string(project_root().join("loja.toml")).unwrap();
    let dir = scratch(&good);
    // A late template (alphabetically) fails after earlier ones rendered.
    std::fs::write(
        dir.path().join("templates/terraform/zz.tf.j2"),
        "{{ no_such_value }}\n",
    )
    .unwrap();
    let err = files::generate(&Workspace::at(dir.path()), false).unwrap_err();
    assert!(format!("{err:#}").contains("terraform/zz.tf.j2"), "{err:#}");
    assert!(!dir.path().join("generated").exists());
}

#[test]
fn check_lists_every_stale_missing_and_orphaned_file_and_gen_repairs_them() {
    let good = std::fs::read_to_string(project_root().join("loja.toml")).unwrap();
    let dir = scratch(&good);
    let root = dir.path();
    let first = files::generate(&Workspace::at(root), false).unwrap();
    assert!(first.stale.is_empty() && first.orphaned.is_empty() && !first.missing.is_empty());
    assert_eq!(
        files::generate(&Workspace::at(root), true).unwrap(),
        Drift::default()
    );

    std::fs::write(
        root.join("generated/k8s/dev/namespace.yaml"),
        "edited by hand\n",
    )
    .unwrap();
    std::fs::remove_file(root.join("generated/docker/pedidos.Dockerfile")).unwrap();
    std::fs::write(
        root.join("generated/k8s/dev/hpa/old-service.yaml"),
        "left over\n",
    )
    .unwrap();
    // A filled-in secret file is the user's, never an orphan.
    std::fs::write(
        root.join("generated/k8s/dev/secrets/pedidos.env"),
        "ADMIN_TOKEN=x\n",
    )
    .unwrap();

    let drift = files::generate(&Workspace::at(root), true).unwrap();
    assert_eq!(
        drift.lines(),
        vec![
            "stale: generated/k8s/dev/namespace.yaml",
            "missing: generated/docker/pedidos.Dockerfile",
            "orphaned: generated/k8s/dev/hpa/old-service.yaml",
        ]
    );
    // --check wrote nothing.
    assert_eq!(
        std::fs::read_to_string(root.join("generated/k8s/dev/namespace.yaml")).unwrap(),
        "edited by hand\n"
    );
    files::generate(&Workspace::at(root), false).unwrap();
    assert_eq!(
        files::generate(&Workspace::at(root), true).unwrap(),
        Drift::default()
    );
    assert!(root.join("generated/k8s/dev/secrets/pedidos.env").exists());
}

#[test]
fn the_workflow_deploys_each_commit_on_main_to_staging_then_prod() {
    let rendered = render_file(&project_root().join("loja.toml"));
    let workflow: serde_json::Value =
        serde_yaml_ng::from_str(&rendered.files[".github/workflows/ci-cd.yml"]).unwrap();
    let jobs = &workflow["jobs"];
    let staging = &jobs["deploy-staging"];
    let prod = &jobs["deploy-prod"];
    assert_eq!(staging["needs"], serde_json::json!(["images", "compose"]));
    assert_eq!(prod["needs"], serde_json::json!(["deploy-staging"]));
    assert_eq!(staging["environment"]["name"], "staging");
    assert_eq!(prod["environment"]["name"], "prod");
    assert!(jobs.get("deploy-dev").is_none());
    for (job, env) in [(staging, "staging"), (prod, "prod")] {
        assert_eq!(
            job["if"],
            "github.event_name == 'push' && github.ref == 'refs/heads/main'"
        );
        let steps = job["steps"].as_array().unwrap();
        let run: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
        assert!(
            run.contains(
                &format!("cargo xtask deploy --env {env} --image-tag \"$GITHUB_SHA\"").as_str()
            ),
            "{run:#?}"
        );
        let deploy = steps
            .iter()
            .find(|s| {
                s["run"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("cargo xtask deploy"))
            })
            .unwrap();
        assert_eq!(deploy["env"]["KUBECONFIG"], "${{ runner.temp }}/kubeconfig");
        assert_eq!(
            deploy["env"]["PEDIDOS_DB_PASSWORD"],
            "${{ secrets.PEDIDOS_DB_PASSWORD }}"
        );
    }
}
