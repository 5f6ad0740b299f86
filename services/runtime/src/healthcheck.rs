//! `<service> healthcheck`: the container health probe. Scratch images have
//! no curl, so every service binary can probe its own `/ready` and exit 0
//! (ready) or 1 (not ready or not answering).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::DEFAULT_LISTEN_ADDR;

/// Call first thing in `main`: when the only argument is `healthcheck`, probes
/// `http://127.0.0.1:<port of LISTEN_ADDR>/ready` and exits; otherwise returns.
pub fn exit_if_requested() {
    let mut args = std::env::args().skip(1);
    if let (Some(arg), None) = (args.next(), args.next())
        && arg == "healthcheck"
    {
        let listen = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| DEFAULT_LISTEN_ADDR.into());
        let ok = listen
            .parse::<SocketAddr>()
            .is_ok_and(|addr| probe(local(addr), Duration::from_secs(3)));
        std::process::exit(if ok { 0 } else { 1 });
    }
}

/// The address to reach a server listening on `listen` from the same host:
/// a wildcard listener is reached over loopback.
pub fn local(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// True when `GET /ready` on `addr` answers 200 within `timeout`.
pub fn probe(addr: SocketAddr, timeout: Duration) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nUser-Agent: healthcheck\r\n\r\n"
        )?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        // "HTTP/1.1 200"
        Ok(&head[8..] == b" 200")
    };
    attempt().unwrap_or(false)
}
