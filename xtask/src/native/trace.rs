//! `cargo xtask trace <trace-id>`: one request's way through every service,
//! read from the native logs (no Jaeger needed): each hop in time order
//! with its duration, indented under the request that made it, and the
//! warnings and events logged in that trace beside the hop they belong to.

use std::fmt::Write as _;

use anyhow::{Result, bail};

use super::access::{self, Event, Hop};
use crate::Workspace;

/// Print one request's way through every service from the native logs.
#[derive(Debug, Clone, clap::Args)]
pub struct Trace {
    /// The trace id: 32 hex digits, as in a log line's `trace_id` or a `traceparent`.
    pub trace_id: String,
}

impl Trace {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let id = self.trace_id.trim().to_ascii_lowercase();
        let valid = id.len() == 32
            && id.bytes().all(|b| b.is_ascii_hexdigit())
            && id.bytes().any(|b| b != b'0');
        if !valid {
            bail!(
                "`{}` is not a trace id (32 hex digits, not all zero)",
                self.trace_id
            );
        }
        let logs = ws.state().root().join("logs");
        let (hops, events) = access::read(&logs)?;
        let hops: Vec<Hop> = hops.into_iter().filter(|h| h.trace_id == id).collect();
        if hops.is_empty() {
            bail!(
                "no request of trace {id} in the JSON access lines of {} \
                 (`cargo xtask up` logs there; services log JSON with log_format = \"json\")",
                logs.display()
            );
        }
        let events: Vec<Event> = events.into_iter().filter(|e| e.trace_id == id).collect();
        print!("{}", render(&id, &hops, &events));
        Ok(())
    }
}

/// The tree of one trace as text.
pub fn render(id: &str, hops: &[Hop], events: &[Event]) -> String {
    let by_trace = access::traces(hops);
    let trace = by_trace.get(id).cloned().unwrap_or_default();
    let parents = access::parents(&trace);
    let depth = |mut n: usize| {
        let mut d = 0;
        while let Some(p) = parents[n] {
            d += 1;
            n = p;
        }
        d
    };
    let start = trace.first().map_or(0, |h| h.start_us);
    let end = trace.iter().map(|h| h.end_us).max().unwrap_or(start);
    let services: std::collections::BTreeSet<&str> =
        trace.iter().map(|h| h.service.as_str()).collect();
    let mut out = format!(
        "trace {id}: {} requests in {} services, {:.1} ms\n",
        trace.len(),
        services.len(),
        (end - start) as f64 / 1000.0
    );
    for (n, hop) in trace.iter().enumerate() {
        let indent = "  ".repeat(depth(n));
        let _ = writeln!(
            out,
            "{:>9.1} ms  {indent}{} {} {} {} {:.1} ms",
            (hop.start_us - start) as f64 / 1000.0,
            hop.instance,
            hop.method,
            hop.path,
            hop.status,
            hop.duration_ms()
        );
        // An event belongs to the innermost hop of its process at its time.
        let own = events.iter().filter(|e| {
            e.instance == hop.instance
                && hop.start_us <= e.at_us
                && e.at_us <= hop.end_us
                && !trace[n + 1..].iter().any(|inner| {
                    inner.instance == e.instance
                        && inner.start_us <= e.at_us
                        && e.at_us <= inner.end_us
                })
        });
        for e in own {
            let _ = writeln!(out, "{:>12}  {indent}  · {} {}", "", e.level, e.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_are_indented_under_their_callers_with_their_events() {
        let hop = |service: &str, start_us, end_us| Hop {
            trace_id: "t".into(),
            service: service.into(),
            instance: format!("{service}-1"),
            method: "POST".into(),
            path: format!("/{service}"),
            status: 201,
            start_us,
            end_us,
        };
        let hops = [
            hop("api-gateway", 0, 9000),
            hop("pedidos", 500, 8500),
            hop("estoque", 1000, 3000),
        ];
        let events = [Event {
            trace_id: "t".into(),
            instance: "pedidos-1".into(),
            at_us: 4000,
            level: "WARN".into(),
            message: "upstream call failed".into(),
        }];
        let text = render("t", &hops, &events);
        assert_eq!(
            text,
            "trace t: 3 requests in 3 services, 9.0 ms\n\
             \x20     0.0 ms  api-gateway-1 POST /api-gateway 201 9.0 ms\n\
             \x20     0.5 ms    pedidos-1 POST /pedidos 201 8.0 ms\n\
             \x20                 · WARN upstream call failed\n\
             \x20     1.0 ms      estoque-1 POST /estoque 201 2.0 ms\n"
        );
    }
}
