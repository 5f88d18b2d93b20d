//! Stream-connection bookkeeping for `t` and `u`, shared by the adapters: [`ConnId`]
//! allocation, the connection table and its bound, which connection carries a send to a
//! service (the newest, or the one it was last heard on), idle timeouts (spec 1.2, 7.2
//! Q10), and each connection's frame reassembly buffer.
//!
//! The table is generic over `W`, the adapter's handle to a connection (typically the
//! sender of the connection's write queue). Times are milliseconds on the adapter's clock.
//!
//! **Newest connection wins, or the one last heard on.** A service may be reachable over
//! several connections at once: the one it opened to us, the one we opened to it, a newer one
//! after it reconnected. A send to a service goes over the newest open connection known for
//! that service and protocol (ids grow, so the highest id is the newest); a node that
//! follows (of two nodes, the one with the smaller sid) sends over the connection it last
//! heard the service on instead, while that one is open, so that both use one connection
//! both ways ([`Transports::route`]). The others are *superseded*: not chosen while that
//! holds, and closed once idle for [`SUPERSEDED_IDLE`] rather than the full idle timeout.
//! They are not closed at once, because the peer may be writing on one of them at that very
//! moment (both sides open a connection when they discover each other at the same time), and
//! a close that races a write loses the write.
//!
//! **A bounded table.** It holds at most [`max_connections`](Transports::max_connections)
//! connections, accepted and outgoing together (opening ones included). The engine refuses a
//! new inbound connection while it is full, and makes room for an outgoing one by closing
//! the connection [`evictable`](Transports::evictable) names: one that no known service uses
//! (no service identified on it yet, or superseded), never one a known service's sends go
//! over.
//!
//! **Reassembly.** Each connection's bytes are cut into frames by a
//! [`Reassembler`] of [`STREAM_FRAME`] bytes, allocated only while a partial frame is
//! pending on that connection (see [`Conn::take_frames`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cluster_core::wire::Reassembler;
use cluster_core::{ConnId, Protocol, Sid, Source};

/// What an adapter counts about its transports (the node counts the rest, in
/// [`cluster_core::Stats`]). Every bound of the adapters has a counter here; the crate docs'
/// "Limits" table lists them. Counters only grow, except
/// [`connections_open`](Self::connections_open), the number open at the time of the
/// snapshot.
///
/// The field names are the keys of the `stats` JSON line ([`crate::json::stats_json`]) and
/// differ from every field name of [`cluster_core::Stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TransportStats {
    /// Multicast datagrams sent.
    pub datagrams_sent: u64,
    /// Multicast datagrams received (own echoes included).
    pub datagrams_received: u64,
    /// Multicast sends that failed (a copy on one interface counts once).
    pub datagrams_failed: u64,
    /// Copies of multicast datagrams sent on the IPv6 group ([`crate::multicast`]).
    pub datagrams_sent_v6: u64,
    /// Multicast datagrams received on the IPv6 group (also counted in
    /// `datagrams_received`).
    pub datagrams_received_v6: u64,
    /// Frames received on stream connections (`t` and `u`), each handed to the node.
    pub stream_frames_received: u64,
    /// Received datagrams dropped as copies of one already handed to the node: the same
    /// bytes from another address of the same sender within a moment (over the other
    /// family, or another interface).
    pub datagram_copies: u64,
    /// Outgoing stream connections attempted.
    pub connects: u64,
    /// Incoming stream connections accepted.
    pub accepts: u64,
    /// Direct sends written on a stream connection.
    pub writes_ok: u64,
    /// Direct sends that could not be written (refused, reset, timed out, queue full, no
    /// endpoint, no room for a connection): each was reported to the node as failed.
    pub writes_failed: u64,
    /// Direct sends a connection's write queue did not take (full, or the connection was
    /// closing); also counted in `writes_failed`.
    pub writes_refused: u64,
    /// Connections closed for idleness.
    pub idle_closes: u64,
    /// Stream connections open when the snapshot was taken (accepted and outgoing, opening
    /// ones included): at most [`Options::max_connections`](crate::Options::max_connections).
    pub connections_open: u64,
    /// Incoming connections closed at once because the connection table was full.
    pub connections_refused: u64,
    /// Connections closed to make room for an outgoing one while the table was full (only
    /// ones no known service used).
    pub connections_evicted: u64,
    /// Outgoing connections not opened because the table was full of connections known
    /// services use; the send failed over (also counted in `writes_failed`).
    pub connects_refused: u64,
    /// Frames dropped by a connection's reassembler because they would not fit its buffer of
    /// [`STREAM_FRAME`] bytes; the stream resyncs on the next header.
    pub stream_frames_oversized: u64,
    /// Bytes skipped on stream connections while looking for a frame: bytes before a
    /// header, and the header of every frame rejected (a bad footer, a declared length over
    /// [`cluster_core::Config::max_frame_len`], or an oversized frame).
    pub stream_garbage_bytes: u64,
    /// Complete frames on stream connections whose body failed to decode.
    pub stream_decode_errors: u64,
    /// Events that event subscribers missed because they fell more than the adapter's
    /// event buffer behind (each subscriber's misses, summed; each was told with
    /// `Event::Dropped`). Counted by the adapter's handle: always 0 in
    /// [`Engine::stats`](crate::Engine::stats).
    pub events_lagged: u64,
    /// Sends made with [`Handle::send_queued`](crate::Handle::send_queued) that the node
    /// refused (each published as `Event::SendFailed`).
    pub queued_sends_refused: u64,
}

