//! `[slos.NAME]`: service level objectives, each over one service's
//! requests (or a group of its route templates): an availability objective
//! (the share of answers that are not 5xx) and, optionally, a latency
//! objective (the share faster than a threshold), both over a window of days.
//! The rules of an objective live here; the recording rules, burn-rate
//! alerts and their tests are rendered from the [`Slo`] it gives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Service;
use super::diagnostics::Reporter;
use super::resolve::check_name;

/// One `[slos.NAME]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    pub service: Spanned<String>,
    /// Route templates of the service (`/api/v1/orders/{id}`); none: all.
    #[serde(default)]
    pub endpoints: Vec<Spanned<String>>,
    pub window_days: Spanned<u32>,
    pub availability_percent: Spanned<f64>,
    pub latency: Option<RawLatency>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    pub threshold_ms: Spanned<u32>,
    pub percent: Spanned<f64>,
}

/// One service level objective, ready for the templates.
#[derive(Debug, Clone, Serialize)]
pub struct Slo {
    pub name: String,
    pub service: String,
    pub endpoints: Vec<String>,
    /// The PromQL label matchers of the requests it counts.
    pub selector: String,
    /// An endpoint the generated rule tests give their synthetic series.
    pub sample_endpoint: String,
    pub window_days: u32,
    /// [`TEST_REQUESTS_PER_MINUTE`], for the rule tests' template.
    pub test_requests_per_minute: u64,
    /// Availability first, then latency when set.
    pub objectives: Vec<Objective>,
}

/// One objective of an SLO and what its rules and tests need.
#[derive(Debug, Clone, Serialize)]
pub struct Objective {
    /// `availability` or `latency`: the middle of its recording rule names.
    pub kind: &'static str,
    /// `Availability` or `Latency`: the middle of its alert names.
    pub alert: &'static str,
    pub percent: f64,
    /// The error budget, `1 - percent / 100`, as a PromQL number.
    pub budget: String,
    /// The latency threshold: the histogram bucket `le` it reads, in ms too.
    pub le: Option<String>,
    pub threshold_ms: Option<u32>,
    /// Bad requests per minute, out of [`TEST_REQUESTS_PER_MINUTE`], of the
    /// rule tests: a fast burn (20x the budget: pages), a slow one (4x:
    /// tickets, never pages) and a quiet one (0.2x: neither).
    pub fast_bad: u64,
    pub slow_bad: u64,
    pub quiet_bad: u64,
}

/// The request rate of the generated rule tests' synthetic series.
const TEST_REQUESTS_PER_MINUTE: u64 = 100_000;

/// The bucket bounds of `http_request_duration_seconds` in whole
/// milliseconds (services/runtime/src/metrics.rs): a latency threshold is
/// one of them, or the bucket counts could not measure it.
const BUCKETS_MS: [u32; 12] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Every SLO of `raw`, sorted by name.
pub(super) fn resolve(
    rep: &mut Reporter,
    raw: &BTreeMap<Spanned<String>, RawSlo>,
    services: &[Service],
) -> Vec<Slo> {
    raw.iter()
        .map(|(key, slo)| resolve_one(rep, key, slo, services))
        .collect()
}

