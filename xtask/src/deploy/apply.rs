//! Applying a deploy's steps: the cluster must answer; the plan against what
//! runs there is shown; each step is piped to `kubectl apply` (secrets never
//! touch a file); the login Job is run anew and waited for before the
//! services start; objects the environment no longer has are deleted; then
//! every rollout is waited for.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::{Deploy, Step, desired, live, objects, plan};

/// `kubectl` with the deploy's `--context`.
fn kubectl(options: &Deploy, args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    if let Some(ctx) = &options.context {
        cmd.args(["--context", ctx]);
    }
    cmd.args(args);
    cmd
}

/// Runs a kubectl command to completion; its stdout, or its last error line.
fn run(options: &Deploy, args: &[&str]) -> Result<String> {
    let out = kubectl(options, args)
        .stdin(Stdio::null())
        .output()
        .context("running kubectl: is it installed?")?;
    if !out.status.success() {
        bail!("kubectl {}: {}", args.join(" "), last_line(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Applies the plan to the cluster and waits for the rollouts.
pub fn apply(steps: &[Step], namespace: &str, options: &Deploy) -> Result<()> {
    let probe = kubectl(options, &["version", "--request-timeout=5s", "-o", "yaml"])
        .stdin(Stdio::null())
        .output()
        .context("running kubectl: is it installed?")?;
    if !probe.status.success() {
        bail!(
            "no Kubernetes cluster answers for context {}: {}\n\
             Use `cargo xtask deploy --dry-run` to see the plan without a cluster.",
            options.context.as_deref().unwrap_or("(current)"),
            last_line(&probe.stderr)
        );
    }
    let want = desired(steps)?;
    let running = running(options, namespace)?;
    let changes = plan::diff(&live::baseline(&want, &running), &want);
    println!("deploy --env {}: the plan against the cluster", options.env);
    print!("{}", plan::Report(&changes));
    for step in steps {
        let jobs: Vec<String> = objects(&step.text)
            .into_iter()
            .filter(|(kind, _)| kind == "Job")
            .map(|(_, name)| name)
            .collect();
        // A Job's template cannot change, and a finished one never runs
        // again: it is replaced, so every deploy runs it.
        for job in &jobs {
            run(
                options,
                &[
                    "delete",
                    "job",
                    job,
                    "-n",
                    namespace,
                    "--ignore-not-found",
                    "--wait=true",
                ],
            )?;
        }
        println!("deploy: applying {}", step.file.display());
        let mut child = kubectl(options, &["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Filled secrets travel through a pipe only, never through a file.
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(step.text.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "applying {}: {}",
                step.file.display(),
                last_line(&out.stderr)
            );
        }
        for job in &jobs {
            println!("deploy: waiting for job/{job}");
            let timeout = format!("--timeout={}s", options.timeout);
            let wait = [
                "wait",
                "--for=condition=complete",
                &format!("job/{job}"),
                "-n",
                namespace,
                &timeout,
            ];
            if let Err(err) = run(options, &wait) {
                let logs = run(
                    options,
                    &["logs", &format!("job/{job}"), "-n", namespace, "--tail=15"],
                )
                .unwrap_or_default();
                bail!("job/{job} did not complete: {err:#}\n{logs}");
            }
        }
    }
    for change in &changes {
        if let plan::Change::Removed(key) = change {
            println!("deploy: deleting {key} (no longer in the manifests)");
            run(
                options,
                &[
                    "delete",
                    &key.kind.to_lowercase(),
                    &key.name,
                    "-n",
                    namespace,
                    "--ignore-not-found",
                ],
            )?;
        }
    }
    wait_for_rollouts(steps, namespace, options)
}

/// What the environment runs now: the namespace and every object `deploy`
/// created there (by label).
fn running(options: &Deploy, namespace: &str) -> Result<plan::Objects> {
    let mut objects = live::parse(&run(
        options,
        &[
            "get",
            live::KINDS,
            "-n",
            namespace,
            "-l",
            &live::selector(&options.env),
            "-o",
            "json",
        ],
    )?)?;
    let ns = run(
        options,
        &[
            "get",
            "namespace",
            namespace,
            "--ignore-not-found",
            "-o",
            "json",
        ],
    )?;
    if !ns.trim().is_empty() {
        objects.extend(live::parse(&ns)?);
    }
    Ok(objects)
}

fn wait_for_rollouts(steps: &[Step], namespace: &str, options: &Deploy) -> Result<()> {
    let timeout = format!("--timeout={}s", options.timeout);
    for step in steps {
        for (kind, name) in objects(&step.text) {
            if kind != "Deployment" && kind != "StatefulSet" {
                continue;
            }
            let target = format!("{}/{name}", kind.to_lowercase());
            println!("deploy: waiting for {target}");
            let out = kubectl(
                options,
                &["rollout", "status", &target, "-n", namespace, &timeout],
            )
            .stdin(Stdio::null())
            .output()?;
            if !out.status.success() {
                let events = kubectl(options, &["describe", &target, "-n", namespace])
                    .output()
                    .map(|o| crate::util::tail_text(&String::from_utf8_lossy(&o.stdout), 15))
                    .unwrap_or_default();
                bail!(
                    "{target} did not roll out: {}\n{events}",
                    last_line(&out.stderr)
                );
            }
        }
    }
    println!("deploy: every rollout finished");
    Ok(())
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .to_owned()
}
