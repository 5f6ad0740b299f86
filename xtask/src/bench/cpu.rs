//! Where the CPU goes: user plus system time of every service process and of
//! the PostgreSQL server (postmaster and all its children), read from
//! `/proc/<pid>/stat` before and after the measured order load.

use std::collections::BTreeMap;
use std::path::Path;

use crate::runstate::Instance;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU ticks so far, by component (`api-gateway-1`, ..., `postgres`).
#[derive(Debug, Clone, Default)]
pub struct Snapshot(BTreeMap<String, u64>);

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
        let mut total = stat(pm).map_or(0, |(_, t)| t);
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some((ppid, ticks)) = stat(pid)
                && ppid == pm
            {
                total += ticks;
            }
        }
        out.insert("postgres".into(), total);
    }
    Snapshot(out)
}

/// CPU milliseconds per order of each component between two snapshots.
pub fn per_order(before: &Snapshot, after: &Snapshot, orders: u64) -> BTreeMap<String, f64> {
    let orders = orders.max(1) as f64;
    after
        .0
        .iter()
        .map(|(name, t)| {
            let was = before.0.get(name).copied().unwrap_or(0);
            let ms = t.saturating_sub(was) as f64 / TICKS_PER_SEC * 1000.0;
            (name.clone(), ms / orders)
        })
        .collect()
}
