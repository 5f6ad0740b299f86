//! The real validators of each artifact format, one named function each,
//! run as external programs (installed by `cargo xtask tools`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::{Outcome, Tree};
use crate::util::fs::files_ending;

/// Runs `program` with `args` in `cwd` (plus `env`) and turns its exit
/// status into an outcome named `name`.
pub(super) fn tool(
    name: &str,
    program: &str,
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
) -> Outcome {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output();
    match output {
        Ok(out) => Outcome {
            name: name.into(),
            ok: out.status.success(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        },
        Err(e) => Outcome {
            name: name.into(),
            ok: false,
            detail: format!("cannot run {program} ({e}); install it with `cargo xtask tools`"),
        },
    }
}

/// Owned arguments: fixed ones, then paths.
pub(super) fn args(fixed: &[&str], paths: &[PathBuf]) -> Vec<String> {
    fixed
        .iter()
        .map(|s| s.to_string())
        .chain(paths.iter().map(|p| p.to_string_lossy().into_owned()))
        .collect()
}

/// Dummy values for every `NAME=` line of an env example file.
fn dummy_env(example: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(example)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| {
            (
                k.trim().to_string(),
                format!("validate-{}", k.trim().to_lowercase()),
            )
        })
        .collect()
}

pub fn compose_schema(t: &Tree) -> Outcome {
    tool(
        "compose schema (check-jsonschema vendor.compose-spec)",
        "check-jsonschema",
        &args(
            &["--builtin-schema", "vendor.compose-spec"],
            std::slice::from_ref(&t.compose),
        ),
        t.root,
        &[],
    )
}

pub fn compose_config(t: &Tree) -> Outcome {
    tool(
        "compose config (docker-compose config -q)",
        "docker-compose",
        &args(&["-f", &t.compose.to_string_lossy(), "config", "-q"], &[]),
        &t.generated,
        &dummy_env(&t.generated.join(".env.example")),
    )
}

/// `kubernetes-validate --strict` on one environment's built manifests.
pub fn kubernetes_schema(t: &Tree, env: &str, built: &Path) -> Outcome {
    tool(
        &format!("kubernetes manifests of {env}, as built (kubernetes-validate --strict 1.30.0)"),
        "kubernetes-validate",
        &args(
            &["--strict", "--quiet", "-k", "1.30.0"],
            &[built.to_path_buf()],
        ),
        t.root,
        &[],
    )
}

/// `kubectl kustomize` on a copy of an environment's folder whose secret
/// files are filled from the examples, as a user would before applying;
/// the output (what `kubectl apply -k` would send) is written to `built`.
pub fn kustomize(t: &Tree, env: &str, dir: &Path, built: &Path) -> Outcome {
    let name = format!("kubectl kustomize generated/k8s/{env}");
    let copy = t.scratch.join("k8s").join(env);
    if let Err(e) = copy_with_dummy_secrets(dir, &copy) {
        return Outcome {
            name,
            ok: false,
            detail: format!("{e:#}"),
        };
    }
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&copy)
        .current_dir(&t.scratch)
        .output();
    match out {
        Ok(out) if out.status.success() => match std::fs::write(built, &out.stdout) {
            Ok(()) => Outcome {
                name,
                ok: true,
                detail: String::new(),
            },
            Err(e) => Outcome {
                name,
                ok: false,
                detail: format!("writing {}: {e}", built.display()),
            },
        },
        Ok(out) => Outcome {
            name,
            ok: false,
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => Outcome {
            name,
            ok: false,
            detail: format!("cannot run kubectl ({e}); install it from its vendor"),
        },
    }
}

fn copy_with_dummy_secrets(k8s: &Path, copy: &Path) -> Result<()> {
    for file in files_ending(k8s, &[""]) {
        let target = copy.join(file.strip_prefix(k8s)?);
        std::fs::create_dir_all(target.parent().expect("a file has a parent"))?;
        std::fs::copy(&file, &target)?;
        if let Some(name) = target.to_string_lossy().strip_suffix(".example") {
            let body: String = dummy_env(&file)
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect();
            std::fs::write(name, body)?;
        }
    }
    Ok(())
}

pub fn prometheus_config(t: &Tree) -> Outcome {
    let config = t.generated.join("observability/prometheus.yml");
    tool(
        "prometheus config (promtool check config)",
        "promtool",
        &args(&["check", "config"], &[config]),
        t.root,
        &[],
    )
}

pub fn prometheus_rules(t: &Tree) -> Outcome {
    let dir = t.generated.join("observability");
    tool(
        "prometheus rules (promtool check rules)",
        "promtool",
        &args(
            &["check", "rules"],
            &[dir.join("alerts.yml"), dir.join("slos.yml")],
        ),
        t.root,
        &[],
    )
}

/// The SLO alerts fire, and stay quiet, on the synthetic series of their
/// generated tests.
pub fn slo_rule_tests(t: &Tree) -> Outcome {
    let tests = t.generated.join("observability/slos.test.yml");
    tool(
        "SLO alert tests (promtool test rules)",
        "promtool",
        &args(&["test", "rules"], &[tests]),
        t.root,
        &[],
    )
}

pub fn workflow_schema(t: &Tree) -> Outcome {
    tool(
        "workflow schema (check-jsonschema vendor.github-workflows)",
        "check-jsonschema",
        &args(
            &["--builtin-schema", "vendor.github-workflows"],
            std::slice::from_ref(&t.workflow),
        ),
        t.root,
        &[],
    )
}

pub fn workflow_audit(t: &Tree) -> Outcome {
    tool(
        "workflow audit (zizmor --offline)",
        "zizmor",
        &args(
            &["--offline", "--no-progress", "--color", "never"],
            std::slice::from_ref(&t.workflow),
        ),
        t.root,
        &[],
    )
}

pub fn dockerfiles(t: &Tree) -> Outcome {
    tool(
        "Dockerfiles (hadolint)",
        "hadolint",
        &args(
            &["--failure-threshold", "error"],
            &files_ending(&t.generated.join("docker"), &[".Dockerfile"]),
        ),
        t.root,
        &[],
    )
}

pub fn terraform_format(t: &Tree) -> Outcome {
    tool(
        "terraform format (terraform fmt -check)",
        "terraform",
        &args(
            &["fmt", "-check", "-diff"],
            &[t.generated.join("terraform")],
        ),
        t.root,
        &[],
    )
}

/// `.tf` and `.tfvars`: the module and every environment's variables.
pub fn terraform_parse(t: &Tree) -> Outcome {
    const PARSE: &str = "import sys, hcl2\nfor f in sys.argv[1:]:\n    with open(f) as fh:\n        hcl2.load(fh)\n";
    tool(
        "terraform parse (python-hcl2)",
        "python3",
        &args(
            &["-c", PARSE],
            &files_ending(&t.generated.join("terraform"), &[".tf", ".tfvars"]),
        ),
        t.root,
        &[],
    )
}

pub fn yaml_syntax(t: &Tree) -> Outcome {
    let mut files = files_ending(&t.generated, &[".yaml", ".yml"]);
    files.push(t.workflow.clone());
    tool(
        "YAML syntax (yamllint relaxed)",
        "yamllint",
        &args(&["-d", "relaxed"], &files),
        t.root,
        &[],
    )
}

pub fn openapi_document(t: &Tree) -> Outcome {
    tool(
        "OpenAPI document (openapi-spec-validator)",
        "openapi-spec-validator",
        &args(&[], &[t.generated.join("openapi.json")]),
        t.root,
        &[],
    )
}
