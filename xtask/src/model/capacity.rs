//! `[capacity]`: the peak the platform must carry and what sizing it needs
//! to know about the cluster, from which `cargo xtask calibrate` proposes
//! each service's CPU request, autoscaling target and replica bound.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::diagnostics::Reporter;

/// `[capacity]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCapacity {
    pub peak_orders_per_sec: Spanned<i64>,
    pub p99_objective_ms: Spanned<i64>,
    pub scale_up_lag_secs: Spanned<i64>,
    pub growth_percent_per_min: Spanned<i64>,
}

/// The peak and the cluster's pace, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// Confirmed orders per second the platform must carry at its peak.
    pub peak_orders_per_sec: u32,
    /// The order latency (p99) a replica must keep; its knee is where it stops.
    pub p99_objective_ms: u32,
    /// From the load crossing a target to a new replica serving (the HPA's
    /// sync period, scheduling, start-up, readiness).
    pub scale_up_lag_secs: u32,
    /// The fastest the load rises, in percent per minute.
    pub growth_percent_per_min: u32,
}

/// A whole number from `min` to `max`; out of range is reported (and taken as `min`).
fn bounded(rep: &mut Reporter, v: &Spanned<i64>, what: &str, min: i64, max: i64) -> u32 {
    let n = *v.get_ref();
    if (min..=max).contains(&n) {
        n as u32
    } else {
        rep.error(
            v.span(),
            &format!("{what} outside {min}-{max}"),
            &format!("an integer from {min} to {max}"),
        );
        min as u32
    }
}

/// Checks `[capacity]`.
pub(super) fn resolve(raw: &RawCapacity, rep: &mut Reporter) -> Capacity {
    Capacity {
        peak_orders_per_sec: bounded(
            rep,
            &raw.peak_orders_per_sec,
            "peak orders per second",
            1,
            1_000_000,
        ),
        p99_objective_ms: bounded(rep, &raw.p99_objective_ms, "p99 objective", 1, 60_000),
        scale_up_lag_secs: bounded(rep, &raw.scale_up_lag_secs, "scale-up lag", 1, 3600),
        growth_percent_per_min: bounded(
            rep,
            &raw.growth_percent_per_min,
            "load growth per minute",
            1,
            1000,
        ),
    }
}
