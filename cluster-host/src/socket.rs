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
//!   drops its own frames by sid) receive every datagram; on Linux a socket filter
//!   ([`drop_own_echoes`]) lets the kernel drop the node's own frames instead, once the node
//!   (and so its sid) exists;
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
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

/// A borrowed view of an adapter's socket with every socket option
/// ([`Io::multicast_socket`](crate::Io::multicast_socket)).
pub use socket2::SockRef;

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
    /// Every interface chosen by the options, followed while the node runs
    /// ([`crate::multicast::Membership`] knows which).
    Following,
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
    let socket = bound_multicast_socket(port, remote)?;
    let ttl = u32::from(remote);
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

/// The multicast socket before any group is joined (blocking; see the module docs): bound
/// to `0.0.0.0:port` with `SO_REUSEADDR` and `SO_REUSEPORT`, TTL 0 or (`remote`) 1,
/// multicast loopback on. [`crate::multicast::Membership`] joins it on each interface.
///
/// # Errors
///
/// Any error of `socket`, `setsockopt` or `bind`, with the step named.
pub fn bound_multicast_socket(port: u16, remote: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(SockProtocol::UDP))
        .map_err(|e| step("create the multicast socket", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| step("set SO_REUSEADDR", e))?;
    // Unix systems share a UDP port between sockets only with SO_REUSEPORT (the reference
    // sets it); Windows has no such option, and SO_REUSEADDR alone shares the port there.
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
    Ok(socket)
}

/// The IPv6 multicast socket, before any group is joined (blocking): IPv6 only, bound to
/// `[::]:port` with `SO_REUSEADDR` and `SO_REUSEPORT`, hop limit 0 or (`remote`) 1,
/// multicast loopback on. It carries the same frames as the IPv4 socket
/// ([`crate::multicast`]).
///
/// # Errors
///
/// Any error of `socket`, `setsockopt` or `bind` (a host with IPv6 turned off fails here).
pub fn bound_multicast_socket_v6(port: u16, remote: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(SockProtocol::UDP))
        .map_err(|e| step("create the IPv6 multicast socket", e))?;
    socket
        .set_only_v6(true)
        .map_err(|e| step("set IPV6_V6ONLY", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| step("set SO_REUSEADDR", e))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(|e| step("set SO_REUSEPORT", e))?;
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let bind = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
    socket
        .bind(&bind.into())
        .map_err(|e| step(&format!("bind {bind}"), e))?;
    socket
        .set_multicast_hops_v6(u32::from(remote))
        .map_err(|e| step("set IPV6_MULTICAST_HOPS", e))?;
    socket
        .set_multicast_loop_v6(true)
        .map_err(|e| step("set IPV6_MULTICAST_LOOP", e))?;
    Ok(socket)
}

/// Asks the kernel to drop this node's own multicast echoes before they reach the socket
/// (Linux; elsewhere it does nothing and says so).
///
/// Multicast loopback stays on (spec 1.1): the other nodes of the host receive every
/// datagram. The node would drop its own frames by sid anyway (spec 2.4, own sid early
/// stop); with this socket filter the kernel drops them instead, so a node's own sends no
/// longer wake it, cost it a read each, nor fill its receive buffer. The filter drops a
/// datagram only when it holds exactly one whole frame of the layout our encoder writes
/// (`C0 8D`, a one- or two-byte body length matching the datagram's size, `00 00` at the
/// end) whose first field is `sid` and equals `sid`: exactly frames the node would ignore.
/// Anything else passes: frames whose first field is `filter`, datagrams holding part of a
/// frame or several frames, and every other sender's frames.
///
/// # Errors
///
/// The filter could not be attached ([`io::ErrorKind::Unsupported`] off Linux, or when
/// `sid` is not 8 bytes long as ours are); the node still drops its echoes itself.
pub fn drop_own_echoes(socket: &UdpSocket, sid: &[u8]) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let program = echo_filter::program(sid).ok_or(io::ErrorKind::Unsupported)?;
        SockRef::from(socket)
            .attach_filter(&program)
            .map_err(|e| step("attach the own-echo filter", e))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (socket, sid);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The classic BPF program of [`drop_own_echoes`]. A socket filter on a UDP socket sees the
