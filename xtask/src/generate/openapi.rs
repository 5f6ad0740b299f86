//! `generated/openapi.json`: the OpenAPI 3.1 document of the public API,
//! merged from each service's own document (what its code registers, from
//! its library crate's `openapi()`) as the gateway routes them per
//! `loja.toml`: the gateway's own paths, then every path of a service that
//! the gateway's longest-prefix match sends to that service, with the
//! answers the gateway itself may give on a forwarded route. Each forwarded
//! path item names its owner (`x-service`) and the prefix the gateway labels
//! its metrics with (`x-gateway-route`); the path keys are the route
//! templates the owners label theirs with.
//!
//! Documents are plain function calls, so `gen --check` stays as fast as
//! rendering templates; the output is pretty JSON with sorted keys.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::model::Model;

/// Where the merged document is written.
pub const PATH: &str = "generated/openapi.json";

/// The marker JSON has no comment for: who writes the file.
pub const GENERATED: &str =
    "Generated from loja.toml and the services' code by `cargo xtask gen`; do not edit.";

/// Each service's own document, by service name: every service of the
/// workspace registers its `openapi()` here.
pub fn service_documents() -> Result<BTreeMap<String, Value>> {
    let documents = [
        (api_gateway::SERVICE, api_gateway::openapi()),
        (estoque::SERVICE, estoque::openapi()),
        (pagamentos::SERVICE, pagamentos::openapi()),
        (pedidos::SERVICE, pedidos::openapi()),
    ];
    documents
        .into_iter()
        .map(|(service, api)| {
            let value = serde_json::to_value(&api)
                .with_context(|| format!("serializing the document of {service}"))?;
            Ok((service.to_owned(), value))
        })
        .collect()
}

/// The merged document's text for `model`, from `documents` (service name
/// -> its own document).
pub fn render(model: &Model, documents: &BTreeMap<String, Value>) -> Result<String> {
    let merged = merge(model, documents)?;
    let problems = dangling(&merged);
    if !problems.is_empty() {
        bail!(
            "the merged OpenAPI document is inconsistent:\n  {}",
            problems.join("\n  ")
        );
    }
    let mut text = serde_json::to_string_pretty(&merged)?;
    text.push('\n');
    Ok(text)
}

/// The service the gateway forwards `path` to: the longest route prefix
/// that covers it segment by segment, as the gateway's route table matches.
fn owner<'m>(model: &'m Model, path: &str) -> Option<(&'m str, &'m str)> {
    model
        .services
        .iter()
        .flat_map(|s| s.routes.iter().map(move |r| (r.as_str(), s.name.as_str())))
        .filter(|(prefix, _)| {
            let prefix = prefix.trim_end_matches('/');
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|(prefix, _)| prefix.len())
}

fn merge(model: &Model, documents: &BTreeMap<String, Value>) -> Result<Value> {
    let gateway = model.project.gateway.as_str();
    let own = documents
        .get(gateway)
        .with_context(|| format!("the gateway {gateway} has no OpenAPI document"))?;
    let mut paths = Map::new();
    let mut components: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut origin: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut add_components = |service: &str, doc: &Value, problems: &mut Vec<String>| {
        let Some(sections) = doc["components"].as_object() else {
            return;
        };
        for (section, entries) in sections {
            let merged = components.entry(section.clone()).or_default();
            for (name, value) in entries.as_object().into_iter().flatten() {
                match merged.get(name) {
                    Some(existing) if existing != value => problems.push(format!(
                        "components.{section}.{name}: {service} and {} define it differently \
                         (rename one with #[schema(as = ...)])",
                        origin[&(section.clone(), name.clone())]
                    )),
                    Some(_) => {}
                    None => {
                        merged.insert(name.clone(), value.clone());
                        origin.insert((section.clone(), name.clone()), service.to_owned());
                    }
                }
            }
        }
    };

    for (path, item) in own["paths"].as_object().into_iter().flatten() {
        paths.insert(path.clone(), item.clone());
    }
    add_components(gateway, own, &mut problems);

    for service in &model.services {
        if service.routes.is_empty() || service.name == gateway {
            continue;
        }
        let Some(doc) = documents.get(&service.name) else {
            problems.push(format!(
                "{} is routed ({}) but has no OpenAPI document: register its `openapi()` in \
                 xtask/src/generate/openapi.rs",
                service.name,
                service.routes.join(", ")
            ));
            continue;
        };
        add_components(&service.name, doc, &mut problems);
        let mut covered = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            match owner(model, path) {
                Some((prefix, name)) if name == service.name && !paths.contains_key(path) => {
                    covered.insert(prefix);
                    paths.insert(path.clone(), forwarded(item, &service.name, prefix));
                }
                Some(_) if paths.contains_key(path) => problems.push(format!(
                    "{path}: documented by {} but answered by the gateway itself",
                    service.name
                )),
                Some((_, name)) => problems.push(format!(
                    "{path}: documented by {} but loja.toml routes it to {name}",
                    service.name
                )),
                None => problems.push(format!(
                    "{path}: documented by {} but no route of loja.toml covers it",
                    service.name
                )),
            }
        }
        for route in &service.routes {
            if !covered.contains(route.as_str()) {
                problems.push(format!(
                    "{route}: loja.toml routes it to {}, whose document has no path under it",
                    service.name
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "cannot merge the services' OpenAPI documents:\n  {}",
            problems.join("\n  ")
        );
    }

    let components: Map<String, Value> = components
        .into_iter()
        .map(|(section, entries)| (section, Value::Object(entries)))
        .collect();
    Ok(json!({
        "openapi": own["openapi"],
        "x-generated": GENERATED,
        "info": {
            "title": format!("{} public API", model.project.name),
            "version": own["info"]["version"],
            "description": format!(
                "Every public route of {}, as its gateway `{gateway}` routes them. Errors are \
                 RFC 9457 problems (`application/problem+json`) with a stable `code`; writes and \
                 listings that need it take the admin token as a bearer token.",
                model.project.name
            ),
        },
        "paths": paths,
        "components": components,
    }))
}

/// A service's path item as the gateway forwards it: labelled with its
/// owner and route prefix, each operation also answering what the gateway
/// itself may answer.
fn forwarded(item: &Value, service: &str, prefix: &str) -> Value {
    let mut item = item.clone();
    let object = item.as_object_mut().expect("a path item is an object");
    for (method, operation) in object.iter_mut() {
        let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (status, name) in api_gateway::document::forwarded_answers(method) {
            responses
                .entry(status.to_string())
                .or_insert_with(|| json!({"$ref": format!("#/components/responses/{name}")}));
        }
    }
    object.insert("x-service".into(), service.into());
    object.insert("x-gateway-route".into(), prefix.into());
    item
}

/// Every `$ref` that names no component, and every security requirement
/// that names no scheme.
fn dangling(doc: &Value) -> Vec<String> {
    fn walk(value: &Value, doc: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let pointer = target.strip_prefix('#').unwrap_or("\u{0}");
                    if doc.pointer(pointer).is_none() {
                        out.push(format!("$ref {target} names nothing"));
                    }
                }
                map.values().for_each(|v| walk(v, doc, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, doc, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(doc, doc, &mut out);
    let schemes = &doc["components"]["securitySchemes"];
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scheme in requirement
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    if schemes.get(scheme).is_none() {
                        out.push(format!(
                            "{method} {path}: security scheme {scheme} is not defined"
                        ));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
