//! A private PostgreSQL cluster started from the server binaries on PATH
//! (`initdb`, `pg_ctl`): the database of `cargo xtask test`, of the native
//! runtime, and of tests that stop and start a server under a running
//! service ([`TempCluster`]). As root, PostgreSQL refuses to run, so the
//! binaries run as the `postgres` OS user. [`psql`] and [`query`] talk to it
//! through the `psql` client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A cluster whose files live under one directory.
#[derive(Debug, Clone)]
pub struct Cluster {
    dir: PathBuf,
    port: u16,
    /// Server settings given on the command line (`-c name=value`).
    settings: Vec<(String, String)>,
}

impl Cluster {
    /// A cluster kept in `dir` (created on first start) listening on loopback `port`.
    pub fn new(dir: impl Into<PathBuf>, port: u16) -> Self {
        Cluster {
            dir: dir.into(),
            port,
            settings: Vec::new(),
        }
    }

    /// The same cluster started with a server setting, such as
    /// `log_statement = all`.
    pub fn with_setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// The superuser URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates the cluster if it does not exist yet and starts it unless it
    /// already runs. Data survives a stop and a later start.
    pub fn start(&self) -> Result<()> {
        check_binaries()?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        hand_to_postgres_user(&self.dir)?;
        let data = self.data_dir();
        if !data.join("PG_VERSION").exists() {
            let log = self.dir.join("initdb.log");
            run_as_postgres(
                Command::new("initdb")
                    .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                    .arg("-D")
                    .arg(&data),
                &log,
            )
            .with_context(|| format!("initdb failed, see {}", log.display()))?;
        }
        if self.is_running() {
            return Ok(());
        }
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port,
            self.dir.display()
        );
        for (name, value) in &self.settings {
            // pg_ctl hands the options to a shell-like parser: quote the value.
            options.push_str(&format!(" -c {name}='{}'", value.replace('\'', "")));
        }
        let log = self.log_path();
        run_as_postgres(
            Command::new("pg_ctl")
                .args(["-w", "-t", "30", "-D"])
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(&log)
                .arg("start"),
            &self.dir.join("pg_ctl.log"),
        )
        .with_context(|| format!("PostgreSQL did not start, see {}", log.display()))
    }

    /// True when a server runs on this cluster's data directory.
    pub fn is_running(&self) -> bool {
        self.data_dir().join("postmaster.pid").exists()
            && command_as_postgres(
                Command::new("pg_ctl")
                    .arg("-D")
                    .arg(self.data_dir())
                    .arg("status"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stops the server as a crash would (immediate mode: no checkpoint,
    /// sessions cut), then starts it again, which replays the WAL.
    pub fn crash_restart(&self) -> Result<()> {
        self.pg_ctl_stop("immediate")?;
        self.start()
    }

    /// Stops the server (fast mode: sessions are closed, data is kept).
    pub fn stop(&self) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        self.pg_ctl_stop("fast")
    }

    /// `pg_ctl stop` in `mode` (`fast`, `immediate`), waiting for the end.
    fn pg_ctl_stop(&self, mode: &str) -> Result<()> {
        run_as_postgres(
            Command::new("pg_ctl")
                .args(["-w", "-m", mode, "-D"])
                .arg(self.data_dir())
                .arg("stop"),
            &self.dir.join("pg_ctl.log"),
        )
    }
}

/// A cluster of a test's own in a fresh temporary directory on a free port,
/// started at once; stopped and deleted when dropped.
pub struct TempCluster(Cluster);

impl TempCluster {
    /// Creates and starts the cluster.
    pub fn start() -> Result<TempCluster> {
        Self::start_with(&[])
    }

    /// Creates and starts the cluster with server `settings`. A test's
    /// cluster skips fsync: it is thrown away, never recovered.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<TempCluster> {
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!("loja-pg-{}-{port}", std::process::id()));
        let mut cluster = Cluster::new(dir, port).with_setting("fsync", "off");
        for (name, value) in settings {
            cluster = cluster.with_setting(name, value);
        }
        let cluster = TempCluster(cluster);
        cluster.0.start()?;
        Ok(cluster)
    }
}

impl std::ops::Deref for TempCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.0
    }
}

impl Drop for TempCluster {
    fn drop(&mut self) {
        let _ = self.0.pg_ctl_stop("immediate");
        let _ = std::fs::remove_dir_all(&self.0.dir);
    }
}

/// Fails with what to install when the PostgreSQL server binaries are missing.
pub fn check_binaries() -> Result<()> {
    for bin in ["initdb", "pg_ctl", "postgres"] {
        if which(bin).is_none() {
            bail!(
                "`{bin}` is not on PATH: install the PostgreSQL 15 server \
                 (Debian/Ubuntu: `apt-get install postgresql-15` and add \
                 /usr/lib/postgresql/15/bin to PATH; macOS: `brew install postgresql@15`)"
            );
        }
    }
    Ok(())
}

/// The path of `bin` on PATH.
pub fn which(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// PostgreSQL refuses to run as root; as root, the cluster's files belong to
/// the `postgres` user and every directory above them must let it through.
fn hand_to_postgres_user(dir: &Path) -> Result<()> {
    if !is_root() {
        return Ok(());
    }
    let status = Command::new("chown")
        .args(["-R", "postgres:"])
        .arg(dir)
        .status()
        .context("running chown")?;
    if !status.success() {
        bail!(
            "chown postgres {} failed: is there a `postgres` user?",
            dir.display()
        );
    }
    Ok(())
}

fn command_as_postgres(cmd: &mut Command) -> Command {
    if !is_root() {
        let mut own = Command::new(cmd.get_program());
        own.args(cmd.get_args());
        return own;
    }
    let mut wrapped = Command::new("runuser");
    wrapped
        .args(["-u", "postgres", "--"])
        .arg(cmd.get_program())
        .args(cmd.get_args());
    wrapped
}

fn run_as_postgres(cmd: &mut Command, log: &Path) -> Result<()> {
    let out = command_as_postgres(cmd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    let _ = std::fs::write(log, &text);
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&text).trim()
        );
    }
    Ok(())
}

/// Runs `sql` through `psql` against `url`, stopping at the first error.
pub fn psql(url: &str, sql: &str) -> Result<()> {
    let mut child = Command::new("psql")
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-X"])
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running psql (it comes with the PostgreSQL client package)")?;
    std::io::Write::write_all(
        &mut child.stdin.take().context("psql stdin")?,
        sql.as_bytes(),
    )?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The rows `sql` returns from `url`, each as its columns' text.
pub fn query(url: &str, sql: &str) -> Result<Vec<Vec<String>>> {
    let out = Command::new("psql")
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .arg(url)
        .output()
        .context("running psql (it comes with the PostgreSQL client package)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect())
}
