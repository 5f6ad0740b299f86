//! Every rule of `loja.toml` rejects a bad file with the exact position and
//! message of the offending text.

use xtask::model::Model;

const BASE: &str = r#"[project]
name = "shop"
namespace = "shop"
gateway = "gw"
registry = "docker.io"
image_prefix = "shop"
tag = "latest"

[defaults]
port = 8080
log_format = "json"
log_level = "info"
max_body_bytes = 65536
shutdown_timeout_secs = 20
drain_delay_ms = 1000
prestop_sleep_secs = 5
termination_grace_secs = 30
replicas = { min = 2, max = 4 }
autoscaling = { cpu_percent = 70, memory_percent = 80 }
requests = { cpu_millis = 100, memory_mib = 128 }
limits = { cpu_millis = 500, memory_mib = 256 }
rollout = { max_surge = 1, max_unavailable = 0 }
db_pool = { max_connections = 10, acquire_timeout_ms = 1000 }
http = { header_read_timeout_ms = 10000, idle_timeout_ms = 60000, max_connections = 2048, max_header_bytes = 16384 }

[postgres]
version = 15
port = 5432
native_port = 5433
storage_gib = 10
requests = { cpu_millis = 250, memory_mib = 512 }
limits = { cpu_millis = 1000, memory_mib = 1024 }

[observability]
jaeger_ui_port = 16686
otlp_grpc_port = 4317
otlp_http_port = 4318
prometheus_port = 9090
scrape_interval_secs = 15
monitoring_namespace = "monitoring"
kubernetes_otlp_endpoint = "http://collector:4317"
alerts = { error_rate_percent = 5, p99_latency_ms = 500, for_minutes = 5 }

[ci]
registry = "docker.io"
username_secret = "U"
token_secret = "T"
rust_toolchain = "1.95.0"

[terraform]
region = "sa-east-1"
kubernetes_version = "1.30"
node_instance_type = "t3.large"
node_allocatable = { cpu_millis = 1900, memory_mib = 7100 }
db_instance_class = "db.t4g.small"

[services.gw]
public_port = 8080
node_port = 30080
native_ports = [8080]
upstream_timeout_ms = 5000

[services.orders]
routes = ["/api/v1/orders"]
database = true
native_ports = [18091]
"#;

/// `shop.toml:LINE:COL` of the `nth` (from 0) occurrence of `needle` in `text`.
fn at(text: &str, needle: &str, nth: usize) -> String {
    at_shifted(text, needle, nth, 0)
}

