//! Socket set-up: the multicast socket of `c`, the TCP listener of `t` and the unix listener
//! of `u`. Every socket is returned as a non-blocking std socket, ready to be registered with
//! any runtime (`tokio::net::UdpSocket::from_std`, `async_io::Async::new`).
//!
//! # The multicast socket (spec 1.1, 8.3)
//!
//! * bound to `0.0.0.0:<port>` with `SO_REUSEADDR` **and `SO_REUSEPORT`**: the reference sets
//!   `SO_REUSEPORT`, and a socket without it cannot bind next to a reference node;
//! * multicast TTL 0 in local mode (the datagrams never leave the host) and 1 with `remote`;
//! * multicast loopback on, so that the other nodes of the host (and the node itself, which
//!   drops its own frames by sid) receive every datagram;
//! * the same socket sends and receives, so datagrams leave with source port = the port.
//!
//! **Which interface.** With no interface configured the group is joined on the default
//! interface (`INADDR_ANY`), exactly as the reference does: a reference node on the same
//! host then receives our datagrams, and they leave with the address of the interface the
//! multicast route points at as their source, which is one of the host's addresses (the
//! reference drops frames from `0.0.0.0` in local mode). A host whose only interface is
//! loopback has no route for `224.0.0.0/4`: joining on `INADDR_ANY` fails there with
//! `ENODEV` (the reference's "No such device") and sending fails with `ENETUNREACH`. That
//! case is detected before joining, by asking the kernel for the route: a UDP socket is
//! connected to `group:port` (no packet is sent) and its local address read. No route, or a
//! route without a source address (datagrams would leave from `0.0.0.0`), selects the
//! loopback fallback: the group is joined on `127.0.0.1` and `IP_MULTICAST_IF` is set to
//! `127.0.0.1`, so datagrams travel on `lo` with source `127.0.0.1`. An `ENODEV` from the
//! join itself also selects the fallback. [`MulticastSetup::interface`] says what was chosen.
//!
//! Giving an interface address ([`Options::interface`](crate::Options)) joins and sends on
//! that interface; tests use `127.0.0.1` so that their traffic stays on `lo`.

use std::io;
use std::net::{
    Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, UdpSocket,
};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::Path;

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

/// `ENODEV` on Linux: joining a group with no route for it.
const ENODEV: i32 = 19;

/// Receive buffer asked for on the multicast socket, for bursts of frames.
const RECV_BUFFER: usize = 1 << 20;

/// The interface the multicast socket joined the group on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MulticastInterface {
    /// The default interface (`INADDR_ANY`), as the reference; datagrams leave from `source`
    /// (the kernel's choice for the multicast route, when it could be read).
    Default {
        /// The source address of our datagrams.
        source: Option<Ipv4Addr>,
    },
    /// The loopback fallback: no multicast route, so `127.0.0.1` joins and sends.
    LoopbackFallback,
    /// The configured interface address joins and sends.
    Configured(Ipv4Addr),
}

/// How the multicast socket was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MulticastSetup {
    /// Where datagrams are sent: the group and port.
    pub destination: SocketAddrV4,
    /// The interface that joined the group.
    pub interface: MulticastInterface,
    /// The multicast TTL: 0 local, 1 remote.
    pub ttl: u32,
}

/// Opens the multicast socket of protocol `c` (see the module docs).
///
/// # Errors
///
/// Any error of `socket`, `setsockopt`, `bind` or the group join, with the step named.
pub fn multicast_socket(
    group: Ipv4Addr,
    port: u16,
    remote: bool,
    interface: Option<Ipv4Addr>,
) -> io::Result<(UdpSocket, MulticastSetup)> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(SockProtocol::UDP))
        .map_err(|e| step("create the multicast socket", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| step("set SO_REUSEADDR", e))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(|e| step("set SO_REUSEPORT", e))?;
    // A bigger buffer is a wish, not a need.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let bind = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    socket
        .bind(&bind.into())
        .map_err(|e| step(&format!("bind {bind}"), e))?;
    let ttl = u32::from(remote);
    socket
        .set_multicast_ttl_v4(ttl)
        .map_err(|e| step("set IP_MULTICAST_TTL", e))?;
    socket
        .set_multicast_loop_v4(true)
        .map_err(|e| step("set IP_MULTICAST_LOOP", e))?;
    let chosen = match interface {
        Some(address) => {
            join_on(&socket, group, address)?;
            MulticastInterface::Configured(address)
        }
        None => match default_route_source(group, port) {
            Some(source) => match socket.join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED) {
                Ok(()) => MulticastInterface::Default {
                    source: Some(source),
                },
                Err(e) if e.raw_os_error() == Some(ENODEV) => {
                    join_on(&socket, group, Ipv4Addr::LOCALHOST)?;
                    MulticastInterface::LoopbackFallback
                }
                Err(e) => return Err(step(&format!("join {group} on the default interface"), e)),
            },
            None => {
                join_on(&socket, group, Ipv4Addr::LOCALHOST)?;
                MulticastInterface::LoopbackFallback
            }
        },
    };
    socket
        .set_nonblocking(true)
        .map_err(|e| step("set O_NONBLOCK", e))?;
    let setup = MulticastSetup {
        destination: SocketAddrV4::new(group, port),
        interface: chosen,
        ttl,
    };
    Ok((socket.into(), setup))
}

