# Generated from loja.toml by `cargo xtask gen`; do not edit.
terraform {
  required_version = ">= 1.10.0"

  # Partial configuration: each environment's bucket, key and region come
  # from environments/NAME.s3.tfbackend (`terraform init -backend-config=...`).
  # The S3 lock file (Terraform 1.10+) keeps two applies from overlapping.
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.80.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

locals {
  # Every name carries the environment: staging and prod may share an account.
  name = "${var.project}-${var.environment}"
}
