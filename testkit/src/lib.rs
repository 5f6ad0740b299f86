//! What the tests and `xtask` share: private PostgreSQL clusters started from
//! the server binaries on PATH ([`pg`]), throwaway databases on the server
//! `DATABASE_URL` names ([`db`], feature `db`), an in-process client for a
//! service's router ([`client`], feature `router`), and free loopback ports.

#[cfg(feature = "router")]
pub mod client;
#[cfg(feature = "db")]
pub mod db;
pub mod pg;

/// A TCP port on loopback that nothing listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral loopback port")
}
