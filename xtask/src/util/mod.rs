//! Small helpers every part of xtask uses: files ([`fs`]), one HTTP client
//! ([`http`]), signals to processes, random tokens and text tails.

pub mod fs;
pub mod http;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

/// `len` random bytes from the kernel, as lowercase hex.
pub fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The last `n` lines of a text.
pub fn tail_text(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of a file (empty when it cannot be read).
pub fn tail(path: &Path, n: usize) -> String {
    tail_text(&std::fs::read_to_string(path).unwrap_or_default(), n)
}

/// Sends a signal (`TERM`, `KILL`, `INT`, `STOP`, `CONT`) to a process;
/// false when there is no such process. `kill(1)`: the workspace forbids the
/// unsafe code a direct call needs.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch (the unit of the services' JSON log times).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tails_keep_the_last_lines() {
        assert_eq!(super::tail_text("a\nb\nc", 2), "b\nc");
        assert_eq!(super::tail_text("a", 5), "a");
    }

    #[test]
    fn random_tokens_are_hex_of_the_asked_length() {
        let t = super::random_hex(8).unwrap();
        assert_eq!(t.len(), 16);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
