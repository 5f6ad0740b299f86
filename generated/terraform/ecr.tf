# Generated from loja.toml by `cargo xtask gen`; do not edit.
resource "aws_kms_key" "images" {
  description         = "${local.name}: ECR images"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms_account.json
}

resource "aws_ecr_repository" "service" {
  for_each = toset(var.services)

  name = "${local.name}/${each.key}"
  # A tag names one image forever: what was tested is what is deployed.
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.images.arn
  }
}
