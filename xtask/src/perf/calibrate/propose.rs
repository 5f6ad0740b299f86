//! The arithmetic of a calibration: from what one replica of a service
//! costs and where its latency leaves the objective, the CPU request,
//! autoscaling target and replica bound that carry `[capacity]`'s peak.
//!
//! - The knee is the highest order rate at which one replica of every
//!   service kept the p99 objective; a service's CPU at the knee is its CPU
//!   per order times that rate (ms of CPU per second = millicores).
//! - `requests.cpu_millis` is that CPU, rounded up to 10 m: at the knee a
//!   replica runs at 100 % of its request.
//! - The load may rise by `growth_percent_per_min` while a new replica takes
//!   `scale_up_lag_secs` to serve, a factor of g = (1 + growth)^(lag / 60).
//!   Scaling at `cpu_percent` = 100 / g (floored, 10-95) leaves that much
//!   room: when the new replicas serve, the old ones are at most at the knee.
//! - One replica at the target carries knee × cpu_percent / 100 orders/s;
//!   `replicas.max` = ceil(peak / that), and never below the highest
//!   `replicas.min` any environment declares.

use serde::Serialize;

use crate::model::Capacity;

/// What one service was measured at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    pub service: String,
    /// CPU (user + system) per confirmed order, in ms.
    pub cpu_ms_per_order: f64,
    /// Requests it served per order (its share of the order's calls).
    pub requests_per_order: f64,
    /// The highest order rate at which the p99 kept the objective.
    pub knee_orders_per_sec: f64,
    /// The highest `replicas.min` of the service in any environment: the
    /// bound never goes below it.
    pub replicas_min: u32,
}

impl Measured {
    /// CPU per request, in ms.
    pub fn cpu_ms_per_request(&self) -> f64 {
        self.cpu_ms_per_order / self.requests_per_order.max(f64::MIN_POSITIVE)
    }

    /// Its CPU at the knee, in millicores.
    pub fn knee_millicores(&self) -> f64 {
        self.cpu_ms_per_order * self.knee_orders_per_sec
    }
}

/// What a service should declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Proposal {
    pub cpu_millis: u32,
    pub cpu_percent: u8,
    pub replicas_max: u32,
}

/// The factor by which the load may grow while a replica is added.
pub fn growth_over_lag(c: &Capacity) -> f64 {
    (1.0 + f64::from(c.growth_percent_per_min) / 100.0).powf(f64::from(c.scale_up_lag_secs) / 60.0)
}

/// The autoscaling target that leaves room for the growth over the lag.
pub fn cpu_percent(c: &Capacity) -> u8 {
    (100.0 / growth_over_lag(c)).floor().clamp(10.0, 95.0) as u8
}

/// The proposal for one measured service.
pub fn propose(m: &Measured, c: &Capacity) -> Proposal {
    let cpu_millis = ((m.knee_millicores() / 10.0).ceil() as u32).max(1) * 10;
    let cpu_percent = cpu_percent(c);
    let per_replica = m.knee_orders_per_sec * f64::from(cpu_percent) / 100.0;
    let needed = (f64::from(c.peak_orders_per_sec) / per_replica.max(f64::MIN_POSITIVE)).ceil();
    Proposal {
        cpu_millis,
        cpu_percent,
        replicas_max: (needed as u32).max(m.replicas_min).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(peak: u32, lag: u32, growth: u32) -> Capacity {
        Capacity {
            peak_orders_per_sec: peak,
            p99_objective_ms: 25,
            scale_up_lag_secs: lag,
            growth_percent_per_min: growth,
        }
    }

    fn measured(cpu_ms: f64, knee: f64) -> Measured {
        Measured {
            service: "pedidos".into(),
            cpu_ms_per_order: cpu_ms,
            requests_per_order: 2.0,
            knee_orders_per_sec: knee,
            replicas_min: 2,
        }
    }

    #[test]
    fn the_target_leaves_room_for_the_growth_over_the_lag() {
        // 50 %/min over 60 s: 1.5×, so scale at 66 %.
        assert_eq!(cpu_percent(&capacity(100, 60, 50)), 66);
        // 50 %/min over 30 s: √1.5 = 1.22×, 81 %.
        assert_eq!(cpu_percent(&capacity(100, 30, 50)), 81);
        // Faster growth lowers it, never below 10 %; slow growth stays at 95 %.
        assert_eq!(cpu_percent(&capacity(100, 600, 100)), 10);
        assert_eq!(cpu_percent(&capacity(100, 1, 1)), 95);
    }

    #[test]
    fn request_and_bound_follow_from_the_knee_and_the_peak() {
        // 2.5 ms per order at a knee of 200 orders/s: 500 m at the knee.
        let m = measured(2.5, 200.0);
        assert_eq!(m.knee_millicores(), 500.0);
        assert_eq!(m.cpu_ms_per_request(), 1.25);
        // Scaling at 66 %, one replica carries 132 orders/s: 1000/s needs 8.
        let p = propose(&m, &capacity(1000, 60, 50));
        assert_eq!(
            p,
            Proposal {
                cpu_millis: 500,
                cpu_percent: 66,
                replicas_max: 8
            }
        );
        // Requests round up to 10 m; a small peak keeps replicas.min.
        let p = propose(&measured(0.123, 100.0), &capacity(10, 60, 50));
        assert_eq!((p.cpu_millis, p.replicas_max), (20, 2));
    }
}
