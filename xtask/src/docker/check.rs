//! `cargo xtask compose-check`: the generated compose stack, for real. Builds
//! the images, starts the stack with throwaway secrets, waits for every
//! healthcheck, places an order through the gateway, proves that the service
//! containers run as non-root with a read-only root filesystem and no
//! capabilities, and takes everything down again. Where no image can be
//! pulled, `--stand-ins` swaps PostgreSQL and Prometheus for local builds
//! (tests/compose) and leaves Jaeger, which has none, out.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use super::{Container, Stack};
use crate::images;
use crate::model::Model;

/// The Debian base the stand-ins build on, imported from a debootstrap tree.
pub const BASE_IMAGE: &str = "loja-veloz/debian-base:bookworm";
/// Stand-in images and their build directories under `tests/compose`; the
/// tags are the ones `tests/compose/override.yml` names.
pub const STAND_INS: &[(&str, &str)] = &[
    ("loja-veloz/postgres-standin:15", "postgres"),
    ("loja-veloz/prometheus-standin:bookworm", "prometheus"),
];
/// The one third-party service without a stand-in.
pub const LEFT_OUT: &str = "jaeger";

/// What `cargo xtask compose-check` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Replace the third-party images with local stand-ins.
    pub stand_ins: bool,
    /// Use the service images already built.
    pub no_build: bool,
    /// Longest wait for every container to be ready.
    pub timeout: Duration,
}

