//! What the native logs say about the requests the services answered: every
//! JSON access line (one per request, with its trace id, status, duration
//! and the time it was written, in microseconds) as a [`Hop`], grouped into
//! traces, each hop under the request that made it, and the
//! service-to-service calls they show.
//!
//! A hop's parent is the innermost request of another process whose time
//! span holds it: a callee logs before its answer leaves, so its span ends
//! before its caller's, and it starts after its caller's began. Nothing from
//! `loja.toml` goes into the nesting, so the calls found can be held against
//! the calls declared there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::util::fs::walk;

/// One answered request, from one access line.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    pub trace_id: String,
    pub service: String,
    /// The process, from its log file's name: `pedidos-2`.
    pub instance: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Microseconds since the Unix epoch when the request arrived.
    pub start_us: i64,
    /// Microseconds since the Unix epoch when its access line was written.
    pub end_us: i64,
}

impl Hop {
    /// How long the request took, in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        (self.end_us - self.start_us) as f64 / 1000.0
    }

    fn holds(&self, other: &Hop) -> bool {
        self.instance != other.instance
            && self.start_us <= other.start_us
            && other.end_us <= self.end_us
    }
}

/// Any other line that names a trace: a warning, an error, a notable event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub trace_id: String,
    pub instance: String,
    pub at_us: i64,
    pub level: String,
    pub message: String,
}

/// Every access line and traced event in the `*.log` files of `dir`.
pub fn read(dir: &Path) -> Result<(Vec<Hop>, Vec<Event>)> {
    let mut hops = Vec::new();
    let mut events = Vec::new();
    let files = walk(dir, |p| p.extension().is_some_and(|e| e == "log"))?;
    for file in files {
        let instance = file.trim_end_matches(".log").to_owned();
        let path = dir.join(&file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            match parse_line(&instance, line) {
                Some(Line::Access(hop)) => hops.push(hop),
                Some(Line::Event(event)) => events.push(event),
                None => {}
            }
        }
    }
    Ok((hops, events))
}

enum Line {
    Access(Hop),
    Event(Event),
}

/// One JSON log line with a trace id; text lines and lines of no trace are `None`.
fn parse_line(instance: &str, line: &str) -> Option<Line> {
    let v: Value = serde_json::from_str(line).ok()?;
    let text = |key: &str| v.get(key).and_then(Value::as_str);
    let trace_id = text("trace_id").filter(|t| !t.is_empty())?.to_owned();
    let at_us = micros(text("timestamp")?)?;
    if text("target") == Some("loja::access") {
        let duration_us = (v.get("duration_ms")?.as_f64()? * 1000.0).round() as i64;
        return Some(Line::Access(Hop {
            trace_id,
            service: text("service")?.to_owned(),
            instance: instance.to_owned(),
            method: text("method")?.to_owned(),
            path: text("path")?.to_owned(),
            status: u16::try_from(v.get("status")?.as_u64()?).ok()?,
            start_us: at_us - duration_us,
            end_us: at_us,
        }));
    }
    Some(Line::Event(Event {
        trace_id,
        instance: instance.to_owned(),
        at_us,
        level: text("level").unwrap_or("INFO").to_owned(),
        message: text("message").unwrap_or_default().to_owned(),
    }))
}

/// Microseconds since the epoch of an RFC 3339 UTC time such as
/// `2026-12-01T18:18:55.603123Z`.
pub fn micros(ts: &str) -> Option<i64> {
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    // Scale the fraction to six digits, whatever precision was written.
    let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
    let us: i64 = digits.parse().ok()?;
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60 + s) * 1_000_000) + us)
}

/// The hops of each trace, by trace id, each trace's hops in start order.
pub fn traces(hops: &[Hop]) -> BTreeMap<&str, Vec<&Hop>> {
    let mut by_trace: BTreeMap<&str, Vec<&Hop>> = BTreeMap::new();
    for hop in hops {
        by_trace.entry(&hop.trace_id).or_default().push(hop);
    }
    for hops in by_trace.values_mut() {
        hops.sort_by_key(|h| (h.start_us, std::cmp::Reverse(h.end_us)));
    }
    by_trace
}

/// For each hop of one trace (in start order), the index of the hop that
/// made it: the innermost hop of another process holding its time span.
pub fn parents(trace: &[&Hop]) -> Vec<Option<usize>> {
    (0..trace.len())
        // Holders start earlier (or with the same start, end later, and so
        // sort first): the nearest one before a hop is the innermost.
        .map(|n| (0..n).rev().find(|&p| trace[p].holds(trace[n])))
        .collect()
}