/// Like [`at`], `shift` bytes after the start of the match.
fn at_shifted(text: &str, needle: &str, nth: usize, shift: usize) -> String {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` occurs fewer than {} times", nth + 1))
        .0
        + shift;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("shop.toml:{line}:{col}")
}

/// All diagnostics for `text`, one string each.
fn errors(text: &str) -> Vec<String> {
    match Model::parse("shop.toml", text) {
        Ok(_) => panic!("expected the file to be rejected"),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    }
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn the_base_file_is_valid() {
    let model = Model::parse("shop.toml", BASE).expect("valid");
    assert_eq!(model.services.len(), 2);
    assert_eq!(
        model.service("gw").unwrap().calls,
        vec!["orders".to_string()]
    );
    assert_eq!(model.gateway_routes(), "/api/v1/orders=orders");
}

#[test]
fn unknown_keys_are_rejected_with_their_position() {
    let text = with("replica = 3\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    let prefix = format!(
        "{}: unknown key (found `replica`; expected one of ",
        at(&text, "replica =", 0)
    );
    assert!(errs[0].starts_with(&prefix), "{errs:?}");
}

#[test]
fn service_names_must_be_rfc1123_labels() {
    let text = with("\n[services.Bad_Name]\nnative_ports = [18200]\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: invalid service name (found `Bad_Name`; a lowercase RFC 1123 label: a-z, 0-9 and '-', at most 63 characters, starting and ending alphanumeric)",
            at(&text, "Bad_Name", 0)
        )]
    );
}

#[test]
fn a_service_without_a_port_is_rejected() {
    let text = with("\n[services.idle]\ndatabase = false\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: service `idle` has no port (found `idle`; set `port` (here or in [defaults]) and a non-empty `native_ports`)",
            at_shifted(&text, "[services.idle]", 0, "[services.".len())
        )]
    );
}

#[test]
fn clashing_native_ports_are_rejected() {
    let text = with("\n[services.stock]\nnative_ports = [18091]\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: native port 18091 of service `stock` is already used by service `orders` (found `18091`; every native port must be unique)",
            at(&text, "18091", 1)
        )]
    );
}

#[test]
fn a_published_port_clashing_with_observability_is_rejected() {
    let text = BASE.replace("public_port = 8080", "public_port = 9090");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: published port 9090 of service `gw` is already used by Prometheus (found `9090`; every published port must be unique)",
            at(&text, "9090", 1)
        )]
    );
}

#[test]
fn a_node_port_outside_the_kubernetes_range_is_rejected() {
    let text = BASE.replace("node_port = 30080", "node_port = 8081");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: node port outside the Kubernetes range (found `8081`; 30000-32767)",
            at(&text, "8081", 0)
        )]
    );
}

#[test]
fn min_replicas_above_max_is_rejected() {
    let text = with("replicas = { min = 5, max = 3 }\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: replicas of `orders`: min 5 > max 3 (found `{{ min = 5, max = 3 }}`; 1 <= min <= max)",
            at(&text, "{ min = 5", 0)
        )]
    );
}

#[test]
fn a_rollout_that_takes_serving_replicas_away_is_rejected() {
    let text = with("rollout = { max_surge = 0, max_unavailable = 1 }\n");
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: rollout of `orders` has max_surge = 0: with no replica ever unavailable it could never replace one (found `0`; rollout.max_surge >= 1)",
                at_shifted(&text, "max_surge = 0", 0, "max_surge = ".len())
            ),
            format!(
                "{}: rollout of `orders` may stop 1 serving replica(s) before their successors are ready (found `1`; rollout.max_unavailable = 0 (a rollout adds a replica, waits until it is ready, then stops an old one))",
                at_shifted(&text, "max_unavailable = 1", 0, "max_unavailable = ".len())
            ),
        ]
    );
}

#[test]
fn a_service_inherits_the_other_replica_bound_from_defaults() {
    let text = with("replicas = { min = 6 }\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("replicas of `orders`: min 6 > max 4"),
        "{errs:?}"
    );
}

#[test]
fn thresholds_outside_1_to_100_are_rejected() {
    let text = with("autoscaling = { cpu_percent = 150, memory_percent = 0 }\n");
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: CPU autoscaling threshold outside 1-100 (found `150`; an integer percent from 1 to 100)",
                at(&text, "150", 0)
            ),
            format!(
                "{}: memory autoscaling threshold outside 1-100 (found `0`; an integer percent from 1 to 100)",
                at_shifted(&text, "memory_percent = 0", 0, "memory_percent = ".len())
            ),
        ]
    );
}

#[test]
fn a_route_prefix_owned_by_two_services_is_rejected() {
    let text =
        with("\n[services.returns]\nroutes = [\"/api/v1/orders\"]\nnative_ports = [18300]\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: route prefix of `returns` overlaps `/api/v1/orders` owned by `orders` (found `\"/api/v1/orders\"`; each prefix must belong to exactly one service, none nested in another)",
            at(&text, "\"/api/v1/orders\"", 1)
        )]
    );
}

#[test]
fn a_route_nested_in_another_services_route_is_rejected() {
    let text = with(
        "\n[services.returns]\nroutes = [\"/api/v1/orders/returns\"]\nnative_ports = [18300]\n",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(&format!(
            "{}: route prefix of `returns` overlaps `/api/v1/orders`",
            at(&text, "\"/api/v1/orders/returns\"", 0)
        )),
        "{errs:?}"
    );
}

#[test]
fn a_call_to_an_undeclared_service_is_rejected() {
    let text = with("calls = [\"ghost\"]\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: `orders` calls an undeclared service (found `\"ghost\"`; one of: gw, orders)",
            at(&text, "\"ghost\"", 0)
        )]
    );
}

