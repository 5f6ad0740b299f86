# Generated from loja.toml by `cargo xtask gen`; do not edit.
resource "aws_ecr_repository" "service" {
  for_each = toset(var.services)

  name                 = "${var.project}/${each.key}"
  image_tag_mutability = "MUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }
}
