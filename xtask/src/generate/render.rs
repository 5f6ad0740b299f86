//! Renders every artifact from the model through the minijinja templates in
//! a templates directory, entirely in memory (nothing is written here).
//!
//! Template paths decide output paths, so adding a template or a service needs
//! no code here: `templates/X.j2` becomes `generated/X`, `templates/root/X.j2`
//! becomes `X` at the repository root, a `__service__` path segment renders
//! once per service, a `dot-` name prefix becomes `.` (the template loader
//! refuses hidden files), files starting with `_` are partials, and
//! `readme/architecture.md.j2` is the README's generated region.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{AutoEscape, UndefinedBehavior, Value, context};
use serde::Serialize;

use crate::model::{DatabaseKind, EnvValue, Environment, Model, Service, Target};

type Templates = minijinja::Environment<'static>;

/// The template of the Prometheus configuration.
pub const PROMETHEUS_TEMPLATE: &str = "observability/prometheus.yml.j2";

/// The template of the README's generated architecture section.
pub const ARCHITECTURE_TEMPLATE: &str = "readme/architecture.md.j2";

/// Everything `cargo xtask gen` produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Output path relative to the repository root (with `/`) -> content.
    pub files: BTreeMap<String, String>,
    /// The README section between the generated-region markers.
    pub architecture: String,
}

/// A service as templates see it: the model plus values computed once here.
#[derive(Debug, Serialize)]
struct ServiceView<'a> {
    #[serde(flatten)]
    service: &'a Service,
    image: String,
    /// The image name without its tag.
    image_repo: String,
    /// `[name, value]` pairs for compose, secrets as `${NAME:?...}`.
    compose_env: Vec<(String, String)>,
    /// Plain variables for the ConfigMap.
    k8s_config: Vec<(String, String)>,
    /// Secret keys read from `<service>-secrets` into variables of that name.
    secrets: Vec<String>,
    /// Variables built around a secret with `$(NAME)` expansion.
    k8s_derived: Vec<(String, String)>,
    /// Changes whenever the ConfigMap does, so pods roll on config changes.
    config_hash: String,
}

/// Node group size derived from replica maxima times requests.
#[derive(Debug, Serialize)]
struct Cluster {
    cpu_millis_min: u64,
    memory_mib_min: u64,
    cpu_millis_max: u64,
    memory_mib_max: u64,
    min_nodes: u64,
    max_nodes: u64,
}

/// FNV-1a: a stable hash needing no dependency; not for security.
fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn view<'a>(model: &Model, service: &'a Service) -> ServiceView<'a> {
    let p = &model.project;
    let compose_env = model
        .service_env(service, Target::Compose)
        .iter()
        .map(|v| {
            let value = match &v.value {
                // A literal `$` must not start a compose substitution.
                EnvValue::Plain { value } => value.replace('$', "$$"),
                EnvValue::Secret { .. } => v.render(|s| {
                    format!("${{{s}:?set {s} in the .env file (see generated/.env.example)}}")
                }),
            };
            (v.name.clone(), value)
        })
        .collect();
    let mut k8s_config = Vec::new();
    let mut k8s_derived = Vec::new();
    for v in model.service_env(service, Target::Kubernetes) {
        match &v.value {
            EnvValue::Plain { value } => k8s_config.push((v.name.clone(), value.clone())),
            EnvValue::Secret { secret, .. } if *secret == v.name => {}
            EnvValue::Secret { .. } => {
                k8s_derived.push((v.name.clone(), v.render(|s| format!("$({s})"))));
            }
        }
    }
    let config_hash = fnv1a(&format!("{k8s_config:?}{k8s_derived:?}"));
    ServiceView {
        image: format!(
            "{}/{}/{}:{}",
            p.registry, p.image_prefix, service.name, p.tag
        ),
        image_repo: format!("{}/{}/{}", p.registry, p.image_prefix, service.name),
        secrets: service.secrets(),
        service,
        compose_env,
        k8s_config,
        k8s_derived,
        config_hash,
    }
}