#[test]
fn a_grace_period_shorter_than_the_drain_is_rejected() {
    let text = with("termination_grace_secs = 25\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: termination grace of `orders` leaves no time to drain (25s <= 5s preStop sleep + 1s drain delay (1000ms rounded up) + 20s shutdown = 26s) (found `25`; termination_grace_secs > prestop_sleep_secs + ceil(drain_delay_ms / 1000) + shutdown_timeout_secs)",
            at(&text, "25\n", 0)
        )]
    );
}

#[test]
fn a_drain_delay_that_the_grace_period_does_not_cover_is_rejected() {
    // 5s preStop + 20s shutdown fit in the 30s grace of [defaults]; the drain
    // delay, rounded up to 5s, does not.
    let text = with("drain_delay_ms = 4001\n");
    let grace = "termination_grace_secs = 30";
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: termination grace of `orders` leaves no time to drain (30s <= 5s preStop sleep + 5s drain delay (4001ms rounded up) + 20s shutdown = 30s) (found `30`; termination_grace_secs > prestop_sleep_secs + ceil(drain_delay_ms / 1000) + shutdown_timeout_secs)",
            at_shifted(&text, grace, 0, grace.len() - 2)
        )]
    );
}

#[test]
fn variables_the_generator_sets_cannot_be_overridden() {
    let text = with("env = { DATABASE_URL = \"postgres://x\" }\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: environment variable set by the generator (found `DATABASE_URL`; the generator computes it from the model; remove it from env)",
            at(&text, "DATABASE_URL", 0)
        )]
    );
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let text = with("calls = [\"ghost\"]\nreplicas = { min = 9, max = 1 }\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with(&at(&text, "\"ghost\"", 0)), "{errs:?}");
    assert!(errs[1].starts_with(&at(&text, "{ min = 9", 0)), "{errs:?}");
}

/// `[terraform]` for environments with a managed database, and one valid
/// environment of each tier.
const ENVIRONMENTS: &str = r#"
[terraform]
region = "sa-east-1"
kubernetes_version = "1.30"
node_instance_type = "t4g.large"
node_allocatable = { cpu_millis = 1900, memory_mib = 7100 }
db_instance_class = "db.t4g.small"
db_multi_az = true
db_deletion_protection = true
vpc_cidr = "10.40.0.0/16"
state_bucket = "shop-state"
cluster_endpoint_public_access_cidrs = ["0.0.0.0/0"]

[environments.dev]
tier = "development"
arch = "amd64"
database = "in-cluster"

[environments.dev.defaults]
log_level = "debug"
replicas = { min = 1, max = 2 }

[environments.prod]
tier = "production"
arch = "arm64"
image_tag = "1.4.2"
database = "managed"
ingress = { host = "shop.example.com", class = "nginx", controller_namespace = "ingress-nginx", tls = { cluster_issuer = "letsencrypt" } }
terraform = {}

[environments.prod.services.orders]
replicas = { max = 9 }
env = { FEATURE_X = "on" }
"#;

/// BASE with its `[terraform]` replaced by [`ENVIRONMENTS`], edited.
fn environments(edit: impl Fn(String) -> String) -> String {
    let base = &BASE[..BASE.find("[terraform]").unwrap()];
    let services = &BASE[BASE.find("[services.gw]").unwrap()..];
    let base = base.replace(
        "\"http://collector:4317\"",
        "\"http://collector.monitoring.svc.cluster.local:4317\"",
    );
    edit(format!("{base}{services}{ENVIRONMENTS}"))
}

