#!/bin/sh
# Generated from loja.toml by `cargo xtask gen`; do not edit.
# Creates one database and one login per service and sets each login's
# password from the environment (never from this file): on the first start
# of an empty data directory (the postgres image runs
# /docker-entrypoint-initdb.d), and on every deploy to a managed server (the
# postgres-init Job). A second run changes nothing but the passwords.
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v estoque_password="${ESTOQUE_DB_PASSWORD:?ESTOQUE_DB_PASSWORD is not set}" \
  -v pagamentos_password="${PAGAMENTOS_DB_PASSWORD:?PAGAMENTOS_DB_PASSWORD is not set}" \
  -v pedidos_password="${PEDIDOS_DB_PASSWORD:?PEDIDOS_DB_PASSWORD is not set}" \
  <<'SQL'
SELECT 'CREATE ROLE estoque' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'estoque')\gexec
ALTER ROLE estoque LOGIN PASSWORD :'estoque_password';
-- A managed server's admin is no superuser: it may only create a database
-- owned by a role it belongs to.
GRANT estoque TO CURRENT_USER;
SELECT 'CREATE DATABASE estoque OWNER estoque' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'estoque')\gexec
REVOKE ALL ON DATABASE estoque FROM PUBLIC;
SELECT 'CREATE ROLE pagamentos' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pagamentos')\gexec
ALTER ROLE pagamentos LOGIN PASSWORD :'pagamentos_password';
-- A managed server's admin is no superuser: it may only create a database
-- owned by a role it belongs to.
GRANT pagamentos TO CURRENT_USER;
SELECT 'CREATE DATABASE pagamentos OWNER pagamentos' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'pagamentos')\gexec
REVOKE ALL ON DATABASE pagamentos FROM PUBLIC;
SELECT 'CREATE ROLE pedidos' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pedidos')\gexec
ALTER ROLE pedidos LOGIN PASSWORD :'pedidos_password';
-- A managed server's admin is no superuser: it may only create a database
-- owned by a role it belongs to.
GRANT pedidos TO CURRENT_USER;
SELECT 'CREATE DATABASE pedidos OWNER pedidos' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'pedidos')\gexec
REVOKE ALL ON DATABASE pedidos FROM PUBLIC;
SQL
