//! Service processes: the binaries built once, started with an environment,
//! frozen, thawed, killed and restarted as a test needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Builds the service binaries (once per test process; cargo itself makes
/// concurrent test processes wait for one build) and returns their directory.
pub fn binaries() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> Result<PathBuf> {
    // The test binary lives in <target>/<profile>/deps; the services are
    // built into <target>/<profile>, with the same profile and target dir.
    let exe = std::env::current_exe().context("locating the test binary")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not in a cargo target directory")?
        .to_path_buf();
    let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace).args([
        "build",
        "-p",
        "estoque",
        "-p",
        "pagamentos",
        "-p",
        "pedidos",
        "-p",
        "api-gateway",
    ]);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the services failed");
    }
    for name in ["estoque", "pagamentos", "pedidos", "api-gateway"] {
        if !dir.join(name).exists() {
            bail!("{} was not built into {}", name, dir.display());
        }
    }
    Ok(dir)
}

pub use loja_testkit::free_port;

/// One service process and what is needed to restart it as it was.
pub struct Process {
    pub name: &'static str,
    pub port: u16,
    /// The service's own database.
    pub database_url: String,
    pub(crate) binary: PathBuf,
    pub(crate) env: HashMap<String, String>,
    pub(crate) child: Option<Child>,
    pub(crate) log: PathBuf,
}

impl Process {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = Command::new(&self.binary)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `/ready` answers 200; fails if the process exits first.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited with {status}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            let ready = client
                .get(format!("{}/ready", self.url()))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} never became ready; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the process wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process dies at once, mid-request if need be.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the process is not running");
        // `kill(1)` (procps): the workspace forbids the unsafe a direct call needs.
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("running kill(1)");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing, which is
    /// what a hung service looks like to its callers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Process::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Starts another replica of this service: same binary, database and
    /// settings, its own port.
    pub async fn replica(&self) -> Result<Process> {
        let port = free_port();
        let mut env = self.env.clone();
        env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
        let mut replica = Process {
            name: self.name,
            port,
            database_url: self.database_url.clone(),
            binary: self.binary.clone(),
            env,
            child: None,
            log: self.log.with_extension(format!("{port}.log")),
        };
        replica.spawn()?;
        replica.wait_ready().await?;
        Ok(replica)
    }

    /// Starts the process again with the same port, database and settings.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_ready().await
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL works on a frozen process too.
        self.kill();
        // The log is kept for a failed test, and its path told.
        if std::thread::panicking() {
            eprintln!("{} log: {}", self.name, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
