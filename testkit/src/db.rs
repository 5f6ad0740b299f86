//! Throwaway databases on the PostgreSQL server `DATABASE_URL` names (the
//! cluster `cargo xtask test` starts), for tests that need a database of
//! their own on a multi-thread runtime (which `#[sqlx::test]` does not give).

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// A database of its own on the `DATABASE_URL` server, migrated, for tests
/// that need a multi-thread runtime (which `#[sqlx::test]` does not give).
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
    server: String,
    name: String,
}

impl TestDb {
    /// Creates and migrates a fresh database with `max_connections` in its pool.
    pub async fn create(migrator: &Migrator, max_connections: u32) -> TestDb {
        let server = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must point at a PostgreSQL server for these tests");
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = with_database(&server, &name);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await
            .expect("connect to the test database");
        migrator
            .run(&pool)
            .await
            .expect("migrate the test database");
        TestDb {
            pool,
            url,
            server,
            name,
        }
    }

    /// Another pool on the same database: a second replica of the service.
    pub async fn replica_pool(&self, max_connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&self.url)
            .await
            .expect("connect a replica pool")
    }

    /// Drops the database; a failed test leaves it behind for inspection.
    pub async fn drop_database(self) {
        self.pool.close().await;
        let mut admin = PgConnection::connect(&self.server)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .expect("drop test database");
    }
}

/// `url` with its database path replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