/// The longest frame reassembled from the chunks of one stream connection (header to
/// footer): 64 KiB, far above the largest frame a hosted node accepts (payloads of
/// [`DATA`](crate::DATA) bytes, twice that once sealed). A longer frame is dropped as soon
/// as its declared length is read, and counted in
/// [`TransportStats::stream_frames_oversized`].
pub const STREAM_FRAME: usize = 64 * 1024;

/// The reassembly buffer of one connection.
pub type StreamFrames = Reassembler<STREAM_FRAME>;

/// Connections a node keeps open at most by default (accepted and outgoing together).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// A superseded connection is closed after this long without traffic.
pub const SUPERSEDED_IDLE: Duration = Duration::from_secs(10);

/// One open (or opening) stream connection.
#[derive(Debug)]
pub struct Conn<W> {
    /// `t` or `u`.
    pub protocol: Protocol,
    /// The peer's address (`t` only), IPv4-mapped addresses made IPv4.
    pub peer: Option<SocketAddr>,
    /// Whether the peer is on this host.
    pub local: bool,
    /// True when this node opened it.
    pub outgoing: bool,
    /// The service on the other end, once known.
    pub sid: Option<Sid>,
    /// Last frame sent or bytes received.
    pub last_active: u64,
    /// A newer connection to the same service exists.
    pub superseded: bool,
    /// The adapter's handle.
    pub writer: W,
    /// The partial frame read so far, while there is one.
    frames: Option<Box<StreamFrames>>,
}

impl<W> Conn<W> {
    /// The [`Source`] to give the node for bytes read from this connection.
    #[must_use]
    pub fn source(&self, id: ConnId) -> Source {
        match (self.protocol, self.peer) {
            (Protocol::Tcp, Some(peer)) => Source::tcp(id, peer, self.local),
            _ => Source::unix(id),
        }
    }

    /// Takes the connection's reassembly buffer, holding the partial frame read so far;
    /// `None` when no partial frame is pending (the caller then parses with a spare one).
    /// Give it back with [`put_frames`](Self::put_frames) while it holds a partial frame.
    pub fn take_frames(&mut self) -> Option<Box<StreamFrames>> {
        self.frames.take()
    }

    /// Bytes of a partial frame buffered for this connection (at most [`STREAM_FRAME`]).
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.frames.as_ref().map_or(0, |f| f.pending_len())
    }

    /// Keeps `frames`, which holds a partial frame of this connection.
    pub fn put_frames(&mut self, frames: Box<StreamFrames>) {
        self.frames = Some(frames);
    }
}

