//! Writes rendered files or checks that they are up to date, through the
//! same code path, so `gen --check` can never disagree with `gen`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::openapi;
use super::render::{self, Rendered};
use crate::Workspace;
use crate::util::fs::{walk, write_atomic};

/// Markers around the README's generated architecture section.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: architecture -->";
pub const END: &str = "<!-- END GENERATED: architecture -->";

/// What differs between the rendered files and the tree on disk.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// Files whose content differs.
    pub stale: Vec<String>,
    /// Files that should exist and do not.
    pub missing: Vec<String>,
    /// Files under `generated/` that nothing renders any more.
    pub orphaned: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.stale.is_empty() && self.missing.is_empty() && self.orphaned.is_empty()
    }

    /// One line per file, e.g. `stale: generated/k8s/namespace.yaml`.
    pub fn lines(&self) -> Vec<String> {
        let tag = |kind: &str, files: &[String]| {
            files
                .iter()
                .map(|f| format!("{kind}: {f}"))
                .collect::<Vec<_>>()
        };
        let mut out = tag("stale", &self.stale);
        out.extend(tag("missing", &self.missing));
        out.extend(tag("orphaned", &self.orphaned));
        out
    }
}

/// Secrets filled in by hand live next to the generated examples but are
/// git-ignored; they are never orphans.
fn is_local_secret(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|f| f == ".env" || f.ends_with(".env"))
}

/// `readme` with its generated region replaced by `section`.
pub fn splice_readme(readme: &str, section: &str) -> Result<String> {
    let (Some(start), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        bail!("README.md lacks the markers `{BEGIN}` and `{END}`");
    };
    if end < start {
        bail!("README.md: `{END}` comes before `{BEGIN}`");
    }
    let before = &readme[..start + BEGIN.len()];
    let after = &readme[end..];
    Ok(format!("{before}\n{section}{after}"))
}

/// Every file the model wants under `root`, README included when present.
pub fn expected(root: &Path, rendered: &Rendered) -> Result<BTreeMap<String, String>> {
    let mut files = rendered.files.clone();
    let readme = root.join("README.md");
    if readme.exists() {
        let text = std::fs::read_to_string(&readme).context("reading README.md")?;
        files.insert(
            "README.md".into(),
            splice_readme(&text, &rendered.architecture)?,
        );
    }
    Ok(files)
}

/// Compares the wanted files with the tree under `root`.
pub fn drift(root: &Path, wanted: &BTreeMap<String, String>) -> Result<Drift> {
    let mut drift = Drift::default();
    for (path, content) in wanted {
        match std::fs::read_to_string(root.join(path)) {
            Ok(on_disk) if on_disk == *content => {}
            Ok(_) => drift.stale.push(path.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => drift.missing.push(path.clone()),
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        }
    }
    drift.orphaned = walk(&root.join("generated"), |_| true)?
        .into_iter()
        .map(|p| format!("generated/{p}"))
        .filter(|p| !wanted.contains_key(p) && !is_local_secret(p))
        .collect();
    Ok(drift)
}

/// Brings the tree under `root` in line with `rendered` (or, with `check`,
/// only reports what differs). Everything is rendered before the first
/// write, so a bad model or template leaves the tree as it was, and each file
/// is replaced whole (written beside it, then renamed), never half-written.
pub fn sync(root: &Path, rendered: &Rendered, check: bool) -> Result<Drift> {
    let wanted = expected(root, rendered)?;
    let drift = drift(root, &wanted)?;
    if check {
        return Ok(drift);
    }
    for path in drift.stale.iter().chain(&drift.missing) {
        write_atomic(&root.join(path), wanted[path].as_bytes())?;
    }
    for path in &drift.orphaned {
        std::fs::remove_file(root.join(path)).with_context(|| format!("removing {path}"))?;
        // Folders the removal left empty go too (never `generated/` itself).
        let generated = root.join("generated");
        let mut dir = root.join(path);
        while let Some(parent) = dir.parent().map(Path::to_path_buf) {
            if parent == generated || std::fs::remove_dir(&parent).is_err() {
                break;
            }
            dir = parent;
        }
    }
    Ok(drift)
}

/// `cargo xtask gen`: renders the workspace's templates for its model and
/// writes (or, with `check`, only compares) the result under its root.
/// A bad `loja.toml` or template fails before anything is written.
pub fn generate(ws: &Workspace, check: bool) -> Result<Drift> {
    generate_with(ws, check, &openapi::service_documents()?)
}

/// [`generate`] with the services' OpenAPI documents given (service name
/// -> document): the workspace's own, or a test's for services that exist
/// only in its `loja.toml`.
pub fn generate_with(
    ws: &Workspace,
    check: bool,
    documents: &BTreeMap<String, serde_json::Value>,
) -> Result<Drift> {
    let model = ws.model()?;
    let mut rendered = render::render(model, &ws.templates())?;
    let document = openapi::render(model, documents).context("rendering the OpenAPI document")?;
    rendered.files.insert(openapi::PATH.into(), document);
    sync(ws.root(), &rendered, check)
}
