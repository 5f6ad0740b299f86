//! The platform started by the code path of `cargo xtask up` (xtask's
//! `Platform`: free ports, a temporary state directory, everything stopped
//! when it is dropped), with the test build's binaries, for the tests that
//! drive it as a whole (`mod native;` in each of them).

use anyhow::Result;
use loja_tests::process::binaries;
use xtask::Workspace;
use xtask::dev::build::Prebuilt;
use xtask::native::platform::Platform;

/// Starts one replica of every service.
pub async fn start() -> Result<Platform> {
    let bins = tokio::task::spawn_blocking(binaries).await??;
    tokio::task::spawn_blocking(move || {
        let ws = Workspace::find()?;
        let model = ws.model()?.clone();
        let prebuilt = Prebuilt { no_build: true };
        Platform::start(&ws, &model, 1, prebuilt, Some(bins), "up")
    })
    .await?
}
