//! The types that [`policy`](crate::policy), [`transmit`](crate::transmit) and the node share:
//! the [`Service`] record of a known remote node, its [`UnixPath`], and the last-seen scale
//! [`Seen`]. Nothing outside `node/` imports from `node/`.

use core::net::{IpAddr, Ipv4Addr};

use crate::identity::{Hid, InlineStr, Sid, TagList};
use crate::protocol::{ConnId, ConnSlot, Protocol, ProtocolList};
use crate::time::Instant;

/// A unix-socket path advertised as `u {path P}` (at most 104 bytes, as `sun_path` allows on
/// every common platform).
pub type UnixPath = InlineStr<104>;

/// A remote node as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub(crate) sid: Sid,
    pub(crate) hid: Hid,
    pub(crate) ip: Option<IpAddr>,
    pub(crate) protocols: ProtocolList,
    pub(crate) tags: TagList,
    pub(crate) tcp_port: Option<u16>,
    pub(crate) tcp_conn: ConnSlot,
    /// Kept only with the feature `unix`: without it the node never sends over `u`.
    #[cfg(feature = "unix")]
    pub(crate) unix_conn: ConnSlot,
    /// The reference's LAST_HEARTBEAT, lowered by `expected`; kept on the [`Seen`] scale so
    /// that lowering it never clamps at the epoch.
    pub(crate) last_seen: Seen,
    /// When the service was last heard from, never lowered (the recently-seen guard).
    pub(crate) heard: Instant,
    /// When the `Discovered` event is due, until it is delivered; [`Service::ANNOUNCED`]
    /// after (a sentinel rather than an `Option`: 8 bytes less per service). Read it with
    /// [`discover_at`](Service::discover_at).
    discover_time: Instant,
    /// Bit `i` set: the service is a target of query slot `i`.
    pub(crate) query_targets: u8,
    /// Bit `i` set: the service answered query slot `i`.
    pub(crate) query_answered: u8,
    /// Bit `i` set: the service is named in the filter of pending broadcast `i`.
    pub(crate) broadcast_marks: u8,
    /// Frames accepted from it (saturating).
    pub(crate) frames: u8,
    /// Its yes/no facts, a bit each ([`Service::LOCAL`] and the others): one byte where
    /// four `bool`s took four, which with 4-byte connection slots brings a record of the
    /// 32-service firmware node from 320 to 312 bytes.
    flags: u8,
    /// The version of its data ([`Event::DataChanged`](crate::Event)) last reported; 0 for
    /// none.
    #[cfg(feature = "node-data")]
    pub(crate) data_version: u16,
    /// When its first frame was accepted, in milliseconds modulo 2^32: probation is decided
    /// while the service lives, within its ttl, far below the 49 days that wrap this.
    pub(crate) first_heard: u32,
}

impl Service {
    /// The `discover_time` of a service whose `Discovered` event was delivered.
    const ANNOUNCED: Instant = Instant::from_millis(u64::MAX);
    /// Flag: it runs on this host.
    const LOCAL: u8 = 1;
    /// Flag: a failed send or a ping reduced its time to live, and it has not been heard
    /// from since.
    const EXPECTED: u8 = 2;
    /// Flag: off probation, never evicted for a newcomer.
    const ESTABLISHED: u8 = 4;
    /// Flag: a frame carrying its tags was accepted (its join frames, a discovery answer, a
    /// tags change); until then its tags are unknown, and probing asks for them.
    const TOLD: u8 = 8;

    fn set_flag(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }

    /// Sets whether it runs on this host.
    pub(crate) fn set_local(&mut self, local: bool) {
        self.set_flag(Self::LOCAL, local);
    }

    /// Sets whether its time to live was reduced since it was last heard from.
    pub(crate) fn set_expected(&mut self, expected: bool) {
        self.set_flag(Self::EXPECTED, expected);
    }

    /// Clears the `expected` mark, returning whether it was set.
    pub(crate) fn take_expected(&mut self) -> bool {
        let was = self.is_expected();
        self.set_expected(false);
        was
    }

    /// Sets whether it is off probation.
    pub(crate) fn set_established(&mut self, established: bool) {
        self.set_flag(Self::ESTABLISHED, established);
    }

    /// True once a frame carrying its tags was accepted.
    pub(crate) fn is_told(&self) -> bool {
        self.flags & Self::TOLD != 0
    }

    /// Notes that a frame carrying its tags was accepted.
    pub(crate) fn set_told(&mut self) {
        self.set_flag(Self::TOLD, true);
    }

    /// `Some(at)` until the `Discovered` event, due at `at`, is delivered.
    pub(crate) fn discover_at(&self) -> Option<Instant> {
        (self.discover_time != Self::ANNOUNCED).then_some(self.discover_time)
    }

    /// Sets when the `Discovered` event is due (the last millisecond of time at the latest).
    pub(crate) fn announce_at(&mut self, at: Instant) {
        self.discover_time = at.min(Instant::from_millis(u64::MAX - 1));
    }

    /// Notes that the `Discovered` event was delivered.
    pub(crate) fn set_announced(&mut self) {
        self.discover_time = Self::ANNOUNCED;
    }

