//! Charges, refunds and reads of pagamentos, with every validation rule and
//! proof that a rejected request changed nothing.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TOKEN, charge, payments, snapshot};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

fn order() -> String {
    Uuid::now_v7().to_string()
}

#[sqlx::test(migrations = "./migrations")]
async fn an_approved_card_charge_is_201_and_readable(pool: PgPool) {
    let c = payments(pool);
    let id = order();
    let (status, body) = c
        .internal(
            "/internal/payments",
            Some(charge(&id, 14970, "card", Some("tok_visa"))),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["order_id"], id.as_str());
    assert_eq!(body["amount_cents"], 14970);
    assert_eq!(body["method"], "card");
    assert_eq!(body["status"], "approved");
    assert!(body.get("decline_reason").is_none());
    assert!(body.get("token").is_none(), "the token is never echoed");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();

    let (status, got) = c
        .get(&format!(
            "/api/v1/payments/{}",
            body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, body);
}

#[sqlx::test(migrations = "./migrations")]
async fn outcomes_follow_the_test_token_table(pool: PgPool) {
    let c = payments(pool);
    let cases = [
        ("card", Some("tok_visa"), "approved", None),
        ("card", Some("tok_mastercard"), "approved", None),
        ("card", Some("tok_amex_123"), "approved", None),
        (
            "card",
            Some("tok_chargeDeclined"),
            "declined",
            Some("card_declined"),
        ),
        (
            "card",
            Some("tok_insufficientFunds"),
            "declined",
            Some("insufficient_funds"),
        ),
        ("pix", None, "approved", None),
    ];
    for (method, token, status, reason) in cases {
        let (code, body) = c
            .internal(
                "/internal/payments",
                Some(charge(&order(), 100, method, token)),
            )
            .await;
        assert_eq!(code, StatusCode::CREATED, "{body}");
        assert_eq!(body["status"], status, "{token:?}");
        assert_eq!(
            body.get("decline_reason").and_then(Value::as_str),
            reason,
            "{token:?}"
        );
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn a_retry_returns_the_first_payment(pool: PgPool) {
    let c = payments(pool.clone());
    for token in ["tok_visa", "tok_chargeDeclined"] {
        let body = charge(&order(), 500, "card", Some(token));
        let (_, first) = c.internal("/internal/payments", Some(body.clone())).await;
        let (status, again) = c.internal("/internal/payments", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(again, first);
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_retry_with_a_different_charge_is_a_conflict(pool: PgPool) {
    let c = payments(pool.clone());
    let id = order();
    c.internal(
        "/internal/payments",
        Some(charge(&id, 500, "card", Some("tok_visa"))),
    )
    .await;
    let before = snapshot(&pool).await;
    for body in [
        charge(&id, 501, "card", Some("tok_visa")),
        charge(&id, 500, "card", Some("tok_mastercard")),
        charge(&id, 500, "pix", None),
    ] {
        let (status, problem) = c.internal("/internal/payments", Some(body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert_eq!(problem["code"], "conflict");
    }
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn charge_rejects_every_invalid_body(pool: PgPool) {
    let c = payments(pool.clone());
    let id = order();
    let long = format!("tok_{}", "a".repeat(61));
    let cases: Vec<(Value, &str)> = vec![
        (json!({"amount_cents": 1, "method": "pix"}), "order_id"),
        (
            json!({"order_id": "o-1", "amount_cents": 1, "method": "pix"}),
            "order_id",
        ),
        (json!({"order_id": id, "method": "pix"}), "amount_cents"),
        (
            json!({"order_id": id, "amount_cents": -1, "method": "pix"}),
            "amount_cents",
        ),
        (
            json!({"order_id": id, "amount_cents": 1.5, "method": "pix"}),
            "amount_cents",
        ),
        (
            json!({"order_id": id, "amount_cents": "100", "method": "pix"}),
            "amount_cents",
        ),
        (
            json!({"order_id": id, "amount_cents": 100_000_000_000_001_i64, "method": "pix"}),
            "amount_cents",
        ),
        (json!({"order_id": id, "amount_cents": 1}), "method"),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "boleto"}),
            "method",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "CARD", "token": "tok_visa"}),
            "method",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card"}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card", "token": null}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card", "token": "visa"}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card", "token": "tok_"}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card", "token": "tok_ visa"}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card", "token": long}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "card", "token": 7}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "pix", "token": "tok_visa"}),
            "token",
        ),
        (
            json!({"order_id": id, "amount_cents": 1, "method": "pix", "currency": "BRL"}),
            "currency",
        ),
    ];
    let before = snapshot(&pool).await;
    for (body, field) in cases {
        let (status, problem) = c.internal("/internal/payments", Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["code"], "validation_failed", "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: should name {field}: {problem}"
        );
    }
    for (content_type, body, status, code) in [
        (
            "application/json",
            "{\"order_id\"",
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "text/plain",
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/internal/payments")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let (got, problem) = c.raw(request).await;
        assert_eq!(got, status);
        assert_eq!(problem["code"], code);
    }
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn refund_is_idempotent(pool: PgPool) {
    let c = payments(pool);
    let (_, paid) = c
        .internal(
            "/internal/payments",
            Some(charge(&order(), 900, "pix", None)),
        )
        .await;
    let uri = format!("/internal/payments/{}/refund", paid["id"].as_str().unwrap());
    let (status, first) = c.internal(&uri, None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "refunded");
    assert_eq!(first["id"], paid["id"]);
    assert!(first["refunded_at"].is_string());
    let (status, again) = c.internal(&uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, first);
}

#[sqlx::test(migrations = "./migrations")]
async fn refunding_a_declined_payment_is_a_conflict(pool: PgPool) {
    let c = payments(pool.clone());
    let (_, declined) = c
        .internal(
            "/internal/payments",
            Some(charge(&order(), 900, "card", Some("tok_chargeDeclined"))),
        )
        .await;
    let before = snapshot(&pool).await;
    let uri = format!(
        "/internal/payments/{}/refund",
        declined["id"].as_str().unwrap()
    );
    let (status, problem) = c.internal(&uri, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "conflict");
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn unknown_payments_are_404(pool: PgPool) {
    let c = payments(pool);
    for id in [Uuid::now_v7().to_string(), "not-a-uuid".to_string()] {
        let (status, body) = c.get(&format!("/api/v1/payments/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
        let (status, body) = c
            .internal(&format!("/internal/payments/{id}/refund"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn listing_by_order_is_public(pool: PgPool) {
    let c = payments(pool);
    let id = order();
    let (_, paid) = c
        .internal("/internal/payments", Some(charge(&id, 900, "pix", None)))
        .await;
    c.internal("/internal/payments", Some(charge(&order(), 1, "pix", None)))
        .await;
    let (status, page) = c.get(&format!("/api/v1/payments?order_id={id}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!([paid]));
    assert_eq!(page["next_cursor"], Value::Null);

    let (status, page) = c
        .get(&format!("/api/v1/payments?order_id={}", order()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"], json!([]));
}

#[sqlx::test(migrations = "./migrations")]
async fn listing_everything_needs_the_admin_token(pool: PgPool) {
    let c = payments(pool);
    c.internal("/internal/payments", Some(charge(&order(), 1, "pix", None)))
        .await;
    for token in [None, Some("wrong")] {
        let (status, body) = c.send(Method::GET, "/api/v1/payments", None, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["code"], "unauthorized");
    }
    let (status, page) = c
        .send(Method::GET, "/api/v1/payments", None, Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[sqlx::test(migrations = "./migrations")]
async fn listing_pages_newest_first(pool: PgPool) {
    let c = payments(pool);
    let mut created = Vec::new();
    for i in 0..7 {
        let (_, p) = c
            .internal(
                "/internal/payments",
                Some(charge(&order(), 100 + i, "pix", None)),
            )
            .await;
        created.push(p["id"].as_str().unwrap().to_string());
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut uri = "/api/v1/payments?limit=3".to_string();
    loop {
        let (status, page) = c.send(Method::GET, &uri, None, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/v1/payments?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
}

#[sqlx::test(migrations = "./migrations")]
async fn listing_rejects_bad_parameters(pool: PgPool) {
    let c = payments(pool);
    for query in [
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=nope",
        "order_id=o-1",
        "status=approved",
    ] {
        let uri = format!("/api/v1/payments?{query}");
        let (status, body) = c.send(Method::GET, &uri, None, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(body["code"], "validation_failed", "{query}");
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn probes_answer(pool: PgPool) {
    let c = payments(pool);
    let (status, body) = c.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["service"], "pagamentos");
    assert_eq!(c.get("/ready").await.0, StatusCode::OK);
}

#[sqlx::test(migrations = "./migrations")]
async fn an_oversized_body_is_413_and_changes_nothing(pool: PgPool) {
    let c = payments(pool.clone());
    let before = snapshot(&pool).await;
    let mut body = charge(&order(), 1, "card", None);
    body["token"] = json!(format!("tok_{}", "a".repeat(70 * 1024)));
    let (status, problem) = c.internal("/internal/payments", Some(body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{problem}");
    assert_eq!(problem["code"], "payload_too_large");
    assert_eq!(snapshot(&pool).await, before);
}
