//! `cargo xtask images`: the service images from the generated Dockerfiles,
//! one per service and architecture (amd64 and arm64; CI joins the two into
//! one multi-platform image). The binaries are built statically on the host
//! (arm64 cross-built) and each Dockerfile's only stage (`FROM scratch`)
//! copies one in, so building an image pulls nothing and needs no compiler
//! inside Docker; the same Dockerfiles serve machines that can pull images
//! and machines that cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::dev::build::{self, ARCHES, Prebuilt, TRIPLE, triple};
use crate::model::{Arch, Model};

/// Build the static service binaries and their images (amd64 and arm64) from the generated Dockerfiles.
#[derive(Debug, Clone, clap::Args)]
pub struct Images {
    #[command(flatten)]
    pub prebuilt: Prebuilt,
    /// Only this architecture (default: amd64 and arm64).
    #[arg(long, value_parser = ["amd64", "arm64"])]
    pub arch: Option<String>,
}

impl Images {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let arches: Vec<Arch> = match self.arch.as_deref() {
            Some("arm64") => vec![Arch::Arm64],
            Some(_) => vec![Arch::Amd64],
            None => ARCHES.to_vec(),
        };
        build_for(ws, self.prebuilt, &arches).map(drop)
    }
}

/// The name of an architecture in image tags and `--platform`.
pub fn arch_name(arch: Arch) -> &'static str {
    match arch {
        Arch::Amd64 => "amd64",
        Arch::Arm64 => "arm64",
    }
}

/// One built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub service: String,
    pub image: String,
    pub bytes: u64,
    pub user: String,
}

/// `registry/image_prefix/service:tag`, the name the compose file and the
/// manifests use: on this machine, the amd64 image.
pub fn image_name(model: &Model, service: &str) -> String {
    let p = &model.project;
    format!("{}/{}/{service}:{}", p.registry, p.image_prefix, p.tag)
}

/// `registry/image_prefix/service:tag-ARCH`, one architecture's image.
pub fn arch_image_name(model: &Model, service: &str, arch: Arch) -> String {
    format!("{}-{}", image_name(model, service), arch_name(arch))
}

/// The amd64 images only, as compose runs them here (see [`build_for`]).
pub fn build(ws: &Workspace, prebuilt: Prebuilt) -> Result<Vec<Built>> {
    build_for(ws, prebuilt, &[Arch::Amd64])
}

/// Builds the static binaries of each of `arches` (unless asked not to),
/// then one image per service and architecture, tagged `tag-ARCH` as
/// `loja.toml` names it; the amd64 one is also tagged `tag`, which compose
/// runs. Prints each image's size and user.
pub fn build_for(ws: &Workspace, prebuilt: Prebuilt, arches: &[Arch]) -> Result<Vec<Built>> {
    let model = ws.model()?;
    let services: Vec<String> = model.services.iter().map(|s| s.name.clone()).collect();
    let mut built = Vec::new();
    for &arch in arches {
        prebuilt.ensure_for(ws, &services, arch)?;
        for svc in &model.services {
            built.push(build_one(ws, &svc.name, arch)?);
            if arch == Arch::Amd64 {
                let plain = image_name(model, &svc.name);
                tag(&built[built.len() - 1].image, &plain)?;
                let (bytes, user) = inspect(&plain)?;
                built.push(Built {
                    service: svc.name.clone(),
                    image: plain,
                    bytes,
                    user,
                });
            }
        }
    }
    print_table(&built);
    Ok(built)
}

/// The image of one service for `arch`, from its built static binary.
pub fn build_one(ws: &Workspace, service: &str, arch: Arch) -> Result<Built> {
    let model = ws.model()?;
    let binary = build::release_dir_for(ws, arch).join(service);
    check_static(&binary)?;
    let image = arch_image_name(model, service, arch);
    let context = stage(ws, service, &binary, arch)?;
    let dockerfile = ws
        .root()
        .join("generated/docker")
        .join(format!("{service}.Dockerfile"));
    println!("images: building {image}");
    docker_build_for(&dockerfile, &image, &context, arch)?;
    let (bytes, user) = inspect(&image)?;
    Ok(Built {
        service: service.into(),
        image,
        bytes,
        user,
    })
}

