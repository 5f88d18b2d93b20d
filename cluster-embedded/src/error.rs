//! Why a [`Driver`](crate::Driver) could not be set up.

use core::fmt;

use smoltcp::iface::MulticastError;
use smoltcp::socket::udp::BindError;

/// Why [`Driver::new`](crate::Driver::new) refused to start. Nothing was sent; the interface
/// and the socket are left as they were, except where a variant says otherwise.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The node is in local mode (`Config::remote` is false). A firmware node is alone on its
    /// host, so the local-only rule would drop every peer's frame, and smoltcp cannot send
    /// with the multicast TTL 0 that local mode requires: build the node with
    /// `remote = true` (see [`firmware_config`](crate::firmware_config)).
    LocalMode,
    /// The node runs a protocol other than `c` (multicast). The driver has no TCP or
    /// unix-socket transport, so advertising `t` or `u` would send peers to a listener that
    /// does not exist: configure the protocols `c` only (see
    /// [`firmware_config`](crate::firmware_config)).
    UnsupportedProtocol,
    /// The node has already left the cluster.
    Left,
    /// The UDP socket's transmit buffer holds fewer bytes than the driver's `TX` (or no
    /// datagram at all): the node writes each frame into `TX` bytes reserved there, so a
    /// smaller buffer could never take one. Nothing was changed.
    SocketTooSmall,
    /// The UDP socket could not be bound to the cluster port (it is already bound, or the
    /// port is 0).
    Bind(BindError),
    /// The interface could not join the multicast group (its group table is full, or the
    /// address is not a multicast address). The socket is bound.
    Join(MulticastError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocalMode => {
                f.write_str("the node is in local mode; firmware nodes need remote mode")
            }
            Self::UnsupportedProtocol => {
                f.write_str("the node advertises a protocol other than c (multicast)")
            }
            Self::Left => f.write_str("the node has left the cluster"),
            Self::SocketTooSmall => {
                f.write_str("the UDP socket's transmit buffer is smaller than the driver's TX")
            }
            Self::Bind(e) => write!(f, "cannot bind the cluster port: {e}"),
            Self::Join(e) => write!(f, "cannot join the multicast group: {e}"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Self::LocalMode => defmt::write!(f, "LocalMode"),
            Self::UnsupportedProtocol => defmt::write!(f, "UnsupportedProtocol"),
            Self::Left => defmt::write!(f, "Left"),
            Self::SocketTooSmall => defmt::write!(f, "SocketTooSmall"),
            Self::Bind(e) => defmt::write!(f, "Bind({})", e),
            Self::Join(e) => defmt::write!(f, "Join({})", e),
        }
    }
}