    pub(crate) fn new(sid: Sid, hid: Hid, now: Instant) -> Self {
        Self {
            sid,
            hid,
            ip: None,
            protocols: ProtocolList::EMPTY,
            tags: TagList::new(),
            tcp_port: None,
            tcp_conn: ConnSlot::NONE,
            #[cfg(feature = "unix")]
            unix_conn: ConnSlot::NONE,
            last_seen: Seen::at(now),
            heard: now,
            discover_time: Self::ANNOUNCED,
            query_targets: 0,
            query_answered: 0,
            broadcast_marks: 0,
            frames: 0,
            flags: 0,
            #[cfg(feature = "node-data")]
            data_version: 0,
            first_heard: now.as_millis() as u32,
        }
    }

    /// Notes an accepted frame; ends its probation when it was heard again at least
    /// `probation_ms` after its first frame.
    pub(crate) fn note_frame(&mut self, now: Instant, probation_ms: u64) {
        self.frames = self.frames.saturating_add(1);
        let elapsed = (now.as_millis() as u32).wrapping_sub(self.first_heard);
        let old_enough = u64::from(elapsed) >= probation_ms;
        if self.frames >= 2 && old_enough {
            self.set_established(true);
        }
    }

    /// Its service id.
    #[must_use]
    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// Its hardware id.
    #[must_use]
    pub fn hid(&self) -> &Hid {
        &self.hid
    }

    /// Its address: the source of its last multicast frame, `127.0.0.1` for a local service
    /// first met over a stream (as the reference shows it), or the stream peer's address.
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// True when it runs on this host.
    #[must_use]
    pub fn is_local(&self) -> bool {
        self.flags & Self::LOCAL != 0
    }

    /// Its protocols in its priority order.
    #[must_use]
    pub fn protocols(&self) -> ProtocolList {
        self.protocols
    }

    /// The version of the data it published (0: none seen yet); the data itself came with
    /// [`Event::DataChanged`](crate::Event).
    #[cfg(feature = "node-data")]
    #[cfg_attr(docsrs, doc(cfg(feature = "node-data")))]
    #[must_use]
    pub fn data_version(&self) -> u16 {
        self.data_version
    }

    /// Its tags.
    #[must_use]
    pub fn tags(&self) -> &TagList {
        &self.tags
    }

    /// The TCP port it advertised (`t {port N}`).
    #[must_use]
    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    /// The connection last seen from it over `protocol` (`t`, or `u` with the feature
    /// `unix`: without it, always `None` for `u`).
    #[must_use]
    pub fn conn(&self, protocol: Protocol) -> Option<ConnId> {
        match protocol {
            Protocol::Tcp => self.tcp_conn.get(),
            #[cfg(feature = "unix")]
            Protocol::Unix => self.unix_conn.get(),
            #[cfg(not(feature = "unix"))]
            Protocol::Unix => None,
            Protocol::Multicast => None,
        }
    }

    /// When it was last heard from.
    #[must_use]
    pub fn last_heard(&self) -> Instant {
        self.heard
    }

    /// True once its `Discovered` event was delivered.
    #[must_use]
    pub fn is_discovered(&self) -> bool {
        self.discover_at().is_none()
    }

    /// True once off probation: heard from again at least [`Config::probation`] after its
    /// first frame, or reached by a direct send over `t` or `u`. Only services on probation
    /// make room for newcomers.
    ///
    /// [`Config::probation`]: crate::Config::probation
    #[must_use]
    pub fn is_established(&self) -> bool {
        self.flags & Self::ESTABLISHED != 0
    }

    /// True when a failed send or a ping reduced its time to live and it has not been heard
    /// from since.
    #[must_use]
    pub fn is_expected(&self) -> bool {
        self.flags & Self::EXPECTED != 0
    }

    /// Sets the address from a frame's source (spec 5.7): from `c` frames, the datagram's
    /// source; a local service first met over a stream shows `127.0.0.1`.
    pub(crate) fn note_address(&mut self, via: Protocol, ip: Option<IpAddr>, local: bool) {
        match (via, ip) {
            (Protocol::Multicast, Some(ip)) => self.ip = Some(ip),
            _ if self.ip.is_none() => {
                self.ip = if local {
                    Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
                } else {
                    ip
                };
            }
            _ => {}
        }
    }
}

/// An instant shifted forward by [`Seen::BIAS`], for last-seen times that `expected` lowers
/// below `now - ttl`: on this scale `now - ttl + within` never clamps at the epoch, even in
/// the first `ttl` after a node starts (adapters count time from their start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Seen(pub(crate) u64);

impl Seen {
    /// 2^42 ms, about 139 years: more than any ttl worth configuring.
    const BIAS: u64 = 1 << 42;

    pub(crate) const fn at(now: Instant) -> Self {
        Self(now.as_millis().saturating_add(Self::BIAS))
    }

    /// `self - ms + within`, the reduced last-seen time of `expected(within)`.
    pub(crate) const fn lowered(self, ttl_ms: u64, within_ms: u64) -> Self {
        Self(self.0.saturating_sub(ttl_ms).saturating_add(within_ms))
    }
}
