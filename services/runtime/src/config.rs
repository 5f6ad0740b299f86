//! Settings every service reads from its environment. The variable names are
//! the ones `cargo xtask gen` renders into compose, ConfigMaps and native runs.

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::AdminToken;

/// `LISTEN_ADDR` when unset: every interface, port 8080.
pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:8080";

/// `MAX_BODY_BYTES` when unset, and the limit of a router nobody set one on.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2024-01-01 12:00:00 | INFO | api-gateway | GET /health 200 0.4ms trace_id=…`
    Text,
    /// One JSON object per line with the same fields.
    Json,
}

/// Settings shared by all services.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonConfig {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = DEFAULT_LISTEN_ADDR)]
    pub listen_addr: SocketAddr,

    /// `text` (default) or `json` log lines.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, such as `info` or `info,sqlx=warn`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// OTLP/gRPC collector for traces, such as `http://jaeger:4317`. Unset: no export.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Longest time in-flight requests get to finish after SIGTERM, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 20)]
    pub shutdown_timeout_secs: u64,

    /// After SIGTERM, how long the replica keeps accepting while unready
    /// (answering with `Connection: close`) so callers move to other
    /// replicas before its listener closes, in milliseconds.
    #[arg(long, env = "DRAIN_DELAY_MS", default_value_t = 1000)]
    pub drain_delay_ms: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Requests this replica works on at once; more are answered 503
    /// `overloaded` at once (see [`crate::admission`]).
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    #[command(flatten)]
    pub http: HttpLimits,
}

/// What one client can make a server hold: time, connections and header
/// bytes (see `server::conn`). The defaults are those of a public edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct HttpLimits {
    /// Longest time from a request's first byte to the end of its head, in
    /// milliseconds; a slower client's connection is closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Longest time a connection may wait, with no request in flight, for
    /// its next request (or its first), in milliseconds.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,

    /// Open connections this process serves at once; one more is answered
    /// 503 and closed.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 2048)]
    pub max_connections: usize,

    /// Largest request head (request line and header fields), in bytes; a
    /// larger one is answered 431.
    #[arg(long, env = "HTTP_MAX_HEADER_BYTES", default_value_t = 16_384)]
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 2048,
            max_header_bytes: 16_384,
        }
    }
}

impl CommonConfig {
    /// How this replica drains on SIGTERM.
    pub fn drain(&self) -> Drain {
        Drain {
            delay: Duration::from_millis(self.drain_delay_ms),
            timeout: Duration::from_secs(self.shutdown_timeout_secs),
        }
    }
}

/// The two phases of a graceful shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    /// Unready but still accepting, every answer closing its connection.
    pub delay: Duration,
    /// Listener closed, in-flight requests finishing; then the process exits anyway.
    pub timeout: Duration,
}

/// Settings of a service that owns a PostgreSQL database.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,

    /// Connections in this replica's pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10)]
    pub db_max_connections: u32,

    /// How long a request waits for a pooled connection before it fails with 503, in milliseconds.
    #[arg(long, env = "DB_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub db_acquire_timeout_ms: u64,
}

/// Settings of a service that owns a PostgreSQL database and guards some of
/// its endpoints with the admin token: estoque, pagamentos and pedidos.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseServiceConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Bearer token that admits the admin endpoints: estoque's catalog
    /// writes, and listing every payment (pagamentos) or order (pedidos).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: AdminToken,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Service {
        #[command(flatten)]
        base: DatabaseServiceConfig,
    }

    #[test]
    fn the_http_limits_defaults_are_the_variables_defaults() {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            http: HttpLimits,
        }
        let parsed = <Only as clap::Parser>::try_parse_from(["t"]).unwrap();
        assert_eq!(parsed.http, HttpLimits::default());
    }

    #[test]
    fn a_database_service_reads_these_variables_with_these_defaults() {
        let vars: Vec<(String, Option<String>)> = Service::command()
            .get_arguments()
            .map(|arg| {
                let env = arg.get_env().expect("every setting has a variable");
                let default = arg.get_default_values().first();
                (
                    env.to_string_lossy().into_owned(),
                    default.map(|d| d.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let expected = [
            ("LISTEN_ADDR", Some("0.0.0.0:8080")),
            ("LOG_FORMAT", Some("text")),
            ("LOG_LEVEL", Some("info")),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", None),
            ("SHUTDOWN_TIMEOUT_SECS", Some("20")),
            ("DRAIN_DELAY_MS", Some("1000")),
            ("MAX_BODY_BYTES", Some("65536")),
            ("MAX_IN_FLIGHT", Some("256")),
            ("HTTP_HEADER_READ_TIMEOUT_MS", Some("10000")),
            ("HTTP_IDLE_TIMEOUT_MS", Some("60000")),
            ("HTTP_MAX_CONNECTIONS", Some("2048")),
            ("HTTP_MAX_HEADER_BYTES", Some("16384")),
            ("DATABASE_URL", None),
            ("DB_MAX_CONNECTIONS", Some("10")),
            ("DB_ACQUIRE_TIMEOUT_MS", Some("2000")),
            ("ADMIN_TOKEN", None),
        ]
        .map(|(env, default)| (env.to_owned(), default.map(str::to_owned)));
        assert_eq!(vars, expected);
    }
}
