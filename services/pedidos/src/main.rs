//! The pedidos service.

fn main() {}
