# Generated from loja.toml by `cargo xtask gen`; do not edit.
variable "project" {
  description = "Name used for the cluster, the VPC and every tag."
  type        = string
  default     = "loja-veloz"
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "sa-east-1"
}

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.30"
}

variable "services" {
  description = "Services with a container image (one ECR repository each)."
  type        = list(string)
  default = [
    "api-gateway",
    "estoque",
    "pagamentos",
    "pedidos",
  ]
}

variable "node_instance_type" {
  description = "Instance type of the managed node group."
  type        = string
  default     = "t3.large"
}

# Sized from loja.toml: replicas x requests of every service and PostgreSQL
# (min 1050m CPU / 1536Mi, max 3050m CPU / 4096Mi)
# over 1900m CPU / 7100Mi allocatable per node, plus one spare node.
variable "node_min_size" {
  description = "Nodes needed by every service at its minimum replicas."
  type        = number
  default     = 2
}

variable "node_max_size" {
  description = "Nodes needed by every service at its maximum replicas."
  type        = number
  default     = 3
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.small"
}

variable "db_storage_gib" {
  description = "RDS allocated storage in GiB."
  type        = number
  default     = 10
}