/// Runs the whole check; says so in one line and succeeds when no Docker
/// engine answers.
pub fn run(project: &Path, model: &Model, options: &Options) -> Result<()> {
    if !super::engine_answers() {
        println!("compose-check: skipped, no Docker engine answers `docker info`");
        return Ok(());
    }
    let started = Instant::now();
    let program = super::detect()?;
    let built = if options.no_build {
        let mut built = Vec::new();
        for svc in &model.services {
            let image = images::image_name(model, &svc.name);
            let (bytes, user) = images::inspect(&image)?;
            built.push(images::Built {
                service: svc.name.clone(),
                image,
                bytes,
                user,
            });
        }
        images::print_table(&built);
        built
    } else {
        images::run(project, model, &images::Options { no_build: false })?
    };
    for b in &built {
        ensure!(
            !b.user.is_empty() && !b.user.starts_with("0") && !b.user.starts_with("root"),
            "{} runs as root (user {:?})",
            b.image,
            b.user
        );
    }
    let mut files = vec![project.join(super::COMPOSE_FILE)];
    if options.stand_ins {
        build_stand_ins(project)?;
        files.push(project.join("tests/compose/override.yml"));
    }
    let scratch = scratch_dir(project)?;
    let token = random_hex(24)?;
    let env_file = write_env_file(&scratch, &files[0], &token)?;
    let stack = Stack {
        program,
        project_name: format!("{}-check", model.project.name),
        files,
        env_file: Some(env_file),
    };
    let port = model
        .service(&model.project.gateway)
        .and_then(|g| g.public_port)
        .context("the gateway publishes no port")?;
    if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300))
        .is_ok()
    {
        bail!("port {port} is taken: stop what listens there (a native `cargo xtask up`?)");
    }
    let mut services = stack.services()?;
    if options.stand_ins {
        println!("compose-check: {LEFT_OUT} has no local build and is left out");
        services.retain(|s| s != LEFT_OUT);
    }
    let outcome = exercise(&stack, model, &services, port, &token, options);
    if outcome.is_err() {
        for c in super::inspect(&stack.containers().unwrap_or_default()).unwrap_or_default() {
            println!(
                "--- last log lines of {}:\n{}",
                c.name,
                super::logs_tail(&c.id, 15)
            );
        }
    }
    println!("compose-check: taking the stack down");
    let down = stack.down(true).and_then(|()| {
        let left = stack.containers()?;
        ensure!(left.is_empty(), "containers left after down: {left:?}");
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&scratch);
    outcome?;
    down?;
    println!(
        "compose-check: passed in {:.0?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
    Ok(())
}

fn exercise(
    stack: &Stack,
    model: &Model,
    services: &[String],
    port: u16,
    token: &str,
    options: &Options,
) -> Result<()> {
    println!(
        "compose-check: starting {} with {}",
        services.join(", "),
        stack.program.join(" ")
    );
    let up = Instant::now();
    stack.up(services, options.stand_ins)?;
    let containers = stack.wait(services, options.timeout)?;
    super::print_containers(&containers);
    println!(
        "compose-check: every container ready after {:.1?}",
        up.elapsed()
    );
    place_order(port, token)?;
    let ours: Vec<&Container> = containers
        .iter()
        .filter(|c| model.services.iter().any(|s| s.name == c.service))
        .collect();
    check_hardening(&ours)
}

/// The Debian base (imported from a fresh debootstrap tree unless an image
/// with its tag exists) and the stand-ins built on it.
pub fn build_stand_ins(project: &Path) -> Result<()> {
    let exists = Command::new("docker")
        .args(["image", "inspect", BASE_IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if exists {
        println!("compose-check: {BASE_IMAGE} exists, reused");
    } else {
        import_base(project)?;
    }
    for (image, dir) in STAND_INS {
        let context = project.join("tests/compose").join(dir);
        println!("compose-check: building stand-in {image}");
        images::docker_build(&context.join("Dockerfile"), image, &context)?;
    }
    Ok(())
}

fn import_base(project: &Path) -> Result<()> {
    let tree = scratch_dir(project)?.join("debroot");
    // debootstrap refuses to finish a half-made tree from an interrupted run.
    let _ = std::fs::remove_dir_all(&tree);
    println!(
        "compose-check: debootstrap --variant=minbase bookworm {}",
        tree.display()
    );
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tree)
        .arg("http://deb.debian.org/debian")
        .stdout(std::process::Stdio::null())
        .status()
        .context("running debootstrap (`cargo xtask tools` installs it)")?;
    ensure!(status.success(), "debootstrap failed");
    let tar = format!(
        "tar -C '{}' -c . | docker import - {BASE_IMAGE}",
        tree.display()
    );
    let status = Command::new("sh").args(["-c", &tar]).status()?;
    let _ = std::fs::remove_dir_all(&tree);
    ensure!(
        status.success(),
        "docker import of the debootstrap tree failed"
    );
    Ok(())
}

/// A private directory for the env file (and the debootstrap tree), never in git.
fn scratch_dir(project: &Path) -> Result<PathBuf> {
    let dir = crate::build::target_dir(project).join("compose-check");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// An env file giving every secret the compose file requires a fresh random
/// value (the admin token is `token`), readable by its owner only.
fn write_env_file(dir: &Path, compose: &Path, token: &str) -> Result<PathBuf> {
    let text = std::fs::read_to_string(compose)?;
    let mut names = super::required_in(&text);
    names.sort();
    names.dedup();
    let mut body = String::from("# Throwaway secrets of one compose-check run.\n");
    for name in names {
        let value = if name == "ADMIN_TOKEN" {
            token.to_owned()
        } else {
            random_hex(16)?
        };
        body.push_str(&format!("{name}={value}\n"));
    }
    let path = dir.join("check.env");
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    let mut file = file.create_new(true).write(true).open(&path)?;
    file.write_all(body.as_bytes())?;
    Ok(path)
}

fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A product, then an order of it through the gateway: the order must come
/// back confirmed with the price estoque set, and the stock must drop.
fn place_order(port: u16, token: &str) -> Result<()> {
    let sku = format!("CHECK-{}", random_hex(4)?);
    let auth = format!("Bearer {token}");
    let (status, product) = retry_unavailable(|| {
        request(
            port,
            "POST",
            "/api/v1/products",
            &[("Authorization", &auth)],
            Some(&json!({"sku": sku, "name": "Compose check", "price_cents": 1250, "stock": 3})),
        )
    })?;
    ensure!(status == 201, "creating {sku}: {status} {product}");
    let key = format!("compose-check-{}", random_hex(8)?);
    let order = json!({
        "customer_id": "compose-check",
        "items": [{"sku": sku, "quantity": 2}],
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let (status, placed) = request(
        port,
        "POST",
        "/api/v1/orders",
        &[("Idempotency-Key", &key)],
        Some(&order),
    )?;
    ensure!(status == 201, "placing the order: {status} {placed}");
    ensure!(
        placed["status"] == "confirmed" && placed["total_cents"] == 2500,
        "the order is not confirmed at 2 x 1250 cents: {placed}"
    );
    let id = placed["id"].as_str().context("the order has no id")?;
    let (status, fetched) = request(port, "GET", &format!("/api/v1/orders/{id}"), &[], None)?;
    ensure!(
        status == 200 && fetched["status"] == "confirmed",
        "reading order {id} back: {status} {fetched}"
    );
    let (status, stock) = request(port, "GET", &format!("/api/v1/products/{sku}"), &[], None)?;
    ensure!(
        status == 200 && stock["stock"] == 1,
        "the stock of {sku} did not drop from 3 to 1: {status} {stock}"
    );
    println!(
        "compose-check: order {id} confirmed through http://localhost:{port} \
         (2 x {sku}, total 2500 cents, payment {})",
        placed["payment"]["status"]
    );
    Ok(())
}

/// Retries a request while the gateway answers 502/503/504 (a callee's
/// connection pool may still be warming up), for at most 30 s.
fn retry_unavailable(mut send: impl FnMut() -> Result<(u16, Value)>) -> Result<(u16, Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = send()?;
        if !(502..=504).contains(&status) || Instant::now() > deadline {
            return Ok((status, body));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// One HTTP/1.0 request to localhost (a close-delimited, never chunked,
/// response); returns the status and the JSON body (`null` when empty).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: localhost:{port}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("reading the answer to {method} {path}"))?;
    parse_response(&response).with_context(|| format!("the answer to {method} {path}"))
}

/// Status code and JSON body of a raw HTTP response.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Value)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no end of the response head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status code")?;
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).with_context(|| format!("a body that is not JSON: {body}"))?
    };
    Ok((status, body))
}

/// For every service container: the configured user is not root, the
/// processes really run under a non-zero uid, the root filesystem is
/// read-only (a file copied in is refused), and every capability is dropped.
fn check_hardening(containers: &[&Container]) -> Result<()> {
    println!(
        "\n{:<36} {:<12} {:<12} {:<10} CAP_DROP",
        "CONTAINER", "USER", "PROCESS UID", "READ-ONLY"
    );
    let probe = tempfile_probe()?;
    let mut problems = Vec::new();
    for c in containers {
        let json = super::inspect_json(std::slice::from_ref(&c.id))?;
        let (user, read_only, cap_drop) = hardening(json.first().context("no such container")?);
        let user = user.as_str();
        let uids = process_uids(&c.id)?;
        let copy_refused = !Command::new("docker")
            .arg("cp")
            .arg(&probe)
            .arg(format!("{}:/compose-check-probe", c.id))
            .output()?
            .status
            .success();
        println!(
            "{:<36} {:<12} {:<12} {:<10} {cap_drop}",
            c.name,
            user,
            uids.join(","),
            if read_only && copy_refused {
                "yes"
            } else {
                "NO"
            }
        );
        if user.is_empty() || user.starts_with('0') || user.starts_with("root") {
            problems.push(format!(
                "{} is configured to run as root ({user:?})",
                c.name
            ));
        }
        if uids.is_empty() || uids.iter().any(|u| u == "0") {
            problems.push(format!("{} has processes running as uid {uids:?}", c.name));
        }
        if !read_only || !copy_refused {
            problems.push(format!("{}'s root filesystem is writable", c.name));
        }
        if !cap_drop.split(',').any(|cap| cap == "ALL") {
            problems.push(format!(
                "{} keeps capabilities (cap_drop {cap_drop:?})",
                c.name
            ));
        }
    }
    let _ = std::fs::remove_file(&probe);
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Configured user, read-only root filesystem, and dropped capabilities
/// (comma-separated) of one `docker inspect` element.
pub fn hardening(v: &Value) -> (String, bool, String) {
    let user = v["Config"]["User"].as_str().unwrap_or_default().to_owned();
    let read_only = v["HostConfig"]["ReadonlyRootfs"].as_bool().unwrap_or(false);
    let caps: Vec<&str> = v["HostConfig"]["CapDrop"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    (user, read_only, caps.join(","))
}

fn tempfile_probe() -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("compose-check-probe-{}", std::process::id()));
    std::fs::write(&path, "probe\n")?;
    Ok(path)
}

/// The uids of a container's processes, as the engine's `docker top` sees them.
fn process_uids(id: &str) -> Result<Vec<String>> {
    let out = Command::new("docker")
        .args(["top", id, "-o", "pid,uid"])
        .output()
        .context("running docker top")?;
    ensure!(
        out.status.success(),
        "docker top {id}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // The engine insists on a PID column: `PID UID` per process, after a header.
    let mut uids: Vec<String> = super::lines(&out.stdout)
        .iter()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .collect();
    uids.sort();
    uids.dedup();
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_into_status_and_json() {
        let raw = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n\r\n{\"id\":\"x\"}";
        let (status, body) = parse_response(raw).unwrap();
        assert_eq!(status, 201);
        assert_eq!(body["id"], "x");
        let (status, body) = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!((status, body), (204, Value::Null));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\nnot json").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn hardening_reads_user_read_only_and_dropped_capabilities() {
        let v = json!({"Config": {"User": "65532:65532"},
            "HostConfig": {"ReadonlyRootfs": true, "CapDrop": ["ALL"]}});
        assert_eq!(hardening(&v), ("65532:65532".into(), true, "ALL".into()));
        let v = json!({"Config": {"User": ""}, "HostConfig": {"CapDrop": null}});
        assert_eq!(hardening(&v), (String::new(), false, String::new()));
    }

    #[test]
    fn the_override_names_exactly_the_stand_in_images() {
        let root = crate::project_root();
        let text = std::fs::read_to_string(root.join("tests/compose/override.yml")).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let services = doc["services"].as_mapping().unwrap();
        assert_eq!(services.len(), STAND_INS.len());
        for (image, dir) in STAND_INS {
            assert_eq!(doc["services"][*dir]["image"].as_str(), Some(*image));
            assert!(
                root.join("tests/compose")
                    .join(dir)
                    .join("Dockerfile")
                    .is_file()
            );
        }
        // Only images are swapped: everything else comes from the generated file.
        for (_, service) in services {
            assert_eq!(service.as_mapping().unwrap().len(), 1);
        }
    }
}
