//! The order load every measurement shares: the catalog is seeded with ample
//! stock, then a closed loop of `POST /api/v1/orders` runs through the
//! gateway (a unique Idempotency-Key per request, random lines, card and pix).

use std::time::Duration;

use anyhow::{Result, bail};

use crate::Workspace;
use crate::perf::wrk::{self, Load};
use crate::util::http::{self, Request};

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
    let authority = http::authority(gateway)?;
    for n in 1..=SKUS {
        let sku = format!("BENCH-{n:04}");
        let body = format!(
            r#"{{"sku":"{sku}","name":"Bench item {n}","price_cents":{},"stock":{STOCK}}}"#,
            price_cents(n)
        );
        let answer = Request::json("POST", "/api/v1/products", body)
            .bearer(token)
            .send(authority)?;
        if answer.status != 201 && answer.status != 409 {
            bail!("creating {sku}: {} {}", answer.status, answer.body);
        }
    }
    Ok(())
}

/// One closed-loop run of orders through the gateway replicas `gateways`.
pub fn load(
    ws: &Workspace,
    gateways: &[String],
    connections: u32,
    duration: Duration,
    run_id: &str,
) -> Result<Load> {
    wrk::run(
        ws,
        &wrk::Spec {
            urls: gateways,
            mode: "orders",
            connections,
            duration,
            run_id,
            skus: SKUS,
        },
    )
}
