//! Measurement 4, the footprint: peak resident memory of every running
//! replica after the load, binary sizes, time from process start to `/ready`
//! of a fresh replica, and the time `cargo xtask gen` takes.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::Workspace;
use crate::native::launcher::Launch;
use crate::native::state::Instance;
use crate::util::http;

/// One running replica after the load.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub instance: String,
    /// VmHWM: the most it was ever resident, in KiB.
    pub peak_rss_kib: u64,
    /// VmRSS now, in KiB.
    pub rss_kib: u64,
}

/// Per service: binary size and start-up times.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    pub service: String,
    pub binary_bytes: u64,
    /// Every sample, in milliseconds from spawn to the first 200 on `/ready`.
    pub ready_ms: Vec<f64>,
}

impl Startup {
    /// The median sample.
    pub fn ready_median_ms(&self) -> f64 {
        median(&self.ready_ms)
    }
}

/// The median of some samples (0 when there are none).
pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(field)?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Resident memory of every instance, as it stands now.
pub fn memory(instances: &[Instance]) -> Vec<Memory> {
    instances
        .iter()
        .map(|i| Memory {
            instance: i.name(),
            peak_rss_kib: status_kib(i.pid, "VmHWM:").unwrap_or(0),
            rss_kib: status_kib(i.pid, "VmRSS:").unwrap_or(0),
        })
        .collect()
}

/// For each service, `samples` fresh replicas started by the launcher, with
/// the environment of the running replica (read from /proc) on a free port,
/// logging into `scratch`; the time is measured to the first 200 on
/// `/ready`, polled every 2 ms by a thread of its own.
pub fn startup(
    scratch: &Path,
    bin_dir: &Path,
    instances: &[Instance],
    samples: usize,
) -> Result<Vec<Startup>> {
    let mut firsts: BTreeMap<&str, &Instance> = BTreeMap::new();
    for i in instances {
        firsts.entry(&i.service).or_insert(i);
    }
    let mut out = Vec::new();
    for (service, running) in firsts {
        let binary = bin_dir.join(service);
        let binary_bytes = std::fs::metadata(&binary)
            .with_context(|| format!("{}", binary.display()))?
            .len();
        let mut env = environ(running.pid)?;
        let mut ready_ms = Vec::new();
        for n in 0..samples {
            let port = loja_testkit::free_port();
            env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
            let launch = Launch {
                service: service.to_owned(),
                program: bin_dir.join(service),
                args: Vec::new(),
                ready_path: "/ready".into(),
                replica: 90 + n as u32,
                port,
                env: env.clone(),
            };
            let started = Instant::now();
            let poll = std::thread::spawn(move || {
                while started.elapsed() < Duration::from_secs(30) {
                    if http::probe(port, "/ready").is_some_and(|a| a.status == 200) {
                        return Some(started.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                None
            });
            let mut fresh = launch.spawn(&scratch.join(format!("{}.log", launch.name())))?;
            let ready = fresh.wait_ready(Duration::from_secs(30));
            let took = poll.join().ok().flatten();
            fresh.stop(Duration::from_secs(10));
            ready?;
            let took = took.with_context(|| format!("{service} never answered /ready"))?;
            ready_ms.push(took.as_secs_f64() * 1000.0);
        }
        out.push(Startup {
            service: service.to_owned(),
            binary_bytes,
            ready_ms,
        });
    }
    Ok(out)
}

/// The environment a running process was started with.
fn environ(pid: u32) -> Result<BTreeMap<String, String>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ"))
        .with_context(|| format!("reading the environment of pid {pid}"))?;
    Ok(raw
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect())
}

/// Time of `gen` over the whole tree.
#[derive(Debug, Clone, Serialize)]
pub struct Gen {
    /// `xtask gen --check` as a process (the built xtask binary, without
    /// cargo's own start-up), each sample in milliseconds.
    pub process_ms: Vec<f64>,
    /// The rendering and comparison alone, in this process.
    pub in_process_ms: Vec<f64>,
}

/// Times `gen --check` (it renders everything `gen` renders and writes
/// nothing, so the bench never changes the tree).
pub fn gen_time(ws: &Workspace, samples: usize) -> Result<Gen> {
    let exe = std::env::current_exe()?;
    let mut process_ms = Vec::new();
    let mut in_process_ms = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        Command::new(&exe)
            .args(["gen", "--check"])
            .current_dir(ws.root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running xtask gen --check")?;
        process_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        // A fresh workspace, so loja.toml is read and checked every time.
        crate::generate::files::generate(&Workspace::at(ws.root()), true)?;
        in_process_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Gen {
        process_ms,
        in_process_ms,
    })
}
