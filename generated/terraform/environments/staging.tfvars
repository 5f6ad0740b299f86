# Generated from loja.toml by `cargo xtask gen`; do not edit.
# `terraform plan -var-file=environments/staging.tfvars` (after
# `terraform init -backend-config=environments/staging.s3.tfbackend`).
project     = "loja-veloz"
environment = "staging"
region      = "sa-east-1"
vpc_cidr    = "10.41.0.0/16"

kubernetes_version                   = "1.30"
cluster_endpoint_public_access_cidrs = ["0.0.0.0/0"]

services = [
  "api-gateway",
  "estoque",
  "pagamentos",
  "pedidos",
]

node_instance_type = "t4g.large"
node_ami_type      = "AL2023_ARM_64_STANDARD"
# Sized from loja.toml: replicas x requests of every service in staging
# (min 800m CPU / 1024Mi, max 1600m CPU / 2048Mi)
# over 1900m CPU / 7100Mi allocatable per node, plus one spare node.
node_min_size = 2
node_max_size = 2

db_instance_class      = "db.t4g.small"
db_storage_gib         = 10
db_multi_az            = true
db_deletion_protection = true
private_zone           = "staging.loja-veloz.internal"

nat_gateway_per_zone = false
