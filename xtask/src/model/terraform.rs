//! `[environments.NAME.terraform]` over `[terraform]`: every value present,
//! the node type of the environment's architecture, a valid VPC block, and
//! a production database that survives a zone and a mistaken delete.

use toml::Spanned;

use super::diagnostics::Reporter;
use super::raw::RawTerraform;
use super::{Arch, Resources, Terraform, Tier};

/// Graviton instance families have a `g` right after their generation
/// digit (`t4g`, `m7g`, `c7gn`, `g5g`); x86 ones do not (`t3`, `m6i`, `g4dn`).
fn is_graviton(instance_type: &str) -> bool {
    let family = instance_type.split('.').next().unwrap_or("");
    let after_letters = family.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let after_digits = after_letters.trim_start_matches(|c: char| c.is_ascii_digit());
    after_letters.len() != after_digits.len() && after_digits.starts_with('g')
}

/// `[environments.NAME.terraform]` over `[terraform]`, every value present,
/// the node type of the environment's architecture, a production database
/// that survives a zone and a mistaken delete.
pub(super) fn resolve(
    rep: &mut Reporter,
    name: &str,
    tier: Tier,
    arch: Arch,
    own: &Spanned<RawTerraform>,
    base: &RawTerraform,
) -> Terraform {
    let t = own.get_ref().over(base);
    let mut missing = |what: &str| {
        rep.error(
            own.span(),
            &format!("the Terraform of `{name}` has no `{what}`"),
            &format!("set `{what}` in [terraform] or in [environments.{name}.terraform]"),
        );
    };
    macro_rules! required {
        ($field:ident, $placeholder:expr) => {
            match &t.$field {
                Some(v) => v.get_ref().clone(),
                None => {
                    missing(stringify!($field));
                    $placeholder
                }
            }
        };
    }
    let region = required!(region, String::new());
    let kubernetes_version = required!(kubernetes_version, String::new());
    let node_instance_type = required!(node_instance_type, String::new());
    let db_instance_class = required!(db_instance_class, String::new());
    let db_multi_az = required!(db_multi_az, false);
    let db_deletion_protection = required!(db_deletion_protection, false);
    let vpc_cidr = required!(vpc_cidr, String::new());
    let state_bucket = required!(state_bucket, String::new());
    let public_cidrs = required!(cluster_endpoint_public_access_cidrs, Vec::new());
    let node_allocatable = t.node_allocatable.map_or_else(
        || {
            missing("node_allocatable");
            Resources {
                cpu_millis: 1,
                memory_mib: 1,
            }
        },
        |a| Resources {
            cpu_millis: a.cpu_millis,
            memory_mib: a.memory_mib,
        },
    );
    if let Some(node) = &t.node_instance_type {
        let graviton = is_graviton(node.get_ref());
        if graviton != (arch == Arch::Arm64) {
            let (is, wanted) = match arch {
                Arch::Arm64 => ("an x86", "a Graviton type (t4g, m7g, c7g...)"),
                Arch::Amd64 => ("a Graviton (arm64)", "an x86 type (t3, m6i, m7a...)"),
            };
            rep.error(
                node.span(),
                &format!(
                    "the nodes of `{name}` are {} but `{}` is {is} instance type",
                    match arch {
                        Arch::Amd64 => "amd64",
                        Arch::Arm64 => "arm64",
                    },
                    node.get_ref()
                ),
                &format!("{wanted}, or change `arch`"),
            );
        }
    }
    if let Some(cidr) = &t.vpc_cidr
        && !is_cidr(cidr.get_ref())
    {
        rep.error(
            cidr.span(),
            "invalid VPC CIDR",
            "an IPv4 block, e.g. \"10.40.0.0/16\"",
        );
    }
    if tier == Tier::Production {
        for (value, what) in [
            (&t.db_multi_az, "db_multi_az"),
            (&t.db_deletion_protection, "db_deletion_protection"),
        ] {
            if let Some(v) = value
                && !*v.get_ref()
            {
                rep.error(
                    v.span(),
                    &format!("the production database of `{name}` has `{what} = false`"),
                    "a production database is Multi-AZ and protected from deletion: `true`",
                );
            }
        }
    }
    Terraform {
        region,
        kubernetes_version,
        node_instance_type,
        node_allocatable,
        db_instance_class,
        db_multi_az,
        db_deletion_protection,
        vpc_cidr,
        state_bucket,
        cluster_endpoint_public_access_cidrs: public_cidrs,
    }
}

fn is_cidr(text: &str) -> bool {
    let Some((addr, bits)) = text.split_once('/') else {
        return false;
    };
    addr.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graviton_families_are_told_from_x86_ones() {
        for arm in [
            "t4g.large",
            "m7g.xlarge",
            "c7gn.large",
            "g5g.xlarge",
            "r6gd.large",
        ] {
            assert!(is_graviton(arm), "{arm}");
        }
        for x86 in [
            "t3.large",
            "m6i.large",
            "g4dn.xlarge",
            "m7a.large",
            "c5n.large",
        ] {
            assert!(!is_graviton(x86), "{x86}");
        }
    }
}
