//! `[rate_limits]`: the gateway's per-client limits by route, and the
//! proxies whose `X-Forwarded-For` names the client. Every Kubernetes
//! environment renders them into the gateway's `RATE_LIMITS` and
//! `TRUSTED_PROXIES` (unless it says `rate_limits = false`); the local
//! platform (`cargo xtask up`, compose) gets them only with `local = true`,
//! so that local development and a benchmark from one host are not
//! throttled unless asked.

use std::collections::BTreeSet;

use serde::Serialize;

use super::diagnostics::Reporter;
use super::raw::RawRateLimits;

/// The validated `[rate_limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimits {
    /// Whether the local platform applies them too.
    pub local: bool,
    /// Addresses or CIDR blocks, as written.
    pub trusted_proxies: Vec<String>,
    /// Sorted by prefix.
    pub routes: Vec<RouteLimit>,
}

/// One route's token bucket per client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteLimit {
    pub prefix: String,
    pub per_second: u32,
    pub burst: u32,
}

impl RateLimits {
    /// The gateway's `RATE_LIMITS`: `prefix=PER_SECOND:BURST`, comma-separated.
    pub fn env_value(&self) -> String {
        self.routes
            .iter()
            .map(|r| format!("{}={}:{}", r.prefix, r.per_second, r.burst))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `[rate_limits]` checked against the declared `routes`.
pub(super) fn resolve(
    rep: &mut Reporter,
    raw: &RawRateLimits,
    routes: &BTreeSet<&str>,
) -> RateLimits {
    for proxy in &raw.trusted_proxies {
        if !is_address_or_cidr(proxy.get_ref()) {
            rep.error(
                proxy.span(),
                "invalid trusted proxy",
                "an IPv4 or IPv6 address or CIDR block, e.g. \"10.0.0.0/8\"",
            );
        }
    }
    let mut limits = Vec::new();
    for (prefix, limit) in &raw.routes {
        if !routes.contains(prefix.get_ref().as_str()) {
            rep.error(
                prefix.span(),
                "rate limit for an unknown route",
                &format!(
                    "a route some service declares: {}",
                    routes.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        let mut positive = |value: &toml::Spanned<i64>, what: &str| {
            u32::try_from(*value.get_ref())
                .ok()
                .filter(|v| *v > 0)
                .unwrap_or_else(|| {
                    rep.error(
                        value.span(),
                        &format!("invalid rate limit {what}"),
                        "a whole number from 1 to 4294967295",
                    );
                    1
                })
        };
        let per_second = positive(&limit.per_second, "per_second");
        let burst = positive(&limit.burst, "burst");
        limits.push(RouteLimit {
            prefix: prefix.get_ref().clone(),
            per_second,
            burst,
        });
    }
    RateLimits {
        local: raw.local,
        trusted_proxies: raw
            .trusted_proxies
            .iter()
            .map(|p| p.get_ref().clone())
            .collect(),
        routes: limits,
    }
}

fn is_address_or_cidr(text: &str) -> bool {
    let (addr, bits) = match text.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (text, None),
    };
    let Ok(addr) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    bits.is_none_or(|b| b.parse::<u8>().is_ok_and(|b| b <= max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_blocks_of_both_families_are_proxies() {
        for ok in ["10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1"] {
            assert!(is_address_or_cidr(ok), "{ok}");
        }
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0/8", "fd00::/129", ""] {
            assert!(!is_address_or_cidr(bad), "{bad}");
        }
    }
}
