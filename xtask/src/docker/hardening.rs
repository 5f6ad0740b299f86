//! The hardening of the service containers, read from the engine: the
//! configured user is not root, the processes really run under a non-zero
//! uid, the root filesystem is read-only, and every capability is dropped.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use super::compose::Container;

/// For every service container: the configured user is not root, the
/// processes really run under a non-zero uid, the root filesystem is
/// read-only (a file copied in is refused), and every capability is dropped.
pub fn check(containers: &[&Container]) -> Result<()> {
    println!(
        "\n{:<36} {:<12} {:<12} {:<10} CAP_DROP",
        "CONTAINER", "USER", "PROCESS UID", "READ-ONLY"
    );
    let probe = tempfile_probe()?;
    let mut problems = Vec::new();
    for c in containers {
        let json = super::compose::inspect_json(std::slice::from_ref(&c.id))?;
        let (user, read_only, cap_drop) = hardening(json.first().context("no such container")?);
        let user = user.as_str();
        let uids = process_uids(&c.id)?;
        let copy_refused = !Command::new("docker")
            .arg("cp")
            .arg(&probe)
            .arg(format!("{}:/compose-check-probe", c.id))
            .output()?
            .status
            .success();
        println!(
            "{:<36} {:<12} {:<12} {:<10} {cap_drop}",
            c.name,
            user,
            uids.join(","),
            if read_only && copy_refused {
                "yes"
            } else {
                "NO"
            }
        );
        if user.is_empty() || user.starts_with('0') || user.starts_with("root") {
            problems.push(format!(
                "{} is configured to run as root ({user:?})",
                c.name
            ));
        }
        if uids.is_empty() || uids.iter().any(|u| u == "0") {
            problems.push(format!("{} has processes running as uid {uids:?}", c.name));
        }
        if !read_only || !copy_refused {
            problems.push(format!("{}'s root filesystem is writable", c.name));
        }
        if !cap_drop.split(',').any(|cap| cap == "ALL") {
            problems.push(format!(
                "{} keeps capabilities (cap_drop {cap_drop:?})",
                c.name
            ));
        }
    }
    let _ = std::fs::remove_file(&probe);
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Configured user, read-only root filesystem, and dropped capabilities
/// (comma-separated) of one `docker inspect` element.
pub fn hardening(v: &Value) -> (String, bool, String) {
    let user = v["Config"]["User"].as_str().unwrap_or_default().to_owned();
    let read_only = v["HostConfig"]["ReadonlyRootfs"].as_bool().unwrap_or(false);
    let caps: Vec<&str> = v["HostConfig"]["CapDrop"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    (user, read_only, caps.join(","))
}

fn tempfile_probe() -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("compose-check-probe-{}", std::process::id()));
    std::fs::write(&path, "probe\n")?;
    Ok(path)
}

/// The uids of a container's processes, as the engine's `docker top` sees them.
fn process_uids(id: &str) -> Result<Vec<String>> {
    let out = Command::new("docker")
        .args(["top", id, "-o", "pid,uid"])
        .output()
        .context("running docker top")?;
    ensure!(
        out.status.success(),
        "docker top {id}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // The engine insists on a PID column: `PID UID` per process, after a header.
    let mut uids: Vec<String> = super::compose::lines(&out.stdout)
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    uids.sort();
    uids.dedup();
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hardening_reads_user_read_only_and_dropped_capabilities() {
        let v = json!({"Config": {"User": "65532:65532"},
            "HostConfig": {"ReadonlyRootfs": true, "CapDrop": ["ALL"]}});
        assert_eq!(hardening(&v), ("65532:65532".into(), true, "ALL".into()));
        let v = json!({"Config": {"User": ""}, "HostConfig": {"CapDrop": null}});
        assert_eq!(hardening(&v), (String::new(), false, String::new()));
    }
}
