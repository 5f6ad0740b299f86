//! The native runtime's state directory (`.loja/` in the project root, git
//! ignored): the PostgreSQL cluster, one record per running process, logs, and
//! the generated admin token. `up` writes it, `down`, `status` and `logs` read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::fs::write_atomic;

/// One process started by `up`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Instance {
    /// Service name, such as `pedidos`.
    pub service: String,
    /// Replica number, from 1.
    pub replica: u32,
    /// Operating-system process id.
    pub pid: u32,
    /// Loopback port it listens on.
    pub port: u16,
    /// Seconds since the Unix epoch when it was started.
    pub started_at: u64,
    /// The path that answers 200 while it is ready.
    #[serde(default = "default_ready_path")]
    pub ready_path: String,
}

fn default_ready_path() -> String {
    "/ready".into()
}

impl Instance {
    /// `pedidos-1`: the name of its record and log file.
    pub fn name(&self) -> String {
        format!("{}-{}", self.service, self.replica)
    }

    /// True while the recorded process still runs the service's binary (a
    /// recycled pid belonging to another program does not count).
    pub fn is_alive(&self) -> bool {
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(&self.service))
    }
}

/// What `up` was asked for, kept so that `restart` renders the same plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpRecord {
    /// `--replicas`: `Some(n)`, or `None` for each service's `replicas.min`.
    pub replicas: Option<u32>,
}

/// The state directory of one project checkout (or of one test).
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state kept under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// Where the state lives.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The PostgreSQL cluster's directory.
    pub fn postgres_dir(&self) -> PathBuf {
        self.root.join("postgres")
    }

    /// The log file of an instance (or of another process `up` started).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// The directory of the process records.
    fn run_dir(&self) -> PathBuf {
        self.root.join("run")
    }

    /// Records a started process.
    pub fn record(&self, instance: &Instance) -> Result<()> {
        write_json(
            &self.run_dir().join(format!("{}.json", instance.name())),
            instance,
        )
    }

    /// Forgets a process (it was stopped).
    pub fn forget(&self, instance: &Instance) -> Result<()> {
        let path = self.run_dir().join(format!("{}.json", instance.name()));
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Keeps what `up` was asked for.
    pub fn record_up(&self, record: &UpRecord) -> Result<()> {
        write_json(&self.root.join("up.json"), record)
    }

    /// What the last `up` was asked for, if it recorded it.
    pub fn up_record(&self) -> Result<Option<UpRecord>> {
        let path = self.root.join("up.json");
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?,
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Every recorded process, ordered by service and replica.
    pub fn instances(&self) -> Result<Vec<Instance>> {
        let mut found = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(self.run_dir()) else {
            return Ok(Vec::new());
        };
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path)?;
                let instance: Instance = serde_json::from_slice(&bytes)
                    .with_context(|| format!("reading {}", path.display()))?;
                found.insert((instance.service.clone(), instance.replica), instance);
            }
        }
        Ok(found.into_values().collect())
    }

    /// The admin token: `ADMIN_TOKEN` from the environment, else from a
    /// git-ignored `.env` in `project`, else the one generated on a previous
    /// `up`, else a new random one kept here. Returns the token and where it came from.
    pub fn admin_token(&self, project: &Path) -> Result<(String, String)> {
        if let Ok(token) = std::env::var("ADMIN_TOKEN")
            && !token.trim().is_empty()
        {
            return Ok((token, "ADMIN_TOKEN from the environment".into()));
        }
        if let Some(token) = dotenv_value(&project.join(".env"), "ADMIN_TOKEN") {
            return Ok((token, "ADMIN_TOKEN in .env".into()));
        }
        let kept = self.root.join("admin-token");
        if let Ok(token) = std::fs::read_to_string(&kept)
            && !token.trim().is_empty()
        {
            return Ok((token.trim().to_owned(), kept.display().to_string()));
        }
        let token = crate::util::random_hex(24).context("generating an admin token")?;
        write_atomic(&kept, token.as_bytes())?;
        Ok((token, format!("{} (generated)", kept.display())))
    }
}

/// Writes `value` as JSON to `path` whole or not at all.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_atomic(path, &serde_json::to_vec_pretty(value)?)
}

/// The value of `key` in a dotenv file (`KEY=value`, optional quotes, `#` comments).
pub fn dotenv_value(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let line = line.trim();
        let (k, v) = line
            .strip_prefix("export ")
            .unwrap_or(line)
            .split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_are_listed_in_order() {
        let dir = std::env::temp_dir().join(format!("loja-runstate-{}", std::process::id()));
        let state = StateDir::new(&dir);
        let a = Instance {
            service: "pedidos".into(),
            replica: 2,
            pid: 1,
            port: 2,
            started_at: 3,
            ready_path: "/ready".into(),
        };
        let b = Instance {
            service: "estoque".into(),
            replica: 1,
            pid: 4,
            port: 5,
            started_at: 6,
            ready_path: "/-/ready".into(),
        };
        state.record(&a).unwrap();
        state.record(&b).unwrap();
        assert_eq!(state.instances().unwrap(), vec![b.clone(), a.clone()]);
        state.forget(&a).unwrap();
        assert_eq!(state.instances().unwrap(), vec![b]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn dotenv_values_are_found_with_quotes_and_export() {
        let path = std::env::temp_dir().join(format!("loja-dotenv-{}", std::process::id()));
        std::fs::write(&path, "# c\nexport ADMIN_TOKEN=\"abc\"\nOTHER=1\n").unwrap();
        assert_eq!(dotenv_value(&path, "ADMIN_TOKEN").as_deref(), Some("abc"));
        assert_eq!(dotenv_value(&path, "MISSING"), None);
        std::fs::remove_file(path).unwrap();
    }
}