/// The node group of an environment's Terraform, sized from its services'
/// replicas times requests (and its PostgreSQL when that runs in the cluster).
fn cluster(model: &Model, env: &Environment) -> Option<Cluster> {
    let node = &env.terraform.as_ref()?.node_allocatable;
    let sum = |f: &dyn Fn(&Service) -> u64| model.services.iter().map(f).sum::<u64>();
    let mut cpu_min = sum(&|s| u64::from(s.replicas.min) * u64::from(s.requests.cpu_millis));
    let mut mem_min = sum(&|s| u64::from(s.replicas.min) * u64::from(s.requests.memory_mib));
    let mut cpu_max = sum(&|s| u64::from(s.replicas.max) * u64::from(s.requests.cpu_millis));
    let mut mem_max = sum(&|s| u64::from(s.replicas.max) * u64::from(s.requests.memory_mib));
    if env.database == DatabaseKind::InCluster {
        // The in-cluster PostgreSQL runs one replica beside the services.
        let pg = &model.postgres.requests;
        cpu_min += u64::from(pg.cpu_millis);
        cpu_max += u64::from(pg.cpu_millis);
        mem_min += u64::from(pg.memory_mib);
        mem_max += u64::from(pg.memory_mib);
    }
    let nodes = |cpu: u64, mem: u64| {
        cpu.div_ceil(u64::from(node.cpu_millis).max(1))
            .max(mem.div_ceil(u64::from(node.memory_mib).max(1)))
    };
    // Two nodes at least so one can drain; one spare for rolling surges.
    let min_nodes = nodes(cpu_min, mem_min).max(2);
    let max_nodes = (nodes(cpu_max, mem_max) + 1).max(min_nodes);
    Some(Cluster {
        cpu_millis_min: cpu_min,
        memory_mib_min: mem_min,
        cpu_millis_max: cpu_max,
        memory_mib_max: mem_max,
        min_nodes,
        max_nodes,
    })
}

