//! Measurement 3: `GET /api/v1/products/{sku}` through the gateway and
//! straight to estoque, at the same load, one after the other.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::cpu;
use crate::Workspace;
use crate::native::state::Instance;
use crate::perf::orders::SKUS;
use crate::perf::wrk::{self, Load};

/// Both runs of the read path.
#[derive(Debug, Clone, Serialize)]
pub struct ReadPath {
    pub gateway: Load,
    pub direct: Load,
    /// CPU microseconds per read of each process, through the gateway.
    pub gateway_cpu_us: BTreeMap<String, f64>,
    /// The same, straight to estoque.
    pub direct_cpu_us: BTreeMap<String, f64>,
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

/// Loads each target after its own warm-up, noting the CPU each process spent.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ws: &Workspace,
    gateway: &str,
    estoque: &str,
    connections: u32,
    warmup: Duration,
    duration: Duration,
    instances: &[Instance],
    postmaster: Option<u32>,
) -> Result<ReadPath> {
    let load = |url: &str| -> Result<(Load, BTreeMap<String, f64>)> {
        let urls = [url.to_owned()];
        let spec = |duration| wrk::Spec {
            urls: &urls,
            mode: "products",
            connections,
            duration,
            run_id: "reads",
            skus: SKUS,
        };
        if !warmup.is_zero() {
            wrk::run(ws, &spec(warmup))?;
        }
        let before = cpu::snapshot(instances, postmaster);
        let measured = wrk::run(ws, &spec(duration))?;
        let after = cpu::snapshot(instances, postmaster);
        let per_read = cpu::per_order(&before, &after, measured.requests)
            .into_iter()
            .map(|(k, ms)| (k, ms * 1000.0))
            .collect();
        Ok((measured, per_read))
    };
    let (gateway, gateway_cpu_us) = load(gateway)?;
    let (direct, direct_cpu_us) = load(estoque)?;
    Ok(ReadPath {
        gateway,
        direct,
        gateway_cpu_us,
        direct_cpu_us,
    })
}
