//! pedidos' HTTP surface in process: validation before anything is stored,
//! idempotency replays, reads, listing and cancel rules. estoque and
//! pagamentos are unreachable here, so a valid order ends `failed` with 503.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};
use sqlx::PgPool;

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn bad_orders_are_refused_and_store_nothing(db: PgPool) {
    let router = router(db.clone());
    let cases: Vec<(String, StatusCode, Option<&str>)> = vec![
        ("{nope".into(), StatusCode::BAD_REQUEST, None),
        (
            VALID.replace(r#""quantity":2"#, r#""quantity":0"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].quantity"),
        ),
        (
            VALID.replace(r#""quantity":2"#, r#""quantity":2,"unit_price_cents":1"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].unit_price_cents"),
        ),
        (
            VALID.replace(r#""c-42""#, r#""""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("customer_id"),
        ),
        (
            VALID.replace(r#""tok_visa""#, r#""visa""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("payment.token"),
        ),
        (
            VALID.replace(r#""quantity":2"#, r#""quantity":"2""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].quantity"),
        ),
        // Text that shows nothing is no customer.
        (
            VALID.replace(r#""c-42""#, r#""   ""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("customer_id"),
        ),
        (
            VALID.replace(r#""c-42""#, r#""\u200b\u3164""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("customer_id"),
        ),
        // Tokens pagamentos would refuse are refused here, as the client's error.
        (
            VALID.replace(r#""tok_visa""#, r#""tok_""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("payment.token"),
        ),
        (
            VALID.replace(r#""tok_visa""#, r#""tok_vi-sa""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("payment.token"),
        ),
        // JSON that must not be read as an order.
        (format!("{VALID} xyz"), StatusCode::BAD_REQUEST, None),
        (format!("{VALID}{{}}"), StatusCode::BAD_REQUEST, None),
        (
            VALID.replace(r#""c-42","#, r#""c-42","customer_id":"c-43","#),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
        (
            VALID.replace(r#"{"sku":"CAM-001","quantity":2}"#, r#"["CAM-001",2]"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0]"),
        ),
        (
            r#"["c-42",[{"sku":"CAM-001","quantity":2}],{"method":"pix"}]"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
        ),
    ];
    for (body, status, field) in cases {
        let reply = send(&router, post_order(&body, Some("k-bad"))).await;
        assert_eq!(reply.status, status, "{body}: {:?}", reply.body);
        assert_eq!(reply.content_type, "application/problem+json");
        assert_eq!(reply.body["code"], "validation_failed");
        assert!(reply.body.get("order_id").is_none(), "{:?}", reply.body);
        if let Some(field) = field {
            assert_eq!(reply.body["field"], field, "{body}");
        }
    }
    assert_eq!(count_orders(&db).await, 0);
    assert_eq!(count_keys(&db).await, 0);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn non_json_content_type_is_415(db: PgPool) {
    let router = router(db.clone());
    let request = axum::http::Request::post("/api/v1/orders")
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(VALID))
        .unwrap();
    let reply = send(&router, request).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(count_orders(&db).await, 0);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_compressed_body_is_415(db: PgPool) {
    let router = router(db.clone());
    let request = axum::http::Request::post("/api/v1/orders")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(axum::body::Body::from(VALID))
        .unwrap();
    let reply = send(&router, request).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.body["code"], "unsupported_media_type");
    assert_eq!(count_orders(&db).await, 0);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn listing_parameters_the_database_would_refuse_are_422(db: PgPool) {
    let router = router(db.clone());
    for uri in [
        "/api/v1/orders?customer_id=c%0042",
        "/api/v1/orders?customer_id=%20%20",
        // Before any year PostgreSQL stores, and after any order's.
        "/api/v1/orders?cursor=-250000000000000000.0190a0b0c0d0e0f00000000000000000",
        "/api/v1/orders?cursor=300000000000000000.0190a0b0c0d0e0f00000000000000000",
    ] {
        let reply = send(&router, get(uri, Some(common::TOKEN))).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {:?}",
            reply.body
        );
        assert_eq!(reply.content_type, "application/problem+json");
    }
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn bad_idempotency_keys_are_422_before_storing(db: PgPool) {
    let router = router(db.clone());
    let long = "k".repeat(256);
    for key in ["", long.as_str(), "with space"] {
        let reply = send(&router, post_order(VALID, Some(key))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{key:?}");
        assert_eq!(reply.body["code"], "validation_failed");
    }
    assert_eq!(count_orders(&db).await, 0);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn an_unreachable_estoque_fails_the_order_with_503_naming_it(db: PgPool) {
    let router = router(db.clone());
    let reply = send(&router, post_order(VALID, None)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert_eq!(reply.body["code"], "upstream_unavailable");
    // Written for the client: no address, no library's words.
    let detail = reply.body["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        "a service this order needs is unavailable; try again shortly"
    );
    let id = reply.body["order_id"].as_str().unwrap().to_owned();

    let order = send(&router, get(&format!("/api/v1/orders/{id}"), None)).await;
    assert_eq!(order.status, StatusCode::OK);
    assert_eq!(order.body["status"], "failed");
    assert_eq!(order.body["failure"]["code"], "upstream_unavailable");
    assert_eq!(order.body["failure"]["detail"], detail);
    assert_eq!(order.body["items"][0]["sku"], "CAM-001");

    let metrics = send(&router, get("/metrics", None)).await;
    let text = String::from_utf8(metrics.raw).unwrap();
    assert!(
        text.contains(r#"pedidos_orders_total{status="failed"}"#),
        "{text}"
    );
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn same_key_and_body_replays_the_first_response_exactly(db: PgPool) {
    let router = router(db.clone());
    let first = send(&router, post_order(VALID, Some("key-1"))).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE);
    // The same request written differently (key order, spacing) is the same request.
    let reordered: Value = serde_json::from_str(VALID).unwrap();
    let reordered = json!({
        "payment": reordered["payment"],
        "items": reordered["items"],
        "customer_id": reordered["customer_id"],
    })
    .to_string();
    for body in [VALID.to_owned(), reordered] {
        let again = send(&router, post_order(&body, Some("key-1"))).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.body, first.body);
        assert_eq!(again.content_type, "application/problem+json");
    }
    assert_eq!(count_orders(&db).await, 1);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn same_key_with_another_body_is_422_reused(db: PgPool) {
    let router = router(db.clone());
    send(&router, post_order(VALID, Some("key-2"))).await;
    let other = VALID.replace("c-42", "c-43");
    let reply = send(&router, post_order(&other, Some("key-2"))).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.body["code"], "idempotency_key_reused");
    assert!(reply.body.get("order_id").is_none());
    assert_eq!(count_orders(&db).await, 1);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn concurrent_requests_with_one_key_create_one_order(db: PgPool) {
    let router = router(db.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let router = router.clone();
        tasks.spawn(async move { send(&router, post_order(VALID, Some("key-4"))).await });
    }
    let mut statuses = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        // Every duplicate waits for the first one's outcome: the same 503.
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert_ne!(reply.body["code"], "idempotency_key_in_flight", "{reply:?}");
        statuses.push(reply.status);
    }
    assert!(statuses.contains(&StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(count_orders(&db).await, 1);
    assert_eq!(count_keys(&db).await, 1);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn unknown_or_malformed_order_ids_are_404(db: PgPool) {
    let router = router(db);
    for uri in [
        format!("/api/v1/orders/{}", uuid::Uuid::now_v7()),
        "/api/v1/orders/not-a-uuid".to_owned(),
    ] {
        let reply = send(&router, get(&uri, None)).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(reply.body["code"], "not_found");
        let reply = send(&router, post_empty(&format!("{uri}/cancel"))).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
    }
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn failed_and_pending_orders_cannot_be_cancelled(db: PgPool) {
    let router = router(db.clone());
    let failed = send(&router, post_order(VALID, None)).await;
    let id = failed.body["order_id"].as_str().unwrap();
    let reply = send(&router, post_empty(&format!("/api/v1/orders/{id}/cancel"))).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.body["code"], "conflict");

    let pending = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, items, payment_method) VALUES ($1, 'c', '[]', 'pix')",
    )
    .bind(pending)
    .execute(&db)
    .await
    .unwrap();
    let reply = send(
        &router,
        post_empty(&format!("/api/v1/orders/{pending}/cancel")),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    let order = send(&router, get(&format!("/api/v1/orders/{pending}"), None)).await;
    assert_eq!(order.body["status"], "pending");
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn listing_needs_the_admin_token_and_pages_newest_first(db: PgPool) {
    let router = router(db.clone());
    for i in 0..5 {
        let customer = if i % 2 == 0 { "c-even" } else { "c-odd" };
        sqlx::query(
            "INSERT INTO orders (id, customer_id, items, payment_method, created_at) \
             VALUES ($1, $2, '[]', 'pix', now() - make_interval(secs => $3))",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(customer)
        .bind(f64::from(10 - i))
        .execute(&db)
        .await
        .unwrap();
    }
    let reply = send(&router, get("/api/v1/orders", None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);

    let mut seen = Vec::new();
    let mut uri = "/api/v1/orders?customer_id=c-even&limit=2".to_owned();
    loop {
        let page = send(&router, get(&uri, Some(TOKEN))).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            assert_eq!(item["customer_id"], "c-even");
            seen.push(item["created_at"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/orders?customer_id=c-even&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");

    let all = send(&router, get("/api/v1/orders?limit=200", Some(TOKEN))).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    // Empty parameters, as in `?customer_id=&limit=&cursor=`, count as absent.
    let blank = send(
        &router,
        get("/api/v1/orders?customer_id=&limit=&cursor=", Some(TOKEN)),
    )
    .await;
    assert_eq!(blank.status, StatusCode::OK);
    assert_eq!(blank.body["items"].as_array().unwrap().len(), 5);
    for bad in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "cursor=zzz",
        "colour=red",
    ] {
        let reply = send(&router, get(&format!("/api/v1/orders?{bad}"), Some(TOKEN))).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}
