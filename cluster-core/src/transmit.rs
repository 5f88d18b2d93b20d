//! What the adapter tells the node about received bytes ([`Source`]) and what the node asks
//! the adapter to send ([`Transmit`]).

use core::net::{IpAddr, SocketAddr};

use crate::identity::Sid;
use crate::protocol::Protocol;

pub use crate::protocol::ConnId;

/// Where received bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    /// The protocol they arrived on.
    pub via: Protocol,
    /// The sender's address: the datagram's source for `c`, the peer for `t`; `None` for `u`.
    pub addr: Option<SocketAddr>,
    /// The connection, for `t` and `u`.
    pub conn: Option<ConnId>,
    /// Whether the sender is on this host: its address is one of the host's addresses
    /// (the adapter keeps that list, spec 7.2 Q14), or it came over `u`.
    pub local: bool,
}

impl Source {
    /// A multicast datagram from `addr`.
    #[must_use]
    pub const fn multicast(addr: SocketAddr, local: bool) -> Self {
        Self {
            via: Protocol::Multicast,
            addr: Some(addr),
            conn: None,
            local,
        }
    }

    /// Bytes read from TCP connection `conn` with peer `addr`.
    #[must_use]
    pub const fn tcp(conn: ConnId, addr: SocketAddr, local: bool) -> Self {
        Self {
            via: Protocol::Tcp,
            addr: Some(addr),
            conn: Some(conn),
            local,
        }
    }

    /// Bytes read from unix-socket connection `conn` (always local).
    #[must_use]
    pub const fn unix(conn: ConnId) -> Self {
        Self {
            via: Protocol::Unix,
            addr: None,
            conn: Some(conn),
            local: true,
        }
    }

    /// The sender's IP address, when known.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        self.addr.map(|a| a.ip())
    }
}

/// A token for one direct send whose outcome the adapter reports with
/// [`Node::transport_ok`](crate::Node::transport_ok) or
/// [`Node::transport_failed`](crate::Node::transport_failed).
///
/// A token rather than `(sid, protocol)`, so that two sends in flight to the same service
/// over the same protocol can never be confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendId(pub(crate) u32);

impl SendId {
    /// A write no node asked for (an adapter's own frames, such as membership frames): a
    /// node never hands it out, and its outcome is not reported to the node.
    pub const UNTRACKED: Self = Self(u32::MAX);
}

/// Where the service behind a direct send listens, as it advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Nothing advertised (multicast, or a protocol whose props are unknown).
    None,
    /// `t {port N}` at the service's address.
    Tcp(SocketAddr),
    /// `u {path P}`.
    Unix(crate::service::UnixPath),
}

/// The destination of a [`Transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The multicast group and port. No outcome is reported unless `send` is set.
    Group {
        /// Set when this multicast frame is one step of a direct send (the multicast
        /// fallback): report its outcome.
        send: Option<SendId>,
    },
    /// One service over a stream protocol.
    Service {
        /// The service.
        sid: Sid,
        /// `t` or `u`.
        via: Protocol,
        /// The connection last seen from that service over `via`; reuse it when still open.
        conn: Option<ConnId>,
        /// Where to connect when there is no open connection.
        endpoint: Endpoint,
        /// Report the outcome of this send.
        send: SendId,
    },
}

impl Destination {
    /// The token to report, when the adapter owes an outcome.
    #[must_use]
    pub const fn send_id(&self) -> Option<SendId> {
        match self {
            Self::Group { send } => *send,
            Self::Service { send, .. } => Some(*send),
        }
    }
}

/// One frame to send, written at the start of the buffer given to
/// [`Node::poll_transmit`](crate::Node::poll_transmit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// Where it goes.
    pub dst: Destination,
    /// The frame's length in the buffer.
    pub len: usize,
    /// For [`Destination::Group`]: send `buf[..len]` as consecutive datagrams of at most this
    /// many bytes (4096, as the reference chunks, spec 2.6). Streams take the bytes whole.
    pub segment_size: usize,
}

impl Transmit {
    /// The datagrams (or the one stream write) to send, in order.
    pub fn segments<'b>(&self, buf: &'b [u8]) -> core::slice::Chunks<'b, u8> {
        let frame = buf.get(..self.len).unwrap_or(buf);
        frame.chunks(self.segment_size.max(1))
    }
}
