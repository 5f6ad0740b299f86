//! `cargo xtask compose-check`: the generated compose stack, for real. Builds
//! the images, starts the stack with throwaway secrets, waits for every
//! healthcheck, places an order through the gateway, proves that the service
//! containers are hardened ([`super::hardening`]), and takes everything down
//! again. Where no image can be pulled, `--stand-ins` swaps PostgreSQL and
//! Prometheus for local builds ([`super::stand_ins`]) and leaves Jaeger,
//! which has none, out.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::json;

use super::compose::{self, Container, Stack};
use super::stand_ins::{self, LEFT_OUT};
use super::{hardening, images};
use crate::Workspace;
use crate::dev::build::Prebuilt;
use crate::util::http::{Answer, Request};
use crate::util::random_hex;

/// Run the generated compose stack on the Docker engine, place an order
/// through it, check the containers' hardening, take it down.
#[derive(Debug, Clone, clap::Args)]
pub struct ComposeCheck {
    /// Swap PostgreSQL and Prometheus for stand-ins built locally
    /// (tests/compose) and leave Jaeger out: for machines that cannot pull images.
    #[arg(long)]
    pub stand_ins: bool,
    #[command(flatten)]
    pub prebuilt: Prebuilt,
    /// Seconds to wait for every container to be ready.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

impl ComposeCheck {
    /// Runs the whole check; says so in one line and succeeds when no Docker
    /// engine answers.
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if !compose::engine_answers() {
            println!("compose-check: skipped, no Docker engine answers `docker info`");
            return Ok(());
        }
        let started = Instant::now();
        let model = ws.model()?;
        let program = compose::detect()?;
        let built = if self.prebuilt.no_build {
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
            images::build(ws, self.prebuilt)?
        };
        for b in &built {
            ensure!(
                !b.user.is_empty() && !b.user.starts_with('0') && !b.user.starts_with("root"),
                "{} runs as root (user {:?})",
                b.image,
                b.user
            );
        }
        let mut files = vec![ws.root().join(compose::COMPOSE_FILE)];
        if self.stand_ins {
            stand_ins::build(ws)?;
            files.push(ws.root().join("tests/compose/override.yml"));
        }
        let scratch = super::scratch_dir(ws)?;
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
        if self.stand_ins {
            println!("compose-check: {LEFT_OUT} has no local build and is left out");
            services.retain(|s| s != LEFT_OUT);
        }
        let outcome = self.exercise(ws, &stack, &services, port, &token);
        if outcome.is_err() {
            let containers = stack.containers().unwrap_or_default();
            for c in compose::inspect(&containers).unwrap_or_default() {
                println!(
                    "--- last log lines of {}:\n{}",
                    c.name,
                    compose::logs_tail(&c.id, 15)
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
        &self,
        ws: &Workspace,
        stack: &Stack,
        services: &[String],
        port: u16,
        token: &str,
    ) -> Result<()> {
        println!(
            "compose-check: starting {} with {}",
            services.join(", "),
            stack.program.join(" ")
        );
        let up = Instant::now();
        stack.up(services, self.stand_ins)?;
        let containers = stack.wait(services, Duration::from_secs(self.timeout))?;
        compose::print_containers(&containers);
        println!(
            "compose-check: every container ready after {:.1?}",
            up.elapsed()
        );
        place_order(port, token)?;
        let model = ws.model()?;
        let ours: Vec<&Container> = containers
            .iter()
            .filter(|c| model.services.iter().any(|s| s.name == c.service))
            .collect();
        hardening::check(&ours)
    }
}

/// An env file giving every secret the compose file requires a fresh random
/// value (the admin token is `token`), readable by its owner only.
fn write_env_file(dir: &Path, compose: &Path, token: &str) -> Result<PathBuf> {
    let text = std::fs::read_to_string(compose)?;
    let mut names = compose::required_in(&text);
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

/// A product, then an order of it through the gateway: the order must come
/// back confirmed with the price estoque set, and the stock must drop.
fn place_order(port: u16, token: &str) -> Result<()> {
    let gateway = format!("localhost:{port}");
    let send = |request: Request| -> Result<(u16, serde_json::Value)> {
        let request = Request {
            timeout: Duration::from_secs(15),
            ..request
        };
        let answer: Answer = request.send(&gateway)?;
        Ok((answer.status, answer.json()?))
    };
    let sku = format!("CHECK-{}", random_hex(4)?);
    let product = json!({"sku": sku, "name": "Compose check", "price_cents": 1250, "stock": 3});
    let (status, product) = retry_unavailable(|| {
        send(Request::json("POST", "/api/v1/products", &product).bearer(token))
    })?;
    ensure!(status == 201, "creating {sku}: {status} {product}");
    let key = format!("compose-check-{}", random_hex(8)?);
    let order = json!({
        "customer_id": "compose-check",
        "items": [{"sku": sku, "quantity": 2}],
        "payment": {"method": "card", "token": "tok_visa"},
    });
    let (status, placed) =
        send(Request::json("POST", "/api/v1/orders", &order).header("Idempotency-Key", key))?;
    ensure!(status == 201, "placing the order: {status} {placed}");
    ensure!(
        placed["status"] == "confirmed" && placed["total_cents"] == 2500,
        "the order is not confirmed at 2 x 1250 cents: {placed}"
    );
    let id = placed["id"].as_str().context("the order has no id")?;
    let path = format!("/api/v1/orders/{id}");
    let (status, fetched) = send(Request::get(&path))?;
    ensure!(
        status == 200 && fetched["status"] == "confirmed",
        "reading order {id} back: {status} {fetched}"
    );
    let path = format!("/api/v1/products/{sku}");
    let (status, stock) = send(Request::get(&path))?;
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
fn retry_unavailable(
    mut send: impl FnMut() -> Result<(u16, serde_json::Value)>,
) -> Result<(u16, serde_json::Value)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = send()?;
        if !(502..=504).contains(&status) || Instant::now() > deadline {
            return Ok((status, body));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::stand_ins::STAND_INS;

    #[test]
    fn the_override_names_exactly_the_stand_in_images() {
        let root = crate::Workspace::find().unwrap().root().to_path_buf();
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
