//! checkov, the security lens: each environment's built manifests and its
//! Terraform (the module with that environment's variables) must pass every
//! check. A check the project deliberately does not follow is skipped in the
//! artifact itself with its reason, and README.md lists every such skip.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::{Outcome, Tree, tools};
use crate::util::fs::files_ending;

/// checkov on one environment's built manifests.
pub fn kubernetes(t: &Tree, name: &str, built: &Path) -> Outcome {
    run(
        t,
        name,
        &["--framework", "kubernetes", "-f", &built.to_string_lossy()],
    )
}

/// checkov on the Terraform module with `env`'s variables file.
pub fn terraform(t: &Tree, env: &str) -> Outcome {
    let dir = t.generated.join("terraform");
    let vars = dir.join(format!("environments/{env}.tfvars"));
    run(
        t,
        &format!("checkov of the Terraform with {env}.tfvars"),
        &[
            "--framework",
            "terraform",
            "-d",
            &dir.to_string_lossy(),
            "--var-file",
            &vars.to_string_lossy(),
        ],
    )
}

/// Runs checkov (offline, JSON) and passes when it ran checks and none failed.
fn run(t: &Tree, name: &str, scan: &[&str]) -> Outcome {
    let program = crate::dev::tools::checkov();
    let mut fixed = vec!["--skip-download", "--quiet", "--compact", "-o", "json"];
    fixed.extend(scan);
    let out = tools::tool(
        name,
        &program.to_string_lossy(),
        &tools::args(&fixed, &[]),
        t.root,
        &[],
    );
    // checkov exits 1 on failed checks; its JSON says which.
    let json = out.detail.find(['{', '[']).map(|at| &out.detail[at..]);
    let Some(report) = json.and_then(|j| {
        serde_json::Deserializer::from_str(j)
            .into_iter::<Value>()
            .next()?
            .ok()
    }) else {
        return Outcome {
            ok: false,
            detail: format!("checkov gave no JSON report:\n{}", out.detail),
            ..out
        };
    };
    verdict(name, &report)
}

/// The outcome of one checkov JSON report (one framework's object, or a list of them).
fn verdict(name: &str, report: &Value) -> Outcome {
    let reports: Vec<&Value> = match report {
        Value::Array(list) => list.iter().collect(),
        other => vec![other],
    };
    let (mut passed, mut skipped, mut problems) = (0, 0, Vec::new());
    for r in reports {
        passed += r
            .pointer("/summary/passed")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        skipped += r
            .pointer("/summary/skipped")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let errors = r
            .pointer("/summary/parsing_errors")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if errors > 0 {
            problems.push(format!("{errors} file(s) checkov could not parse"));
        }
        for c in r
            .pointer("/results/failed_checks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = |k: &str| c[k].as_str().unwrap_or("").to_string();
            problems.push(format!(
                "{} {}: {} ({})",
                field("check_id"),
                field("resource"),
                field("check_name"),
                field("file_path")
            ));
        }
    }
    if passed == 0 && problems.is_empty() {
        problems.push("checkov ran no check: nothing was scanned".into());
    }
    Outcome {
        name: format!(
            "{name} ({passed} passed, {skipped} skipped, {} failed)",
            problems.len()
        ),
        ok: problems.is_empty(),
        detail: problems.join("\n"),
    }
}

/// The ids of every check skipped in `text`: `checkov.io/skipN: ID=reason`
/// annotations and `#checkov:skip=ID:reason` comments.
fn skipped_ids(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches('-').trim();
        let rest = if let Some(at) = line.find("checkov:skip=") {
            &line[at + "checkov:skip=".len()..]
        } else if line.starts_with("checkov.io/skip") {
            line.split_once(':')
                .map_or("", |(_, v)| v.trim().trim_start_matches('"'))
        } else {
            continue;
        };
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !id.is_empty() {
            ids.insert(id);
        }
    }
    ids
}

/// Every check skipped in a generated artifact is named in README.md, with
/// its reason beside it there too.
pub fn skips_are_documented(t: &Tree) -> Outcome {
    let readme = std::fs::read_to_string(t.root.join("README.md")).unwrap_or_default();
    let mut problems = Vec::new();
    for file in files_ending(&t.generated, &[".yaml", ".tf"]) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for id in skipped_ids(&text) {
            if !readme.contains(&format!("`{id}`")) {
                let rel = file.strip_prefix(t.root).unwrap_or(&file);
                problems.push(format!(
                    "{} skips {id}, which README.md does not list (as `{id}`, with its reason)",
                    rel.display()
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    Outcome::of("every checkov skip is listed in README.md", Ok(problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_found_in_annotations_and_comments() {
        let text = "  annotations:\n    checkov.io/skip1: \"CKV_K8S_43=tags\"\n    checkov.io/skip2: CKV_K8S_35=env\nresource \"x\" \"y\" {\n  #checkov:skip=CKV_AWS_39:runners\n}\n";
        let ids: Vec<String> = skipped_ids(text).into_iter().collect();
        assert_eq!(ids, ["CKV_AWS_39", "CKV_K8S_35", "CKV_K8S_43"]);
    }

    #[test]
    fn a_failed_check_or_an_empty_scan_fails_the_verdict() {
        let failed = serde_json::json!({"summary": {"passed": 3, "skipped": 0, "parsing_errors": 0},
            "results": {"failed_checks": [{"check_id": "CKV_K8S_1", "resource": "Pod.x", "check_name": "n", "file_path": "/f"}]}});
        let v = verdict("k8s", &failed);
        assert!(!v.ok);
        assert_eq!(v.detail, "CKV_K8S_1 Pod.x: n (/f)");
        let empty = serde_json::json!({"summary": {"passed": 0, "skipped": 0, "parsing_errors": 0}, "results": {}});
        assert!(!verdict("k8s", &empty).ok);
        let clean = serde_json::json!([{"summary": {"passed": 5, "skipped": 2, "parsing_errors": 0}, "results": {"failed_checks": []}}]);
        let v = verdict("k8s", &clean);
        assert!(v.ok, "{}", v.detail);
        assert_eq!(v.name, "k8s (5 passed, 2 skipped, 0 failed)");
    }
}