#[test]
fn an_environment_overrides_services_over_its_defaults_over_the_base() {
    let model = Model::parse("shop.toml", &environments(|t| t)).expect("valid");
    let dev = model.environment("dev").unwrap();
    let prod = model.environment("prod").unwrap();
    let orders = |env: &xtask::model::Environment| {
        env.services
            .iter()
            .find(|s| s.name == "orders")
            .unwrap()
            .clone()
    };
    // dev's defaults replace both bounds and the log level of every service.
    assert_eq!((orders(dev).replicas.min, orders(dev).replicas.max), (1, 2));
    assert_eq!(orders(dev).log_level, "debug");
    // prod's service table changes one bound; the other is the base's.
    assert_eq!(
        (orders(prod).replicas.min, orders(prod).replicas.max),
        (2, 9)
    );
    assert_eq!(orders(prod).env["FEATURE_X"], "on");
    assert_eq!(orders(prod).log_level, "info");
    // The base model is untouched, and the environment's model carries its values.
    assert_eq!(model.service("orders").unwrap().replicas.max, 4);
    let in_prod = model.in_environment(prod);
    assert_eq!(in_prod.project.tag, "1.4.2");
    assert_eq!(in_prod.service("orders").unwrap().replicas.max, 9);
    assert_eq!(prod.private_zone.as_deref(), Some("prod.shop.internal"));
    assert_eq!(prod.collector.port, 4317);
}

#[test]
fn unknown_keys_in_an_environment_are_rejected_with_their_position() {
    let text = environments(|t| {
        t.replace(
            "tier = \"production\"",
            "tier = \"production\"\nreplica = 3",
        )
    });
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(&format!(
            "{}: unknown key (found `replica`; expected one of ",
            at(&text, "replica =", 0)
        )),
        "{errs:?}"
    );
}

#[test]
fn an_override_of_an_undeclared_service_is_rejected() {
    let text =
        environments(|t| t + "\n[environments.prod.services.ghost]\nlog_level = \"debug\"\n");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: environment `prod` overrides an undeclared service (found `ghost`; one of: gw, orders)",
            at(&text, "ghost]", 0)
        )]
    );
}

#[test]
fn what_only_a_service_says_cannot_differ_between_environments() {
    let text = environments(|t| {
        t.replace(
            "replicas = { max = 9 }",
            "replicas = { max = 9 }\nroutes = [\"/api/v2/orders\"]\nport = 9090",
        )
    });
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: `routes` cannot differ between environments ([environments.prod.services.orders]) (found `\"/api/v2/orders\"`; an environment overrides what [defaults] may set, and `env`)",
                at(&text, "\"/api/v2/orders\"", 0)
            ),
            format!(
                "{}: `port` cannot differ between environments ([environments.prod.services.orders]) (found `9090`; an environment overrides what [defaults] may set, and `env`)",
                at_shifted(&text, "\nport = 9090", 0, "\nport = ".len())
            ),
        ]
    );
}

#[test]
fn an_override_is_checked_by_the_rules_of_a_service_at_its_own_position() {
    let text = environments(|t| t.replace("replicas = { max = 9 }", "replicas = { max = 1 }"));
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: replicas of `orders`: min 2 > max 1 (found `{{ max = 1 }}`; 1 <= min <= max)",
            at(&text, "{ max = 1 }", 0)
        )]
    );
}

#[test]
fn latest_or_no_tag_outside_development_is_rejected() {
    let text = environments(|t| t.replace("image_tag = \"1.4.2\"", "image_tag = \"latest\""));
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: environment `prod` would deploy the mutable image tag `latest` (found `\"latest\"`; outside development, set `image_tag` to a tag that never moves (a release or a git sha); `cargo xtask deploy --image-tag` sets the one it deploys)",
            at(&text, "\"latest\"", 1)
        )]
    );
    // Without its own tag, prod inherits [project]'s `latest`; dev may.
    let text = environments(|t| t.replace("image_tag = \"1.4.2\"\n", ""));
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(&format!(
            "{}: environment `prod` would deploy the mutable image tag `latest` (inherited from [project] tag)",
            at(&text, "\"latest\"", 0)
        )),
        "{errs:?}"
    );
}

#[test]
fn a_production_ingress_without_tls_is_rejected() {
    let text = environments(|t| t.replace(", tls = { cluster_issuer = \"letsencrypt\" }", ""));
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: the ingress of `prod` has no TLS (found `{{ host = \"shop.example.com\", class = \"nginx\", controller_namespace = \"ingress-nginx\" }}`; outside development set `tls = {{ cluster_issuer = \"...\" }}` (cert-manager) or `tls = {{ secret = \"...\" }}`)",
            at(&text, "{ host =", 0)
        )]
    );
}

