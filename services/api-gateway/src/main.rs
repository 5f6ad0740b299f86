//! The api-gateway service.

fn main() {}
