//! `cargo xtask plan --env NAME [--against ENV]`: what a change to
//! `loja.toml` (or the templates) does to an environment, as a diff of
//! objects: those added, those removed, and for each changed one the fields
//! that differ, with their values before and after. The baseline is the
//! environment's output as committed (`--since`, default `HEAD`), or
//! another environment as rendered now (`--against`). Lists of named
//! entries (containers, ports, env...) are matched by name, not position,
//! as Kubernetes merges them.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use crate::Workspace;
use crate::generate::render::{self, Rendered};

/// Show what a change to loja.toml does to an environment, object by object.
#[derive(Debug, Clone, clap::Args)]
pub struct Plan {
    /// The environment to plan (an `[environments.NAME]` of loja.toml).
    #[arg(long)]
    pub env: String,
    /// Compare with another environment as rendered now, instead of with
    /// the committed output.
    #[arg(long)]
    pub against: Option<String>,
    /// The git revision whose committed output is the baseline.
    #[arg(long, default_value = "HEAD")]
    pub since: String,
}

impl Plan {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let model = ws.model()?;
        known(model, &self.env)?;
        let rendered = render::render(model, &ws.templates())?;
        let after = rendered_objects(&rendered, &self.env)?;
        let (before, baseline) = match &self.against {
            Some(other) => {
                known(model, other)?;
                (
                    rendered_objects(&rendered, other)?,
                    format!("{other} as rendered now"),
                )
            }
            None => (
                committed_objects(ws, &self.env, &self.since)?,
                format!("generated/k8s/{} at {}", self.env, self.since),
            ),
        };
        println!("plan {}: loja.toml against {baseline}", self.env);
        print!("{}", Report(&diff(&before, &after)));
        Ok(())
    }
}

/// Fails unless `model` declares environment `name`.
pub fn known(model: &crate::model::Model, name: &str) -> Result<()> {
    if model.environment(name).is_none() {
        let names: Vec<&str> = model.environments.iter().map(|e| e.name.as_str()).collect();
        bail!(
            "loja.toml declares no environment `{name}` (declared: {})",
            names.join(", ")
        );
    }
    Ok(())
}

/// An object's identity: kind and name (one namespace per environment).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub kind: String,
    pub name: String,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// Objects by identity.
pub type Objects = BTreeMap<Key, Value>;

/// One field that differs: its path and its values (None: absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// What happens to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Added(Key),
    Removed(Key),
    Changed(Key, Vec<Field>),
}

impl Change {
    pub fn key(&self) -> &Key {
        match self {
            Change::Added(k) | Change::Removed(k) | Change::Changed(k, _) => k,
        }
    }
}

/// Adds every object of a YAML stream (one or many documents) to `into`.
pub fn parse_into(into: &mut Objects, text: &str) -> Result<()> {
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let doc = Value::deserialize(document).context("parsing a manifest")?;
        if doc.is_null() {
            continue;
        }
        let key = Key {
            kind: doc["kind"].as_str().unwrap_or("").to_string(),
            name: doc["metadata"]["name"].as_str().unwrap_or("").to_string(),
        };
        into.insert(key, doc);
    }
    Ok(())
}

/// The variables of a `.tfvars` file as rendered (scalars and lists of
/// scalars), as one object: a plan shows the node group it sizes too.
pub fn tfvars(text: &str) -> Value {
    let mut vars = serde_json::Map::new();
    let mut pending: Option<(String, String)> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = match pending.take() {
            Some((key, so_far)) => (key, format!("{so_far} {line}")),
            None => match line.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => continue,
            },
        };
        if value.starts_with('[') && !value.ends_with(']') {
            pending = Some((key, value));
            continue;
        }
        let scalar = |v: &str| -> Value {
            let v = v.trim();
            serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()))
        };
        let parsed = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some(items) => Value::Array(
                items
                    .split(',')
                    .filter(|i| !i.trim().is_empty())
                    .map(scalar)
                    .collect(),
            ),
            None => scalar(&value),
        };
        vars.insert(key, parsed);
    }
    Value::Object(vars)
}

/// Adds the objects of one output file of environment `env` to `into`.
fn add_file(into: &mut Objects, env: &str, path: &str, text: &str) -> Result<()> {
    let manifests = format!("generated/k8s/{env}/");
    if let Some(rel) = path.strip_prefix(&manifests) {
        if rel.ends_with(".yaml") && rel != "kustomization.yaml" {
            parse_into(into, text).with_context(|| format!("parsing {path}"))?;
        }
    } else if path == format!("generated/terraform/environments/{env}.tfvars") {
        let key = Key {
            kind: "TerraformVariables".into(),
            name: env.into(),
        };
        into.insert(key, tfvars(text));
    }
    Ok(())
}

