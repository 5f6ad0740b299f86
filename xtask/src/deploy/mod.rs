//! `cargo xtask deploy --env NAME`: puts one environment's generated
//! Kubernetes manifests on the cluster of the current (or given) kubectl
//! context, in dependency order, with secrets filled from the environment or
//! a git-ignored `.env` in memory only; shows the plan (what changes, object
//! by object, against what runs there) first, then applies ([`apply`]) and
//! waits for every rollout. `cargo xtask plan` ([`plan`]) shows the same
//! kind of plan against the committed output or another environment.

mod apply;
pub mod live;
pub mod plan;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub use apply::apply;

use crate::Workspace;

/// The manifest groups in the order they are applied: what a group needs is
/// applied before it (the namespace before anything in it, config and secrets
/// before the pods that read them, the database before its clients, workloads
/// before the autoscalers, budgets and policies that select them).
/// The Job that creates the database logins runs once the Service naming
/// the server exists, and before the services that log in start.
pub const ORDER: &[&str] = &[
    "namespace.yaml",
    "configmaps",
    "secrets",
    "postgres/configmap.yaml",
    "postgres/service.yaml",
    "postgres/statefulset.yaml",
    "postgres/job.yaml",
    "deployments",
    "services",
    "ingress.yaml",
    "hpa",
    "pdb",
    "networkpolicies",
];

/// Apply one environment's manifests to a cluster, showing the plan first, and wait for the rollouts.
#[derive(Debug, Clone, clap::Args)]
pub struct Deploy {
    /// The environment to deploy (an `[environments.NAME]` of loja.toml).
    #[arg(long)]
    pub env: String,
    /// Show what would be applied; needs no cluster.
    #[arg(long)]
    pub dry_run: bool,
    /// kubectl context to deploy to (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Image tag to deploy instead of the environment's `image_tag` (CD
    /// passes the git sha it built).
    #[arg(long)]
    pub image_tag: Option<String>,
    /// Seconds to wait for each rollout.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// One manifest file to apply, with its text as it will be sent.
#[derive(Debug, Clone)]
pub struct Step {
    /// Path relative to the k8s directory.
    pub file: PathBuf,
    /// The manifest, secrets filled and image tag applied.
    pub text: String,
    /// Secret keys filled in; their values are never printed.
    pub filled: BTreeSet<String>,
    /// Secret keys that have no value yet.
    pub missing: BTreeSet<String>,
}

/// Reads the manifests under `k8s_dir` in [`ORDER`] and prepares them. The
/// Secrets are built in memory from the keys of `secrets/*.env.example`, each
/// value taken from `lookup` (a key without one is listed in its step's
/// `missing`); `:{current_tag}` image references become `:{image_tag}`.
pub fn plan(
    k8s_dir: &Path,
    namespace: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    current_tag: &str,
    image_tag: Option<&str>,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for group in ORDER {
        let path = k8s_dir.join(group);
        let wanted = if *group == "secrets" {
            ".env.example"
        } else {
            ".yaml"
        };
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(wanted))
                .collect();
            v.sort();
            v
        } else if path.is_file() {
            vec![path]
        } else {
            continue;
        };
        for file in files {
            let raw = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let rel = file.strip_prefix(k8s_dir).unwrap_or(&file).to_path_buf();
            if *group == "secrets" {
                let name = rel
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".env.example"))
                    .unwrap_or_default();
                let (text, filled, missing) = secret(name, namespace, &raw, lookup);
                steps.push(Step {
                    file: rel,
                    text,
                    filled,
                    missing,
                });
            } else {
                let text = match image_tag {
                    Some(tag) => retag(&raw, current_tag, tag),
                    None => raw,
                };
                steps.push(Step {
                    file: rel,
                    text,
                    filled: BTreeSet::new(),
                    missing: BTreeSet::new(),
                });
            }
        }
    }
    if steps.is_empty() {
        bail!(
            "no manifests under {}: run `cargo xtask gen`",
            k8s_dir.display()
        );
    }
    Ok(steps)
}

/// The Secret `{name}-secrets` holding every key listed in an `.env.example`
/// (`KEY=` lines), valued by `lookup`. Returns the manifest, the keys filled
/// and the keys that had no value.
fn secret(
    name: &str,
    namespace: &str,
    example: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (String, BTreeSet<String>, BTreeSet<String>) {
    let (mut filled, mut missing) = (BTreeSet::new(), BTreeSet::new());
    let mut text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-secrets\n  namespace: {namespace}\ntype: Opaque\nstringData:\n"
    );
    let keys = example
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| !k.is_empty());
    for key in keys {
        match lookup(key) {
            Some(value) => {
                // A JSON string is a valid YAML scalar, whatever the value holds.
                let quoted = serde_json::to_string(&value).unwrap_or_default();
                text.push_str(&format!("  {key}: {quoted}\n"));
                filled.insert(key.to_owned());
            }
            None => {
                missing.insert(key.to_owned());
            }
        }
    }
    (text, filled, missing)
}

