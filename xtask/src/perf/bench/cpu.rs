//! Where the CPU goes: user plus system time of every service process and of
//! the PostgreSQL server (postmaster and all its children), read from
//! `/proc/<pid>/stat` before and after the measured order load.

use std::collections::BTreeMap;
use std::path::Path;

use crate::native::state::Instance;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU ticks so far, by process: `api-gateway-1`, ..., and `postgres/<pid>`
/// for the server's processes.
#[derive(Debug, Clone, Default)]
pub struct Snapshot(BTreeMap<String, u64>);

impl Snapshot {
    /// Keeps the latest figure of every process seen in either snapshot, so
    /// that samples taken while short-lived backends run still count them
    /// after they exited.
    pub fn merge(&mut self, later: Snapshot) {
        for (k, v) in later.0 {
            let e = self.0.entry(k).or_insert(0);
            *e = (*e).max(v);
        }
    }
}

/// Parent pid and user+system ticks of a process.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// The postmaster's pid, from the first line of `postmaster.pid` in `data_dir`.
pub fn postmaster(data_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Reads the counters of every instance and of the server.
pub fn snapshot(instances: &[Instance], postmaster: Option<u32>) -> Snapshot {
    let mut out = BTreeMap::new();
    for i in instances {
        if let Some((_, ticks)) = stat(i.pid) {
            out.insert(i.name(), ticks);
        }
    }
    if let Some(pm) = postmaster {
        if let Some((_, ticks)) = stat(pm) {
            out.insert(format!("postgres/{pm}"), ticks);
        }
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some((ppid, ticks)) = stat(pid)
                && ppid == pm
            {
                out.insert(format!("postgres/{pid}"), ticks);
            }
        }
    }
    Snapshot(out)
}

/// CPU milliseconds per order of each component (every instance, and the
/// PostgreSQL server as one) between two snapshots.
pub fn per_order(before: &Snapshot, after: &Snapshot, orders: u64) -> BTreeMap<String, f64> {
    let orders = orders.max(1) as f64;
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (key, t) in &after.0 {
        let was = before.0.get(key).copied().unwrap_or(0);
        let ms = t.saturating_sub(was) as f64 / TICKS_PER_SEC * 1000.0;
        let component = key.split('/').next().unwrap_or(key).to_owned();
        *out.entry(component).or_default() += ms / orders;
    }
    out
}
