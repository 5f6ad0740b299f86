//! Measurement 1: the catalog is seeded with ample stock, then a closed loop
//! of `POST /api/v1/orders` runs through the gateway (a unique
//! Idempotency-Key per request, random lines, card and pix), after a warm-up.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::http;
use super::wrk::{self, Load};

/// Size of the bench catalog: SKUs `BENCH-0001` to `BENCH-0300`.
pub const SKUS: u32 = 300;
/// Units each SKU starts with: no order of any run ever runs short.
pub const STOCK: u64 = 1_000_000_000;

/// The price of SKU `n`, in cents (the ceiling's seed uses the same rule).
pub fn price_cents(n: u32) -> u32 {
    990 + (n * 37) % 9000
}

/// Creates the bench catalog through the gateway; SKUs that already exist
/// (a second run against the same stack) are kept as they are.
pub fn seed(gateway: &str, token: &str) -> Result<()> {
    for n in 1..=SKUS {
        let sku = format!("BENCH-{n:04}");
        let body = format!(
            r#"{{"sku":"{sku}","name":"Bench item {n}","price_cents":{},"stock":{STOCK}}}"#,
            price_cents(n)
        );
        let (status, answer) = http::request(
            gateway,
            "POST",
            "/api/v1/products",
            Some(token),
            Some(&body),
        )?;
        if status != 201 && status != 409 {
            bail!("creating {sku}: {status} {answer}");
        }
    }
    Ok(())
}

/// One closed-loop run of orders through the gateway.
pub fn load(
    root: &Path,
    gateway: &str,
    connections: u32,
    duration: Duration,
    run_id: &str,
) -> Result<Load> {
    wrk::run(
        root,
        &wrk::Spec {
            url: gateway,
            mode: "orders",
            connections,
            duration,
            run_id,
            skus: SKUS,
        },
    )
}