/// Every service-to-service call the traces show, with how often it was seen.
pub fn calls(hops: &[Hop]) -> BTreeMap<(String, String), u64> {
    let mut seen = BTreeMap::new();
    for trace in traces(hops).values() {
        for (n, parent) in parents(trace).iter().enumerate() {
            if let Some(p) = parent {
                let key = (trace[*p].service.clone(), trace[n].service.clone());
                *seen.entry(key).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// The calls the traffic showed held against the calls `loja.toml` declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallGraph {
    /// Seen, with how often.
    pub observed: BTreeMap<String, u64>,
    /// Seen but not declared: a network policy generated from loja.toml
    /// would block them in a cluster.
    pub undeclared: Vec<String>,
    /// Declared but never seen: the policy admits more than the traffic needs.
    pub unseen: Vec<String>,
}

impl CallGraph {
    /// The calls traffic `observed` held against those `model` declares.
    pub fn of(model: &crate::model::Model, observed: &BTreeMap<(String, String), u64>) -> Self {
        let declared = model
            .services
            .iter()
            .flat_map(|s| s.calls.iter().map(|c| (s.name.clone(), c.clone())))
            .collect();
        CallGraph::compare(observed, &declared)
    }

    /// Compares `observed` with the `declared` calls (`(caller, callee)`).
    pub fn compare(
        observed: &BTreeMap<(String, String), u64>,
        declared: &BTreeSet<(String, String)>,
    ) -> CallGraph {
        let name = |(a, b): &(String, String)| format!("{a} -> {b}");
        CallGraph {
            observed: observed.iter().map(|(k, n)| (name(k), *n)).collect(),
            undeclared: observed
                .keys()
                .filter(|k| !declared.contains(*k))
                .map(name)
                .collect(),
            unseen: declared
                .iter()
                .filter(|k| !observed.contains_key(*k))
                .map(name)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(service: &str, start_us: i64, end_us: i64) -> Hop {
        Hop {
            trace_id: "t".into(),
            service: service.into(),
            instance: format!("{service}-1"),
            method: "POST".into(),
            path: "/".into(),
            status: 201,
            start_us,
            end_us,
        }
    }

    #[test]
    fn timestamps_are_read_to_the_microsecond() {
        assert_eq!(micros("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(micros("2000-03-01T00:00:01.5Z"), Some(951_868_801_500_000));
        assert_eq!(micros("not a time"), None);
    }

    #[test]
    fn each_hop_hangs_under_the_innermost_request_holding_it() {
        let hops = [
            hop("api-gateway", 0, 100),
            hop("pedidos", 5, 95),
            hop("estoque", 10, 30),
            hop("pagamentos", 31, 50),
            hop("estoque", 51, 60),
        ];
        let trace: Vec<&Hop> = hops.iter().collect();
        assert_eq!(parents(&trace), [None, Some(0), Some(1), Some(1), Some(1)]);
        let calls = calls(&hops);
        assert_eq!(calls[&("pedidos".into(), "estoque".into())], 2);
        assert_eq!(calls.len(), 3);
    }

    #[test]
    fn undeclared_and_unseen_calls_are_told_apart() {
        let observed = BTreeMap::from([(("a".to_string(), "b".to_string()), 3)]);
        let declared = BTreeSet::from([("a".to_string(), "c".to_string())]);
        let graph = CallGraph::compare(&observed, &declared);
        assert_eq!(graph.undeclared, ["a -> b"]);
        assert_eq!(graph.unseen, ["a -> c"]);
    }

    #[test]
    fn access_lines_and_traced_events_are_parsed() {
        let access = r#"{"timestamp":"1970-01-01T00:00:01.000000Z","level":"INFO","service":"pedidos","target":"loja::access","trace_id":"ab","method":"GET","path":"/x","status":200,"duration_ms":0.25}"#;
        let Some(Line::Access(h)) = parse_line("pedidos-1", access) else {
            panic!("an access line")
        };
        assert_eq!((h.start_us, h.end_us, h.status), (999_750, 1_000_000, 200));
        let warn = r#"{"timestamp":"1970-01-01T00:00:01Z","level":"WARN","message":"upstream call failed","trace_id":"ab"}"#;
        assert!(matches!(
            parse_line("pedidos-1", warn),
            Some(Line::Event(_))
        ));
        assert!(parse_line("pedidos-1", "2024-01-01 12:00:00 | INFO | x | y").is_none());
        assert!(parse_line("pedidos-1", r#"{"message":"no trace"}"#).is_none());
    }
}
