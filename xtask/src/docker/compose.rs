//! The generated compose stack on a Docker engine: `cargo xtask up --compose`
//! and `down --compose`, through `docker compose` (v2) or `docker-compose`
//! (v1), whichever is installed. `up` starts the stack and waits for every
//! container's healthcheck itself, since v1 has no `up --wait`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::images;
use crate::Workspace;
use crate::dev::build::Prebuilt;

/// The generated compose file, relative to the project root.
pub const COMPOSE_FILE: &str = "generated/docker-compose.yml";

/// One compose project: its files, project name and env file.
#[derive(Debug, Clone)]
pub struct Stack {
    /// `["docker", "compose"]` or `["docker-compose"]`.
    pub program: Vec<String>,
    pub project_name: String,
    pub files: Vec<PathBuf>,
    pub env_file: Option<PathBuf>,
}

/// Whether a Docker engine answers `docker info`.
pub fn engine_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The compose program: the v2 plugin when present, else v1.
pub fn detect() -> Result<Vec<String>> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        Ok(vec!["docker".into(), "compose".into()])
    } else if works("docker-compose", &["version"]) {
        Ok(vec!["docker-compose".into()])
    } else {
        bail!(
            "neither `docker compose` (v2 plugin) nor `docker-compose` (v1) is installed \
             (`cargo xtask tools` installs docker-compose)"
        )
    }
}

impl Stack {
    /// The generated stack as `cargo xtask up --compose` runs it: project
    /// named after `loja.toml`'s, secrets from `.env` in the project root.
    pub fn generated(ws: &Workspace) -> Result<Self> {
        let env = ws.root().join(".env");
        Ok(Stack {
            program: detect()?,
            project_name: ws.model()?.project.name.clone(),
            files: vec![ws.root().join(COMPOSE_FILE)],
            env_file: env.is_file().then_some(env),
        })
    }

