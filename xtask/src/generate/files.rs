//! Writes rendered files or checks that they are up to date, through the
//! same code path, so `gen --check` can never disagree with `gen`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::model::Model;
use crate::render::{self, Rendered};

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

fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, base, out)?;
        } else {
            out.push(
                path.strip_prefix(base)?
                    .to_string_lossy()
                    .replace('\\', "/"),
            );
        }
    }
    Ok(())
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
    let mut present = Vec::new();
    walk(&root.join("generated"), root, &mut present)?;
    present.sort();
    drift.orphaned = present
        .into_iter()
        .filter(|p| !wanted.contains_key(p) && !is_local_secret(p))
        .collect();
    Ok(drift)
}

/// Brings the tree under `root` in line with `rendered` (or, with `check`,
/// only reports what differs). Everything is rendered before the first
/// write, so a failure leaves the tree as it was.
pub fn sync(root: &Path, rendered: &Rendered, check: bool) -> Result<Drift> {
    let wanted = expected(root, rendered)?;
    let drift = drift(root, &wanted)?;
    if check {
        return Ok(drift);
    }
    for path in drift.stale.iter().chain(&drift.missing) {
        let target = root.join(path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&target, &wanted[path]).with_context(|| format!("writing {path}"))?;
    }
    for path in &drift.orphaned {
        std::fs::remove_file(root.join(path)).with_context(|| format!("removing {path}"))?;
    }
    Ok(drift)
}

/// `cargo xtask gen`: loads `root/loja.toml`, renders `root/templates` and
/// writes (or, with `check`, only compares) the result under `root`.
/// A bad `loja.toml` or template fails before anything is written.
pub fn generate(root: &Path, check: bool) -> Result<Drift> {
    let model = Model::load(&root.join("loja.toml"))?;
    let rendered = render::render(&model, &root.join("templates"))?;
    sync(root, &rendered, check)
}
