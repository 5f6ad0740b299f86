//! The merged OpenAPI document: it agrees with `docs/API.md` on routes and
//! problem codes, holds only what the gateway routes (never `/internal`),
//! names each path's owner and gateway route, and refuses to merge documents
//! that `loja.toml` does not route or that clash.

mod common;

use std::collections::BTreeSet;

use common::project_root;
use serde_json::{Value, json};
use xtask::generate::openapi::{self, service_documents};
use xtask::model::Model;

fn model() -> Model {
    Model::load(&project_root().join("loja.toml")).unwrap()
}

fn merged() -> Value {
    let text = openapi::render(&model(), &service_documents().unwrap()).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `METHOD /path` of every operation the document describes.
fn operations(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !method.starts_with("x-") {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// Every `` `METHOD /path` `` docs/API.md names outside `/internal`, the
/// query string dropped.
fn contract_routes(api: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for chunk in api.split('`').skip(1).step_by(2) {
        let Some((method, target)) = chunk.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) {
            continue;
        }
        let path = target.split(['?', ' ']).next().unwrap();
        if path.starts_with('/') && !path.starts_with("/internal") {
            out.insert(format!("{method} {path}"));
        }
    }
    out
}

/// The codes docs/API.md lists after "Codes used below:", up to the end of
/// that paragraph.
fn contract_codes(api: &str) -> BTreeSet<String> {
    let start = api
        .find("Codes used below:")
        .expect("API.md lists its codes");
    let paragraph = api[start..].split("\n\n").next().unwrap();
    paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_document_and_the_contract_agree_on_routes_and_problem_codes() {
    let doc = merged();
    let api = std::fs::read_to_string(project_root().join("docs/API.md")).unwrap();
    let routes = contract_routes(&api);
    assert!(routes.contains("POST /api/v1/orders"), "{routes:?}");
    assert_eq!(operations(&doc), routes, "operations vs docs/API.md routes");
    let codes: BTreeSet<String> = doc["components"]["schemas"]["Code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(codes.contains("insufficient_stock"), "{codes:?}");
    assert_eq!(
        codes,
        contract_codes(&api),
        "Code enum vs docs/API.md codes"
    );
}

#[test]
fn the_committed_document_is_what_the_code_merges() {
    let committed = std::fs::read_to_string(project_root().join(openapi::PATH)).unwrap();
    let text = openapi::render(&model(), &service_documents().unwrap()).unwrap();
    assert!(committed == text, "run `cargo xtask gen`");
    assert_eq!(
        text,
        openapi::render(&model(), &service_documents().unwrap()).unwrap()
    );
    assert!(text.ends_with("}\n") && !text.contains('\r'));
}

#[test]
fn only_public_paths_are_documented_each_with_its_owner_and_gateway_route() {
    let doc = merged();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["x-generated"], openapi::GENERATED);
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(!path.starts_with("/internal"), "{path}");
        let own = ["/health", "/ready", "/metrics", "/openapi.json"].contains(&path.as_str());
        if own {
            assert!(item.get("x-service").is_none(), "{path}");
            continue;
        }
        let route = item["x-gateway-route"].as_str().unwrap();
        assert!(path.starts_with(route), "{path} under {route}");
        let owner = model()
            .services
            .into_iter()
            .find(|s| s.routes.iter().any(|r| r == route))
            .unwrap();
        assert_eq!(item["x-service"], owner.name.as_str(), "{path}");
    }
    assert_eq!(doc["paths"]["/api/v1/orders/{id}"]["x-service"], "pedidos");
    assert_eq!(
        doc["paths"]["/api/v1/products/{sku}"]["x-gateway-route"],
        "/api/v1/products"
    );
}

#[test]
fn forwarded_operations_also_answer_what_the_gateway_answers_itself() {
    let doc = merged();
    let fetch = &doc["paths"]["/api/v1/products/{sku}"]["get"]["responses"];
    for status in ["400", "413", "503", "504"] {
        assert!(fetch[status].is_object(), "GET product lacks {status}");
    }
    assert!(fetch.get("415").is_none(), "a GET takes no body to refuse");
    let cancel = &doc["paths"]["/api/v1/orders/{id}/cancel"]["post"]["responses"];
    assert_eq!(
        cancel["415"]["$ref"],
        "#/components/responses/UnsupportedMediaType"
    );
    // The gateway's own routes are not forwarded.
    assert!(doc["paths"]["/health"]["get"]["responses"]["504"].is_null());
}

#[test]
fn admin_operations_name_the_bearer_scheme_and_payments_make_it_optional() {
    let doc = merged();
    assert_eq!(
        doc["components"]["securitySchemes"]["adminToken"],
        json!({"type": "http", "scheme": "bearer",
               "description": "The admin token, a secret of the deployment (`ADMIN_TOKEN`)."})
    );
    let admin = json!([{"adminToken": []}]);
    assert_eq!(doc["paths"]["/api/v1/products"]["post"]["security"], admin);
    assert_eq!(doc["paths"]["/api/v1/orders"]["get"]["security"], admin);
    assert!(doc["paths"]["/api/v1/products"]["get"]["security"].is_null());
    assert_eq!(
        doc["paths"]["/api/v1/payments"]["get"]["security"],
        json!([{}, {"adminToken": []}])
    );
    let params = doc["paths"]["/api/v1/orders"]["post"]["parameters"]
        .as_array()
        .unwrap();
    let key = params
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["in"], "header");
    assert_eq!(key["schema"]["maxLength"], 255);
}

fn merge_error(model: &Model, documents: &std::collections::BTreeMap<String, Value>) -> String {
    format!("{:#}", openapi::render(model, documents).unwrap_err())
}

#[test]
fn a_documented_path_that_loja_toml_does_not_route_to_its_service_is_refused() {
    let mut model = model();
    let pedidos = model
        .services
        .iter_mut()
        .find(|s| s.name == "pedidos")
        .unwrap();
    pedidos.routes = vec!["/api/v2/orders".into()];
    let err = merge_error(&model, &service_documents().unwrap());
    assert!(
        err.contains("/api/v1/orders: documented by pedidos but no route of loja.toml covers it"),
        "{err}"
    );
    assert!(
        err.contains(
            "/api/v2/orders: loja.toml routes it to pedidos, whose document has no path under it"
        ),
        "{err}"
    );
}

#[test]
fn a_routed_service_without_a_document_is_refused() {
    let mut documents = service_documents().unwrap();
    documents.remove("pagamentos");
    let err = merge_error(&model(), &documents);
    assert!(
        err.contains("pagamentos is routed (/api/v1/payments) but has no OpenAPI document"),
        "{err}"
    );
}

#[test]
fn two_services_defining_one_component_differently_are_refused() {
    let mut documents = service_documents().unwrap();
    documents.get_mut("estoque").unwrap()["components"]["schemas"]["Problem"] =
        json!({"type": "object"});
    let err = merge_error(&model(), &documents);
    assert!(err.contains("components.schemas.Problem:"), "{err}");
    assert!(err.contains("define it differently"), "{err}");
}

#[test]
fn a_reference_to_nothing_is_refused() {
    let mut documents = service_documents().unwrap();
    documents.get_mut("pagamentos").unwrap()["paths"]["/api/v1/payments/{id}"]["get"]["responses"]
        ["404"] = json!({"$ref": "#/components/responses/Gone"});
    let err = merge_error(&model(), &documents);
    assert!(
        err.contains("$ref #/components/responses/Gone names nothing"),
        "{err}"
    );
}