/// The objects of environment `env` in a rendering.
pub fn rendered_objects(rendered: &Rendered, env: &str) -> Result<Objects> {
    let mut objects = Objects::new();
    for (path, text) in &rendered.files {
        add_file(&mut objects, env, path, text)?;
    }
    Ok(objects)
}

/// The objects of environment `env` as committed at git revision `rev`.
fn committed_objects(ws: &Workspace, env: &str, rev: &str) -> Result<Objects> {
    let git = |args: &[&str]| -> Result<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(ws.root())
            .output()
            .context("running git")?;
        if !out.status.success() {
            bail!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let tfvars = format!("generated/terraform/environments/{env}.tfvars");
    let listing = git(&[
        "ls-tree",
        "-r",
        "--name-only",
        rev,
        "--",
        &format!("generated/k8s/{env}"),
        &tfvars,
    ])?;
    let mut objects = Objects::new();
    for path in listing.lines() {
        let text = git(&["show", &format!("{rev}:{path}")])?;
        add_file(&mut objects, env, path, &text)?;
    }
    Ok(objects)
}

/// The changes that turn `before` into `after`, by object identity.
pub fn diff(before: &Objects, after: &Objects) -> Vec<Change> {
    let mut changes = Vec::new();
    for (key, new) in after {
        match before.get(key) {
            None => changes.push(Change::Added(key.clone())),
            Some(old) => {
                let mut fields = Vec::new();
                diff_values("", old, new, &mut fields);
                if !fields.is_empty() {
                    changes.push(Change::Changed(key.clone(), fields));
                }
            }
        }
    }
    changes.extend(
        before
            .keys()
            .filter(|k| !after.contains_key(k))
            .map(|k| Change::Removed(k.clone())),
    );
    changes.sort_by(|a, b| a.key().cmp(b.key()));
    changes
}

/// The name that identifies an entry of a list (containers, ports, env,
/// volumes...), when every entry has one.
fn entry_name(v: &Value) -> Option<String> {
    v.get("name").and_then(Value::as_str).map(String::from)
}

fn named(list: &[Value]) -> Option<BTreeMap<String, &Value>> {
    let map: BTreeMap<String, &Value> = list
        .iter()
        .map(|v| entry_name(v).map(|n| (n, v)))
        .collect::<Option<_>>()?;
    (map.len() == list.len()).then_some(map)
}

fn join(path: &str, segment: &str) -> String {
    if path.is_empty() {
        segment.to_string()
    } else {
        format!("{path}.{segment}")
    }
}

fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<Field>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = join(path, k);
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff_values(&p, x, y, out),
                    (x, y) => out.push(Field {
                        path: p,
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => match (named(a), named(b)) {
            (Some(x), Some(y)) => {
                let names: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for n in names {
                    let p = format!("{path}[{n}]");
                    match (x.get(n), y.get(n)) {
                        (Some(u), Some(v)) => diff_values(&p, u, v, out),
                        (u, v) => out.push(Field {
                            path: p,
                            before: u.map(|u| (*u).clone()),
                            after: v.map(|v| (*v).clone()),
                        }),
                    }
                }
            }
            _ if a.len() == b.len() => {
                for (i, (u, v)) in a.iter().zip(b).enumerate() {
                    diff_values(&format!("{path}[{i}]"), u, v, out);
                }
            }
            _ => out.push(Field {
                path: path.to_string(),
                before: Some(old.clone()),
                after: Some(new.clone()),
            }),
        },
        _ if old != new => out.push(Field {
            path: path.to_string(),
            before: Some(old.clone()),
            after: Some(new.clone()),
        }),
        _ => {}
    }
}

/// A plan as printed: one line per object, one indented line per field.
pub struct Report<'a>(pub &'a [Change]);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<Value>| v.as_ref().map_or("(absent)".into(), Value::to_string);
        let (mut added, mut removed, mut changed) = (0, 0, 0);
        for change in self.0 {
            match change {
                Change::Added(k) => {
                    added += 1;
                    writeln!(f, "  + {k}")?;
                }
                Change::Removed(k) => {
                    removed += 1;
                    writeln!(f, "  - {k}")?;
                }
                Change::Changed(k, fields) => {
                    changed += 1;
                    writeln!(f, "  ~ {k}")?;
                    for field in fields {
                        writeln!(
                            f,
                            "      {}: {} -> {}",
                            field.path,
                            shown(&field.before),
                            shown(&field.after)
                        )?;
                    }
                }
            }
        }
        if self.0.is_empty() {
            writeln!(f, "no changes")
        } else {
            writeln!(
                f,
                "{} object(s): {added} added, {removed} removed, {changed} changed",
                self.0.len()
            )
        }
    }
}
