//! The estoque service.

fn main() {}