/// Points `image:` lines that end in `:{from}` at `:{to}`.
fn retag(text: &str, from: &str, to: &str) -> String {
    text.lines()
        .map(|line| match line.trim_start().strip_prefix("image:") {
            Some(image)
                if image
                    .trim()
                    .trim_matches('"')
                    .ends_with(&format!(":{from}")) =>
            {
                let image = image.trim().trim_matches('"');
                let base = &image[..image.len() - from.len() - 1];
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}image: {base}:{to}")
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

impl Deploy {
    /// Checks that the generated files are current, plans from the
    /// environment's folder, then prints the plan (`--dry-run`) or applies it.
    pub fn run(self, ws: &Workspace) -> Result<()> {
        crate::generate::Gen { check: true }.run(ws)?;
        let model = ws.model()?;
        plan::known(model, &self.env)?;
        let env = model.environment(&self.env).expect("checked above");
        if let Some(tag) = &self.image_tag {
            check_tag(tag)?;
        }
        let lookup = |name: &str| ws.secret(name);
        let steps = plan(
            &ws.root().join("generated/k8s").join(&self.env),
            &model.project.namespace,
            &lookup,
            &env.image_tag,
            self.image_tag.as_deref(),
        )?;
        self.execute(&steps, &model.project.namespace)
    }

    fn execute(&self, steps: &[Step], namespace: &str) -> Result<()> {
        let missing: BTreeSet<&str> = steps
            .iter()
            .flat_map(|s| s.missing.iter().map(String::as_str))
            .collect();
        let missing = missing.into_iter().collect::<Vec<_>>().join(", ");
        if self.dry_run {
            println!(
                "deploy --dry-run --env {}: would apply, in this order:",
                self.env
            );
            print_plan(steps);
            println!("\nagainst an empty cluster (--dry-run reads no cluster):");
            print!(
                "{}",
                plan::Report(&plan::diff(&plan::Objects::new(), &desired(steps)?))
            );
            if !missing.is_empty() {
                println!("a real deploy needs values for: {missing}");
            }
            return Ok(());
        }
        if !missing.is_empty() {
            bail!(
                "these secrets have no value: {missing}. Set them in the environment or in a \
             git-ignored .env file (KEY=value) at the project root; nothing was applied"
            );
        }
        apply(steps, namespace, self)
    }
}

/// A tag or digest that never moves: `deploy --image-tag latest` would
/// deploy whatever was pushed last.
fn check_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag != "latest"
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        bail!(
            "--image-tag `{tag}`: give a tag that never moves (a release or a git sha), not `latest`"
        );
    }
    Ok(())
}

/// The objects the steps apply, Secrets left out: a plan never shows a
/// secret value, and their keys are listed with the steps.
pub fn desired(steps: &[Step]) -> Result<plan::Objects> {
    let mut objects = plan::Objects::new();
    for step in steps
        .iter()
        .filter(|s| s.filled.is_empty() && s.missing.is_empty())
    {
        plan::parse_into(&mut objects, &step.text)
            .with_context(|| format!("parsing {}", step.file.display()))?;
    }
    objects.retain(|k, _| k.kind != "Secret");
    Ok(objects)
}

/// Prints what would be applied, secrets redacted.
pub fn print_plan(steps: &[Step]) {
    for (n, step) in steps.iter().enumerate() {
        let kinds: Vec<String> = objects(&step.text)
            .into_iter()
            .map(|(kind, name)| format!("{kind}/{name}"))
            .collect();
        print!(
            "{:>3}. {:<40} {}",
            n + 1,
            step.file.display(),
            kinds.join(" ")
        );
        if !step.filled.is_empty() {
            let names: Vec<&str> = step.filled.iter().map(String::as_str).collect();
            print!("  (filled: {})", names.join(", "));
        }
        if !step.missing.is_empty() {
            let names: Vec<&str> = step.missing.iter().map(String::as_str).collect();
            print!("  (MISSING: {})", names.join(", "));
        }
        println!();
    }
}

/// `(kind, name)` of every object in a multi-document manifest.
pub fn objects(text: &str) -> Vec<(String, String)> {
    text.split("\n---")
        .filter_map(|doc| {
            let kind = doc
                .lines()
                .find_map(|l| l.strip_prefix("kind:"))?
                .trim()
                .to_owned();
            let mut in_meta = false;
            let name = doc.lines().find_map(|l| {
                if l.starts_with("metadata:") {
                    in_meta = true;
                    return None;
                }
                if in_meta && !l.starts_with(' ') {
                    in_meta = false;
                }
                l.strip_prefix("  name:")
                    .filter(|_| in_meta)
                    .map(|n| n.trim().trim_matches('"').to_owned())
            })?;
            Some((kind, name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_built_from_the_example_keys_and_missing_ones_reported() {
        let lookup = |n: &str| (n == "ADMIN_TOKEN").then(|| "s3\"cret".to_owned());
        let example = "# comment\nADMIN_TOKEN=\nPEDIDOS_DB_PASSWORD=\n";
        let (text, filled, missing) = secret("pedidos", "loja", example, &lookup);
        assert!(text.contains("  name: pedidos-secrets\n  namespace: loja\n"));
        assert!(text.contains("  ADMIN_TOKEN: \"s3\\\"cret\"\n"), "{text}");
        assert!(!text.contains("PEDIDOS_DB_PASSWORD"));
        assert_eq!(filled.into_iter().collect::<Vec<_>>(), ["ADMIN_TOKEN"]);
        assert_eq!(
            missing.into_iter().collect::<Vec<_>>(),
            ["PEDIDOS_DB_PASSWORD"]
        );
    }

    #[test]
    fn only_images_with_the_current_tag_are_retagged() {
        let text = "    image: docker.io/loja/pedidos:0.1.0\n    image: postgres:15\n";
        assert_eq!(
            retag(text, "0.1.0", "abc123"),
            "    image: docker.io/loja/pedidos:abc123\n    image: postgres:15\n"
        );
    }

    #[test]
    fn objects_are_listed_per_document() {
        let text = "kind: Service\nmetadata:\n  name: a\n  labels:\n    name: x\n---\nkind: Deployment\nmetadata:\n  name: b\n";
        assert_eq!(
            objects(text),
            [
                ("Service".into(), "a".into()),
                ("Deployment".into(), "b".into())
            ]
        );
    }
}