#[test]
fn staging_and_production_need_an_ingress_and_a_managed_database() {
    let text = environments(|t| {
        t.replace("database = \"managed\"", "database = \"in-cluster\"")
            .replace("ingress = { host = \"shop.example.com\", class = \"nginx\", controller_namespace = \"ingress-nginx\", tls = { cluster_issuer = \"letsencrypt\" } }\n", "")
    });
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: environment `prod` has no ingress (found `prod`; outside development the entry is an Ingress with TLS, never a node port: add [environments.prod.ingress] with host, class, controller_namespace and tls)",
                at(&text, "prod]", 0)
            ),
            format!(
                "{}: environment `prod` runs its database in the cluster (found `\"in-cluster\"`; outside development the database is \"managed\" (RDS, Multi-AZ capable, with backups))",
                at(&text, "\"in-cluster\"", 1)
            ),
        ]
    );
}

#[test]
fn nodes_of_the_wrong_architecture_are_rejected() {
    let text = environments(|t| {
        t.replace(
            "terraform = {}",
            "terraform = { node_instance_type = \"m6i.large\" }",
        )
    });
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: the nodes of `prod` are arm64 but `m6i.large` is an x86 instance type (found `\"m6i.large\"`; a Graviton type (t4g, m7g, c7g...), or change `arch`)",
            at(&text, "\"m6i.large\"", 0)
        )]
    );
}

#[test]
fn a_production_database_is_multi_az_and_protected_from_deletion() {
    let text = environments(|t| t.replace("terraform = {}", "terraform = { db_multi_az = false }"));
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: the production database of `prod` has `db_multi_az = false` (found `false`; a production database is Multi-AZ and protected from deletion: `true`)",
            at_shifted(&text, "db_multi_az = false", 0, "db_multi_az = ".len())
        )]
    );
}

#[test]
fn a_managed_database_needs_the_terraform_and_a_collector_in_the_cluster() {
    let text = environments(|t| {
        t.replace(
            "terraform = {}\n",
            "observability = { kubernetes_otlp_endpoint = \"https://otlp.example.com:443\" }\n",
        )
    });
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: the managed database of `prod` has no Terraform to create it (found `\"managed\"`; add [environments.prod.terraform] (it may be empty: [terraform] gives every value))",
                at(&text, "\"managed\"", 0)
            ),
            format!(
                "{}: the OTLP endpoint is not a Service in the cluster (found `\"https://otlp.example.com:443\"`; http://NAME.NAMESPACE.svc.cluster.local:PORT (egress is allowed to that namespace and port only))",
                at(&text, "\"https://otlp", 0)
            ),
        ]
    );
}

#[test]
fn a_service_that_calls_others_says_how_long_it_waits() {
    let text = BASE.replace("upstream_timeout_ms = 5000\n", "");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: service `gw` calls orders but has no `upstream_timeout_ms` (found `gw`; set how long it waits for a service it calls, in milliseconds)",
            at(&text, "gw]", 0)
        )]
    );
}

#[test]
fn only_a_caller_has_an_upstream_timeout() {
    let text = BASE.replace(
        "native_ports = [18091]\n",
        "native_ports = [18091]\nupstream_timeout_ms = 100\n",
    );
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: service `orders` calls no service, so `upstream_timeout_ms` means nothing (found `orders`; remove it, or declare the service's `calls`)",
            at(&text, "orders]", 0)
        )]
    );
    let text = BASE.replace("[defaults]\n", "[defaults]\nupstream_timeout_ms = 100\n");
    assert!(
        errors(&text)
            .iter()
            .any(|e| e.contains("`upstream_timeout_ms` belongs to one service, not to [defaults]")),
        "{:?}",
        errors(&text)
    );
}

#[test]
fn a_callee_waits_less_than_its_caller_waits_for_it() {
    let text = BASE.replace("upstream_timeout_ms = 5000", "upstream_timeout_ms = 800");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: service `orders` may wait 1000 ms (db_pool.acquire_timeout_ms), but `gw` waits only 800 ms for it (upstream_timeout_ms) (found `orders`; make db_pool.acquire_timeout_ms shorter than 800 ms)",
            at(&text, "orders]", 0)
        )]
    );
}

