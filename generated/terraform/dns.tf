# Generated from loja.toml by `cargo xtask gen`; do not edit.
# The manifests reach the database as `postgres.<private_zone>` (an
# ExternalName Service): a name the VPC resolves, fixed before the instance
# exists, instead of the endpoint RDS makes up.
resource "aws_route53_zone" "private" {
  name    = var.private_zone
  comment = "${local.name}: names inside the VPC"

  vpc {
    vpc_id = module.vpc.vpc_id
  }
}

resource "aws_route53_record" "postgres" {
  zone_id = aws_route53_zone.private.zone_id
  name    = "postgres.${var.private_zone}"
  type    = "CNAME"
  ttl     = 60
  records = [aws_db_instance.postgres.address]
}
