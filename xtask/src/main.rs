//! `cargo xtask`: renders, checks, builds and runs the Loja Veloz platform from `loja.toml`.

mod generate;
mod tools;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};

use xtask::model::Model;
pub use xtask::project_root;
use xtask::{bench, compose, deploy, down, drill, images, logs, restart, state_dir, status, up};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Loja Veloz tasks driven by loja.toml")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render every deployment artifact from loja.toml.
    Gen {
        /// Write nothing; fail listing every stale, missing or orphaned file.
        #[arg(long)]
        check: bool,
    },
    /// Run every generated artifact through its real validator.
    Validate,
    /// Install the validators `validate` needs (pip and apt).
    Tools,
    /// Run the test suite against a private PostgreSQL cluster.
    Test {
        /// Passed to the test runner (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start the platform as local processes (or, with --compose, as the
    /// generated compose stack); it runs until `down`.
    Up {
        /// Replicas of every service; without a number, each service's `replicas.min`.
        #[arg(long, num_args = 0..=1, default_missing_value = "0")]
        replicas: Option<u32>,
        /// Use the release binaries (with --compose: the images) already built.
        #[arg(long)]
        no_build: bool,
        /// Seconds to wait for every replica to be ready [default: 60, 300 with --compose].
        #[arg(long)]
        timeout: Option<u64>,
        /// Build the images and start generated/docker-compose.yml on the Docker engine.
        #[arg(long, conflicts_with = "replicas")]
        compose: bool,
    },
    /// Stop what `up` started (gracefully, then forcibly); data is kept.
    Down {
        /// Seconds each process gets to drain before it is killed.
        #[arg(long, default_value_t = 30)]
        grace: u64,
        /// Stop the compose stack `up --compose` started.
        #[arg(long)]
        compose: bool,
    },
    /// Build the static service binaries and their images from the generated Dockerfiles.
    Images {
        /// Use the static binaries already built.
        #[arg(long)]
        no_build: bool,
    },
    /// Run the generated compose stack on the Docker engine, place an order
    /// through it, check the containers' hardening, take it down.
    ComposeCheck {
        /// Swap PostgreSQL and Prometheus for stand-ins built locally
        /// (tests/compose) and leave Jaeger out: for machines that cannot pull images.
        #[arg(long)]
        stand_ins: bool,
        /// Use the service images already built.
        #[arg(long)]
        no_build: bool,
        /// Seconds to wait for every container to be ready.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Replace the processes `up` started with the current code and loja.toml.
    Restart {
        /// Services to restart; every service (callees first) when omitted.
        services: Vec<String>,
        /// One replica at a time: each successor starts on the same port and
        /// is ready before its predecessor drains and stops.
        #[arg(long)]
        rolling: bool,
        /// Use the release binaries already built.
        #[arg(long)]
        no_build: bool,
        /// Seconds to wait for each new replica to be ready.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Show each process `up` started: port, readiness, uptime.
    Status,
    /// Show the logs of one service (all replicas) or of everything.
    Logs {
        /// Service name; all services when omitted.
        service: Option<String>,
        /// Keep printing new lines.
        #[arg(short, long)]
        follow: bool,
    },
    /// Apply the generated Kubernetes manifests to a cluster and wait for the rollouts.
    Deploy {
        /// Show what would be applied; needs no cluster.
        #[arg(long)]
        dry_run: bool,
        /// kubectl context to deploy to (default: the current one).
        #[arg(long)]
        context: Option<String>,
        /// Image tag to deploy instead of loja.toml's.
        #[arg(long)]
        image_tag: Option<String>,
        /// Seconds to wait for each rollout.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Measure order throughput, the pgbench ceiling, gateway overhead and footprint.
    Bench {
        /// Concurrent connections of every load (and pgbench clients).
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Seconds of each measured run.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Seconds of unmeasured load before each measured run.
        #[arg(long, default_value_t = 5)]
        warmup: u64,
        /// Gateway URL of a platform already started by `cargo xtask up`.
        #[arg(long)]
        url: Option<String>,
        /// Replicas of every service of the platform the bench starts.
        #[arg(long, default_value_t = 1)]
        replicas: u32,
        /// A few seconds at low load, to check that the bench still works.
        #[arg(long)]
        smoke: bool,
        /// Use the release binaries already built.
        #[arg(long)]
        no_build: bool,
    },
    /// Rolling restarts and chaos (SIGKILL, a PostgreSQL crash) under order
    /// load, then the invariants checked in the databases.
    Drill {
        /// Concurrent connections of the order load.
        #[arg(long, default_value_t = 32)]
        connections: u32,
        /// Times every service is restarted replica by replica.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Seconds of the chaos phase.
        #[arg(long, default_value_t = 60)]
        chaos: u64,
        /// Seconds between two faults.
        #[arg(long, default_value_t = 3)]
        fault_every: u64,
        /// Seed of the fault sequence, to replay a run.
        #[arg(long)]
        seed: Option<u64>,
        /// The short run CI makes.
        #[arg(long)]
        smoke: bool,
        /// Use the release binaries already built.
        #[arg(long)]
        no_build: bool,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole context chain, no backtrace: these are users' errors.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let root = project_root();
    match Cli::parse().command {
        Command::Gen { check } => generate::run(&root, check),
        Command::Validate => xtask::validate::run(&root),
        Command::Tools => tools::run(),
        Command::Test { args } => xtask::test::run(&args),
        Command::Up {
            compose: true,
            no_build,
            timeout,
            ..
        } => {
            let model = Model::load(&root.join("loja.toml"))?;
            let options = compose::UpOptions {
                build: !no_build,
                timeout: Duration::from_secs(timeout.unwrap_or(300)),
            };
            compose::up(&root, &model, &options)
        }
        Command::Up {
            replicas,
            no_build,
            timeout,
            compose: false,
        } => {
            let model = Model::load(&root.join("loja.toml"))?;
            let state = state_dir(&root);
            let options = up::Options {
                replicas: replicas
                    .map(|n| Some(n).filter(|&n| n > 0))
                    .unwrap_or(Some(1)),
                build: !no_build,
                bin_dir: xtask::build::release_dir(&root),
                timeout: Duration::from_secs(timeout.unwrap_or(60)),
            };
            let running = up::run(&root, &model, &state, &options)?;
            up::print_summary(&model, &state, &running);
            Ok(())
        }
        Command::Down { compose: true, .. } => {
            compose::down(&root, &Model::load(&root.join("loja.toml"))?)
        }
        Command::Down { grace, .. } => down::run(&state_dir(&root), Duration::from_secs(grace)),
        Command::Images { no_build } => {
            let model = Model::load(&root.join("loja.toml"))?;
            images::run(&root, &model, &images::Options { no_build }).map(drop)
        }
        Command::ComposeCheck {
            stand_ins,
            no_build,
            timeout,
        } => {
            let model = Model::load(&root.join("loja.toml"))?;
            let options = compose::check::Options {
                stand_ins,
                no_build,
                timeout: Duration::from_secs(timeout),
            };
            compose::check::run(&root, &model, &options)
        }
        Command::Restart {
            services,
            rolling,
            no_build,
            timeout,
        } => {
            let model = Model::load(&root.join("loja.toml"))?;
            let options = restart::Options {
                services,
                rolling,
                build: !no_build,
                timeout: Duration::from_secs(timeout),
            };
            restart::run(&root, &model, &state_dir(&root), &options)
        }
        Command::Status => status::run(&state_dir(&root)),
        Command::Logs { service, follow } => {
            logs::run(&state_dir(&root), service.as_deref(), follow)
        }
        Command::Bench {
            connections,
            duration,
            warmup,
            url,
            replicas,
            smoke,
            no_build,
        } => {
            let options = bench::Options {
                connections,
                duration: Duration::from_secs(duration),
                warmup: Duration::from_secs(warmup),
                url,
                replicas,
                build: !no_build,
                smoke: false,
            };
            bench::run(&root, &if smoke { options.smoke() } else { options })
        }
        Command::Drill {
            connections,
            rounds,
            chaos,
            fault_every,
            seed,
            smoke,
            no_build,
        } => {
            let options = drill::Options {
                connections,
                rounds: rounds.max(1),
                chaos: Duration::from_secs(chaos),
                fault_every: Duration::from_secs(fault_every.max(1)),
                seed,
                build: !no_build,
            };
            drill::run(&root, &if smoke { options.smoke() } else { options })
        }
        Command::Deploy {
            dry_run,
            context,
            image_tag,
            timeout,
        } => {
            generate::run(&root, true)?;
            let model = Model::load(&root.join("loja.toml"))?;
            let options = deploy::Options {
                dry_run,
                context,
                image_tag,
                timeout: Duration::from_secs(timeout),
            };
            deploy::run(&root, &model, &options)
        }
    }
}
