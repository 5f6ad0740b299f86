//! Load, fault and contract testing of the native platform: `cargo xtask
//! bench` ([`bench`]: throughput, latency, ceilings, footprint), `cargo xtask
//! drill` ([`drill`]: rolling restarts and chaos under load) and `cargo xtask
//! fuzz` ([`fuzz`]: schemathesis against the OpenAPI document) and `cargo
//! xtask hostile` ([`hostile`]: every class of abusive client). Bench and
//! drill drive the platform with the same order load ([`orders`] through
//! [`wrk`]) and judge the aftermath with the same [`invariants`]; each writes
//! a picture of the run beside its figures ([`plot`]). `cargo xtask
//! calibrate` ([`calibrate`]) sizes each service for the declared peak from
//! an open-loop load by [`oha`].

pub mod bench;
pub mod burst;
pub mod calibrate;
pub mod drill;
pub mod fuzz;
pub mod hostile;
pub mod invariants;
pub mod oha;
pub mod orders;
pub mod plot;
pub mod wrk;

use std::process::Command;

use crate::Workspace;

/// The short hash of HEAD, with `-dirty` when the tree has changes.
pub fn git_revision(ws: &Workspace) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(ws.root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{rev}-dirty"),
        _ => rev,
    }
}

/// The cores this machine offers.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC, proleptic Gregorian).
pub fn timestamp(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_times() {
        assert_eq!(timestamp(0), "19700101T000000Z");
        assert_eq!(timestamp(1_798_530_000), "20261229T074000Z");
        assert_eq!(timestamp(951_782_400), "20000229T000000Z");
    }
}
