# Generated from loja.toml by `cargo xtask gen`; do not edit.
module "vpc" {
  # v5.16.0, pinned to its commit: a tag can be moved, a commit cannot.
  source = "git::https://github.com/terraform-aws-modules/terraform-aws-vpc.git?ref=9ffd9c66f3d7eb4b5bc2d7bc7d049f794b127693"

  name = local.name
  cidr = var.vpc_cidr

  # Named, not looked up: a zone AWS adds later never moves a subnet.
  azs             = [for zone in ["a", "b", "c"] : "${var.region}${zone}"]
  private_subnets = [for i in range(3) : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets  = [for i in range(3) : cidrsubnet(var.vpc_cidr, 8, 48 + i)]

  enable_nat_gateway = true
  # Production keeps one NAT gateway per zone, so losing a zone keeps egress.
  single_nat_gateway     = !var.nat_gateway_per_zone
  one_nat_gateway_per_az = var.nat_gateway_per_zone

  # Route 53 private zones need both.
  enable_dns_hostnames = true
  enable_dns_support   = true

  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }

  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
  }
}
