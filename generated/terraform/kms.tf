# Generated from loja.toml by `cargo xtask gen`; do not edit.
data "aws_caller_identity" "current" {}

# Keys administered by the account (IAM policies decide who uses them).
data "aws_iam_policy_document" "kms_account" {
  #checkov:skip=CKV_AWS_109:the default key policy AWS gives every key: the account administers it and IAM policies grant its use
  #checkov:skip=CKV_AWS_111:the default key policy AWS gives every key: the account administers it and IAM policies grant its use
  #checkov:skip=CKV_AWS_356:a key policy's resource is the key itself; "*" is the only value KMS accepts there
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}