/// datagram from its UDP header on, and returns how many bytes to keep: 0 drops it.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod echo_filter {
    use socket2::SockFilter;

    // Classes, sizes, modes and operations of classic BPF (`linux/filter.h`).
    const LD: u16 = 0x00;
    const LDX: u16 = 0x01;
    const ST: u16 = 0x02;
    const ALU: u16 = 0x04;
    const JMP: u16 = 0x05;
    const RET: u16 = 0x06;
    const MISC: u16 = 0x07;
    const W: u16 = 0x00;
    const H: u16 = 0x08;
    const B: u16 = 0x10;
    const IMM: u16 = 0x00;
    const ABS: u16 = 0x20;
    const IND: u16 = 0x40;
    const MEM: u16 = 0x60;
    const LEN: u16 = 0x80;
    const ADD: u16 = 0x00;
    const SUB: u16 = 0x10;
    const AND: u16 = 0x50;
    const LSH: u16 = 0x60;
    const JA: u16 = 0x00;
    const JEQ: u16 = 0x10;
    const JSET: u16 = 0x40;
    const K: u16 = 0x00;
    const X: u16 = 0x08;
    const TAX: u16 = 0x00;

    /// The UDP header, before the datagram's bytes.
    const UDP: u32 = 8;

    /// Where a jump goes.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum To {
        Next,
        TwoLengthBytes,
        Check,
        Drop,
        Accept,
    }

    /// An instruction, a conditional jump (taken, not taken), an unconditional one, or a
    /// place jumps go to.
    enum Item {
        Op(u16, u32),
        Jump(u16, u32, To, To),
        Goto(To),
        Here(To),
    }
    use Item::{Goto, Here, Jump, Op};

    /// The program for our `sid`, or `None` unless it is 8 bytes long.
    pub(super) fn program(sid: &[u8]) -> Option<Vec<SockFilter>> {
        let sid: [u8; 8] = sid.try_into().ok()?;
        let [a, b, c, d, e, f, g, h] = sid;
        let (first, second) = (
            u32::from_be_bytes([a, b, c, d]),
            u32::from_be_bytes([e, f, g, h]),
        );
        let items = [
            // The header `C0 8D`.
            Op(LD | B | ABS, UDP),
            Jump(JMP | JEQ | K, 0xC0, To::Next, To::Accept),
            Op(LD | B | ABS, UDP + 1),
            Jump(JMP | JEQ | K, 0x8D, To::Next, To::Accept),
            // The body length L, a varint of one byte: M[0] = L, A = where the fields start.
            Op(LD | B | ABS, UDP + 2),
            Jump(JMP | JSET | K, 0x80, To::TwoLengthBytes, To::Next),
            Op(ST, 0),
            Op(LD | IMM, UDP + 3),
            Goto(To::Check),
            // Or of two bytes (a longer one cannot fit in a datagram of ours).
            Here(To::TwoLengthBytes),
            Op(ALU | AND | K, 0x7F),
            Op(ST, 0),
            Op(LD | B | ABS, UDP + 3),
            Jump(JMP | JSET | K, 0x80, To::Accept, To::Next),
            Op(ALU | LSH | K, 7),
            Op(LDX | MEM, 0),
            Op(ALU | ADD | X, 0),
            Op(ST, 0),
            Op(LD | IMM, UDP + 4),
            // M[1] = where the fields start.
            Here(To::Check),
            Op(ST, 1),
            // The datagram is exactly one frame: its length is fields' start + L + footer.
            Op(LDX | MEM, 0),
            Op(ALU | ADD | X, 0),
            Op(ALU | ADD | K, 2),
            Op(MISC | TAX, 0),
            Op(LD | W | LEN, 0),
            Jump(JMP | JEQ | X, 0, To::Next, To::Accept),
            // It ends with the footer `00 00`.
            Op(ALU | SUB | K, 2),
            Op(MISC | TAX, 0),
            Op(LD | H | IND, 0),
            Jump(JMP | JEQ | K, 0, To::Next, To::Accept),
            // Its first field is `sid` (id 4), 8 bytes long, and ours.
            Op(LDX | MEM, 1),
            Op(LD | B | IND, 0),
            Jump(JMP | JEQ | K, 4, To::Next, To::Accept),
            Op(LD | B | IND, 1),
            Jump(JMP | JEQ | K, 8, To::Next, To::Accept),
            Op(LD | W | IND, 2),
            Jump(JMP | JEQ | K, first, To::Next, To::Accept),
            Op(LD | W | IND, 6),
            Jump(JMP | JEQ | K, second, To::Drop, To::Accept),
            Here(To::Drop),
            Op(RET | K, 0),
            Here(To::Accept),
            Op(RET | K, u32::MAX),
        ];
        assemble(&items)
    }

    /// Lays the program out: jumps become forward offsets.
    fn assemble(items: &[Item]) -> Option<Vec<SockFilter>> {
        let mut places = Vec::new();
        let mut count = 0usize;
        for item in items {
            match item {
                Here(place) => places.push((*place, count)),
                _ => count += 1,
            }
        }
        let offset = |from: usize, to: To| -> Option<usize> {
            if to == To::Next {
                return Some(0);
            }
            let (_, at) = places.iter().find(|(place, _)| *place == to)?;
            at.checked_sub(from + 1)
        };
        let mut program = Vec::with_capacity(count);
        for item in items {
            let index = program.len();
            match *item {
                Here(_) => {}
                Op(code, k) => program.push(SockFilter::new(code, 0, 0, k)),
                Goto(to) => {
                    let k = u32::try_from(offset(index, to)?).ok()?;
                    program.push(SockFilter::new(JMP | JA, 0, 0, k));
                }
                Jump(code, k, yes, no) => {
                    let yes = u8::try_from(offset(index, yes)?).ok()?;
                    let no = u8::try_from(offset(index, no)?).ok()?;
                    program.push(SockFilter::new(code, yes, no, k));
                }
            }
        }
        Some(program)
    }
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
    tcp_listener_on(0)
}

