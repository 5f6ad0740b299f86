//! The route table: which public path prefix goes to which service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use loja_runtime::Upstream;
use loja_runtime::upstream::env_var;

use crate::path::is_under;

/// One public prefix and the service behind it.
#[derive(Debug, Clone)]
pub struct Route {
    /// Such as `/api/v1/orders`.
    pub prefix: Arc<str>,
    /// The pooled client for the service's replicas.
    pub upstream: Upstream,
}

/// Every route, longest prefix first so the most specific one wins.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// Parses `GATEWAY_ROUTES` (`prefix=service,...`); `urls(service)` gives
    /// the comma-separated base URLs of a service.
    pub fn parse(
        spec: &str,
        timeout: Duration,
        urls: impl Fn(&str) -> anyhow::Result<String>,
    ) -> anyhow::Result<Self> {
        let mut routes = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (prefix, service) = pair
                .split_once('=')
                .with_context(|| format!("GATEWAY_ROUTES entry {pair:?} is not prefix=service"))?;
            let (prefix, service) = (prefix.trim(), service.trim());
            anyhow::ensure!(
                prefix.starts_with('/') && !service.is_empty(),
                "GATEWAY_ROUTES entry {pair:?} needs an absolute prefix and a service"
            );
            let prefix = match prefix.trim_end_matches('/') {
                "" => "/",
                p => p,
            };
            anyhow::ensure!(
                crate::path::resolve(prefix).as_deref() == Ok(prefix),
                "GATEWAY_ROUTES prefix {prefix:?} is not a plain public path"
            );
            let upstream = Upstream::new(service, &urls(service)?, timeout)
                .with_context(|| format!("addresses of {service}"))?;
            routes.push(Route {
                prefix: prefix.into(),
                upstream,
            });
        }
        anyhow::ensure!(!routes.is_empty(), "GATEWAY_ROUTES names no route");
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Ok(RouteTable { routes })
    }

    /// Reads each service's addresses from `<SERVICE>_URL`.
    pub fn from_env(spec: &str, timeout: Duration) -> anyhow::Result<Self> {
        Self::parse(spec, timeout, |service| {
            let var = env_var(service);
            std::env::var(&var).with_context(|| format!("{var} is not set"))
        })
    }

    /// Whether `prefix` is one of the routes.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.routes.iter().any(|r| &*r.prefix == prefix)
    }

    /// The route with the longest prefix covering `path`.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| &*r.prefix == "/" || is_under(path, &r.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(spec: &str) -> RouteTable {
        RouteTable::parse(spec, Duration::from_secs(1), |s| {
            Ok(format!("http://{s}:8080"))
        })
        .unwrap()
    }

    #[test]
    fn the_longest_prefix_wins() {
        let t = table("/api/v1=legacy,/api/v1/orders=pedidos");
        assert_eq!(
            t.find("/api/v1/orders/1").unwrap().upstream.service(),
            "pedidos"
        );
        assert_eq!(
            t.find("/api/v1/payments").unwrap().upstream.service(),
            "legacy"
        );
        assert!(t.find("/api/v2").is_none());
    }

    #[test]
    fn bad_specs_are_refused() {
        let urls = |_: &str| Ok("http://x:1".to_owned());
        for spec in ["", "orders=pedidos", "/a=", "/a", "/a/../internal=x"] {
            assert!(
                RouteTable::parse(spec, Duration::from_secs(1), urls).is_err(),
                "{spec}"
            );
        }
    }
}
