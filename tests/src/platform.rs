//! The platform under test: estoque, pagamentos and pedidos (and on request
//! the api-gateway) on loopback, each with a fresh database, started with the
//! environment `loja.toml` renders for them (xtask's own plan, on free
//! ports) plus the few overrides a test names, and the calls tests make to
//! place orders and to check stock and payments.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use xtask::model::Model;
use xtask::native::launcher::Launch;
use xtask::native::plan::Plan;

use crate::process::{Process, binaries};
use crate::{ADMIN_TOKEN, database_server};

/// A database name no other test (or test process) uses: `[a-z0-9_]` only.
fn unique_name(service: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "loja_t_{}_{n}_{nanos}_{}",
        std::process::id(),
        service.replace('-', "_")
    )
}

/// Settings that differ between tests; everything else is what loja.toml renders.
#[derive(Debug, Clone)]
pub struct Settings {
    /// pedidos: per-try timeout of calls to estoque and pagamentos.
    pub upstream_timeout_ms: u64,
    /// pedidos: age of an undriven pending order before the reconciler takes it.
    pub reconcile_after_secs: u64,
    /// pedidos: reconciler period.
    pub reconcile_interval_secs: u64,
    /// estoque: period of the expired-reservation sweeper.
    pub sweep_interval_secs: u64,
    /// The PostgreSQL server (a superuser URL without database) the
    /// databases are created on; `DATABASE_URL`'s when `None`.
    pub server: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            upstream_timeout_ms: 2000,
            reconcile_after_secs: 1,
            reconcile_interval_secs: 1,
            sweep_interval_secs: 1,
            server: None,
        }
    }
}

/// estoque, pagamentos and pedidos running on loopback, each with a fresh database.
pub struct Platform {
    pub estoque: Process,
    pub pagamentos: Process,
    pub pedidos: Process,
    pub http: reqwest::Client,
    /// The model the processes were planned from (with their real ports).
    pub model: Model,
    bin_dir: PathBuf,
    server: String,
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

/// Sets a variable the launch already has: a test may change what
/// `loja.toml` renders, never add what no service reads.
fn set(launch: &mut Launch, name: &str, value: impl ToString) {
    let slot = launch.env.get_mut(name).unwrap_or_else(|| {
        panic!(
            "{} has no {name} in the environment loja.toml renders for it",
            launch.service
        )
    });
    *slot = value.to_string();
}

/// The project's model with every service on a free loopback port.
fn model_on_free_ports() -> Result<Model> {
    let mut model = xtask::Workspace::find()?.model()?.clone();
    for service in &mut model.services {
        service.native_ports = vec![loja_testkit::free_port()];
    }
    Ok(model)
}

impl Platform {
    /// Starts the three services with default settings.
    pub async fn start() -> Result<Platform> {
        Self::start_with(Settings::default()).await
    }

    /// Starts the three services with `settings`, callees first.
    pub async fn start_with(settings: Settings) -> Result<Platform> {
        let bin_dir = tokio::task::spawn_blocking(binaries).await??;
        let model = model_on_free_ports()?;
        let server = settings.server.clone().unwrap_or_else(database_server);
        let mut databases = Vec::new();
        let mut process = async |name: &str, tune: &dyn Fn(&mut Launch)| -> Result<Process> {
            let mut launch = plan(&model, &bin_dir).launch(
                model
                    .service(name)
                    .context("loja.toml declares no such service")?,
                0,
            );
            let db = unique_name(name);
            let database_url = create_database(&server, &db).await?;
            databases.push(db.clone());
            set(&mut launch, "DATABASE_URL", &database_url);
            // A killed test process must not leave services draining for long.
            set(&mut launch, "SHUTDOWN_TIMEOUT_SECS", 2);
            tune(&mut launch);
            let mut process = Process::new(launch, database_url, log_path(&db));
            process.start().await?;
            Ok(process)
        };
        let estoque = process("estoque", &|l| {
            set(l, "SWEEP_INTERVAL_SECS", settings.sweep_interval_secs)
        })
        .await?;
        let pagamentos = process("pagamentos", &|_| {}).await?;
        let pedidos = process("pedidos", &|l| {
            set(l, "UPSTREAM_TIMEOUT_MS", settings.upstream_timeout_ms);
            set(l, "RECONCILE_AFTER_SECS", settings.reconcile_after_secs);
            set(
                l,
                "RECONCILE_INTERVAL_SECS",
                settings.reconcile_interval_secs,
            );
        })
        .await?;
        Ok(Platform {
            estoque,
            pagamentos,
            pedidos,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            model,
            bin_dir,
            server,
            databases,
        })
    }

    /// Starts the api-gateway in front of the three services, routing the
    /// public prefixes as `loja.toml` does.
    pub async fn gateway(&self) -> Result<Process> {
        let svc = self
            .model
            .service(&self.model.project.gateway)
            .context("loja.toml declares no gateway")?;
        let mut launch = plan(&self.model, &self.bin_dir).launch(svc, 0);
        set(&mut launch, "SHUTDOWN_TIMEOUT_SECS", 2);
        let log = log_path(&unique_name("api-gateway"));
        let mut gateway = Process::new(launch, String::new(), log);
        gateway.start().await?;
        Ok(gateway)
    }

    /// A connection pool to pedidos' own database, to observe saga progress.
    pub async fn pedidos_db(&self) -> Result<sqlx::PgPool> {
        Ok(sqlx::PgPool::connect(&self.pedidos.database_url).await?)
    }

    /// estoque's reservation of `order_id` as its database holds it: its
    /// status (`held`, `committed`, `released`), or `None` when estoque never
    /// took one.
    pub async fn reservation(&self, order_id: &str) -> Result<Option<String>> {
        let db = sqlx::PgPool::connect(&self.estoque.database_url).await?;
        let status =
            sqlx::query_scalar("SELECT status FROM reservations WHERE order_id = $1::uuid")
                .bind(order_id)
                .fetch_optional(&db)
                .await?;
        db.close().await;
        Ok(status)
    }

    /// Whether pedidos still owes `order_id` a compensation (a release or
    /// refund it could not make yet).
    pub async fn compensation_pending(&self, order_id: &str) -> Result<bool> {
        let db = self.pedidos_db().await?;
        let pending =
            sqlx::query_scalar("SELECT compensation_pending FROM orders WHERE id = $1::uuid")
                .bind(order_id)
                .fetch_one(&db)
                .await?;
        db.close().await;
        Ok(pending)
    }

    /// Polls `probe` every 100 ms until it holds; fails naming `what` after `within`.
    pub async fn eventually<F, Fut>(&self, what: &str, within: Duration, mut probe: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + within;
        while !probe().await? {
            if Instant::now() > deadline {
                bail!("{what}: not within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
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

/// xtask's plan of the platform's processes, with the tests' admin token.
fn plan<'a>(model: &'a Model, bin_dir: &std::path::Path) -> Plan<'a> {
    Plan {
        model,
        replicas: Some(1),
        bin_dir: bin_dir.to_path_buf(),
        secret: &|name| match name {
            "ADMIN_TOKEN" => ADMIN_TOKEN.to_owned(),
            _ => "unused".to_owned(),
        },
        otlp: None,
    }
}

/// Where a test process logs.
fn log_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("loja-tests");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{name}.log"))
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.pedidos.kill();
        self.pagamentos.kill();
        self.estoque.kill();
        let server = self.server.clone();
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