/// As [`tcp_listener`], on `port` (0: an ephemeral one). A fixed port is what seeds name
/// (`Options::tcp_port`); it is bound with `SO_REUSEADDR` so a restarted node gets it back.
///
/// # Errors
///
/// The IPv4 fallback's error when both fail.
pub fn tcp_listener_on(port: u16) -> io::Result<TcpListener> {
    let listener = dual_stack_listener(port).or_else(|_| {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(SockProtocol::TCP))?;
        socket.set_reuse_address(port != 0)?;
        socket.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
        socket.listen(128)?;
        Ok::<_, io::Error>(TcpListener::from(socket))
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn dual_stack_listener(port: u16) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(SockProtocol::TCP))?;
    socket.set_only_v6(false)?;
    socket.set_reuse_address(port != 0)?;
    socket.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())?;
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

/// The read buffer an adapter receives datagrams into: the largest UDP payload, so that
/// nothing is truncated (spec 7.4: no truncation at 4096).
pub const DATAGRAM_BUFFER: usize = 65_535;

/// An adapter's `u` listener, in its runtime's type `L`, and the socket file's path. The
/// file is removed by [`remove`](Self::remove) (the node left) or when this is dropped (a
/// driver dropped without leaving, as in a crash).
#[cfg(unix)]
#[derive(Debug)]
pub struct UnixSocket<L> {
    inner: Option<(L, PathBuf)>,
}

