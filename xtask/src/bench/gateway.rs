//! Measurement 3: `GET /api/v1/products/{sku}` through the gateway and
//! straight to estoque, at the same load, one after the other.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::orders::SKUS;
use super::wrk::{self, Load};

/// Both runs of the read path.
#[derive(Debug, Clone, Serialize)]
pub struct ReadPath {
    pub gateway: Load,
    pub direct: Load,
}

impl ReadPath {
    /// Gateway throughput as a share of direct throughput (200s per second).
    pub fn ratio(&self) -> f64 {
        self.gateway.rate(200) / self.direct.rate(200).max(f64::MIN_POSITIVE)
    }

    /// How much the gateway adds to p99, in milliseconds.
    pub fn p99_overhead_ms(&self) -> f64 {
        (self.gateway.p99_us as f64 - self.direct.p99_us as f64) / 1000.0
    }
}

/// Loads each target after its own warm-up.
pub fn run(
    root: &Path,
    gateway: &str,
    estoque: &str,
    connections: u32,
    warmup: Duration,
    duration: Duration,
) -> Result<ReadPath> {
    let load = |url: &str| -> Result<Load> {
        let spec = |duration| wrk::Spec {
            url,
            mode: "products",
            connections,
            duration,
            run_id: "reads",
            skus: SKUS,
        };
        if !warmup.is_zero() {
            wrk::run(root, &spec(warmup))?;
        }
        wrk::run(root, &spec(duration))
    };
    Ok(ReadPath {
        gateway: load(gateway)?,
        direct: load(estoque)?,
    })
}
