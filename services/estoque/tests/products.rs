//! The public catalog: creation, reads, listing, patches, restocks, auth, and
//! every validation rule (with proof that a rejected request changed nothing).

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Client, TOKEN, snapshot};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

#[sqlx::test(migrations = "./migrations")]
async fn create_then_get_returns_the_product(pool: PgPool) {
    let c = Client::estoque(pool);
    let created = c.product("CAM-001", 4990, 10).await;
    assert_eq!(created["sku"], "CAM-001");
    assert_eq!(created["name"], "Product CAM-001");
    assert_eq!(created["price_cents"], 4990);
    assert_eq!(created["stock"], 10);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, got) = c.get("/api/v1/products/CAM-001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, created);
}

#[sqlx::test(migrations = "./migrations")]
async fn stock_defaults_to_zero(pool: PgPool) {
    let c = Client::estoque(pool);
    let (status, body) = c
        .admin(
            Method::POST,
            "/api/v1/products",
            json!({"sku": "X", "name": "X", "price_cents": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["stock"], 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn unknown_product_is_404(pool: PgPool) {
    let c = Client::estoque(pool);
    let (status, body) = c.get("/api/v1/products/NOPE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[sqlx::test(migrations = "./migrations")]
async fn existing_sku_is_409_and_keeps_the_first(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    c.product("CAM-001", 4990, 10).await;
    let before = snapshot(&pool).await;
    let (status, body) = c
        .admin(
            Method::POST,
            "/api/v1/products",
            json!({"sku": "CAM-001", "name": "Other", "price_cents": 1, "stock": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn writes_need_the_admin_token(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    c.product("CAM-001", 4990, 10).await;
    let before = snapshot(&pool).await;
    let writes = [
        (
            Method::POST,
            "/api/v1/products",
            json!({"sku": "N", "name": "N", "price_cents": 1}),
        ),
        (
            Method::PATCH,
            "/api/v1/products/CAM-001",
            json!({"name": "Hacked"}),
        ),
        (
            Method::POST,
            "/api/v1/products/CAM-001/restock",
            json!({"quantity": 5}),
        ),
    ];
    for (method, uri, body) in writes {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic dGVzdA=="),
            Some(TOKEN),
            Some("Bearertest-admin-token"),
        ] {
            let mut b = Request::builder()
                .method(method.clone())
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            let (status, problem) = c.raw(b.body(Body::from(body.to_string())).unwrap()).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {auth:?}"
            );
            assert_eq!(problem["code"], "unauthorized");
        }
    }
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_path_that_cannot_name_a_product_is_404_before_the_database(pool: PgPool) {
    let c = Client::estoque(pool);
    let long = "A".repeat(10_000);
    for uri in [
        format!("/api/v1/products/{long}"),
        "/api/v1/products/%FF%FE".to_owned(),
        "/api/v1/products/a%00b".to_owned(),
    ] {
        let (status, problem) = c.get(&uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {problem}");
        assert_eq!(problem["code"], "not_found");
        assert!(!problem["detail"].as_str().unwrap().contains(&long));
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn reads_are_public(pool: PgPool) {
    let c = Client::estoque(pool);
    c.product("CAM-001", 4990, 10).await;
    assert_eq!(c.get("/api/v1/products/CAM-001").await.0, StatusCode::OK);
    assert_eq!(c.get("/api/v1/products").await.0, StatusCode::OK);
}

#[sqlx::test(migrations = "./migrations")]
async fn patch_changes_only_the_given_fields(pool: PgPool) {
    let c = Client::estoque(pool);
    c.product("CAM-001", 4990, 10).await;
    let (status, body) = c
        .admin(
            Method::PATCH,
            "/api/v1/products/CAM-001",
            json!({"price_cents": 3990}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["price_cents"], 3990);
    assert_eq!(body["name"], "Product CAM-001");
    assert_eq!(body["stock"], 10);
    let (_, body) = c
        .admin(
            Method::PATCH,
            "/api/v1/products/CAM-001",
            json!({"name": "Camiseta"}),
        )
        .await;
    assert_eq!(body["name"], "Camiseta");
    assert_eq!(body["price_cents"], 3990);

    let (status, body) = c
        .admin(Method::PATCH, "/api/v1/products/NOPE", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[sqlx::test(migrations = "./migrations")]
async fn restock_adds_to_stock(pool: PgPool) {
    let c = Client::estoque(pool);
    c.product("CAM-001", 4990, 10).await;
    let (status, body) = c
        .admin(
            Method::POST,
            "/api/v1/products/CAM-001/restock",
            json!({"quantity": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stock"], 15);
    let (status, body) = c
        .admin(
            Method::POST,
            "/api/v1/products/NOPE/restock",
            json!({"quantity": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[sqlx::test(migrations = "./migrations")]
async fn list_pages_through_every_product_in_byte_order(pool: PgPool) {
    let c = Client::estoque(pool);
    // Byte order puts digits < uppercase < `_` < lowercase; `-` and `.` first.
    let skus = ["a", "B", "_x", "-1", "Z9", "9", ".dot", "b", "A"];
    for sku in skus {
        c.product(sku, 100, 1).await;
    }
    let mut expected: Vec<&str> = skus.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));

    let mut seen = Vec::new();
    let mut uri = "/api/v1/products?limit=2".to_string();
    loop {
        let (status, page) = c.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|p| p["sku"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/products?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let (_, page) = c.get("/api/v1/products").await;
    assert_eq!(page["items"].as_array().unwrap().len(), skus.len());
    assert_eq!(page["next_cursor"], Value::Null);
}

#[sqlx::test(migrations = "./migrations")]
async fn list_rejects_bad_parameters(pool: PgPool) {
    let c = Client::estoque(pool);
    for query in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "limit=-1",
        "cursor=zz",
        "cursor=",
        "color=red",
    ] {
        let (status, body) = c.get(&format!("/api/v1/products?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["code"], "validation_failed", "{query}");
    }
}

/// Sends `body` (raw text) with `content_type` as an admin and checks that the
/// answer is `status` with `code` naming `field`, and that nothing changed.
async fn rejected(
    c: &Client,
    pool: &PgPool,
    (method, uri): (Method, &str),
    content_type: &str,
    body: &str,
    status: StatusCode,
    field: Option<&str>,
) {
    let before = snapshot(pool).await;
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body.to_string()))
        .unwrap();
    let (got, problem) = c.raw(request).await;
    assert_eq!(got, status, "{uri} {body}: {problem}");
    let code = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        "unsupported_media_type"
    } else {
        "validation_failed"
    };
    assert_eq!(problem["code"], code, "{body}");
    if let Some(field) = field {
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: detail should name {field}: {problem}"
        );
    }
    assert_eq!(snapshot(pool).await, before, "{body} changed the database");
}

#[sqlx::test(migrations = "./migrations")]
async fn create_rejects_every_invalid_body(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    c.product("CAM-001", 4990, 10).await;
    let uri = "/api/v1/products";
    let json = "application/json";
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let long_sku = "A".repeat(65);
    let long_name = "n".repeat(201);
    let cases: Vec<(String, &str)> = vec![
        (r#"{"name":"N","price_cents":1}"#.into(), "sku"),
        (r#"{"sku":"N","price_cents":1}"#.into(), "name"),
        (r#"{"sku":"N","name":"N"}"#.into(), "price_cents"),
        (r#"{"sku":"","name":"N","price_cents":1}"#.into(), "sku"),
        (
            format!(r#"{{"sku":"{long_sku}","name":"N","price_cents":1}}"#),
            "sku",
        ),
        (
            r#"{"sku":"has space","name":"N","price_cents":1}"#.into(),
            "sku",
        ),
        (r#"{"sku":"a/b","name":"N","price_cents":1}"#.into(), "sku"),
        (r#"{"sku":"ção","name":"N","price_cents":1}"#.into(), "sku"),
        (r#"{"sku":7,"name":"N","price_cents":1}"#.into(), "sku"),
        (r#"{"sku":"N","name":"","price_cents":1}"#.into(), "name"),
        (r#"{"sku":"N","name":"   ","price_cents":1}"#.into(), "name"),
        (
            r#"{"sku":"N","name":"\u200b\u2800\u3164","price_cents":1}"#.into(),
            "name",
        ),
        (r#"["N","Camiseta",4990,3]"#.into(), "expected an object"),
        (
            r#"{"sku":"N","name":"A","name":"B","price_cents":1}"#.into(),
            "name",
        ),
        (
            r#"{"sku":"N","name":"a\u0000b","price_cents":1}"#.into(),
            "name",
        ),
        (
            format!(r#"{{"sku":"N","name":"{long_name}","price_cents":1}}"#),
            "name",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":-1}"#.into(),
            "price_cents",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":"1"}"#.into(),
            "price_cents",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":1.5}"#.into(),
            "price_cents",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":1000000001}"#.into(),
            "price_cents",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":99999999999999999999999}"#.into(),
            "price_cents",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":null}"#.into(),
            "price_cents",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":1,"stock":-1}"#.into(),
            "stock",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":1,"stock":2.5}"#.into(),
            "stock",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":1,"stock":1000000001}"#.into(),
            "stock",
        ),
        (
            r#"{"sku":"N","name":"N","price_cents":1,"color":"red"}"#.into(),
            "color",
        ),
        (r#"[]"#.into(), ""),
    ];
    for (body, field) in cases {
        rejected(
            &c,
            &pool,
            (Method::POST, uri),
            json,
            &body,
            unprocessable,
            Some(field),
        )
        .await;
    }
    for body in ["{", "not json", "", r#"{"sku":"N",}"#] {
        rejected(
            &c,
            &pool,
            (Method::POST, uri),
            json,
            body,
            StatusCode::BAD_REQUEST,
            None,
        )
        .await;
    }
    let body = r#"{"sku":"N","name":"N","price_cents":1}"#;
    rejected(
        &c,
        &pool,
        (Method::POST, uri),
        "text/plain",
        body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
    )
    .await;
}

#[sqlx::test(migrations = "./migrations")]
async fn patch_rejects_every_invalid_body(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    c.product("CAM-001", 4990, 10).await;
    let uri = "/api/v1/products/CAM-001";
    let cases = [
        (r#"{}"#, "body"),
        (r#"{"name":""}"#, "name"),
        (r#"{"name":"\t"}"#, "name"),
        (r#"{"price_cents":-5}"#, "price_cents"),
        (r#"{"price_cents":"5"}"#, "price_cents"),
        (r#"{"stock":5}"#, "stock"),
        (r#"{"sku":"OTHER"}"#, "sku"),
        (r#"{"name":"ok","extra":1}"#, "extra"),
        // The document says a string or absent: null is neither.
        (r#"{"name":null,"price_cents":5}"#, "name"),
        (r#"{"price_cents":null}"#, "price_cents"),
    ];
    for (body, field) in cases {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        rejected(
            &c,
            &pool,
            (Method::PATCH, uri),
            "application/json",
            body,
            status,
            Some(field),
        )
        .await;
    }
    rejected(
        &c,
        &pool,
        (Method::PATCH, uri),
        "application/json",
        "{nope",
        StatusCode::BAD_REQUEST,
        None,
    )
    .await;
}

#[sqlx::test(migrations = "./migrations")]
async fn restock_rejects_every_invalid_body(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    c.product("CAM-001", 4990, 10).await;
    let uri = "/api/v1/products/CAM-001/restock";
    let cases = [
        (r#"{}"#, "quantity"),
        (r#"{"quantity":0}"#, "quantity"),
        (r#"{"quantity":-3}"#, "quantity"),
        (r#"{"quantity":1.5}"#, "quantity"),
        (r#"{"quantity":"2"}"#, "quantity"),
        (r#"{"quantity":2.5}"#, "quantity"),
        (r#"{"quantity":1000000001}"#, "quantity"),
        (r#"{"quantity":2,"price_cents":1}"#, "price_cents"),
    ];
    for (body, field) in cases {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        rejected(
            &c,
            &pool,
            (Method::POST, uri),
            "application/json",
            body,
            status,
            Some(field),
        )
        .await;
    }
    rejected(
        &c,
        &pool,
        (Method::POST, uri),
        "application/json",
        "]",
        StatusCode::BAD_REQUEST,
        None,
    )
    .await;
}

#[sqlx::test(migrations = "./migrations")]
async fn probes_answer(pool: PgPool) {
    let c = Client::estoque(pool);
    let (status, body) = c.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["service"], "estoque");
    assert_eq!(c.get("/ready").await.0, StatusCode::OK);
    let (status, body) = c.get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[sqlx::test(migrations = "./migrations")]
async fn an_oversized_body_is_413_and_changes_nothing(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    let before = snapshot(&pool).await;
    let name = "n".repeat(70 * 1024);
    let body = json!({"sku": "BIG", "name": name, "price_cents": 1});
    let (status, problem) = c.admin(Method::POST, "/api/v1/products", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["code"], "payload_too_large");
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn metrics_label_requests_with_the_route_template(pool: PgPool) {
    let c = Client::estoque(pool);
    c.product("M-1", 1, 1).await;
    c.get("/api/v1/products/M-1").await;
    let response = c
        .app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("service=\"estoque\"")
                && l.contains("endpoint=\"/api/v1/products/{sku}\"")
        })
        .unwrap_or_else(|| panic!("no labelled counter in:\n{text}"));
    assert!(!text.contains("/api/v1/products/M-1\""), "{line}");
}