/// Joins `group` on the interface of `address` and sends from it.
fn join_on(socket: &Socket, group: Ipv4Addr, address: Ipv4Addr) -> io::Result<()> {
    socket
        .join_multicast_v4(&group, &address)
        .map_err(|e| step(&format!("join {group} on {address}"), e))?;
    socket
        .set_multicast_if_v4(&address)
        .map_err(|e| step(&format!("set IP_MULTICAST_IF {address}"), e))
}

/// The source address the kernel would give a datagram to `group:port`, when there is a
/// route for it and that route has a source address. Connecting a UDP socket sends nothing.
#[must_use]
pub fn default_route_source(group: Ipv4Addr, port: u16) -> Option<Ipv4Addr> {
    let probe = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    probe.connect(SocketAddrV4::new(group, port)).ok()?;
    match probe.local_addr().ok()? {
        SocketAddr::V4(local) if !local.ip().is_unspecified() => Some(*local.ip()),
        _ => None,
    }
}

/// Opens the TCP listener of protocol `t` on an ephemeral port, on every interface, IPv6 and
/// IPv4 (a dual-stack socket, as the reference listens), or IPv4 only where IPv6 is off.
///
/// # Errors
///
/// The IPv4 fallback's error when both fail.
pub fn tcp_listener() -> io::Result<TcpListener> {
    let listener = dual_stack_listener().or_else(|_| {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(SockProtocol::TCP))?;
        socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0).into())?;
        socket.listen(128)?;
        Ok::<_, io::Error>(TcpListener::from(socket))
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn dual_stack_listener() -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(SockProtocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0).into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// A peer address as the node should see it: IPv4-mapped IPv6 (from the dual-stack
/// listener) becomes IPv4.
#[must_use]
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Opens the unix listener of protocol `u` at `path`, replacing a stale socket file left
/// there (the path carries this node's fresh sid, so nothing live can own it).
///
/// # Errors
///
/// Removing the stale file or binding failed.
#[cfg(unix)]
pub fn unix_listener(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && meta.file_type().is_socket()
    {
        std::fs::remove_file(path)?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| step(&format!("bind {}", path.display()), e))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Removes this node's unix socket file; a missing file is fine.
///
/// # Errors
///
/// Any other error of `remove_file`.
#[cfg(unix)]
pub fn remove_unix_socket(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Names the step that failed in the error's text.
fn step(what: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{what}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_multicast_sockets_share_a_port_and_hear_each_other_on_loopback() {
        let port = 23_999 - (std::process::id() % 2000) as u16;
        let lo = Some(Ipv4Addr::LOCALHOST);
        let (a, setup) = multicast_socket(Ipv4Addr::new(230, 230, 230, 230), port, false, lo)
            .expect("first socket");
        let (b, _) = multicast_socket(Ipv4Addr::new(230, 230, 230, 230), port, false, lo)
            .expect("second socket binds next to the first (SO_REUSEPORT)");
        assert_eq!(setup.ttl, 0);
        assert_eq!(
            setup.interface,
            MulticastInterface::Configured(Ipv4Addr::LOCALHOST)
        );
        a.send_to(b"hello", setup.destination).expect("send");
        b.set_nonblocking(false).unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = b.recv_from(&mut buf).expect("receive");
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(from.port(), port, "datagrams leave from the bound port");
    }

    #[test]
    fn the_tcp_listener_takes_an_ephemeral_port_and_peers_look_like_ipv4() {
        let listener = tcp_listener().expect("listener");
        let port = listener.local_addr().unwrap().port();
        assert_ne!(port, 0);
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        listener.set_nonblocking(false).unwrap();
        let (_, peer) = listener.accept().expect("accept");
        assert_eq!(
            canonical(peer).ip(),
            std::net::IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
    }

    #[test]
    fn a_stale_unix_socket_is_replaced_and_removed() {
        let dir = std::env::temp_dir().join(format!("cluster-host-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n-abc.sock");
        let first = unix_listener(&path).expect("bind");
        drop(first);
        let _second = unix_listener(&path).expect("rebind over the stale file");
        remove_unix_socket(&path).unwrap();
        assert!(!path.exists());
        remove_unix_socket(&path).expect("removing twice is fine");
        let _ = std::fs::remove_dir(&dir);
    }
}
