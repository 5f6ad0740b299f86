# Generated from loja.toml by `cargo xtask gen`; do not edit.
resource "aws_db_subnet_group" "postgres" {
  name       = "${local.name}-postgres"
  subnet_ids = module.vpc.private_subnets
}

resource "aws_security_group" "postgres" {
  name        = "${local.name}-postgres"
  description = "PostgreSQL reachable from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "PostgreSQL from the nodes"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }
}

# Slow statements and every schema change reach the logs exported below.
resource "aws_db_parameter_group" "postgres" {
  name   = "${local.name}-postgres15"
  family = "postgres15"

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
}

resource "aws_kms_key" "postgres" {
  description         = "${local.name}: PostgreSQL storage and Performance Insights"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms_account.json
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  #checkov:skip=CKV2_AWS_69:the services' PostgreSQL driver is built without TLS (services/runtime); the traffic stays in the VPC's private subnets, between the nodes' and the database's security groups
  identifier     = "${local.name}-postgres"
  engine         = "postgres"
  engine_version = "15"
  instance_class = var.db_instance_class
  port           = 5432

  allocated_storage = var.db_storage_gib
  storage_encrypted = true
  kms_key_id        = aws_kms_key.postgres.arn

  username                    = "postgres"
  manage_master_user_password = true
  # IAM tokens may stand in for passwords (the services use their own logins).
  iam_database_authentication_enabled = true

  db_subnet_group_name   = aws_db_subnet_group.postgres.name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  parameter_group_name   = aws_db_parameter_group.postgres.name

  multi_az                   = var.db_multi_az
  deletion_protection        = var.db_deletion_protection
  auto_minor_version_upgrade = true
  backup_retention_period    = 7
  copy_tags_to_snapshot      = true
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${local.name}-postgres-final"

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.postgres.arn
  performance_insights_retention_period = 7
}
