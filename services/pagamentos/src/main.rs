//! The pagamentos service.

fn main() {}
