//! The init script that creates the services' databases and logins runs on
//! an empty in-cluster server once and, through the `postgres-init` Job, on
//! a managed server at every deploy, logged in as an administrator that is
//! no superuser (RDS's master user). Held here against a real server.

mod common;

use std::process::Command;

use loja_testkit::pg::{TempCluster, psql, query};

/// Runs generated/postgres/init-databases.sh against `cluster` as `user`,
/// with `password` for every service's login.
fn run_script(cluster: &TempCluster, user: &str, password: &str) {
    let script = common::project_root().join("generated/postgres/init-databases.sh");
    let out = Command::new("sh")
        .arg(&script)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", cluster.port().to_string())
        .env("POSTGRES_USER", user)
        .env("PEDIDOS_DB_PASSWORD", password)
        .env("PAGAMENTOS_DB_PASSWORD", password)
        .env("ESTOQUE_DB_PASSWORD", password)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn password_hash(cluster: &TempCluster, role: &str) -> String {
    let rows = query(
        &cluster.url("postgres"),
        &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'"),
    )
    .unwrap();
    rows[0][0].clone()
}

#[test]
fn the_script_runs_again_as_a_non_superuser_admin_and_only_resets_the_passwords() {
    let cluster = TempCluster::start().unwrap();
    // What RDS gives its master user: roles and databases, no superuser.
    psql(
        &cluster.url("postgres"),
        "CREATE ROLE admin LOGIN CREATEROLE CREATEDB;",
    )
    .unwrap();
    run_script(&cluster, "admin", "first-pass");
    let first = password_hash(&cluster, "pedidos");
    assert!(first.starts_with("SCRAM-SHA-256$"), "{first}");

    run_script(&cluster, "admin", "second-pass");
    assert_ne!(password_hash(&cluster, "pedidos"), first);
    let owners = query(
        &cluster.url("postgres"),
        "SELECT datname, pg_get_userbyid(datdba) FROM pg_database \
         WHERE datname IN ('pedidos', 'pagamentos', 'estoque') ORDER BY datname",
    )
    .unwrap();
    assert_eq!(
        owners,
        [
            ["estoque", "estoque"],
            ["pagamentos", "pagamentos"],
            ["pedidos", "pedidos"]
        ]
    );
    // PUBLIC may not connect: only the owner (and the admin) may.
    let public = query(
        &cluster.url("postgres"),
        "SELECT has_database_privilege('public', 'pedidos', 'CONNECT')",
    )
    .unwrap();
    assert_eq!(public, [["f"]]);
}