    /// A compose command with the stack's files, project name and env file.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..]);
        cmd.args(["--project-name", &self.project_name]);
        for file in &self.files {
            cmd.arg("--file").arg(file);
        }
        if let Some(env) = &self.env_file {
            cmd.arg("--env-file").arg(env);
        }
        cmd
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        let out = self
            .command()
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.program.join(" ")))?;
        if !out.status.success() {
            bail!(
                "{} {} failed: {}",
                self.program.join(" "),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }

    /// The services the compose files declare.
    pub fn services(&self) -> Result<Vec<String>> {
        let out = self.output(&["config", "--services"])?;
        Ok(lines(&out.stdout))
    }

    /// `up --detach` of `services` (all when empty) from images already
    /// built; with `no_deps`, services outside the list are left out even
    /// when a listed one depends on them.
    pub fn up(&self, services: &[String], no_deps: bool) -> Result<()> {
        let mut cmd = self.command();
        cmd.args(["up", "--detach", "--no-build"]);
        if no_deps {
            cmd.arg("--no-deps");
        }
        cmd.args(services);
        let status = cmd
            .status()
            .with_context(|| format!("running {}", self.program.join(" ")))?;
        if !status.success() {
            bail!("{} up failed", self.program.join(" "));
        }
        Ok(())
    }

    /// Container ids of the project (running or not).
    pub fn containers(&self) -> Result<Vec<String>> {
        let out = self
            .output(&["ps", "--all", "-q"])
            .or_else(|_| self.output(&["ps", "-q"]))?;
        Ok(lines(&out.stdout))
    }

    /// Waits until a container of every service in `services` runs and, where
    /// it has a healthcheck, is healthy; fails early on an exited, restarting
    /// or unhealthy one, showing its last log lines.
    pub fn wait(&self, services: &[String], timeout: Duration) -> Result<Vec<Container>> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            let containers = inspect(&self.containers()?)?;
            let mut waiting = Vec::new();
            for svc in services {
                match containers.iter().find(|c| &c.service == svc) {
                    None => waiting.push(format!("{svc}: no container")),
                    Some(c) if c.failed() => bail!(
                        "{svc} is {}; its last log lines:\n{}",
                        c.describe(),
                        logs_tail(&c.id, 30)
                    ),
                    Some(c) if !c.ready() => waiting.push(format!("{svc}: {}", c.describe())),
                    Some(_) => {}
                }
            }
            // Only changes are printed, so a log without a terminal stays short.
            let line = format!(
                "compose: {}/{} ready{}",
                services.len() - waiting.len(),
                services.len(),
                waiting
                    .first()
                    .map(|w| format!(" (waiting for {w})"))
                    .unwrap_or_default()
            );
            if line != last {
                println!("{line}");
                last = line;
            }
            if waiting.is_empty() {
                return Ok(containers);
            }
            if Instant::now() > deadline {
                bail!("not ready after {timeout:?}: {}", waiting.join(", "));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `down`, removing the named volumes too when `volumes`. Compose
    /// interpolates the whole file even to stop it, so secrets missing from
    /// the environment and the env file get a placeholder here.
    pub fn down(&self, volumes: bool) -> Result<()> {
        let mut cmd = self.command();
        cmd.arg("down");
        if volumes {
            cmd.arg("--volumes");
        }
        for name in self.required_variables() {
            let in_env_file = self
                .env_file
                .as_deref()
                .and_then(|f| crate::native::state::dotenv_value(f, &name))
                .is_some();
            if std::env::var_os(&name).is_none() && !in_env_file {
                cmd.env(&name, "unused-by-down");
            }
        }
        let status = cmd
            .status()
            .with_context(|| format!("running {}", self.program.join(" ")))?;
        if !status.success() {
            bail!("{} down failed", self.program.join(" "));
        }
        Ok(())
    }

    /// Every `${NAME:?...}` the compose files require.
    fn required_variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|text| required_in(&text))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The variable names of every `${NAME:?...}` in a compose file's text.
pub fn required_in(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once(":?").map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// A container as `docker inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub service: String,
    /// `running`, `exited`, `restarting`, ...
    pub status: String,
    /// `healthy`, `starting`, `unhealthy`, or empty without a healthcheck.
    pub health: String,
}

impl Container {
    /// Running, and healthy if it has a healthcheck.
    pub fn ready(&self) -> bool {
        self.status == "running" && (self.health.is_empty() || self.health == "healthy")
    }

    /// Exited, restarting (it crashed) or unhealthy: waiting longer is pointless.
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "exited" | "dead" | "restarting")
            || self.health == "unhealthy"
    }

    fn describe(&self) -> String {
        if self.health.is_empty() {
            self.status.clone()
        } else {
            format!("{} ({})", self.status, self.health)
        }
    }
}

/// A container from one element of `docker inspect`'s JSON array (fields
/// absent from the engine's answer, such as `State.Health` without a
/// healthcheck, are empty).
pub fn parse_container(v: &serde_json::Value) -> Option<Container> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Some(Container {
        id: text(&v["Id"])?,
        name: text(&v["Name"])?.trim_start_matches('/').to_owned(),
        service: text(&v["Config"]["Labels"]["com.docker.compose.service"]).unwrap_or_default(),
        status: text(&v["State"]["Status"])?,
        health: text(&v["State"]["Health"]["Status"]).unwrap_or_default(),
    })
}

