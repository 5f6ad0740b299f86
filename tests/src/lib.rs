//! Helpers for the cross-service tests: build the service binaries once,
//! start real estoque, pagamentos and pedidos processes (and, when a test
//! asks, the api-gateway in front of them) on free loopback ports, each with a
//! fresh database, following the env-var contract, and kill them when the
//! test ends, however it ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The admin token every test platform runs with.
pub const ADMIN_TOKEN: &str = "loja-tests-admin-token";

/// The PostgreSQL server the tests use: the one `DATABASE_URL` points at
/// (CI exports its own cluster there), else the development cluster.
pub fn database_server() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433/postgres".into());
    // Keep scheme, credentials, host and port; drop the database and query.
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", &url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

/// Builds the service binaries (once per test process; cargo itself makes
/// concurrent test processes wait for one build) and returns their directory.
fn binaries() -> Result<PathBuf> {
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

/// A loopback port nobody listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral loopback port")
}

fn unique_name(service: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("loja_t_{}_{n}_{nanos}_{service}", std::process::id())
}

/// One service process and what is needed to restart it as it was.
pub struct Process {
    pub name: &'static str,
    pub port: u16,
    /// The service's own database.
    pub database_url: String,
    binary: PathBuf,
    env: HashMap<String, String>,
    child: Option<Child>,
    log: PathBuf,
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

    fn spawn(&mut self) -> Result<()> {
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

/// Settings that differ between tests; the rest follow the env-var contract defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// pedidos: per-try timeout of calls to estoque and pagamentos.
    pub upstream_timeout_ms: u64,
    /// pedidos: age of an undriven pending order before the reconciler takes it.
    pub reconcile_after_secs: u64,
    /// pedidos: reconciler period.
    pub reconcile_interval_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upstream_timeout_ms: 2000,
            reconcile_after_secs: 1,
            reconcile_interval_secs: 1,
        }
    }
}

/// estoque, pagamentos and pedidos running on loopback, each with a fresh database.
pub struct Platform {
    pub estoque: Process,
    pub pagamentos: Process,
    pub pedidos: Process,
    pub http: reqwest::Client,
    databases: Vec<String>,
}

async fn create_database(server: &str, name: &str) -> Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| format!("connecting to {server}"))?;
    // The name is generated here from [a-z0-9_], so it is safe to splice.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .with_context(|| format!("creating database {name}"))?;
    Ok(format!("{server}/{name}"))
}

impl Platform {
    /// Starts the three services with default settings.
    pub async fn start() -> Result<Platform> {
        Self::start_with(Settings::default()).await
    }