#[cfg(unix)]
impl<L> UnixSocket<L> {
    /// Wraps the listener of a join (`None`: `u` is off) with the runtime's `wrap`.
    ///
    /// # Errors
    ///
    /// `wrap`'s: the file is removed.
    pub fn new(
        socket: Option<(UnixListener, PathBuf)>,
        wrap: impl FnOnce(UnixListener) -> io::Result<L>,
    ) -> io::Result<Self> {
        let Some((listener, path)) = socket else {
            return Ok(Self { inner: None });
        };
        match wrap(listener) {
            Ok(listener) => Ok(Self {
                inner: Some((listener, path)),
            }),
            Err(error) => {
                drop(remove_unix_socket(&path));
                Err(error)
            }
        }
    }

    /// The listener, unless `u` is off or the socket was removed.
    #[must_use]
    pub fn listener(&self) -> Option<&L> {
        self.inner.as_ref().map(|(listener, _)| listener)
    }

    /// Re-creates the listener at its path (a peer reported our `u` as failing).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotFound`] when there is no listener; else binding or `wrap`
    /// failed, and there is no listener any more.
    pub fn reopen(&mut self, wrap: impl FnOnce(UnixListener) -> io::Result<L>) -> io::Result<()> {
        let Some((old, path)) = self.inner.take() else {
            return Err(io::ErrorKind::NotFound.into());
        };
        drop(old);
        drop(remove_unix_socket(&path));
        let listener = unix_listener(&path).and_then(wrap)?;
        self.inner = Some((listener, path));
        Ok(())
    }

    /// Closes the listener and removes the socket file.
    pub fn remove(&mut self) {
        if let Some((listener, path)) = self.inner.take() {
            drop(listener);
            drop(remove_unix_socket(&path));
        }
    }
}

#[cfg(unix)]
impl<L> Drop for UnixSocket<L> {
    fn drop(&mut self) {
        self.remove();
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

    /// A frame as our encoder writes it: `filter` (when given) first, then `sid`.
    fn frame(sid: &str, data: &str, filter: Option<&str>) -> Vec<u8> {
        use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
        let named = filter.map(|who| [who]);
        let filter = named.as_ref().map(|who| List::from_items(who));
        let message = Message {
            kind: Some(MessageKind::Event),
            channel: Some(0),
            hid: Some(Str::from("02:00:00:00:00:01")),
            sid: Some(Str::from(sid)),
            data: Some(Str::from(data)),
            filter,
            ..Message::default()
        };
        let mut out = vec![0u8; 8192];
        let n = message
            .encode(FilterPlacement::First, &mut out)
            .expect("encode");
        out.truncate(n);
        out
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_kernel_drops_our_own_whole_frames_and_passes_everything_else() {
        let receiver = UdpSocket::bind("127.0.0.1:0").expect("bind");
        drop_own_echoes(&receiver, b"ownSid01").expect("attach");
        let to = receiver.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let short = frame("ownSid01", "x", None);
        let long = frame("ownSid01", &"y".repeat(300), None);
        assert!(
            short[2] < 0x80 && long[2] >= 0x80,
            "one and two length bytes"
        );
        let foreign = frame("another1", "x", None);
        let mut two_frames = short.clone();
        two_frames.extend_from_slice(&foreign);
        let filtered = frame("ownSid01", "x", Some("someone"));
        let mut bad_footer = short.clone();
        *bad_footer.last_mut().unwrap() = 1;
        let passing: [&[u8]; 6] = [
            &foreign,
            &two_frames,
            &long[..200], // the first chunk of a longer frame
            &filtered,
            &bad_footer,
            b"not a frame",
        ];
        for bytes in [&short[..], &long[..]] {
            sender.send_to(bytes, to).expect("send");
        }
        for bytes in passing {
            sender.send_to(bytes, to).expect("send");
        }
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        for expected in passing {
            let n = receiver.recv(&mut buf).expect("receive");
            assert_eq!(&buf[..n], expected);
        }
        assert!(drop_own_echoes(&receiver, b"short").is_err());
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
