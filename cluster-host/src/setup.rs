//! Everything a join needs before the runtime takes over: the hid, the sockets and the node.

use std::io;
use std::net::{SocketAddrV4, TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
#[cfg(unix)]
use std::path::PathBuf;

use cluster_core::{Instant, Policy, Protocol};

use crate::HostNode;
use crate::addrs::LocalAddrs;
use crate::error::JoinError;
use crate::hid::host_hid;
use crate::multicast::Membership;
use crate::options::Options;
#[cfg(unix)]
use crate::options::{OptionsError, unix_socket_path};
use crate::seed::os_seed;
use crate::socket::{self, MulticastInterface, MulticastSetup};
use socket2::SockRef;

/// Stack of the thread that builds a [`HostNode`]: the node is built by value before it is
/// boxed, and debug builds copy it a few times.
const BUILD_STACK: usize = 32 << 20;

/// A joined node and its open sockets, all non-blocking, at time zero of the adapter's clock.
#[derive(Debug)]
pub struct Setup<P: Policy> {
    /// The node, with its TCP port and unix path already set (they ride the join frames).
    pub node: Box<HostNode<P>>,
    /// The multicast socket.
    pub udp: UdpSocket,
    /// How it was set up.
    pub multicast: MulticastSetup,
    /// The IPv6 multicast socket, when IPv6 is used ([`crate::multicast`]).
    pub udp6: Option<UdpSocket>,
    /// The interfaces it joined the group on.
    pub membership: Membership,
    /// The `t` listener, when `t` runs.
    pub tcp: Option<TcpListener>,
    /// The `u` listener and its path, when `u` runs.
    #[cfg(unix)]
    pub unix: Option<(UnixListener, PathBuf)>,
    /// The host's addresses, read at time zero.
    pub addrs: LocalAddrs,
    /// The options joined with.
    pub options: Options,
}

/// Validates `options`, finds the hid, opens the sockets and builds the node (spec 5.3: the
/// join heartbeat and discovery are queued, carrying the TCP port and unix path).
///
/// Blocks for as long as it takes to spawn and join one thread (the node is built on a
/// thread with a large stack).
///
/// # Errors
///
/// [`JoinError`]; nothing is left open.
pub fn setup<P: Policy + Send + 'static>(
    options: Options,
    policy: P,
) -> Result<Setup<P>, JoinError> {
    options.validate()?;
    let hid = match &options.hid {
        Some(hid) => hid.clone(),
        None => host_hid()?,
    };
    let (udp, udp6, multicast, membership) =
        open_multicast(&options).map_err(|source| JoinError::Io {
            what: "multicast socket",
            source,
        })?;
    let runs = |p| options.config.protocols.contains(p);
    let tcp = if runs(Protocol::Tcp) {
        Some(
            socket::tcp_listener_on(options.tcp_port.unwrap_or(0)).map_err(|source| {
                JoinError::Io {
                    what: "TCP listener",
                    source,
                }
            })?,
        )
    } else {
        None
    };
    let mut node = build_node(&options, hid, policy)?;
    // Before the first transmit, so that the join frames are sealed too.
    #[cfg(feature = "seal")]
    node.set_keys(options.keys.clone());
    let zero = Instant::ZERO;
    if let Some(listener) = &tcp {
        let port = listener.local_addr().map_err(|source| JoinError::Io {
            what: "TCP listener",
            source,
        })?;
        node.set_tcp_port(zero, Some(port.port()));
    }
    #[cfg(unix)]
    let unix = match (&options.unix_path, runs(Protocol::Unix)) {
        (Some(base), true) => {
            let sid = String::from_utf8_lossy(node.sid().as_bytes()).into_owned();
            let path = unix_socket_path(base, &sid);
            let listener = socket::unix_listener(&path).map_err(|source| JoinError::Io {
                what: "unix listener",
                source,
            })?;
            let text = path.to_str().unwrap_or_default();
            if !node.set_unix_path(zero, Some(text)) {
                let _ = socket::remove_unix_socket(&path);
                return Err(OptionsError::BadUnixPath(path).into());
            }
            Some((listener, path))
        }
        _ => None,
    };
    // The node ignores its own multicast echoes (spec 2.4); where the kernel can drop them
    // first, they never wake the driver. Without the filter nothing changes but the cost.
    let _ = socket::drop_own_echoes(&udp, node.sid().as_bytes());
    if let Some(udp6) = &udp6 {
        let _ = socket::drop_own_echoes(udp6, node.sid().as_bytes());
    }
    let addrs = LocalAddrs::new(options.addrs_refresh, 0);
    Ok(Setup {
        node,
        udp,
        multicast,
        udp6,
        membership,
        tcp,
        #[cfg(unix)]
        unix,
        addrs,
        options,
    })
}

