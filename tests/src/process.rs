//! One service process of a test, started through xtask's launcher (the
//! harness `up` uses) from the launch the platform planned: frozen, thawed,
//! killed, restarted and replicated as a test needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use xtask::native::launcher::{Launch, Replica};

/// How long a process may take to answer `/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

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
    let workspace = xtask::Workspace::find()?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace.root()).arg("build");
    for name in crate::SERVICES {
        cmd.args(["-p", name]);
    }
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
    for name in crate::SERVICES {
        if !dir.join(name).exists() {
            bail!("{} was not built into {}", name, dir.display());
        }
    }
    Ok(dir)
}

/// One service process and the launch that starts it again as it was.
pub struct Process {
    pub name: String,
    pub port: u16,
    /// The service's own database (empty for the gateway).
    pub database_url: String,
    launch: Launch,
    log: PathBuf,
    running: Option<Replica>,
}

impl Process {
    /// A process that `start` runs from `launch`, logging into `log`.
    pub(crate) fn new(launch: Launch, database_url: String, log: PathBuf) -> Process {
        Process {
            name: launch.service.clone(),
            port: launch.port,
            database_url,
            launch,
            log,
            running: None,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(Replica::pid)
    }

    /// A variable of the environment it runs with.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.launch.env.get(name).map(String::as_str)
    }

    /// Starts the process and waits until it answers its own `/ready`;
    /// fails with its log when it exits first.
    pub async fn start(&mut self) -> Result<()> {
        let mut replica = self.launch.spawn(&self.log)?;
        let replica = tokio::task::spawn_blocking(move || {
            replica.wait_ready(READY_TIMEOUT).map(|()| replica)
        })
        .await??;
        self.running = Some(replica);
        Ok(())
    }

    /// What the process wrote so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: the process dies at once, mid-request if need be.
    pub fn kill(&mut self) {
        if let Some(replica) = self.running.take() {
            replica.kill();
        }
    }

    fn signal(&self, signal: &str) {
        let replica = self.running.as_ref().expect("the process is not running");
        assert!(
            replica.signal(signal),
            "kill -{signal} {} failed",
            replica.pid()
        );
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing, which is
    /// what a hung service looks like to its callers.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`Process::freeze`].
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// Starts another replica of this service: same binary, database and
    /// settings, its own port.
    pub async fn replica(&self) -> Result<Process> {
        let port = loja_testkit::free_port();
        let mut launch = self.launch.clone();
        launch.port = port;
        launch.replica += 1;
        launch
            .env
            .insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
        let log = self.log.with_extension(format!("{port}.log"));
        let mut replica = Process::new(launch, self.database_url.clone(), log);
        replica.start().await?;
        Ok(replica)
    }

    /// Starts the process again with the same port, database and settings.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.start().await
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
