//! The validators of one environment: its folder is built with kustomize,
//! as `kubectl apply -k` would, and that output (not the files one by one)
//! goes through the schema, every cross-object check (against the
//! environment's model) and checkov; its Terraform variables go through
//! checkov with the module.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Groups, Outcome, Tree, checkov, k8s, tools};
use crate::model::Environment;
use crate::util::fs::walk;

/// Every validator of `env`, in the order they run. A validator that needs
/// the build fails (never silently passes) when the build failed.
pub fn validate(t: &Tree, env: &Environment, groups: Groups) -> Vec<Outcome> {
    let name = env.name.as_str();
    let dir = t.generated.join("k8s").join(name);
    let built = t.scratch.join(format!("{name}.built.yaml"));
    let model = t.model.in_environment(env);
    let (kubernetes, checkov) = (groups.has("kubernetes"), groups.has("checkov"));
    if !kubernetes && !checkov {
        return Vec::new();
    }
    let mut outcomes = vec![Outcome::of(
        &format!("kustomization of {name} lists every manifest"),
        unlisted(&dir),
    )];
    let build = tools::kustomize(t, name, &dir, &built);
    let built_ok = build.ok;
    outcomes.push(build);
    let dependents = [
        format!("kubernetes manifests of {name}, as built (kubernetes-validate --strict 1.30.0)"),
        format!(
            "kubernetes cross-references of {name} (selectors, ports, targets, policies, pod security, rollout and drain timing)"
        ),
        format!("checkov of {name}'s built manifests"),
    ];
    if !built_ok {
        outcomes.extend(dependents.into_iter().map(|name| Outcome {
            name,
            ok: false,
            detail: "not run: the kustomize build above failed".into(),
        }));
    } else {
        outcomes.push(tools::kubernetes_schema(t, name, &built));
        outcomes.push(Outcome::of(&dependents[1], k8s::check(&model, &built)));
        outcomes.push(checkov::kubernetes(t, &dependents[2], &built));
    }
    if env.terraform.is_some() {
        outcomes.push(checkov::terraform(t, name));
    }
    outcomes
}

/// Manifests in the folder that its kustomization.yaml does not list: they
/// would never be applied.
fn unlisted(dir: &Path) -> Result<Vec<String>> {
    let path = dir.join("kustomization.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let listed: BTreeSet<&str> = doc["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        .collect();
    Ok(walk(dir, |p| p.extension().is_some_and(|e| e == "yaml"))?
        .into_iter()
        .filter(|f| f != "kustomization.yaml" && !listed.contains(f.as_str()))
        .map(|f| format!("{f} is not in kustomization.yaml's resources, so it is never applied"))
        .collect())
}
