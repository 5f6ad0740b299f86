#!/bin/sh
# Generated from loja.toml by `cargo xtask gen`; do not edit.
# Creates one database and one login per service on the first start of an
# empty data directory (the postgres image runs /docker-entrypoint-initdb.d).
# Passwords come from the environment, never from this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  -v estoque_password="${ESTOQUE_DB_PASSWORD:?ESTOQUE_DB_PASSWORD is not set}" \
  -v pagamentos_password="${PAGAMENTOS_DB_PASSWORD:?PAGAMENTOS_DB_PASSWORD is not set}" \
  -v pedidos_password="${PEDIDOS_DB_PASSWORD:?PEDIDOS_DB_PASSWORD is not set}" \
  <<'SQL'
CREATE ROLE estoque LOGIN PASSWORD :'estoque_password';
CREATE DATABASE estoque OWNER estoque;
REVOKE ALL ON DATABASE estoque FROM PUBLIC;
CREATE ROLE pagamentos LOGIN PASSWORD :'pagamentos_password';
CREATE DATABASE pagamentos OWNER pagamentos;
REVOKE ALL ON DATABASE pagamentos FROM PUBLIC;
CREATE ROLE pedidos LOGIN PASSWORD :'pedidos_password';
CREATE DATABASE pedidos OWNER pedidos;
REVOKE ALL ON DATABASE pedidos FROM PUBLIC;
SQL
