//! The environment contract, held from both ends: each service reads exactly
//! the variables `Model::service_env` renders for it (in compose, in
//! Kubernetes, natively), no more and no fewer. Renaming a variable on one
//! side alone (say `DRAIN_DELAY_MS` in the runtime's config) fails here.

use std::collections::BTreeSet;

use clap::CommandFactory;
use xtask::Workspace;
use xtask::model::Target;

/// The variables a service's configuration reads (flattened parts included).
fn read_by(command: clap::Command) -> BTreeSet<String> {
    command
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_service_reads_exactly_the_variables_loja_toml_renders_for_it() {
    let ws = Workspace::find().unwrap();
    let model = ws.model().unwrap();
    let services = [
        ("api-gateway", read_by(api_gateway::Config::command())),
        ("estoque", read_by(estoque::Config::command())),
        ("pagamentos", read_by(pagamentos::Config::command())),
        ("pedidos", read_by(pedidos::Config::command())),
    ];
    assert_eq!(
        services.len(),
        model.services.len(),
        "every service of loja.toml is held to its configuration here"
    );
    for (name, read) in services {
        let svc = model.service(name).unwrap();
        for target in [
            Target::Compose,
            Target::Kubernetes,
            Target::Native {
                replica: 0,
                replicas: None,
            },
        ] {
            let env = model.service_env(svc, target);
            let rendered: BTreeSet<String> = env.iter().map(|v| v.name.clone()).collect();
            // The gateway also reads the addresses of every service its
            // GATEWAY_ROUTES name, under the names the runtime derives.
            let mut read = read.clone();
            if let Some(routes) = env.iter().find(|v| v.name == "GATEWAY_ROUTES") {
                let routes = routes.render(|_| String::new());
                read.extend(routes.split(',').filter_map(|pair| {
                    let (_, owner) = pair.split_once('=')?;
                    Some(loja_runtime::upstream::env_var(owner))
                }));
            }
            let unread: Vec<&String> = rendered.difference(&read).collect();
            let unset: Vec<&String> = read.difference(&rendered).collect();
            assert!(
                unread.is_empty() && unset.is_empty(),
                "{name} on {target:?}: rendered but never read {unread:?}; read but never rendered {unset:?}"
            );
        }
    }
}
