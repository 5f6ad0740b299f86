//! `cargo xtask deploy`: puts the generated Kubernetes manifests on the
//! cluster of the current (or given) kubectl context, in dependency order,
//! with secrets filled from the environment or a git-ignored `.env` in memory
//! only, then waits for every rollout.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::runstate::dotenv_value;

/// The manifest groups in the order they are applied: what a group needs is
/// applied before it (the namespace before anything in it, config and secrets
/// before the pods that read them, the database before its clients, workloads
/// before the autoscalers, budgets and policies that select them).
pub const ORDER: &[&str] = &[
    "namespace.yaml",
    "configmaps",
    "secrets",
    "postgres",
    "deployments",
    "services",
    "hpa",
    "pdb",
    "networkpolicies",
];

/// What `deploy` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Print the plan, touch no cluster.
    pub dry_run: bool,
    /// kubectl context; the current one when `None`.
    pub context: Option<String>,
    /// Image tag to deploy instead of the one in loja.toml.
    pub image_tag: Option<String>,
    /// Longest wait for each rollout.
    pub timeout: Duration,
}

/// One manifest file to apply, with its text as it will be sent.
#[derive(Debug, Clone)]
pub struct Step {
    /// Path relative to the k8s directory.
    pub file: PathBuf,
    /// The manifest, secrets filled and image tag applied.
    pub text: String,
    /// Placeholder names filled in (secrets); their values are never printed.
    pub filled: BTreeSet<String>,
}

/// Reads the manifests under `k8s_dir` in [`ORDER`] and prepares them:
/// `${NAME}` placeholders are filled from `lookup` (all missing names are
/// reported at once, before anything is applied), and `:{current_tag}` image
/// references become `:{image_tag}`.
pub fn plan(
    k8s_dir: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    current_tag: &str,
    image_tag: Option<&str>,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut missing = BTreeSet::new();
    for group in ORDER {
        let path = k8s_dir.join(group);
        let mut files = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            v.sort();
            v
        } else if path.is_file() {
            vec![path]
        } else {
            continue;
        };
        for file in files.drain(..) {
            let raw = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let (mut text, filled, absent) = fill(&raw, lookup);
            missing.extend(absent);
            if let Some(tag) = image_tag {
                text = retag(&text, current_tag, tag);
            }
            let rel = file.strip_prefix(k8s_dir).unwrap_or(&file).to_path_buf();
            steps.push(Step {
                file: rel,
                text,
                filled,
            });
        }
    }
    if !missing.is_empty() {
        bail!(
            "these secrets have no value: {}. Set them in the environment or in a \
             git-ignored .env file (KEY=value) at the project root",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    if steps.is_empty() {
        bail!(
            "no manifests under {}: run `cargo xtask gen`",
            k8s_dir.display()
        );
    }
    Ok(steps)
}

/// Replaces `${NAME}` (NAME = `[A-Z0-9_]+`) with `lookup(NAME)`. Returns the
/// text, the names filled and the names that had no value.
fn fill(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (String, BTreeSet<String>, BTreeSet<String>) {
    let mut out = String::with_capacity(text.len());
    let (mut filled, mut missing) = (BTreeSet::new(), BTreeSet::new());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').filter(|&end| {
            end > 0
                && after[..end]
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        match end {
            Some(end) => {
                let name = &after[..end];
                match lookup(name) {
                    Some(value) => {
                        out.push_str(&value);
                        filled.insert(name.to_owned());
                    }
                    None => {
                        missing.insert(name.to_owned());
                    }
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, filled, missing)
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

/// Values come from the environment first, then from `.env` in `project`.
pub fn env_lookup(project: &Path) -> impl Fn(&str) -> Option<String> + use<> {
    let dotenv = project.join(".env");
    move |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| dotenv_value(&dotenv, name))
    }
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
            print!("  (secrets filled: {})", names.join(", "));
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

/// Applies the plan to the cluster and waits for the rollouts.
pub fn apply(steps: &[Step], namespace: &str, options: &Options) -> Result<()> {
    let kubectl = |args: &[&str]| {
        let mut cmd = Command::new("kubectl");
        if let Some(ctx) = &options.context {
            cmd.args(["--context", ctx]);
        }
        cmd.args(args);
        cmd
    };
    let probe = kubectl(&["version", "--request-timeout=5s", "-o", "yaml"])
        .stdin(Stdio::null())
        .output()
        .context("running kubectl: is it installed?")?;
    if !probe.status.success() {
        bail!(
            "no Kubernetes cluster answers for context {}: {}\n\
             Use `cargo xtask deploy --dry-run` to see the plan without a cluster.",
            options.context.as_deref().unwrap_or("(current)"),
            last_line(&probe.stderr)
        );
    }
    for step in steps {
        println!("deploy: applying {}", step.file.display());
        let mut child = kubectl(&["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Filled secrets travel through a pipe only, never through a file.
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(step.text.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "applying {}: {}",
                step.file.display(),
                last_line(&out.stderr)
            );
        }
    }
    let timeout = format!("--timeout={}s", options.timeout.as_secs());
    for step in steps {
        for (kind, name) in objects(&step.text) {
            if kind != "Deployment" && kind != "StatefulSet" {
                continue;
            }
            let target = format!("{}/{name}", kind.to_lowercase());
            println!("deploy: waiting for {target}");
            let out = kubectl(&["rollout", "status", &target, "-n", namespace, &timeout])
                .stdin(Stdio::null())
                .output()?;
            if !out.status.success() {
                let events = kubectl(&["describe", &target, "-n", namespace])
                    .output()
                    .map(|o| crate::up::tail_text(&String::from_utf8_lossy(&o.stdout), 15))
                    .unwrap_or_default();
                bail!(
                    "{target} did not roll out: {}\n{events}",
                    last_line(&out.stderr)
                );
            }
        }
    }
    println!("deploy: every rollout finished");
    Ok(())
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_missing_ones_reported() {
        let lookup = |n: &str| (n == "ADMIN_TOKEN").then(|| "s3cret".to_owned());
        let (text, filled, missing) = fill(
            "a: ${ADMIN_TOKEN}\nb: ${DB_PASSWORD}\nc: $HOME ${lower}\n",
            &lookup,
        );
        assert_eq!(text, "a: s3cret\nb: \nc: $HOME ${lower}\n");
        assert_eq!(filled.into_iter().collect::<Vec<_>>(), ["ADMIN_TOKEN"]);
        assert_eq!(missing.into_iter().collect::<Vec<_>>(), ["DB_PASSWORD"]);
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
