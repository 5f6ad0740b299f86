//! An in-process HTTP client for a service's router, checking on the way
//! that every error answer is `application/problem+json`.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The admin token every test state is built with.
pub const TOKEN: &str = "test-admin-token";

/// Drives one app in-process; clones are cheap and share the state.
#[derive(Clone)]
pub struct Client {
    pub app: Router,
}

impl Client {
    /// A client for a service's whole router.
    pub fn new(app: Router) -> Client {
        Client { app }
    }

    /// Sends a request; `body` is sent as JSON, `token` as a bearer token.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let request = match body {
            Some(v) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => builder.body(Body::empty()),
        };
        self.raw(request.unwrap()).await
    }

    /// Sends a prepared request and decodes the JSON answer (Null if empty).
    pub async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "errors are problems"
            );
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, None, None).await
    }

    /// An admin write.
    pub async fn admin(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(method, uri, Some(body), Some(TOKEN)).await
    }

    /// An internal (pedidos → estoque) call.
    pub async fn internal(&self, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(Method::POST, uri, body, None).await
    }
}
