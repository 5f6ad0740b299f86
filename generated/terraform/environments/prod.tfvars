# Generated from loja.toml by `cargo xtask gen`; do not edit.
# `terraform plan -var-file=environments/prod.tfvars` (after
# `terraform init -backend-config=environments/prod.s3.tfbackend`).
project     = "loja-veloz"
environment = "prod"
region      = "sa-east-1"
vpc_cidr    = "10.42.0.0/16"

kubernetes_version                   = "1.30"
cluster_endpoint_public_access_cidrs = ["0.0.0.0/0"]

services = [
  "api-gateway",
  "estoque",
  "pagamentos",
  "pedidos",
]

node_instance_type = "m7g.large"
node_ami_type      = "AL2023_ARM_64_STANDARD"
# Sized from loja.toml: replicas x requests of every service in prod
# (min 1650m CPU / 1536Mi, max 4800m CPU / 3840Mi)
# over 1900m CPU / 7100Mi allocatable per node, plus one spare node.
node_min_size = 2
node_max_size = 4

db_instance_class      = "db.m7g.large"
db_storage_gib         = 10
db_multi_az            = true
db_deletion_protection = true
private_zone           = "prod.loja-veloz.internal"

nat_gateway_per_zone = true
