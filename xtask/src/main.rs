//! `cargo xtask`: renders, checks, builds and runs the Loja Veloz platform
//! from `loja.toml`. Each command owns its flags and its `run`; this file
//! only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xtask::{Workspace, deploy, dev, docker, generate, native, perf, validate};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Loja Veloz tasks driven by loja.toml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Gen(generate::Gen),
    Validate(validate::Validate),
    Tools(dev::tools::Tools),
    Test(dev::test::Test),
    Up(native::up::Up),
    Down(native::down::Down),
    Restart(native::restart::Restart),
    Status(native::status::Status),
    Logs(native::logs::Logs),
    Trace(native::trace::Trace),
    Images(docker::images::Images),
    ComposeCheck(docker::check::ComposeCheck),
    Arm64Check(docker::arm64::Arm64Check),
    Deploy(deploy::Deploy),
    Plan(deploy::plan::Plan),
    Bench(perf::bench::Bench),
    Calibrate(perf::calibrate::Calibrate),
    Burst(perf::burst::Burst),
    Drill(perf::drill::Drill),
    Fuzz(perf::fuzz::Fuzz),
    Hostile(perf::hostile::Hostile),
}

fn main() -> ExitCode {
    let command = Cli::parse().command;
    let outcome = Workspace::find().and_then(|ws| match command {
        Command::Gen(cmd) => cmd.run(&ws),
        Command::Validate(cmd) => cmd.run(&ws),
        Command::Tools(cmd) => cmd.run(),
        Command::Test(cmd) => cmd.run(&ws),
        Command::Up(cmd) => cmd.run(&ws),
        Command::Down(cmd) => cmd.run(&ws),
        Command::Restart(cmd) => cmd.run(&ws),
        Command::Status(cmd) => cmd.run(&ws),
        Command::Logs(cmd) => cmd.run(&ws),
        Command::Trace(cmd) => cmd.run(&ws),
        Command::Images(cmd) => cmd.run(&ws),
        Command::ComposeCheck(cmd) => cmd.run(&ws),
        Command::Arm64Check(cmd) => cmd.run(&ws),
        Command::Deploy(cmd) => cmd.run(&ws),
        Command::Plan(cmd) => cmd.run(&ws),
        Command::Bench(cmd) => cmd.run(&ws),
        Command::Calibrate(cmd) => cmd.run(&ws),
        Command::Burst(cmd) => cmd.run(&ws),
        Command::Drill(cmd) => cmd.run(&ws),
        Command::Fuzz(cmd) => cmd.run(&ws),
        Command::Hostile(cmd) => cmd.run(&ws),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole context chain, no backtrace: these are users' errors.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
