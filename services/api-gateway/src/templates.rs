//! The public route templates (`/api/v1/products/{sku}/restock`), read from
//! the OpenAPI document the gateway serves: every path item that carries
//! `x-gateway-route` is one the gateway forwards. A forwarded request is
//! counted under the template its path matches, so the metrics tell a
//! product read from a restock, and under `unmatched` when none does: a
//! raw path never becomes a label value.

use std::sync::Arc;

use loja_runtime::metrics::UNMATCHED;

/// One template, split into segments; `None` stands for a `{parameter}`.
#[derive(Debug, Clone)]
struct Template {
    label: Arc<str>,
    segments: Vec<Option<String>>,
}

impl Template {
    fn new(path: &str) -> Self {
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
            .collect();
        Template {
            label: path.into(),
            segments,
        }
    }

    fn matches(&self, path: &[&str]) -> bool {
        self.segments.len() == path.len()
            && self.segments.iter().zip(path).all(|(t, p)| match t {
                Some(literal) => literal == p,
                None => !p.is_empty(),
            })
    }

    /// Literal segments before the first parameter: the more, the more
    /// specific (`/products/search` before `/products/{sku}`).
    fn literal_prefix(&self) -> usize {
        self.segments.iter().take_while(|s| s.is_some()).count()
    }
}

/// Every public template, the most specific first.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplates {
    templates: Vec<Template>,
    unmatched: Arc<str>,
}

impl RouteTemplates {
    /// The templates of the document `json` (an OpenAPI document); a
    /// document that is not JSON, or has no forwarded paths, gives none.
    pub fn from_document(json: &[u8]) -> Self {
        let document: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        let paths = document
            .get("paths")
            .and_then(|p| p.as_object())
            .into_iter()
            .flatten()
            .filter(|(_, item)| item.get("x-gateway-route").is_some())
            .map(|(path, _)| path.as_str());
        Self::new(paths)
    }

    /// The table of `paths`, each a template such as `/api/v1/orders/{id}`.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> Self {
        let mut templates: Vec<Template> = paths.into_iter().map(Template::new).collect();
        templates.sort_by_key(|t| std::cmp::Reverse(t.literal_prefix()));
        RouteTemplates {
            templates,
            unmatched: UNMATCHED.into(),
        }
    }

    /// The label of the resolved public `path`: its template, or `unmatched`.
    pub fn label(&self, path: &str) -> Arc<str> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.templates
            .iter()
            .find(|t| t.matches(&segments))
            .map_or_else(|| self.unmatched.clone(), |t| t.label.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The templates of the document the gateway embeds.
    fn generated() -> RouteTemplates {
        RouteTemplates::from_document(include_bytes!("../../../generated/openapi.json"))
    }

    #[test]
    fn a_read_and_a_restock_have_their_own_templates() {
        let t = generated();
        assert_eq!(
            &*t.label("/api/v1/products/SKU-1"),
            "/api/v1/products/{sku}"
        );
        assert_eq!(
            &*t.label("/api/v1/products/SKU-1/restock"),
            "/api/v1/products/{sku}/restock"
        );
        assert_eq!(&*t.label("/api/v1/products"), "/api/v1/products");
        assert_eq!(
            &*t.label("/api/v1/orders/42/cancel"),
            "/api/v1/orders/{id}/cancel"
        );
    }

    #[test]
    fn paths_no_template_covers_are_unmatched() {
        let t = generated();
        for path in [
            "/api/v1/products/SKU-1/restock/again",
            "/api/v1/products/SKU-1/sell",
            "/api/v2/orders",
            "/api/v1/ordersx",
            "/",
            "/openapi.json/x",
        ] {
            assert_eq!(&*t.label(path), UNMATCHED, "{path}");
        }
    }

    #[test]
    fn a_crafted_segment_is_a_parameter_value_never_a_label() {
        let t = generated();
        for sku in ["%7Bsku%7D", "{sku}", "%2e%2e%2Fx", "a%20b", "restock"] {
            assert_eq!(
                &*t.label(&format!("/api/v1/products/{sku}")),
                "/api/v1/products/{sku}",
                "{sku}"
            );
        }
    }

    #[test]
    fn a_literal_segment_wins_over_a_parameter() {
        let t = RouteTemplates::new(["/p/{sku}", "/p/search"]);
        assert_eq!(&*t.label("/p/search"), "/p/search");
        assert_eq!(&*t.label("/p/x"), "/p/{sku}");
    }

    #[test]
    fn a_document_without_forwarded_paths_labels_everything_unmatched() {
        let t = RouteTemplates::from_document(b"not json");
        assert_eq!(&*t.label("/api/v1/orders"), UNMATCHED);
    }
}
