//! The environment each service runs with (the contract in README.md),
//! computed once here for every target so that compose, Kubernetes and
//! native runs start processes with exactly the same variables.

use serde::Serialize;

use super::{Model, Service};

/// Where the service runs; decides host names and listen addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `generated/docker-compose.yml`: peers by service name.
    Compose,
    /// `generated/k8s`: peers by Service name inside the namespace.
    Kubernetes,
    /// Plain processes on this machine; `replica` indexes `native_ports`
    /// (from 0), giving each replica its own loopback `LISTEN_ADDR`.
    /// `replicas` is how many replicas of each service run: `Some(n)` for the
    /// same count everywhere, `None` for each service's `replicas.min`; peers
    /// are only given the addresses of replicas that run.
    Native {
        replica: usize,
        replicas: Option<u32>,
    },
}

/// A variable's value: plain text, or text around a secret that is only
/// filled in where the service runs (never stored in git).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvValue {
    Plain {
        value: String,
    },
    /// `prefix` + the value of the secret variable `secret` + `suffix`.
    Secret {
        secret: String,
        prefix: String,
        suffix: String,
    },
}

/// One environment variable of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

impl EnvVar {
    fn plain(name: &str, value: impl ToString) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: EnvValue::Plain {
                value: value.to_string(),
            },
        }
    }

    fn secret(name: &str, secret: &str, prefix: String, suffix: String) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: EnvValue::Secret {
                secret: secret.into(),
                prefix,
                suffix,
            },
        }
    }

    /// The value with the secret written as `left NAME right`, e.g.
    /// `${NAME:?...}` for compose or `$(NAME)` for Kubernetes.
    pub fn render(&self, secret: impl Fn(&str) -> String) -> String {
        match &self.value {
            EnvValue::Plain { value } => value.clone(),
            EnvValue::Secret {
                secret: name,
                prefix,
                suffix,
            } => format!("{prefix}{}{suffix}", secret(name)),
        }
    }
}

/// Names of variables the generator sets itself; `env` in loja.toml may not.
pub const MANAGED: &[&str] = &[
    "LISTEN_ADDR",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "SHUTDOWN_TIMEOUT_SECS",
    "DRAIN_DELAY_MS",
    "MAX_BODY_BYTES",
    "HTTP_HEADER_READ_TIMEOUT_MS",
    "HTTP_IDLE_TIMEOUT_MS",
    "HTTP_MAX_CONNECTIONS",
    "HTTP_MAX_HEADER_BYTES",
    "UPSTREAM_TIMEOUT_MS",
    "DATABASE_URL",
    "DB_MAX_CONNECTIONS",
    "DB_ACQUIRE_TIMEOUT_MS",
    "ADMIN_TOKEN",
    "GATEWAY_ROUTES",
    "RATE_LIMITS",
    "TRUSTED_PROXIES",
];

impl Service {
    /// How many replicas run natively: `Some(n)` asks for `n`, `None` for
    /// `replicas.min`; never more than there are `native_ports`, never zero.
    pub fn native_replicas(&self, replicas: Option<u32>) -> usize {
        let wanted = replicas.unwrap_or(self.replicas.min).max(1) as usize;
        wanted.min(self.native_ports.len())
    }

    /// The secret variable holding this service's database password.
    pub fn db_password_secret(&self) -> String {
        format!("{}_DB_PASSWORD", self.upper_snake)
    }

    /// The secret variables this service needs, sorted.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.admin_token {
            out.push("ADMIN_TOKEN".to_string());
        }
        if self.database {
            out.push(self.db_password_secret());
        }
        out.sort();
        out
    }
}