/// `docker inspect` of these ids, as JSON.
pub fn inspect_json(ids: &[String]) -> Result<Vec<serde_json::Value>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = Command::new("docker")
        .arg("inspect")
        .args(ids)
        .output()
        .context("running docker inspect")?;
    if !out.status.success() {
        bail!(
            "docker inspect: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("parsing docker inspect's answer")
}

/// The containers with these ids.
pub fn inspect(ids: &[String]) -> Result<Vec<Container>> {
    Ok(inspect_json(ids)?
        .iter()
        .filter_map(parse_container)
        .collect())
}

/// The last `n` lines a container logged (stdout and stderr).
pub fn logs_tail(id: &str, n: usize) -> String {
    Command::new("docker")
        .args(["logs", "--tail", &n.to_string(), id])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

pub(super) fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `cargo xtask up --compose`: builds the images (unless `prebuilt` says
/// not to), starts the generated stack and waits for every healthcheck.
pub fn up(ws: &Workspace, prebuilt: Prebuilt, timeout: Duration) -> Result<()> {
    let model = ws.model()?;
    let stack = Stack::generated(ws)?;
    if stack.env_file.is_none() {
        println!(
            "compose: no .env in {}: secrets come from the environment \
             (cp generated/.env.example .env and fill it in)",
            ws.root().display()
        );
    }
    if !prebuilt.no_build {
        images::build(ws, prebuilt)?;
    }
    let services = stack.services()?;
    println!(
        "compose: starting {} with {}",
        services.join(", "),
        stack.program.join(" ")
    );
    stack.up(&[], false)?;
    let containers = stack.wait(&services, timeout).map_err(|err| {
        err.context("the stack stays up for inspection: `cargo xtask down --compose` stops it")
    })?;
    print_containers(&containers);
    if let Some(port) = model
        .service(&model.project.gateway)
        .and_then(|g| g.public_port)
    {
        println!("\nThe platform answers on http://localhost:{port}");
    }
    println!("stop: cargo xtask down --compose   (data is kept in the postgres-data volume)");
    Ok(())
}

/// Stops the generated stack; the database volume is kept.
pub fn down(ws: &Workspace) -> Result<()> {
    let stack = Stack::generated(ws)?;
    stack.down(false)
}

/// A table of containers and their state.
pub fn print_containers(containers: &[Container]) {
    println!("\n{:<36} {:<12} HEALTH", "CONTAINER", "STATE");
    for c in containers {
        let health = if c.health.is_empty() { "-" } else { &c.health };
        println!("{:<36} {:<12} {health}", c.name, c.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(status: &str, health: &str) -> Container {
        Container {
            id: "id".into(),
            name: "n".into(),
            service: "s".into(),
            status: status.into(),
            health: health.into(),
        }
    }

    #[test]
    fn a_container_is_ready_only_when_running_and_healthy() {
        assert!(container("running", "healthy").ready());
        assert!(container("running", "").ready());
        assert!(!container("running", "starting").ready());
        assert!(!container("created", "").ready());
        assert!(container("exited", "").failed());
        assert!(container("restarting", "").failed());
        assert!(container("running", "unhealthy").failed());
        assert!(!container("running", "starting").failed());
    }

    #[test]
    fn inspect_json_parses_with_and_without_health() {
        let with = serde_json::json!({"Id": "abc", "Name": "/loja-veloz_pedidos_1",
            "Config": {"Labels": {"com.docker.compose.service": "pedidos"}},
            "State": {"Status": "running", "Health": {"Status": "healthy"}}});
        let c = parse_container(&with).unwrap();
        assert_eq!(c.name, "loja-veloz_pedidos_1");
        assert_eq!(c.service, "pedidos");
        assert_eq!(c.health, "healthy");
        let without = serde_json::json!({"Id": "abc", "Name": "/x",
            "Config": {"Labels": {"com.docker.compose.service": "prometheus"}},
            "State": {"Status": "running"}});
        assert_eq!(parse_container(&without).unwrap().health, "");
        assert!(parse_container(&serde_json::json!({"Id": "abc"})).is_none());
    }

    #[test]
    fn required_variables_are_the_error_substitutions_only() {
        let text = "a: ${ADMIN_TOKEN:?set it}\nb: \"postgres://x:${DB_PASS:?set}@h\"\nc: ${PLAIN}\nd: ${DEF:-x}\n";
        assert_eq!(required_in(text), ["ADMIN_TOKEN", "DB_PASS"]);
    }

    #[test]
    fn the_generated_compose_file_requires_every_secret_of_the_env_example() {
        let root = crate::Workspace::find().unwrap().root().to_path_buf();
        let compose = std::fs::read_to_string(root.join(COMPOSE_FILE)).unwrap();
        let example = std::fs::read_to_string(root.join("generated/.env.example")).unwrap();
        let mut required = required_in(&compose);
        required.sort();
        required.dedup();
        let mut listed: Vec<String> = example
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        listed.sort();
        assert_eq!(required, listed);
    }
}