#[test]
fn a_callee_that_calls_on_waits_less_than_its_caller() {
    let text = with("\n[services.stock]\nroutes = [\"/api/v1/stock\"]\nnative_ports = [18081]\n")
        .replace(
            "native_ports = [18091]\n",
            "native_ports = [18091]\ncalls = [\"stock\"]\nupstream_timeout_ms = 5000\n",
        );
    let errs = errors(&text);
    assert_eq!(
        errs,
        vec![format!(
            "{}: service `orders` may wait 5000 ms (upstream_timeout_ms), but `gw` waits only 5000 ms for it (upstream_timeout_ms) (found `orders`; make upstream_timeout_ms shorter than 5000 ms)",
            at(&text, "orders]", 0)
        )]
    );
}

#[test]
fn http_limits_stay_within_what_a_server_can_hold() {
    let text = BASE.replace("max_header_bytes = 16384", "max_header_bytes = 100");
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: http.max_header_bytes outside 1024-65536 (found `100`; an integer from 1024 to 65536)",
            at_shifted(
                &text,
                "max_header_bytes = 100",
                0,
                "max_header_bytes = ".len()
            )
        )]
    );
}

#[test]
fn capacity_values_out_of_range_are_rejected_with_their_position() {
    let text = with(
        "\n[capacity]\npeak_orders_per_sec = 0\np99_objective_ms = 25\nscale_up_lag_secs = 60\ngrowth_percent_per_min = 5000\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: peak orders per second outside 1-1000000 (found `0`; an integer from 1 to 1000000)",
                at_shifted(&text, "peak_orders_per_sec = 0", 0, 22)
            ),
            format!(
                "{}: load growth per minute outside 1-1000 (found `5000`; an integer from 1 to 1000)",
                at_shifted(&text, "growth_percent_per_min = 5000", 0, 25)
            ),
        ]
    );
    let ok = with(
        "\n[capacity]\npeak_orders_per_sec = 150\np99_objective_ms = 25\nscale_up_lag_secs = 60\ngrowth_percent_per_min = 50\n",
    );
    let capacity = Model::parse("shop.toml", &ok).unwrap().capacity.unwrap();
    assert_eq!(capacity.peak_orders_per_sec, 150);
    assert!(Model::parse("shop.toml", BASE).unwrap().capacity.is_none());
}

const SLO: &str = r#"
[slos.checkout]
service = "gw"
endpoints = ["/api/v1/orders/{id}"]
window_days = 30
availability_percent = 99.5
latency = { threshold_ms = 500, percent = 99 }
"#;

#[test]
fn an_slo_has_its_budget_selector_and_bucket() {
    let model = Model::parse("shop.toml", &with(SLO)).expect("valid");
    let slo = &model.slos[0];
    assert_eq!(
        slo.selector,
        r#"service="gw",endpoint=~"/api/v1/orders/\\{id\\}""#
    );
    let budgets: Vec<&str> = slo.objectives.iter().map(|o| o.budget.as_str()).collect();
    assert_eq!(budgets, ["0.005", "0.01"]);
    assert_eq!(slo.objectives[1].le.as_deref(), Some("0.5"));
    // 20x, 4x and 0.2x the 0.5 % budget of 100 000 requests a minute.
    let o = &slo.objectives[0];
    assert_eq!((o.fast_bad, o.slow_bad, o.quiet_bad), (10_000, 2_000, 100));
}

#[test]
fn slo_rules_report_each_bad_value_where_it_is_written() {
    let text = with(
        &SLO.replace("\"gw\"", "\"nobody\"")
            .replace("30", "400")
            .replace("99.5", "100")
            .replace("500", "300"),
    );
    assert_eq!(
        errors(&text),
        vec![
            format!(
                "{}: the SLO names an undeclared service (found `\"nobody\"`; one of: gw, orders)",
                at(&text, "\"nobody\"", 0)
            ),
            format!(
                "{}: SLO window out of range (found `400`; 7 to 90 days (the burn-rate alerts are tuned for windows of weeks))",
                at_shifted(&text, "window_days = 400", 0, 14)
            ),
            format!(
                "{}: availability objective out of range (found `100`; a percentage from 90 to 99.99, e.g. 99.5)",
                at_shifted(&text, "availability_percent = 100", 0, 23)
            ),
            format!(
                "{}: the latency threshold is not a bucket bound of http_request_duration_seconds (found `300`; one of (ms): [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000])",
                at_shifted(&text, "threshold_ms = 300", 0, 15)
            ),
        ]
    );
}

