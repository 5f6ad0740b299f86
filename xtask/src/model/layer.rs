//! Layers of settings: an environment's tables over the base file's. Each
//! setting the upper table gives replaces the lower one's, tables nested in a
//! setting merge key by key, and `env` maps merge variable by variable. A
//! value keeps the span of the table that set it, so a problem it causes is
//! reported where it was written.

use super::raw::{
    RawAutoscaling, RawDbPool, RawHttp, RawReplicas, RawResources, RawRollout, RawService,
    RawTerraform,
};

/// Each named field of `top` when set, else `base`'s.
macro_rules! fieldwise {
    ($top:expr, $base:expr, $ty:ident { $($field:ident),* $(,)? }) => {
        $ty { $($field: $top.$field.clone().or_else(|| $base.$field.clone())),* }
    };
}

/// `top` over `base`, both optional: a nested table merges key by key.
fn nested<T: Clone>(top: &Option<T>, base: &Option<T>, merge: fn(&T, &T) -> T) -> Option<T> {
    match (top, base) {
        (Some(t), Some(b)) => Some(merge(t, b)),
        (t, b) => t.clone().or_else(|| b.clone()),
    }
}

impl RawService {
    /// `self` layered over `base`. What only a service says of itself
    /// (routes, calls, ports...) is `base`'s: an environment may not change
    /// it (the model reports an attempt).
    pub(super) fn over(&self, base: &RawService) -> RawService {
        let replicas = match (&self.replicas, &base.replicas) {
            (Some(t), Some(b)) => {
                let merged = fieldwise!(t.get_ref(), b.get_ref(), RawReplicas { min, max });
                Some(toml::Spanned::new(t.span(), merged))
            }
            (t, b) => t.clone().or_else(|| b.clone()),
        };
        let mut env = base.env.clone();
        for (k, v) in &self.env {
            // The upper table's key, so its position is reported.
            env.remove(k);
            env.insert(k.clone(), v.clone());
        }
        RawService {
            port: self.port.clone().or_else(|| base.port.clone()),
            log_format: self.log_format.clone().or_else(|| base.log_format.clone()),
            log_level: self.log_level.clone().or_else(|| base.log_level.clone()),
            max_body_bytes: self.max_body_bytes.or(base.max_body_bytes),
            shutdown_timeout_secs: self
                .shutdown_timeout_secs
                .clone()
                .or_else(|| base.shutdown_timeout_secs.clone()),
            drain_delay_ms: self
                .drain_delay_ms
                .clone()
                .or_else(|| base.drain_delay_ms.clone()),
            prestop_sleep_secs: self
                .prestop_sleep_secs
                .clone()
                .or_else(|| base.prestop_sleep_secs.clone()),
            termination_grace_secs: self
                .termination_grace_secs
                .clone()
                .or_else(|| base.termination_grace_secs.clone()),
            replicas,
            autoscaling: nested(&self.autoscaling, &base.autoscaling, |t, b| {
                fieldwise!(
                    t,
                    b,
                    RawAutoscaling {
                        cpu_percent,
                        memory_percent
                    }
                )
            }),
            requests: nested(&self.requests, &base.requests, |t, b| {
                fieldwise!(
                    t,
                    b,
                    RawResources {
                        cpu_millis,
                        memory_mib
                    }
                )
            }),
            limits: nested(&self.limits, &base.limits, |t, b| {
                fieldwise!(
                    t,
                    b,
                    RawResources {
                        cpu_millis,
                        memory_mib
                    }
                )
            }),
            rollout: nested(&self.rollout, &base.rollout, |t, b| {
                fieldwise!(
                    t,
                    b,
                    RawRollout {
                        max_surge,
                        max_unavailable
                    }
                )
            }),
            db_pool: nested(&self.db_pool, &base.db_pool, |t, b| {
                fieldwise!(
                    t,
                    b,
                    RawDbPool {
                        max_connections,
                        acquire_timeout_ms
                    }
                )
            }),
            http: nested(&self.http, &base.http, |t, b| {
                fieldwise!(
                    t,
                    b,
                    RawHttp {
                        header_read_timeout_ms,
                        idle_timeout_ms,
                        max_connections,
                        max_header_bytes
                    }
                )
            }),
            upstream_timeout_ms: self
                .upstream_timeout_ms
                .clone()
                .or_else(|| base.upstream_timeout_ms.clone()),
            routes: base.routes.clone(),
            calls: base.calls.clone(),
            database: base.database.clone(),
            admin_token: base.admin_token.clone(),
            public_port: base.public_port.clone(),
            node_port: base.node_port.clone(),
            native_ports: base.native_ports.clone(),
            env,
        }
    }
}

impl RawTerraform {
    /// `self` layered over `base`, key by key.
    pub(super) fn over(&self, base: &RawTerraform) -> RawTerraform {
        fieldwise!(
            self,
            base,
            RawTerraform {
                region,
                kubernetes_version,
                node_instance_type,
                node_allocatable,
                db_instance_class,
                db_multi_az,
                db_deletion_protection,
                vpc_cidr,
                state_bucket,
                cluster_endpoint_public_access_cidrs,
            }
        )
    }
}