/// Opens the multicast socket and joins the group on the interfaces `options` choose (see
/// [`crate::multicast`]). Chosen interfaces of which none exists are an error
/// ([`io::ErrorKind::NotFound`]).
fn open_multicast(options: &Options) -> io::Result<Multicast> {
    if !Membership::follows(options) {
        let (udp, setup) =
            socket::multicast_socket(options.group, options.port, options.config.remote, None)?;
        let membership = Membership::fixed(options.group, &setup);
        return Ok((udp, None, setup, membership));
    }
    let socket = socket::bound_multicast_socket(options.port, options.config.remote)?;
    // A host with IPv6 turned off cannot open it: IPv4 only then.
    let socket_v6 = options
        .group_v6
        .and_then(|_| socket::bound_multicast_socket_v6(options.port, options.config.remote).ok());
    // Linux delivers a group's datagrams to every socket bound to the port once any socket
    // of the host joined the group on the interface they came in on; with this off, only
    // the interfaces this node chose are heard (`IP_MULTICAST_ALL`, Linux only: other
    // systems deliver by this socket's own memberships already).
    #[cfg(target_os = "linux")]
    {
        let _ = socket.set_multicast_all_v4(false);
        if let Some(socket_v6) = &socket_v6 {
            let _ = socket_v6.set_multicast_all_v6(false);
        }
    }
    let mut membership = Membership::following(options);
    let reports = crate::arrival::enable(&socket, false).is_ok()
        && socket_v6
            .as_ref()
            .is_none_or(|s| crate::arrival::enable(s, true).is_ok());
    membership.set_reports_arrival(reports);
    // The first read is now: the next one is one poll period later.
    let _ = membership.poll(
        0,
        Some(SockRef::from(&socket)),
        socket_v6.as_ref().map(SockRef::from),
    );
    if membership.routes().is_empty() && membership.routes_v6().is_empty() {
        let chosen: Vec<String> = options.interfaces.iter().map(ToString::to_string).collect();
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no interface to join {} on: none matches {}",
                options.group,
                chosen.join(", ")
            ),
        ));
    }
    socket.set_nonblocking(true)?;
    let udp6 = match socket_v6 {
        Some(socket) => {
            socket.set_nonblocking(true)?;
            Some(socket.into())
        }
        None => None,
    };
    let setup = MulticastSetup {
        destination: SocketAddrV4::new(options.group, options.port),
        interface: MulticastInterface::Following,
        ttl: u32::from(options.config.remote),
    };
    Ok((socket.into(), udp6, setup, membership))
}

/// The multicast sockets (IPv4, and IPv6 when used), how the first was set up, and the
/// interfaces joined.
type Multicast = (UdpSocket, Option<UdpSocket>, MulticastSetup, Membership);

/// Builds the node on a thread with a large stack and boxes it.
fn build_node<P: Policy + Send + 'static>(
    options: &Options,
    hid: String,
    policy: P,
) -> Result<Box<HostNode<P>>, JoinError> {
    let config = options.config.clone();
    let seed = os_seed();
    let spawned = std::thread::Builder::new()
        .name("cluster-node-build".into())
        .stack_size(BUILD_STACK)
        .spawn(move || HostNode::new(config, &hid, policy, seed, Instant::ZERO).map(Box::new))
        .map_err(|source| JoinError::Io {
            what: "node build thread",
            source,
        })?;
    match spawned.join() {
        Ok(node) => Ok(node?),
        // A panic in `Node::new` is a bug of the core: pass it on unchanged.
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
