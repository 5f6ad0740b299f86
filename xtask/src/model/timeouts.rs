//! Timeouts must nest: a caller waits for a callee longer than the callee
//! can itself wait, for a database connection or for the services it calls.
//! Otherwise the caller gives up on work the callee then still does, and the
//! client sees a timeout for an order that may yet succeed.

use super::Service;
use super::diagnostics::Reporter;

/// Every service that calls others says how long it waits for them
/// (`upstream_timeout_ms`), no other does, and every callee's waits are
/// shorter than each caller's.
pub(super) fn check(rep: &mut Reporter, services: &[Service]) {
    for s in services {
        match (s.calls.is_empty(), s.upstream_timeout_ms) {
            (false, None) => rep.error(
                s.span.clone(),
                &format!(
                    "service `{}` calls {} but has no `upstream_timeout_ms`",
                    s.name,
                    s.calls.join(", ")
                ),
                "set how long it waits for a service it calls, in milliseconds",
            ),
            (true, Some(_)) => rep.error(
                s.span.clone(),
                &format!(
                    "service `{}` calls no service, so `upstream_timeout_ms` means nothing",
                    s.name
                ),
                "remove it, or declare the service's `calls`",
            ),
            _ => {}
        }
    }
    for callee in services {
        for caller in services.iter().filter(|c| callee.callers.contains(&c.name)) {
            let Some(patience) = caller.upstream_timeout_ms else {
                continue;
            };
            for (wait, what) in waits(callee) {
                if wait >= patience {
                    rep.error(
                        callee.span.clone(),
                        &format!(
                            "service `{}` may wait {wait} ms ({what}), but `{}` waits only \
                             {patience} ms for it (upstream_timeout_ms)",
                            callee.name, caller.name
                        ),
                        &format!("make {what} shorter than {patience} ms"),
                    );
                }
            }
        }
    }
}

/// What a service may wait for while it handles a request.
fn waits(s: &Service) -> Vec<(u32, &'static str)> {
    let mut waits = Vec::new();
    if s.database {
        waits.push((s.db_pool.acquire_timeout_ms, "db_pool.acquire_timeout_ms"));
    }
    if let Some(upstream) = s.upstream_timeout_ms {
        waits.push((upstream, "upstream_timeout_ms"));
    }
    waits
}