/// `docker tag FROM TO`.
fn tag(from: &str, to: &str) -> Result<()> {
    let out = Command::new("docker")
        .args(["tag", from, to])
        .output()
        .context("running docker tag")?;
    if !out.status.success() {
        bail!(
            "docker tag {from} {to}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Fails unless `path` is an ELF executable without a program interpreter:
/// a dynamically linked binary would build into an image that cannot start.
pub fn check_static(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{} is missing: build it first", path.display()))?;
    if has_interpreter(&bytes).with_context(|| format!("{} is not an ELF file", path.display()))? {
        bail!(
            "{} is dynamically linked; build it with RUSTFLAGS=\"-C target-feature=+crt-static\" --target {TRIPLE}",
            path.display()
        );
    }
    Ok(())
}

/// Whether a 64-bit little-endian ELF image has a PT_INTERP program header.
pub fn has_interpreter(elf: &[u8]) -> Result<bool> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        bail!("not a 64-bit little-endian ELF file");
    }
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into()?) as usize;
    let (entsize, count) = (u16_at(0x36), u16_at(0x38));
    for n in 0..count {
        let at = phoff + n * entsize;
        let Some(header) = elf.get(at..at + 4) else {
            bail!("program header {n} lies outside the file");
        };
        if u32::from_le_bytes(header.try_into()?) == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A build context holding only the binary, at the path the Dockerfile names
/// (the same as in the repository, which `docker-compose up --build` and a
/// plain `docker build .` use): nothing else is sent to the engine, wherever
/// `CARGO_TARGET_DIR` points.
fn stage(ws: &Workspace, service: &str, binary: &Path, arch: Arch) -> Result<PathBuf> {
    let context = ws
        .target_dir()
        .join("images")
        .join(arch_name(arch))
        .join(service);
    let dest = context.join("target").join(triple(arch)).join("release");
    std::fs::create_dir_all(&dest)?;
    std::fs::copy(binary, dest.join(service))
        .with_context(|| format!("copying {} into {}", binary.display(), dest.display()))?;
    Ok(context)
}

/// A `docker` command; the legacy builder where the buildx plugin is missing
/// (`docker build` fails there with BuildKit enabled).
pub fn docker() -> Command {
    let mut cmd = Command::new("docker");
    if std::env::var_os("DOCKER_BUILDKIT").is_none() && !has_buildx() {
        cmd.env("DOCKER_BUILDKIT", "0");
    }
    cmd
}

fn has_buildx() -> bool {
    Command::new("docker")
        .args(["buildx", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `docker build --file DOCKERFILE --tag IMAGE CONTEXT`, quietly unless it fails.
pub fn docker_build(dockerfile: &Path, image: &str, context: &Path) -> Result<()> {
    run_build(docker().arg("build"), dockerfile, image, context)
}

/// [`docker_build`] of a service image for `arch`, from a context holding
/// that architecture's binary only (see [`stage`]).
pub fn docker_build_for(dockerfile: &Path, image: &str, context: &Path, arch: Arch) -> Result<()> {
    let mut cmd = docker();
    cmd.arg("build")
        .args(["--platform", &format!("linux/{}", arch_name(arch))]);
    run_build(&mut cmd, dockerfile, image, context)
}

fn run_build(cmd: &mut Command, dockerfile: &Path, image: &str, context: &Path) -> Result<()> {
    let out = cmd
        .arg("--file")
        .arg(dockerfile)
        .args(["--tag", image])
        .arg(context)
        .output()
        .context("running docker build")?;
    if !out.status.success() {
        bail!(
            "docker build of {image} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// An image's size in bytes and its configured user.
pub fn inspect(image: &str) -> Result<(u64, String)> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Size}} {{.Config.User}}"])
        .arg(image)
        .output()
        .context("running docker image inspect")?;
    if !out.status.success() {
        bail!(
            "docker image inspect {image}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (size, user) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    Ok((size.parse().context("image size")?, user.to_owned()))
}

/// The architecture an image is for (`amd64`, `arm64`).
pub fn architecture(image: &str) -> Result<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Architecture}}", image])
        .output()
        .context("running docker image inspect")?;
    if !out.status.success() {
        bail!(
            "docker image inspect {image}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Sizes in MB (10^6 bytes, as `docker images` shows them).
pub fn print_table(built: &[Built]) {
    println!("\n{:<44} {:>9}  USER", "IMAGE", "SIZE");
    for b in built {
        println!(
            "{:<44} {:>6.1} MB  {}",
            b.image,
            b.bytes as f64 / 1e6,
            if b.user.is_empty() { "root" } else { &b.user }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header with one program header of type `p_type`.
    fn elf(p_type: u32) -> Vec<u8> {
        let mut bytes = vec![0u8; 64 + 56];
        bytes[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bytes[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        bytes[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        bytes[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        bytes[64..68].copy_from_slice(&p_type.to_le_bytes());
        bytes
    }

    #[test]
    fn an_interpreter_header_means_dynamic_linking() {
        assert!(has_interpreter(&elf(3)).unwrap());
        assert!(!has_interpreter(&elf(1)).unwrap());
    }

    #[test]
    fn non_elf_files_and_truncated_headers_are_refused() {
        assert!(has_interpreter(b"#!/bin/sh\necho hi\n").is_err());
        let mut truncated = elf(1);
        truncated[0x38..0x3a].copy_from_slice(&9u16.to_le_bytes());
        assert!(has_interpreter(&truncated).is_err());
    }

    #[test]
    fn this_test_binary_is_judged_like_the_services() {
        // Test binaries are linked like the host's other binaries: whatever
        // they are, the check must read them without error.
        let me = std::env::current_exe().unwrap();
        assert!(has_interpreter(&std::fs::read(me).unwrap()).is_ok());
    }
}