/// The comment line every generated file starts with, in its own syntax.
fn with_header(path: &str, body: &str) -> String {
    const NOTE: &str = "Generated from loja.toml by `cargo xtask gen`; do not edit.";
    let mut lines: Vec<&str> = body.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let header = if path.ends_with(".md") {
        format!("<!-- {NOTE} -->")
    } else {
        format!("# {NOTE}")
    };
    // A shebang must stay the first line.
    let at = usize::from(lines.first().is_some_and(|l| l.starts_with("#!")));
    let header_ref: &str = &header;
    lines.insert(at, header_ref);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Every `.j2` file under `dir`, as `/`-separated relative paths, sorted.
fn template_names(dir: &Path) -> Result<Vec<String>> {
    crate::util::fs::walk(dir, |p| p.extension().is_some_and(|e| e == "j2"))
}

fn environment(templates: &Path) -> Templates {
    let mut env = Templates::new();
    env.set_loader(minijinja::path_loader(templates));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Quoting is explicit (the `q` filter); no format-based auto-escaping.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    // A JSON string is a valid YAML double-quoted scalar; no HTML escaping.
    env.add_filter("q", |v: String| {
        serde_json::to_string(&v).unwrap_or_default()
    });
    env
}

/// What a template renders with: the base model, or the model of one
/// environment (`__env__` templates), and the service of `__service__` ones.
fn context(model: &Model, env: Option<&Environment>) -> Value {
    let services: Vec<ServiceView> = model.services.iter().map(|s| view(model, s)).collect();
    let scrape_targets: BTreeMap<&str, Vec<String>> = model
        .services
        .iter()
        .map(|s| (s.name.as_str(), vec![format!("{}:{}", s.name, s.port)]))
        .collect();
    context! {
        scrape_targets => Serde(&scrape_targets),
        model => Serde(model),
        project => Serde(&model.project),
        services => Serde(&services),
        env => Serde(env),
        cluster => Serde(env.and_then(|e| cluster(model, e))),
        gateway_routes => model.gateway_routes(),
        database_services => Serde(model.database_services().collect::<Vec<_>>()),
    }
}

/// The output path of template `name`: `root/` at the repository root,
/// everything else under `generated/`, `dot-` names hidden.
fn output_path(name: &str) -> String {
    let out = name.trim_end_matches(".j2");
    let out = match out.strip_prefix("root/") {
        Some(rest) => rest.to_string(),
        None => format!("generated/{out}"),
    };
    out.split('/')
        .map(|seg| {
            seg.strip_prefix("dot-")
                .map_or(seg.to_string(), |s| format!(".{s}"))
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Renders every template in `templates` for `model`.
pub fn render(model: &Model, templates: &Path) -> Result<Rendered> {
    let env = environment(templates);
    let base = (model.clone(), None, context(model, None));
    let per_env: Vec<(Model, Option<&Environment>, Value)> = model
        .environments
        .iter()
        .map(|e| {
            let m = model.in_environment(e);
            let ctx = context(&m, Some(e));
            (m, Some(e), ctx)
        })
        .collect();
    let mut files = BTreeMap::new();
    let mut architecture = None;
    for name in template_names(templates)? {
        let file = name.rsplit('/').next().unwrap_or(&name);
        if file.starts_with('_') && !file.starts_with("__service__") && !file.starts_with("__env__")
        {
            continue;
        }
        let template = env
            .get_template(&name)
            .with_context(|| format!("loading template {name}"))?;
        let out = output_path(&name);
        let per_service = out.contains("__service__");
        let by_env = out.contains("__env__");
        let contexts: Vec<&(Model, Option<&Environment>, Value)> = if by_env {
            per_env.iter().collect()
        } else {
            vec![&base]
        };
        for (m, e, ctx) in contexts {
            let views: Vec<ServiceView> = m.services.iter().map(|s| view(m, s)).collect();
            let targets: Vec<Option<&ServiceView>> = if per_service {
                views.iter().map(Some).collect()
            } else {
                vec![None]
            };
            for service in targets {
                let ctx = context! { service => Value::from(Serde(service)), ..ctx.clone() };
                let text = template
                    .render(ctx)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("rendering template {name}"))?;
                if name == ARCHITECTURE_TEMPLATE {
                    architecture = Some(with_header(".md", &text));
                    continue;
                }
                // A per-service or per-environment template that renders
                // nothing does not apply there.
                if (per_service || by_env) && text.trim().is_empty() {
                    continue;
                }
                let mut path = out.clone();
                if let Some(s) = service {
                    path = path.replace("__service__", &s.service.name);
                }
                if let Some(e) = e {
                    path = path.replace("__env__", &e.name);
                }
                let text = with_header(&path, &text);
                if files.insert(path.clone(), text).is_some() {
                    bail!("two templates produce {path}");
                }
            }
        }
    }
    let architecture =
        architecture.with_context(|| format!("missing template {ARCHITECTURE_TEMPLATE}"))?;
    Ok(Rendered {
        files,
        architecture,
    })
}

/// The Prometheus configuration of the native runtime: the same template as
/// compose's, scraping `targets` (service name -> `host:port` of each replica).
pub fn render_prometheus(
    model: &Model,
    templates: &Path,
    targets: &BTreeMap<String, Vec<String>>,
) -> Result<String> {
    let env = environment(templates);
    let services: Vec<ServiceView> = model.services.iter().map(|s| view(model, s)).collect();
    let ctx = context! {
        scrape_targets => Serde(targets),
        model => Serde(model),
        services => Serde(&services),
    };
    let text = env
        .get_template(PROMETHEUS_TEMPLATE)
        .and_then(|t| t.render(ctx))
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("rendering template {PROMETHEUS_TEMPLATE}"))?;
    Ok(with_header("prometheus.yml", &text))
}
