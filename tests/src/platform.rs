//! The platform under test: estoque, pagamentos and pedidos (and on request
//! the api-gateway) on loopback, each with a fresh database, plus the calls
//! tests make to place orders and to check stock and payments.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::process::{Process, binaries, free_port};
use crate::{ADMIN_TOKEN, database_server};

/// A database name no other test (or test process) uses: `[a-z0-9_]` only.
fn unique_name(service: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("loja_t_{}_{n}_{nanos}_{service}", std::process::id())
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
