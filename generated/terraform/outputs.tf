# Generated from loja.toml by `cargo xtask gen`; do not edit.
output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = module.eks.cluster_endpoint
}

output "ecr_repository_urls" {
  description = "Image repository of each service."
  value       = { for name, repo in aws_ecr_repository.service : name => repo.repository_url }
}

output "db_endpoint" {
  description = "RDS PostgreSQL address (host:port)."
  value       = aws_db_instance.postgres.endpoint
}

output "db_host" {
  description = "The database's name in the VPC, which the manifests use."
  value       = aws_route53_record.postgres.fqdn
}

output "db_master_secret_arn" {
  description = "Secrets Manager secret holding the RDS master password (POSTGRES_PASSWORD of the deploy)."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}