#[test]
fn an_slo_endpoint_is_a_template_under_a_public_route() {
    let text = with(&SLO.replace("/api/v1/orders/{id}", "/api/v1/payments"));
    assert_eq!(
        errors(&text),
        vec![format!(
            "{}: `/api/v1/payments` is not a public route template of `gw` (found `\"/api/v1/payments\"`; a template such as \"/api/v1/orders/{{id}}\" under one of: /api/v1/orders)",
            at(&text, "\"/api/v1/payments\"", 0)
        )]
    );
}

#[test]
fn rate_limits_name_declared_routes_positive_rates_and_valid_proxies() {
    let text = with(
        r#"
[rate_limits]
trusted_proxies = ["10.0.0.0/8", "10.0.0.0/33"]
routes = { "/api/v1/orders" = { per_second = 0, burst = 10 }, "/api/v1/nope" = { per_second = 1, burst = 1 } }
"#,
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs.contains(&format!(
            "{}: invalid trusted proxy (found `\"10.0.0.0/33\"`; an IPv4 or IPv6 address or CIDR block, e.g. \"10.0.0.0/8\")",
            at(&text, "\"10.0.0.0/33\"", 0)
        )),
        "{errs:?}"
    );
    assert!(
        errs.contains(&format!(
            "{}: invalid rate limit per_second (found `0`; a whole number from 1 to 4294967295)",
            at(&text, "0, burst = 10", 0)
        )),
        "{errs:?}"
    );
    assert!(
        errs.contains(&format!(
            "{}: rate limit for an unknown route (found `\"/api/v1/nope\"`; a route some service declares: /api/v1/orders)",
            at(&text, "\"/api/v1/nope\"", 0)
        )),
        "{errs:?}"
    );
}

#[test]
fn rate_limits_reach_the_kubernetes_gateway_and_the_local_one_only_when_asked() {
    use xtask::model::Target;
    let limits = r#"
[rate_limits]
trusted_proxies = ["10.0.0.0/8"]
routes = { "/api/v1/orders" = { per_second = 5, burst = 10 } }
"#;
    let names = |model: &Model, target: Target| -> Vec<(String, String)> {
        let gw = model.service("gw").unwrap();
        model
            .service_env(gw, target)
            .into_iter()
            .filter(|v| v.name == "RATE_LIMITS" || v.name == "TRUSTED_PROXIES")
            .map(|v| (v.name.clone(), v.render(|s| s.to_owned())))
            .collect()
    };
    let native = Target::Native {
        replica: 0,
        replicas: None,
    };
    let expected = vec![
        ("RATE_LIMITS".to_owned(), "/api/v1/orders=5:10".to_owned()),
        ("TRUSTED_PROXIES".to_owned(), "10.0.0.0/8".to_owned()),
    ];
    let model = Model::parse("shop.toml", &with(limits)).unwrap();
    assert_eq!(names(&model, Target::Kubernetes), expected);
    // Locally both are set, empty: no limit applies.
    let none = vec![
        ("RATE_LIMITS".to_owned(), String::new()),
        ("TRUSTED_PROXIES".to_owned(), String::new()),
    ];
    assert_eq!(names(&model, native), none);
    assert_eq!(names(&model, Target::Compose), none);
    let local = Model::parse(
        "shop.toml",
        &with(&limits.replace("[rate_limits]", "[rate_limits]\nlocal = true")),
    )
    .unwrap();
    assert_eq!(names(&local, native), expected);
    let unlimited = Model::parse("shop.toml", BASE).unwrap();
    assert_eq!(names(&unlimited, Target::Kubernetes), none);
}
