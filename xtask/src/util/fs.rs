//! Files: every file below a folder, and writes that land whole or not at all.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Every file below `dir` (recursively) whose path `keep` accepts, as paths
/// relative to `dir` with `/` separators, sorted. A missing `dir` has none.
pub fn walk(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<String>> {
    fn visit(
        base: &Path,
        dir: &Path,
        keep: &dyn Fn(&Path) -> bool,
        out: &mut Vec<String>,
    ) -> Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err).with_context(|| format!("reading {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                visit(base, &path, keep, out)?;
            } else if keep(&path) {
                let rel = path.strip_prefix(base).unwrap_or(&path);
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(dir, dir, &keep, &mut out)?;
    out.sort();
    Ok(out)
}

/// Full paths of the files below `dir` whose name ends with one of `suffixes`, sorted.
pub fn files_ending(dir: &Path, suffixes: &[&str]) -> Vec<PathBuf> {
    walk(dir, |p| {
        let p = p.to_string_lossy();
        suffixes.iter().any(|s| p.ends_with(s))
    })
    .unwrap_or_default()
    .into_iter()
    .map(|rel| dir.join(rel))
    .collect()
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it,
/// renamed into place. Creates the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_are_sorted_relative_and_filtered_and_writes_land_whole() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(&dir.path().join("b/c.txt"), b"1").unwrap();
        write_atomic(&dir.path().join("a.rs"), b"2").unwrap();
        let all = walk(dir.path(), |_| true).unwrap();
        assert_eq!(all, ["a.rs", "b/c.txt"]);
        assert_eq!(
            walk(dir.path(), |p| p.extension().is_some_and(|e| e == "txt")).unwrap(),
            ["b/c.txt"]
        );
        assert_eq!(std::fs::read(dir.path().join("b/c.txt")).unwrap(), b"1");
        assert!(
            walk(&dir.path().join("missing"), |_| true)
                .unwrap()
                .is_empty()
        );
    }
}
