//! What the generator's tests share: the checkout they run in and scratch
//! copies of it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The checkout the tests run in (found at run time, like `cargo xtask`).
pub fn project_root() -> PathBuf {
    xtask::Workspace::find()
        .expect("the tests run inside the checkout")
        .root()
        .to_path_buf()
}

/// Copies a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A scratch project: `config` as loja.toml plus the real templates.
pub fn scratch(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("loja.toml"), config).unwrap();
    copy_dir(
        &project_root().join("templates"),
        &dir.path().join("templates"),
    );
    dir
}
