# Generated from loja.toml by `cargo xtask gen`; do not edit.
# No variable has a default: every value comes from the environment's
# variables file (environments/NAME.tfvars, rendered from loja.toml), so a run
# without one stops instead of creating something nobody described.

variable "project" {
  description = "Name used for the cluster, the VPC and every tag."
  type        = string
}

variable "environment" {
  description = "The loja.toml environment this state belongs to."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
}

variable "vpc_cidr" {
  description = "Address range of the VPC (the manifests' egress to PostgreSQL names it too)."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "Addresses that may reach the EKS API (the deploy jobs' runners)."
  type        = list(string)
}

variable "services" {
  description = "Services with a container image (one ECR repository each)."
  type        = list(string)
}

variable "node_instance_type" {
  description = "Instance type of the managed node group."
  type        = string
}

variable "node_ami_type" {
  description = "EKS AMI of the node group, matching the architecture loja.toml gives the environment."
  type        = string
}

variable "node_min_size" {
  description = "Nodes needed by every service at its minimum replicas."
  type        = number
}

variable "node_max_size" {
  description = "Nodes needed by every service at its maximum replicas."
  type        = number
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_storage_gib" {
  description = "RDS allocated storage in GiB."
  type        = number
}

variable "db_multi_az" {
  description = "A standby in another zone that RDS fails over to."
  type        = bool
}

variable "db_deletion_protection" {
  description = "RDS refuses to delete the instance until this is turned off."
  type        = bool
}

variable "private_zone" {
  description = "Route 53 zone of the VPC where the database is named `postgres` (the manifests' ExternalName)."
  type        = string
}

variable "nat_gateway_per_zone" {
  description = "One NAT gateway per zone (production) instead of one for the VPC."
  type        = bool
}
