//! `cargo xtask validate`: runs every generated artifact through its real
//! validator ([`tools`], [`checkov`]), plus the cross-object checks no schema
//! does ([`k8s`]); each environment's manifests are built with kustomize and
//! what would be applied goes through them ([`environments`]). Each validator
//! is a named function of the tree; the runner prints one line each, and any
//! failure fails the whole.

mod checkov;
mod environments;
pub mod k8s;
mod migrations;
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
    pub compose: PathBuf,
    pub workflow: PathBuf,
    pub scratch: PathBuf,
}

type Validator = fn(&Tree) -> Outcome;

/// Every validator of the whole tree with its group, in the order they run;
/// then those of each environment ([`environments::validate`]: groups
/// `kubernetes` and `checkov`), environment by environment.
const VALIDATORS: &[(&str, Validator)] = &[
    ("compose", tools::compose_schema),
    ("compose", tools::compose_config),
    ("prometheus", tools::prometheus_config),
    ("prometheus", tools::prometheus_rules),
    ("prometheus", tools::slo_rule_tests),
    ("workflow", tools::workflow_schema),
    ("workflow", tools::workflow_audit),
    ("docker", tools::dockerfiles),
    ("terraform", tools::terraform_format),
    ("terraform", tools::terraform_parse),
    ("checkov", checkov::skips_are_documented),
    ("migrations", migrations::expand_before_contract),
    ("yaml", tools::yaml_syntax),
    ("openapi", tools::openapi_document),
];

/// The groups of validators a run includes.
#[derive(Debug, Clone, Copy)]
pub enum Groups<'a> {
    /// Every validator: what `cargo xtask validate` runs.
    All,
    /// Only these groups (tests that break one artifact check its validators).
    Only(&'a [&'a str]),
}

impl Groups<'_> {
    pub fn has(&self, group: &str) -> bool {
        match self {
            Groups::All => true,
            Groups::Only(groups) => groups.contains(&group),
        }
    }
}

/// Runs every validator on the workspace's tree (`loja.toml`, `generated/`
/// and `.github/`).
pub fn validate(ws: &Workspace) -> Result<Vec<Outcome>> {
    validate_groups(ws, Groups::All)
}

/// Runs the validators of `groups` on the workspace's tree.
pub fn validate_groups(ws: &Workspace, groups: Groups) -> Result<Vec<Outcome>> {
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
        compose: generated.join("docker-compose.yml"),
        workflow: root.join(".github/workflows/ci-cd.yml"),
        generated,
        scratch: scratch.clone(),
    };
    let mut outcomes: Vec<Outcome> = VALIDATORS
        .iter()
        .filter(|(group, _)| groups.has(group))
        .map(|(_, v)| v(&tree))
        .collect();
    for env in &tree.model.environments {
        outcomes.extend(environments::validate(&tree, env, groups));
    }
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