fn resolve_one(
    rep: &mut Reporter,
    key: &Spanned<String>,
    raw: &RawSlo,
    services: &[Service],
) -> Slo {
    check_name(rep, key, "SLO name");
    let service = raw.service.get_ref();
    let owner = services.iter().find(|s| s.name == *service);
    if owner.is_none() {
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        rep.error(
            raw.service.span(),
            "the SLO names an undeclared service",
            &format!("one of: {}", names.join(", ")),
        );
    }
    check_endpoints(rep, raw, owner, services);
    check_window(rep, &raw.window_days);
    let mut objectives = vec![objective(
        rep,
        "availability",
        "Availability",
        &raw.availability_percent,
    )];
    if let Some(latency) = &raw.latency {
        let mut o = objective(rep, "latency", "Latency", &latency.percent);
        let ms = *latency.threshold_ms.get_ref();
        if !BUCKETS_MS.contains(&ms) {
            rep.error(
                latency.threshold_ms.span(),
                "the latency threshold is not a bucket bound of http_request_duration_seconds",
                &format!("one of (ms): {BUCKETS_MS:?}"),
            );
        }
        o.le = Some(format!("{}", f64::from(ms) / 1000.0));
        o.threshold_ms = Some(ms);
        objectives.push(o);
    }
    let endpoints: Vec<String> = raw.endpoints.iter().map(|e| e.get_ref().clone()).collect();
    let mut selector = format!("service=\"{service}\"");
    if !endpoints.is_empty() {
        let escaped: Vec<String> = endpoints
            .iter()
            .map(|e| e.replace('{', "\\\\{").replace('}', "\\\\}"))
            .collect();
        selector.push_str(&format!(",endpoint=~\"{}\"", escaped.join("|")));
    }
    let sample_endpoint = endpoints
        .first()
        .cloned()
        .or_else(|| owner.and_then(|s| s.routes.first().cloned()))
        .unwrap_or_else(|| "/".into());
    Slo {
        name: key.get_ref().clone(),
        service: service.clone(),
        endpoints,
        selector,
        sample_endpoint,
        window_days: *raw.window_days.get_ref(),
        test_requests_per_minute: TEST_REQUESTS_PER_MINUTE,
        objectives,
    }
}

/// An endpoint is a route template under a prefix the service serves (the
/// gateway: any service's), so it can match what the service counts.
fn check_endpoints(rep: &mut Reporter, raw: &RawSlo, owner: Option<&Service>, all: &[Service]) {
    let Some(owner) = owner else { return };
    let prefixes: Vec<&str> = if owner.is_gateway {
        all.iter()
            .flat_map(|s| s.routes.iter().map(String::as_str))
            .collect()
    } else {
        owner.routes.iter().map(String::as_str).collect()
    };
    for e in &raw.endpoints {
        let path = e.get_ref();
        let under = prefixes
            .iter()
            .any(|p| path == p || path.starts_with(&format!("{p}/")));
        let well_formed = path.starts_with('/')
            && !path.contains(['"', '\\', '|', '*', '(', ')', '?'])
            && !path.ends_with('/');
        if !well_formed || !under {
            rep.error(
                e.span(),
                &format!(
                    "`{path}` is not a public route template of `{}`",
                    owner.name
                ),
                &format!(
                    "a template such as \"/api/v1/orders/{{id}}\" under one of: {}",
                    prefixes.join(", ")
                ),
            );
        }
    }
}

/// The burn-rate factors assume windows of weeks: a week to a quarter.
fn check_window(rep: &mut Reporter, days: &Spanned<u32>) {
    if !(7..=90).contains(days.get_ref()) {
        rep.error(
            days.span(),
            "SLO window out of range",
            "7 to 90 days (the burn-rate alerts are tuned for windows of weeks)",
        );
    }
}

/// An objective of `percent`: from 90 to 99.99, so that its budget is one
/// the synthetic tests (and five-minute windows) can resolve.
fn objective(
    rep: &mut Reporter,
    kind: &'static str,
    alert: &'static str,
    percent: &Spanned<f64>,
) -> Objective {
    let p = *percent.get_ref();
    let in_range = (90.0..=99.99).contains(&p);
    if !in_range {
        rep.error(
            percent.span(),
            &format!("{kind} objective out of range"),
            "a percentage from 90 to 99.99, e.g. 99.5",
        );
    }
    // In units of 0.01 %: the budget is exact, whatever the float's digits.
    let budget_basis = if in_range {
        (10_000.0 - (p * 100.0).round()) as u64
    } else {
        50
    };
    let bad = |times_tenths: u64| TEST_REQUESTS_PER_MINUTE * budget_basis * times_tenths / 100_000;
    Objective {
        kind,
        alert,
        percent: p,
        budget: format!("{}", budget_basis as f64 / 10_000.0),
        le: None,
        threshold_ms: None,
        fast_bad: bad(200),
        slow_bad: bad(40),
        quiet_bad: bad(2),
    }
}
