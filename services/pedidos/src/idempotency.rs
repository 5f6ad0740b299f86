//! Idempotency keys (IETF Idempotency-Key draft): one row per key with the
//! fingerprint of the first request and, once it has one, its response.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use loja_runtime::Problem;
use loja_runtime::db;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::error::Error;

/// The request header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` request header, as the OpenAPI document shows it.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyHeader {
    /// 1 to 255 visible ASCII characters. The same key with the same body
    /// answers the first response again (waited for while the first is still
    /// running); with another body, 422 `idempotency_key_reused`; when the
    /// first is still running at the caller's deadline, 503
    /// `idempotency_key_in_flight` with `Retry-After`. Keys are global and
    /// kept for a day.
    #[serde(rename = "Idempotency-Key")]
    #[param(schema_with = key_schema)]
    pub key: Option<String>,
}

fn key_schema() -> utoipa::openapi::schema::Object {
    loja_runtime::openapi::string(1, MAX_KEY_LEN, Some("^[\\u0021-\\u007E]+$"))
}

const DELETE_EXPIRED_KEY: &str = "DELETE FROM idempotency_keys WHERE key = $1 \
         AND created_at < now() - make_interval(hours => $2)";

const CLAIM_KEY: &str = "INSERT INTO idempotency_keys (key, fingerprint, order_id) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO NOTHING";

// Whether the order's lease lapsed: a live driver renews it before every
// call, so a lapsed lease means the request that owns the key is gone.
const SELECT_KEY: &str = "SELECT k.fingerprint, k.response_status, k.response_body, \
         o.lease_until < now() AS abandoned \
         FROM idempotency_keys k JOIN orders o ON o.id = k.order_id WHERE k.key = $1";

const COMPLETE_KEY: &str = "UPDATE idempotency_keys SET response_status = $2, response_body = $3 \
         WHERE order_id = $1 AND response_status IS NULL";

const PURGE_KEYS: &str =
    "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)";

/// Reads the `Idempotency-Key` header: absent is fine, otherwise it must be
/// 1–255 visible ASCII characters (HTTP's VCHAR) or the request is refused.
pub fn parse_key(headers: &HeaderMap) -> Result<Option<String>, Error> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || {
        Error::Invalid(
            Problem::validation(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible characters"
            ))
            .with("field", "Idempotency-Key"),
        )
    };
    if values.next().is_some() {
        return Err(invalid());
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(invalid());
    }
    // All bytes are visible ASCII, so this cannot fail.
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The fingerprint of a request body: sha256 of its canonical JSON (object
/// keys sorted at every level, no insignificant whitespace), so the same
/// request written differently is still the same request.
pub fn fingerprint(body: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(body, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// What a stored key says about a new request carrying it.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    /// The first request finished: answer exactly what it answered.
    Replay(StatusCode, Value),
    /// The first request is still running (`abandoned`: its driver is gone
    /// and the reconciler will finish the order).
    InFlight { abandoned: bool },
    /// The key was first used with a different body.
    Reused,
}

/// Records `key` for the order `order_id` inserted in the same transaction.
/// Returns `None` when this request now owns the key; otherwise the key
/// already existed and the caller must roll back its order. Concurrent
/// duplicates serialize on the primary key, so exactly one of them owns it.
/// A key older than the retention period counts as free.
pub async fn claim(
    tx: &mut Transaction<'_, Postgres>,
    key: &str,
    fingerprint: &str,
    order_id: Uuid,
    ttl_hours: u32,
) -> Result<bool, Error> {
    db::instrument(
        DELETE_EXPIRED_KEY,
        sqlx::query(DELETE_EXPIRED_KEY)
            .bind(key)
            .bind(ttl_hours as i32)
            .execute(&mut **tx),
    )
    .await?;
    let inserted = db::instrument(
        CLAIM_KEY,
        sqlx::query(CLAIM_KEY)
            .bind(key)
            .bind(fingerprint)
            .bind(order_id)
            .execute(&mut **tx),
    )
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Looks up a key that [`claim`] found taken.
pub async fn existing(db: &PgPool, key: &str, fingerprint: &str) -> Result<Existing, Error> {
    let row: Option<(String, Option<i16>, Option<Value>, bool)> = db::instrument(
        SELECT_KEY,
        sqlx::query_as(SELECT_KEY).bind(key).fetch_optional(db),
    )
    .await?;
    Ok(match row {
        // Purged between the claim and this read: the caller's retry will own it.
        None => Existing::InFlight { abandoned: true },
        Some((stored, ..)) if stored != fingerprint => Existing::Reused,
        Some((_, Some(status), Some(body), _)) => Existing::Replay(
            StatusCode::from_u16(status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        ),
        Some((.., abandoned)) => Existing::InFlight { abandoned },
    })
}

/// How often a request waiting for the first one with its key looks again.
const POLL: Duration = Duration::from_millis(25);

/// What a request may wait for before its own caller stops waiting.
const MARGIN: Duration = Duration::from_millis(100);

/// The outcome of the first request with `key`, waited for while it is in
/// flight: at most until shortly before `deadline`, and not at all once its
/// driver is gone. A request re-sent by the gateway after a replica died
/// mid-order thus gets the first attempt's answer, or [`Error::KeyInFlight`]
/// (503 with `Retry-After`) inviting a retry with the same key.
pub async fn outcome(
    db: &PgPool,
    key: &str,
    fingerprint: &str,
    deadline: Instant,
) -> Result<Existing, Error> {
    loop {
        match existing(db, key, fingerprint).await? {
            Existing::InFlight { abandoned: false }
                if Instant::now() + POLL + MARGIN < deadline =>
            {
                tokio::time::sleep(POLL).await;
            }
            other => return Ok(other),
        }
    }
}

/// Stores the first response of the order's key, if it has a key and no
/// response yet. Runs in the transaction that records the order's outcome, so
/// an outcome reached by the reconciler after a crash completes the key too.
pub async fn complete(
    tx: &mut Transaction<'_, Postgres>,
    order_id: Uuid,
    status: StatusCode,
    body: &Value,
) -> Result<(), sqlx::Error> {
    db::instrument(
        COMPLETE_KEY,
        sqlx::query(COMPLETE_KEY)
            .bind(order_id)
            .bind(status.as_u16() as i16)
            .bind(body)
            .execute(&mut **tx),
    )
    .await?;
    Ok(())
}

/// Deletes keys older than the retention period; returns how many.
pub async fn purge(db: &PgPool, ttl_hours: u32) -> Result<u64, sqlx::Error> {
    Ok(db::instrument(
        PURGE_KEYS,
        sqlx::query(PURGE_KEYS).bind(ttl_hours as i32).execute(db),
    )
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        h
    }

    #[test]
    fn key_must_be_1_to_255_visible_characters() {
        assert_eq!(parse_key(&HeaderMap::new()).unwrap(), None);
        assert_eq!(parse_key(&headers(b"k-1")).unwrap().as_deref(), Some("k-1"));
        assert!(parse_key(&headers(&[b'k'; 255])).unwrap().is_some());
        for bad in [
            &b""[..],
            &[b'k'; 256][..],
            b"has space",
            b"tab\there",
            "ção".as_bytes(),
        ] {
            let err = parse_key(&headers(bad)).unwrap_err();
            assert_eq!(Problem::from(err).status, StatusCode::UNPROCESSABLE_ENTITY);
        }
    }

    #[test]
    fn fingerprint_ignores_key_order_and_whitespace_only() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"y": [1, 2], "x": "s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[2,1]},"b":1}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint(&a).len(), 64);
    }
}
