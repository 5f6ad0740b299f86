//! `cargo xtask validate`: runs every generated artifact through its real
//! validator ([`tools`]), plus the cross-object checks no schema does
//! ([`k8s`]). Each validator is a named function of the tree; the runner
//! prints one line each, and any failure fails the whole.

mod k8s;
mod tools;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::model::Model;

/// Run every generated artifact through its real validator.
#[derive(Debug, Clone, clap::Args)]
pub struct Validate {}

impl Validate {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        report(&validate(ws)?)
    }
}

/// The verdict of one validator.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub ok: bool,
    /// The validator's output when it failed.
    pub detail: String,
}

impl Outcome {
    /// The verdict of a check written in Rust: its problems, one per line.
    fn of(name: &str, problems: Result<Vec<String>>) -> Outcome {
        match problems {
            Ok(problems) => Outcome {
                name: name.into(),
                ok: problems.is_empty(),
                detail: problems.join("\n"),
            },
            Err(err) => Outcome {
                name: name.into(),
                ok: false,
                detail: format!("{err:#}"),
            },
        }
    }
}

/// The tree being validated: where each artifact is, and a scratch folder.
pub struct Tree<'a> {
    pub root: &'a Path,
    pub model: &'a Model,
    pub generated: PathBuf,
    pub k8s: PathBuf,
    pub compose: PathBuf,
    pub workflow: PathBuf,
    pub scratch: PathBuf,
}

impl Tree<'_> {
    /// Every Kubernetes manifest (kustomization.yaml is not an object).
    fn manifests(&self) -> Vec<PathBuf> {
        crate::util::fs::files_ending(&self.k8s, &[".yaml"])
            .into_iter()
            .filter(|p| !p.ends_with("kustomization.yaml"))
            .collect()
    }
}

type Validator = fn(&Tree) -> Outcome;

/// Every validator, in the order they run.
const VALIDATORS: &[Validator] = &[
    tools::compose_schema,
    tools::compose_config,
    tools::kubernetes_schema,
    tools::kustomize,
    kubernetes_cross_references,
    tools::prometheus_config,
    tools::prometheus_rules,
    tools::workflow_schema,
    tools::workflow_audit,
    tools::dockerfiles,
    tools::terraform_format,
    tools::terraform_parse,
    tools::yaml_syntax,
    tools::openapi_document,
];

fn kubernetes_cross_references(tree: &Tree) -> Outcome {
    Outcome::of(
        "kubernetes cross-references (selectors, ports, targets, policies, rollout and drain timing)",
        k8s::check(tree.model, &tree.manifests()),
    )
}

/// Runs every validator on the workspace's tree (`loja.toml`, `generated/`
/// and `.github/`).
pub fn validate(ws: &Workspace) -> Result<Vec<Outcome>> {
    // Unique per call: tests validate several trees in one process at once.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let scratch = std::env::temp_dir().join(format!(
        "loja-validate-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&scratch).context("creating a scratch directory")?;
    let root = ws.root();
    let generated = root.join("generated");
    let tree = Tree {
        root,
        model: ws.model()?,
        k8s: generated.join("k8s"),
        compose: generated.join("docker-compose.yml"),
        workflow: root.join(".github/workflows/ci-cd.yml"),
        generated,
        scratch: scratch.clone(),
    };
    let outcomes = VALIDATORS.iter().map(|v| v(&tree)).collect();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(outcomes)
}

/// Prints one line per validator and fails if any failed.
fn report(outcomes: &[Outcome]) -> Result<()> {
    let mut failed = 0;
    for o in outcomes {
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