/// The connection table.
#[derive(Debug)]
pub struct Transports<W> {
    next: u32,
    conns: BTreeMap<ConnId, Conn<W>>,
    idle_ms: u64,
    superseded_ms: u64,
    max: usize,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<W> Transports<W> {
    /// An empty table whose connections close after `idle_timeout` without traffic, of at
    /// most [`DEFAULT_MAX_CONNECTIONS`] connections.
    #[must_use]
    pub fn new(idle_timeout: Duration) -> Self {
        let idle_ms = millis(idle_timeout);
        Self {
            next: 0,
            conns: BTreeMap::new(),
            idle_ms,
            superseded_ms: idle_ms.min(millis(SUPERSEDED_IDLE)),
            max: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The same table, holding at most `max` connections.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// The most connections the table holds.
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.max
    }

    /// True when it holds [`max_connections`](Self::max_connections): a new connection needs
    /// an old one closed first.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.conns.len() >= self.max
    }

    /// The connection to close to make room for an outgoing one, if any may be: of the
    /// connections no known service uses, the least recently active. Those are the ones on
    /// which no service was identified yet (the earliest first) and then superseded ones.
    /// A connection a known service's sends go over is never named.
    #[must_use]
    pub fn evictable(&self) -> Option<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.sid.is_none() || c.superseded)
            .min_by_key(|(id, c)| (c.sid.is_some(), c.last_active, **id))
            .map(|(id, _)| *id)
    }

    /// Adds a connection and returns its new id (ids are never reused while open and grow
    /// otherwise). `writer` makes the adapter's handle, given the id. The bound is the
    /// caller's to check first ([`is_full`](Self::is_full)).
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        &mut self,
        protocol: Protocol,
        peer: Option<SocketAddr>,
        local: bool,
        outgoing: bool,
        sid: Option<Sid>,
        now: u64,
        writer: impl FnOnce(ConnId) -> W,
    ) -> ConnId {
        let id = loop {
            let id = ConnId(self.next);
            self.next = self.next.wrapping_add(1);
            // The node remembers no connection named `RESERVED` (see `ConnId`).
            if id != ConnId::RESERVED && !self.conns.contains_key(&id) {
                break id;
            }
        };
        self.conns.insert(
            id,
            Conn {
                protocol,
                peer,
                local,
                outgoing,
                sid: None,
                last_active: now,
                superseded: false,
                writer: writer(id),
                frames: None,
            },
        );
        if let Some(sid) = sid {
            self.note_sid(id, sid);
        }
        id
    }

    /// The connection `id`.
    #[must_use]
    pub fn get(&self, id: ConnId) -> Option<&Conn<W>> {
        self.conns.get(&id)
    }

    /// The connection `id`, mutably.
    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn<W>> {
        self.conns.get_mut(&id)
    }

    /// Forgets connection `id` (closed, failed or timed out) and returns it.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn<W>> {
        self.conns.remove(&id)
    }

    /// Number of connections.
    #[must_use]
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True when there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The connections, by id.
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn<W>)> {
        self.conns.iter().map(|(id, c)| (*id, c))
    }

    /// Records traffic on `id` (a whole frame read, or one sent).
    pub fn touch(&mut self, id: ConnId, now: u64) {
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.last_active = conn.last_active.max(now);
        }
    }

    /// Records that `id` leads to service `sid`. Of that service's connections over the same
    /// protocol, every one but the newest is superseded (until a send chooses another:
    /// [`route`](Self::route)).
    pub fn note_sid(&mut self, id: ConnId, sid: Sid) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.sid == Some(sid) {
            return;
        }
        conn.sid = Some(sid);
        let protocol = conn.protocol;
        self.supersede_all_but(None, &sid, protocol);
    }

    /// True when no service is known for `id` yet.
    #[must_use]
    pub fn needs_sid(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.sid.is_none())
    }

    /// The connection a send to `sid` over `protocol` should use. `hint` is the connection
    /// the node last heard that service on ([`cluster_core::Destination::Service`]'s
    /// `conn`); it is recorded against `sid` first. With `follow`, `hint` is taken while it
    /// is open; else, and without `follow`, the newest open connection known for that
    /// service. The service's other connections over `protocol` are superseded.
    ///
    /// Of two nodes, one follows (the engine makes it the one with the smaller sid): it
    /// answers on the connection the other's frames come on, and the other keeps to its
    /// newest. Both then use one connection in both directions (spec 1.2), so that each
    /// frame carries the acknowledgement of the one before it. When both sides opened a
    /// connection at once, the newest at each side is the one the other opened: with both
    /// sending on their newest, each connection carried frames one way and every frame cost
    /// an acknowledgement segment of its own. With both following, two nodes sending to each
    /// other at the same time could swap connections back and forth.
    pub fn route(
        &mut self,
        sid: &Sid,
        protocol: Protocol,
        hint: Option<ConnId>,
        follow: bool,
    ) -> Option<ConnId> {
        let hint = hint.filter(|hint| self.conns.get(hint).is_some_and(|c| c.protocol == protocol));
        if let Some(hint) = hint {
            self.note_sid(hint, *sid);
        }
        self.supersede_all_but(hint.filter(|_| follow), sid, protocol)
    }

    /// Marks every connection to `sid` over `protocol` superseded but one, and returns that
    /// one: `keep` when given (and leading there), else the newest. One pass over the table,
    /// as this runs at every direct send: the newest is the last one met (the table is
    /// ordered by id, and ids grow), so it is found while the flags are set, not by a pass
    /// of its own first.
    fn supersede_all_but(
        &mut self,
        keep: Option<ConnId>,
        sid: &Sid,
        protocol: Protocol,
    ) -> Option<ConnId> {
        let mut kept = None;
        for (id, conn) in &mut self.conns {
            if conn.sid.as_ref() == Some(sid) && conn.protocol == protocol {
                conn.superseded = true;
                if keep.is_none_or(|keep| keep == *id) {
                    kept = Some((*id, conn));
                }
            }
        }
        let (id, conn) = kept?;
        conn.superseded = false;
        Some(id)
    }

    /// When the next connection is due to close for idleness.
    #[must_use]
    pub fn next_deadline(&self) -> Option<u64> {
        self.conns.values().map(|c| self.deadline(c)).min()
    }

    /// The connections idle past their timeout at `now`, by id.
    #[must_use]
    pub fn expired(&self, now: u64) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| self.deadline(c) <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    fn deadline(&self, conn: &Conn<W>) -> u64 {
        let timeout = if conn.superseded {
            self.superseded_ms
        } else {
            self.idle_ms
        };
        conn.last_active.saturating_add(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> Sid {
        Sid::new(s.as_bytes()).unwrap()
    }

    fn peer() -> Option<SocketAddr> {
        Some("127.0.0.1:4000".parse().unwrap())
    }

    #[test]
    fn ids_grow_and_sources_name_the_connection() {
        let mut t = Transports::new(Duration::from_secs(120));
        let a = t.open(Protocol::Tcp, peer(), true, false, None, 0, |_| ());
        let b = t.open(Protocol::Unix, None, true, false, None, 0, |_| ());
        assert!(b > a);
        assert_eq!(
            t.get(a).unwrap().source(a),
            Source::tcp(a, peer().unwrap(), true)
        );
        assert_eq!(t.get(b).unwrap().source(b), Source::unix(b));
        t.remove(a);
        let c = t.open(Protocol::Tcp, peer(), true, false, None, 0, |_| ());
        assert!(c > b, "ids are not reused");
    }

    #[test]
    fn the_newest_connection_to_a_service_wins_and_older_ones_close_sooner() {
        let mut t = Transports::new(Duration::from_secs(120));
        let s = sid("peer0001");
        let incoming = t.open(Protocol::Tcp, peer(), true, false, None, 0, |_| ());
        assert_eq!(
            t.route(&s, Protocol::Tcp, Some(incoming), false),
            Some(incoming)
        );
        let outgoing = t.open(Protocol::Tcp, peer(), true, true, Some(s), 0, |_| ());
        assert_eq!(t.route(&s, Protocol::Tcp, None, false), Some(outgoing));
        assert!(t.get(incoming).unwrap().superseded);
        assert!(!t.get(outgoing).unwrap().superseded);
        assert_eq!(t.next_deadline(), Some(10_000));
        assert_eq!(t.expired(10_000), vec![incoming]);
        t.remove(outgoing);
        assert_eq!(t.route(&s, Protocol::Tcp, None, false), Some(incoming));
        assert!(!t.get(incoming).unwrap().superseded, "chosen again");
        assert_eq!(t.route(&s, Protocol::Unix, None, false), None);
    }

    #[test]
    fn a_node_that_does_not_follow_keeps_to_the_newest_connection() {
        let mut t = Transports::new(Duration::from_secs(120));
        let s = sid("peer0001");
        let ours = t.open(Protocol::Tcp, peer(), true, true, Some(s), 0, |_| ());
        let theirs = t.open(Protocol::Tcp, peer(), true, false, Some(s), 0, |_| ());
        assert_eq!(t.route(&s, Protocol::Tcp, Some(ours), false), Some(theirs));
        assert!(t.get(ours).unwrap().superseded);
    }

    #[test]
    fn a_following_node_sends_over_the_connection_it_last_heard_the_service_on() {
        let mut t = Transports::new(Duration::from_secs(120));
        let s = sid("peer0001");
        // Both sides connected at once: the older connection is ours, the newer the peer's,
        // and the peer sends on ours.
        let ours = t.open(Protocol::Tcp, peer(), true, true, Some(s), 0, |_| ());
        let theirs = t.open(Protocol::Tcp, peer(), true, false, Some(s), 0, |_| ());
        assert_eq!(t.route(&s, Protocol::Tcp, Some(ours), true), Some(ours));
        assert!(t.get(theirs).unwrap().superseded, "idle, it closes sooner");
        assert!(!t.get(ours).unwrap().superseded);
        assert_eq!(t.evictable(), Some(theirs));
        // The peer moved to the other one: so do we.
        assert_eq!(t.route(&s, Protocol::Tcp, Some(theirs), true), Some(theirs));
        assert!(t.get(ours).unwrap().superseded);
        // A hint of another protocol, or one closed, is not taken.
        assert_eq!(t.route(&s, Protocol::Unix, Some(theirs), true), None);
        t.remove(theirs);
        assert_eq!(t.route(&s, Protocol::Tcp, Some(theirs), true), Some(ours));
        assert!(!t.get(ours).unwrap().superseded);
    }

    #[test]
    fn traffic_postpones_the_idle_timeout() {
        let mut t = Transports::new(Duration::from_secs(120));
        let a = t.open(
            Protocol::Tcp,
            peer(),
            true,
            true,
            Some(sid("x")),
            1_000,
            |_| (),
        );
        assert_eq!(t.next_deadline(), Some(121_000));
        t.touch(a, 50_000);
        assert!(t.expired(121_000).is_empty());
        assert_eq!(t.expired(170_000), vec![a]);
    }

    #[test]
    fn a_full_table_names_only_connections_no_known_service_uses() {
        let mut t = Transports::new(Duration::from_secs(120)).with_max_connections(3);
        let s = sid("peer0001");
        let older = t.open(Protocol::Tcp, peer(), true, false, Some(s), 0, |_| ());
        let newer = t.open(Protocol::Tcp, peer(), true, true, Some(s), 5, |_| ());
        assert!(!t.is_full());
        assert_eq!(t.evictable(), Some(older), "superseded");
        let anonymous = t.open(Protocol::Tcp, peer(), true, false, None, 9, |_| ());
        assert!(t.is_full());
        assert_eq!(
            t.evictable(),
            Some(anonymous),
            "no service identified on it: before a superseded one"
        );
        t.remove(anonymous);
        t.remove(older);
        assert_eq!(
            t.evictable(),
            None,
            "the newest connection of a known service"
        );
        assert_eq!(t.route(&s, Protocol::Tcp, None, false), Some(newer));
    }
}