impl Model {
    /// The full environment of `svc` on `target`, sorted by name.
    pub fn service_env(&self, svc: &Service, target: Target) -> Vec<EnvVar> {
        let obs = &self.observability;
        let (listen, otlp, db_host) = match target {
            Target::Compose => (
                format!("0.0.0.0:{}", svc.port),
                format!("http://jaeger:{}", obs.otlp_grpc_port),
                format!("postgres:{}", self.postgres.port),
            ),
            Target::Kubernetes => (
                format!("0.0.0.0:{}", svc.port),
                obs.kubernetes_otlp_endpoint.clone(),
                format!("postgres:{}", self.postgres.port),
            ),
            Target::Native { replica, .. } => (
                format!(
                    "127.0.0.1:{}",
                    svc.native_ports[replica % svc.native_ports.len()]
                ),
                format!("http://127.0.0.1:{}", obs.otlp_grpc_port),
                format!("127.0.0.1:{}", self.postgres.native_port),
            ),
        };
        let mut env = vec![
            EnvVar::plain("LISTEN_ADDR", listen),
            EnvVar::plain("LOG_FORMAT", &svc.log_format),
            EnvVar::plain("LOG_LEVEL", &svc.log_level),
            EnvVar::plain("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
            EnvVar::plain("SHUTDOWN_TIMEOUT_SECS", svc.shutdown_timeout_secs),
            EnvVar::plain("DRAIN_DELAY_MS", svc.drain_delay_ms),
            EnvVar::plain("MAX_BODY_BYTES", svc.max_body_bytes),
            EnvVar::plain(
                "HTTP_HEADER_READ_TIMEOUT_MS",
                svc.http.header_read_timeout_ms,
            ),
            EnvVar::plain("HTTP_IDLE_TIMEOUT_MS", svc.http.idle_timeout_ms),
            EnvVar::plain("HTTP_MAX_CONNECTIONS", svc.http.max_connections),
            EnvVar::plain("HTTP_MAX_HEADER_BYTES", svc.http.max_header_bytes),
        ];
        if let Some(timeout) = svc.upstream_timeout_ms {
            env.push(EnvVar::plain("UPSTREAM_TIMEOUT_MS", timeout));
        }
        if svc.database {
            env.push(EnvVar::secret(
                "DATABASE_URL",
                &svc.db_password_secret(),
                format!("postgres://{}:", svc.snake),
                format!("@{db_host}/{}", svc.snake),
            ));
            env.push(EnvVar::plain(
                "DB_MAX_CONNECTIONS",
                svc.db_pool.max_connections,
            ));
            env.push(EnvVar::plain(
                "DB_ACQUIRE_TIMEOUT_MS",
                svc.db_pool.acquire_timeout_ms,
            ));
        }
        if svc.admin_token {
            env.push(EnvVar::secret(
                "ADMIN_TOKEN",
                "ADMIN_TOKEN",
                String::new(),
                String::new(),
            ));
        }
        for callee in svc.calls.iter().filter_map(|c| self.service(c)) {
            let urls = match target {
                Target::Compose | Target::Kubernetes => {
                    format!("http://{}:{}", callee.name, callee.port)
                }
                Target::Native { replicas, .. } => callee.native_ports
                    [..callee.native_replicas(replicas)]
                    .iter()
                    .map(|p| format!("http://127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(","),
            };
            env.push(EnvVar::plain(&format!("{}_URL", callee.upper_snake), urls));
        }
        if svc.is_gateway {
            env.push(EnvVar::plain("GATEWAY_ROUTES", self.gateway_routes()));
            let limits = self.rate_limits.as_ref();
            // Always both, empty where no limit applies: what a gateway
            // enforces is read off its environment, never assumed.
            let on = limits.filter(|l| target == Target::Kubernetes || l.local);
            env.push(EnvVar::plain(
                "RATE_LIMITS",
                on.map(|l| l.env_value()).unwrap_or_default(),
            ));
            env.push(EnvVar::plain(
                "TRUSTED_PROXIES",
                on.map(|l| l.trusted_proxies.join(",")).unwrap_or_default(),
            ));
        }
        for (name, value) in &svc.env {
            env.push(EnvVar::plain(name, value));
        }
        env.sort_by(|a, b| a.name.cmp(&b.name));
        env
    }
}
