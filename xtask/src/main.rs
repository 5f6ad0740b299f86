//! `cargo xtask`: renders, checks, builds and runs the Loja Veloz platform from `loja.toml`.

fn main() {}
