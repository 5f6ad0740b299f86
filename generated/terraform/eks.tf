# Generated from loja.toml by `cargo xtask gen`; do not edit.
module "eks" {
  # v20.31.6, pinned to its commit: a tag can be moved, a commit cannot.
  source = "git::https://github.com/terraform-aws-modules/terraform-aws-eks.git?ref=a713f6f464eb579a39918f60f130a5fbb77a6b30"

  cluster_name    = local.name
  cluster_version = var.kubernetes_version

  # The deploy jobs reach the API from the addresses loja.toml names; the
  # nodes reach it inside the VPC.
  cluster_endpoint_public_access       = true
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  cluster_endpoint_private_access      = true

  enable_cluster_creator_admin_permissions = true

  # What the manifests depend on: the HorizontalPodAutoscalers read CPU and
  # memory from metrics-server; DNS, the pod network and kube-proxy.
  cluster_addons = {
    coredns        = {}
    kube-proxy     = {}
    vpc-cni        = {}
    metrics-server = {}
  }

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  eks_managed_node_groups = {
    default = {
      ami_type       = var.node_ami_type
      instance_types = [var.node_instance_type]
      min_size       = var.node_min_size
      max_size       = var.node_max_size
      desired_size   = var.node_min_size
    }
  }
}