    /// Starts the three services with `settings`.
    pub async fn start_with(settings: Settings) -> Result<Platform> {
        let bin = tokio::task::spawn_blocking(binaries).await??;
        let server = database_server();
        let logs = std::env::temp_dir().join("loja-tests");
        std::fs::create_dir_all(&logs)?;
        let mut databases = Vec::new();
        let mut make = async |name: &'static str, extra: Vec<(&str, String)>| -> Result<Process> {
            let db = unique_name(name);
            let database_url = create_database(&server, &db).await?;
            databases.push(db.clone());
            let port = free_port();
            let mut env: HashMap<String, String> = [
                ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
                ("DATABASE_URL", database_url.clone()),
                ("ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
                ("LOG_LEVEL", "info".to_owned()),
                ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
                ("PATH", std::env::var("PATH").unwrap_or_default()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            env.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
            Ok(Process {
                name,
                port,
                database_url,
                binary: bin.join(name),
                env,
                child: None,
                log: logs.join(format!("{db}.log")),
            })
        };
        let mut estoque = make("estoque", vec![("SWEEP_INTERVAL_SECS", "1".into())]).await?;
        let mut pagamentos = make("pagamentos", vec![]).await?;
        let pedidos_env = vec![
            ("ESTOQUE_URL", estoque.url()),
            ("PAGAMENTOS_URL", pagamentos.url()),
            (
                "UPSTREAM_TIMEOUT_MS",
                settings.upstream_timeout_ms.to_string(),
            ),
            (
                "RECONCILE_AFTER_SECS",
                settings.reconcile_after_secs.to_string(),
            ),
            (
                "RECONCILE_INTERVAL_SECS",
                settings.reconcile_interval_secs.to_string(),
            ),
        ];
        let mut pedidos = make("pedidos", pedidos_env).await?;
        estoque.spawn()?;
        pagamentos.spawn()?;
        pedidos.spawn()?;
        estoque.wait_ready().await?;
        pagamentos.wait_ready().await?;
        pedidos.wait_ready().await?;
        Ok(Platform {
            estoque,
            pagamentos,
            pedidos,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            databases,
        })
    }

    /// Starts the api-gateway in front of the three services, routing the
    /// public prefixes as `loja.toml` does.
    pub async fn gateway(&self) -> Result<Process> {
        let port = free_port();
        let env: HashMap<String, String> = [
            ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
            (
                "GATEWAY_ROUTES",
                "/api/v1/orders=pedidos,/api/v1/payments=pagamentos,/api/v1/products=estoque"
                    .to_owned(),
            ),
            ("PEDIDOS_URL", self.pedidos.url()),
            ("PAGAMENTOS_URL", self.pagamentos.url()),
            ("ESTOQUE_URL", self.estoque.url()),
            ("LOG_LEVEL", "info".to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut gateway = Process {
            name: "api-gateway",
            port,
            database_url: String::new(),
            binary: self.pedidos.binary.with_file_name("api-gateway"),
            env,
            child: None,
            log: self.pedidos.log.with_extension("gateway.log"),
        };
        gateway.spawn()?;
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    /// A connection pool to pedidos' own database, to observe saga progress.
    pub async fn pedidos_db(&self) -> Result<sqlx::PgPool> {
        Ok(sqlx::PgPool::connect(&self.pedidos.database_url).await?)
    }

    /// Waits until pedidos' database shows an order at saga `step` and
    /// returns its id: how a test catches the saga at an exact point.
    pub async fn wait_for_step(&self, db: &sqlx::PgPool, step: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let id: Option<String> = sqlx::query_scalar(
                "SELECT id::text FROM orders WHERE step = $1 AND status = 'pending'",
            )
            .bind(step)
            .fetch_optional(db)
            .await?;
            if let Some(id) = id {
                return Ok(id);
            }
            if Instant::now() > deadline {
                bail!("no order reached step {step}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Sends `POST /api/v1/orders` on a task of its own, for a test that kills
    /// pedidos while the request runs.
    pub fn order_in_background(
        &self,
        body: &Value,
        key: Option<&str>,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let mut req = self
            .http
            .post(format!("{}/api/v1/orders", self.pedidos.url()))
            .json(body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        tokio::spawn(req.send())
    }

    /// Creates a product in estoque.
    pub async fn product(&self, sku: &str, price_cents: i64, stock: i64) -> Result<()> {
        let r = self
            .http
            .post(format!("{}/api/v1/products", self.estoque.url()))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"sku": sku, "name": sku, "price_cents": price_cents, "stock": stock}))
            .send()
            .await?;
        if r.status() != 201 {
            bail!("creating {sku}: {} {}", r.status(), r.text().await?);
        }
        Ok(())
    }

    /// What estoque says can still be sold of `sku`.
    pub async fn stock(&self, sku: &str) -> Result<i64> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/products/{sku}", self.estoque.url()))
            .send()
            .await?
            .json()
            .await?;
        body["stock"].as_i64().context("no stock in the product")
    }

    /// Every payment pagamentos recorded for `order_id`.
    pub async fn payments_of(&self, order_id: &str) -> Result<Vec<Value>> {
        let body: Value = self
            .http
            .get(format!(
                "{}/api/v1/payments?order_id={order_id}",
                self.pagamentos.url()
            ))
            .send()
            .await?
            .json()
            .await?;
        Ok(body["items"].as_array().cloned().unwrap_or_default())
    }

    /// `POST /api/v1/orders` on pedidos; returns status and JSON body.
    pub async fn order(&self, body: &Value, key: Option<&str>) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .post(format!("{}/api/v1/orders", self.pedidos.url()))
            .json(body);
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// `GET /api/v1/orders/{id}` on pedidos.
    pub async fn get_order(&self, id: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}/api/v1/orders/{id}", self.pedidos.url()))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// `POST /api/v1/orders/{id}/cancel` on pedidos.
    pub async fn cancel(&self, id: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}/api/v1/orders/{id}/cancel", self.pedidos.url()))
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// Polls the order until `done` accepts it or `within` passes; returns the last state.
    pub async fn wait_order(
        &self,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let (_, order) = self.get_order(id).await?;
            if done(&order) || Instant::now() > deadline {
                return Ok(order);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An order body for `items` of `(sku, quantity)` paid with `payment`.
pub fn order_body(customer: &str, items: &[(&str, i64)], payment: Value) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    json!({"customer_id": customer, "items": items, "payment": payment})
}

/// A card payment with `token`.
pub fn card(token: &str) -> Value {
    json!({"method": "card", "token": token})
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.pedidos.kill();
        self.pagamentos.kill();
        self.estoque.kill();
        let server = database_server();
        let databases = std::mem::take(&mut self.databases);
        // Drop runs inside the test's runtime, which cannot block on itself.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sqlx::Connection;
                let Ok(mut conn) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await
                else {
                    return;
                };
                for db in databases {
                    let sql = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
