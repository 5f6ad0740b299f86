//! Per-client rate limits, per route: a token bucket (governor's keyed
//! limiter) for each client of each limited route prefix. The client is the
//! peer address or, when the peer is a trusted proxy, the first
//! `X-Forwarded-For` hop counted from the right that is not one. Over the
//! limit: 429 `rate_limited` with `Retry-After` and the IETF draft's
//! `RateLimit` / `RateLimit-Policy` headers. Buckets that refilled are
//! dropped every [`SWEEP`], so the set of keys stays as small as the
//! clients of the last refill window.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use loja_runtime::Problem;
use loja_runtime::problem::Code;

/// How often refilled buckets are forgotten.
pub const SWEEP: Duration = Duration::from_secs(30);

static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// One route's limit: `per_second` tokens refill a bucket of `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Limit {
    /// The draft's policy: `burst` requests per window of the time a bucket
    /// takes to refill from empty.
    fn window_secs(&self) -> u32 {
        self.burst.get().div_ceil(self.per_second.get())
    }
}

struct Route {
    limit: Limit,
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

/// Every limited route prefix and the proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Default)]
pub struct RateLimits {
    routes: Arc<BTreeMap<String, Route>>,
    trusted: Arc<Vec<IpNet>>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("trusted", &self.trusted)
            .finish()
    }
}

impl RateLimits {
    /// Limits for `routes` (prefix and limit), believing `X-Forwarded-For`
    /// from peers in `trusted`. Within a Tokio runtime, a task forgets
    /// refilled buckets every [`SWEEP`] for as long as the limits live.
    pub fn new(routes: impl IntoIterator<Item = (String, Limit)>, trusted: Vec<IpNet>) -> Self {
        let routes: BTreeMap<String, Route> = routes
            .into_iter()
            .map(|(prefix, limit)| {
                let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
                let limiter = RateLimiter::keyed(quota);
                (prefix, Route { limit, limiter })
            })
            .collect();
        let limits = RateLimits {
            routes: Arc::new(routes),
            trusted: Arc::new(trusted),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !limits.routes.is_empty()
        {
            let routes = Arc::downgrade(&limits.routes);
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(SWEEP);
                loop {
                    tick.tick().await;
                    let Some(routes) = routes.upgrade() else {
                        return;
                    };
                    for route in routes.values() {
                        route.limiter.retain_recent();
                        route.limiter.shrink_to_fit();
                    }
                }
            });
        }
        limits
    }

    /// Parses `RATE_LIMITS` (`prefix=PER_SECOND:BURST,...`) and
    /// `TRUSTED_PROXIES` (comma-separated addresses or CIDR blocks).
    pub fn parse(limits: &str, trusted: &str) -> anyhow::Result<Self> {
        let mut routes = Vec::new();
        for entry in limits.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry.split_once('=').and_then(|(prefix, rate)| {
                let (per_second, burst) = rate.split_once(':')?;
                Some((
                    prefix.trim().to_owned(),
                    Limit {
                        per_second: per_second.trim().parse().ok()?,
                        burst: burst.trim().parse().ok()?,
                    },
                ))
            });
            routes.push(parsed.with_context(|| {
                format!(
                    "RATE_LIMITS entry {entry:?} is not prefix=PER_SECOND:BURST (both at least 1)"
                )
            })?);
        }
        let trusted = trusted
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .with_context(|| {
                        format!("TRUSTED_PROXIES entry {t:?} is not an address or CIDR block")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self::new(routes, trusted))
    }

    /// The limited route prefixes.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client a request comes from: `peer`, unless `peer` is a trusted
    /// proxy; then the rightmost `X-Forwarded-For` hop that is not trusted
    /// (every hop right of it was appended by a trusted proxy), or the
    /// leftmost when all are.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A hop that is no address was not written by a trusted proxy:
            // the proxy that passed it on is the client.
            let Ok(ip) = hop.parse::<IpAddr>() else {
                return client;
            };
            client = ip;
            if !self.is_trusted(ip) {
                return ip;
            }
        }
        client
    }

    /// Takes a token of `client`'s bucket of `prefix`; the 429 when it is empty.
    pub fn check(&self, prefix: &str, client: IpAddr) -> Option<Response> {
        let route = self.routes.get(prefix)?;
        let not_until = route.limiter.check_key(&client).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Some(rate_limited(prefix, route.limit, wait))
    }
}

/// 429 `rate_limited`, with `Retry-After` (whole seconds, at least 1) and
/// the draft's headers naming the route's policy.
fn rate_limited(prefix: &str, limit: Limit, wait: Duration) -> Response {
    let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        Code::RateLimited,
        format!(
            "more than {} requests per second (bursts of {}) to {prefix} from this client; retry after {retry_after}s",
            limit.per_second, limit.burst
        ),
    )
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    let policy = format!("\"{prefix}\";q={};w={}", limit.burst, limit.window_secs());
    let state = format!("\"{prefix}\";r=0;t={retry_after}");
    for (name, value) in [(&RATELIMIT_POLICY, policy), (&RATELIMIT, state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name.clone(), value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused() {
        assert!(RateLimits::parse("/api/v1/orders=5:10", "10.0.0.0/8, 127.0.0.1").is_ok());
        for (limits, trusted) in [
            ("/api/v1/orders=0:10", ""),
            ("/api/v1/orders=5", ""),
            ("/api/v1/orders", ""),
            ("/api/v1/orders=5:x", ""),
            ("", "10.0.0.0/33"),
            ("", "proxy.local"),
        ] {
            assert!(
                RateLimits::parse(limits, trusted).is_err(),
                "{limits} {trusted}"
            );
        }
    }
}
