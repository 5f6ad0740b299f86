//! `cargo xtask validate`: runs every generated artifact through its real
//! validator, plus the cross-object checks no schema does (see
//! [`k8s_checks`]). One line per validator; any failure fails the whole.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

use crate::model::Model;

mod k8s_checks;

/// The verdict of one validator.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    /// The validator's output when it failed.
    pub detail: String,
}

/// Files under `dir` (relative to nothing: full paths) whose name ends with
/// one of `suffixes`, sorted.
fn files(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    fn walk(dir: &Path, suffixes: &[&str], out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, suffixes, out);
            } else if suffixes.iter().any(|s| path.to_string_lossy().ends_with(s)) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, suffixes, &mut out);
    out.sort();
    out
}

/// Runs `program` and turns its exit status into an outcome.
fn tool(
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

fn paths(list: &[PathBuf]) -> Vec<String> {
    list.iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
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

/// `kubectl kustomize` on a copy of `generated/k8s` whose secret files are
/// filled from the examples, as a user would before applying.
fn kustomize(k8s: &Path, scratch: &Path) -> Outcome {
    let copy = scratch.join("k8s");
    let prepared = (|| -> Result<()> {
        for file in files(k8s, &[""]) {
            let rel = file.strip_prefix(k8s)?;
            let target = copy.join(rel);
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
    })();
    if let Err(e) = prepared {
        return Outcome {
            name: "kubectl kustomize".into(),
            ok: false,
            detail: format!("{e:#}"),
        };
    }
    tool(
        "kubectl kustomize",
        "kubectl",
        &args(&["kustomize", &copy.to_string_lossy()]),
        scratch,
        &[],
    )
}

/// Runs every validator on the tree under `root` (which holds `loja.toml`,
/// `generated/` and `.github/`).
pub fn validate(root: &Path) -> Result<Vec<Outcome>> {
    let model = Model::load(&root.join("loja.toml"))?;
    let generated = root.join("generated");
    let k8s = generated.join("k8s");
    let compose = generated.join("docker-compose.yml");
    let workflow = root.join(".github/workflows/ci-cd.yml");
    // Unique per call: tests validate several trees in one process at once.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "loja-validate-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&scratch).context("creating a scratch directory")?;
    let compose_s = compose.to_string_lossy().into_owned();
    let workflow_s = workflow.to_string_lossy().into_owned();
    let mut out = Vec::new();

    out.push(tool(
        "compose schema (check-jsonschema vendor.compose-spec)",
        "check-jsonschema",
        &args(&["--builtin-schema", "vendor.compose-spec", &compose_s]),
        root,
        &[],
    ));
    out.push(tool(
        "compose config (docker-compose config -q)",
        "docker-compose",
        &args(&["-f", &compose_s, "config", "-q"]),
        &generated,
        &dummy_env(&generated.join(".env.example")),
    ));
    let manifests: Vec<PathBuf> = files(&k8s, &[".yaml"])
        .into_iter()
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    let mut kv = args(&["--strict", "--quiet", "-k", "1.30.0"]);
    kv.extend(paths(&manifests));
    out.push(tool(
        "kubernetes manifests (kubernetes-validate --strict 1.30.0)",
        "kubernetes-validate",
        &kv,
        root,
        &[],
    ));
    out.push(kustomize(&k8s, &scratch));
    out.push(match k8s_checks::check(&model, &manifests) {
        Ok(problems) => Outcome {
            name: "kubernetes cross-references (selectors, ports, targets, policies, rollout and drain timing)".into(),
            ok: problems.is_empty(),
            detail: problems.join("\n"),
        },
        Err(e) => Outcome {
            name: "kubernetes cross-references (selectors, ports, targets, policies, rollout and drain timing)".into(),
            ok: false,
            detail: format!("{e:#}"),
        },
    });
    let obs = generated.join("observability");
    out.push(tool(
        "prometheus config (promtool check config)",
        "promtool",
        &args(&[
            "check",
            "config",
            &obs.join("prometheus.yml").to_string_lossy(),
        ]),
        root,
        &[],
    ));
    out.push(tool(
        "prometheus rules (promtool check rules)",
        "promtool",
        &args(&["check", "rules", &obs.join("alerts.yml").to_string_lossy()]),
        root,
        &[],
    ));
    out.push(tool(
        "workflow schema (check-jsonschema vendor.github-workflows)",
        "check-jsonschema",
        &args(&["--builtin-schema", "vendor.github-workflows", &workflow_s]),
        root,
        &[],
    ));
    out.push(tool(
        "workflow audit (zizmor --offline)",
        "zizmor",
        &args(&[
            "--offline",
            "--no-progress",
            "--color",
            "never",
            &workflow_s,
        ]),
        root,
        &[],
    ));
    let mut hadolint = args(&["--failure-threshold", "error"]);
    hadolint.extend(paths(&files(&generated.join("docker"), &[".Dockerfile"])));
    out.push(tool(
        "Dockerfiles (hadolint)",
        "hadolint",
        &hadolint,
        root,
        &[],
    ));
    let tf = generated.join("terraform");
    out.push(tool(
        "terraform format (terraform fmt -check)",
        "terraform",
        &args(&["fmt", "-check", "-diff", &tf.to_string_lossy()]),
        root,
        &[],
    ));
    let mut hcl = args(&[
        "-c",
        "import sys, hcl2\nfor f in sys.argv[1:]:\n    with open(f) as fh:\n        hcl2.load(fh)\n",
    ]);
    hcl.extend(paths(&files(&tf, &[".tf"])));
    out.push(tool(
        "terraform parse (python-hcl2)",
        "python3",
        &hcl,
        root,
        &[],
    ));
    let mut yaml = args(&["-d", "relaxed"]);
    yaml.extend(paths(&files(&generated, &[".yaml", ".yml"])));
    yaml.push(workflow_s);
    out.push(tool(
        "YAML syntax (yamllint relaxed)",
        "yamllint",
        &yaml,
        root,
        &[],
    ));

    let _ = std::fs::remove_dir_all(&scratch);
    Ok(out)
}

/// Prints one line per validator and fails if any failed.
pub fn run(root: &Path) -> Result<()> {
    let outcomes = validate(root)?;
    let mut failed = 0;
    for o in &outcomes {
        println!("{} {}", if o.ok { "pass" } else { "FAIL" }, o.name);
        if !o.ok {
            failed += 1;
            for line in o.detail.lines().take(40) {
                println!("    {line}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} validators failed", outcomes.len());
    }
    println!("validate: all {} validators passed", outcomes.len());
    Ok(())
}
