//! Seeds: membership beyond the LAN ([`cluster_core::membership`]) run beside the node.
//!
//! A node with seeds (`Options::seeds`, `cluster join --seed HOST:PORT`) runs in remote mode
//! and keeps a [`Membership`] next to its [`Node`](cluster_core::Node):
//!
//! * seed names are resolved at the start and again every [`RESOLVE_EVERY`] while a seed
//!   has not answered (a Kubernetes headless service's addresses change);
//! * `mx` frames go over TCP to the member's `t` listener; `mx` frames read from any
//!   connection are taken by the membership and never reach the node;
//! * what the membership knows is told to the node as the frames the member would send on
//!   its LAN: a member heard for the first time or back becomes a full heartbeat (its props
//!   and tags), alive members get a periodic heartbeat every [`REFRESH_EVERY`] so the node's
//!   expiry keeps them, and a lost member becomes a disconnect. The node therefore lists,
//!   queries and sends to remote members as to any service in remote mode (spec Q2);
//! * as a gateway, it exports the services the engine hears on the LAN that are not
//!   members ([`set_exports`](Seeds::set_exports)), and the routes other gateways offer are
//!   told to the node the same way, as frames from the gateway's address: the node sends
//!   to such a service at its gateway, which relays ([`crate::gateway`]). A route is not
//!   told for a sid this node hears on its own LAN, for a member (it is reached directly)
//!   or for itself.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

use cluster_core::membership::{
    Entry, MemberEvent, MemberState, MemberText, Membership, MembershipConfig, RouteEvent,
};
use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str, tcl_list};
use cluster_core::{Hid, Instant, Protocol, Sid, Source, TagList};

use crate::side_seal::SideSeal;

/// Remote members a node keeps at most.
pub const MAX_MEMBERS: usize = 1024;
/// Routes through gateways, and exports as a gateway, a node keeps at most.
pub const MAX_ROUTES: usize = 256;
/// How long a service is heard on the LAN before it is exported, in ms: a LAN neighbour
/// with seeds becomes a member within about a second (it pushes to its seeds at once and
/// beats the members they name), and is then not exported at all. Without the wait, other
/// segments would meet it through a gateway for a moment before they meet it directly.
pub const EXPORT_AFTER: u64 = 3_000;
/// Between two resolutions of the seeds' names while one has not answered, in ms.
pub const RESOLVE_EVERY: u64 = 10_000;
/// Between two refreshes of the alive members in the node, in ms, at most (a third of the
/// node's TTL when that is shorter).
pub const REFRESH_EVERY: u64 = 5_000;
/// The send buffer: an exchange carries as many members as fit in half of it.
const BUF: usize = 1 << 17;

/// A frame for the node, as if the member had sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToNode {
    /// Where it appears to come from.
    pub source: Source,
    /// The frame.
    pub frame: Vec<u8>,
}

/// The seeds and the remote members of one node.
#[derive(Debug)]
pub struct Seeds {
    names: Vec<String>,
    membership: Box<Membership<MAX_MEMBERS, MAX_ROUTES>>,
    /// Sids heard on the LAN itself (multicast), until the node loses them, with when they
    /// were first heard.
    lan: HashMap<Sid, u64>,
    /// Routes told to the node, as last told.
    told: HashMap<Sid, Entry>,
    /// Sealing of what the membership and the gateway write and read.
    seal: SideSeal,
    next_resolve: u64,
    next_refresh: u64,
    refresh_every: u64,
    buf: Vec<u8>,
}

/// Our own entry: sid, hid, TCP port, protocols, props and tags as the node advertises them.
#[must_use]
pub fn own_entry(sid: &Sid, hid: &Hid, tcp_port: u16, tags: &TagList) -> Entry {
    let mut tag_text = String::new();
    for tag in tags {
        if !tag_text.is_empty() {
            tag_text.push(' ');
        }
        tag_text.push('{');
        tag_text.push_str(tag.as_str().unwrap_or_default());
        tag_text.push('}');
    }
    Entry {
        sid: *sid,
        hid: *hid,
        addr: SocketAddr::from(([0, 0, 0, 0], tcp_port)),
        incarnation: 0,
        protocols: MemberText::new(b"t c").unwrap_or_default(),
        props: MemberText::new(format!("t {{port {tcp_port}}}").as_bytes()).unwrap_or_default(),
        tags: MemberText::new(tag_text.as_bytes()).unwrap_or_default(),
    }
}

/// Resolves `HOST:PORT` names; names that do not resolve (now) are left out.
#[must_use]
pub fn resolve(names: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for name in names {
        match name.to_socket_addrs() {
            Ok(addrs) => out.extend(addrs.filter(SocketAddr::is_ipv4).take(1)),
            Err(e) => tracing::debug!(seed = %name, error = %e, "seed does not resolve"),
        }
    }
    out.truncate(cluster_core::membership::MAX_SEEDS);
    out
}

impl Seeds {
    /// Seeds for the node whose entry is `me` and whose services expire after `ttl_ms`,
    /// starting at `now` (ms).
    #[must_use]
    pub fn new(names: Vec<String>, me: Entry, ttl_ms: u64, seed: u64, now: u64) -> Self {
        let refresh_every = (ttl_ms / 3).clamp(100, REFRESH_EVERY);
        let mut membership = Box::new(Membership::new(
            MembershipConfig::default(),
            me,
            seed,
            Instant::from_millis(now),
        ));
        let _ = membership.set_seeds(Instant::from_millis(now), &resolve(&names));
        Self {
            names,
            membership,
            lan: HashMap::new(),
            told: HashMap::new(),
            seal: SideSeal::default(),
            next_resolve: now + RESOLVE_EVERY,
            next_refresh: now + refresh_every,
            refresh_every,
            buf: vec![0; BUF],
        }
    }

    /// The membership (getters).
    #[must_use]
    pub fn membership(&self) -> &Membership<MAX_MEMBERS, MAX_ROUTES> {
        &self.membership
    }

    /// Command: the node's keys (`None`: off): membership frames and relayed answers are
    /// sealed with them, and only frames sealed with them are membership traffic or relayed
    /// ([`crate::side_seal`]). `seed` draws the salt.
    #[cfg(feature = "seal")]
    pub fn set_keys(&mut self, keys: Option<cluster_core::KeyRing>, seed: u64) {
        self.seal.set_keys(keys, seed);
    }

    /// The plain frame of `frame` read over `via` (opened when sealing is on); `None` when
    /// it does not open, and is then neither membership traffic nor relayed.
    pub fn plain<'a>(&mut self, now: u64, frame: &'a [u8], via: Protocol) -> Option<Cow<'a, [u8]>> {
        self.seal.open(now, frame, via)
    }

    /// `frame` (a relayed answer) as it goes out over TCP: sealed when sealing is on.
    pub fn seal_frame(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        self.seal.seal(frame).map(<[u8]>::to_vec)
    }

    /// Input: a frame of `sid` arrived on the LAN (multicast, not through a member).
    pub fn heard_on_lan(&mut self, now: u64, sid: Sid) {
        if sid != self.membership.me().sid {
            self.lan.entry(sid).or_insert(now);
        }
    }

    /// Keeps only the LAN sids `known` accepts (the node's services): a frame of a sid the
    /// node never took (filtered, refused, forged) leaves no entry behind for long.
    pub fn keep_lan(&mut self, known: impl Fn(&Sid) -> bool) {
        self.lan.retain(|sid, _| known(sid));
    }

    /// True when `sid` was heard on the LAN and the node has not lost it since.
    #[must_use]
    pub fn is_on_lan(&self, sid: &Sid) -> bool {
        self.lan.contains_key(sid)
    }

    /// True when this node relays `sid` if it is not a member: heard on the LAN for at
    /// least [`EXPORT_AFTER`].
    #[must_use]
    pub fn may_export(&self, now: u64, sid: &Sid) -> bool {
        self.lan
            .get(sid)
            .is_some_and(|first| now.saturating_sub(*first) >= EXPORT_AFTER)
    }

    /// Command: the name of this node's segment, told to remote members (longer names
    /// than [`SEGMENT`](cluster_core::membership::SEGMENT) bytes are left out: the options
    /// refuse them).
    pub fn set_segment(&mut self, name: &str) {
        if let Some(segment) = cluster_core::membership::Segment::new(name.as_bytes()) {
            self.membership.set_segment(segment);
        }
    }

    /// Command: the LAN-only services this node relays (see the module docs).
    pub fn set_exports(&mut self, exports: &[Entry]) {
        self.membership.set_exports(exports);
    }

    /// True when this node relays `sid` as a gateway.
    #[must_use]
    pub fn is_export(&self, sid: &Sid) -> bool {
        self.membership.exports().iter().any(|e| e.sid == *sid)
    }

    /// True when the route for `sid` is for the node: not on our LAN, not a member, not us.
    fn routes_to_node(&self, sid: &Sid) -> bool {
        *sid != self.membership.me().sid
            && !self.lan.contains_key(sid)
            && self.membership.member(sid).is_none()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    #[must_use]
    pub fn next_deadline(&self) -> u64 {
        self.membership
            .poll_timeout()
            .as_millis()
            .min(self.next_refresh)
            .min(if self.membership.seeds_unanswered() {
                self.next_resolve
            } else {
                u64::MAX
            })
    }

    /// Input: one frame read from a TCP connection with peer `from`. True when it was an
    /// `mx` frame (the node must not see it).
    pub fn handle_frame(&mut self, now: u64, from: SocketAddr, frame: &[u8]) -> bool {
        let Ok((message, _)) = Message::parse(frame) else {
            return false;
        };
        match self
            .membership
            .handle_frame(Instant::from_millis(now), from, &message)
        {
            Ok(taken) => taken,
            Err(e) => {
                tracing::debug!(from = %from, error = ?e, "malformed membership frame");
                true
            }
        }
    }

    /// Command: the node's tags changed; the next exchanges carry them (with a higher
    /// incarnation, so they replace the old ones wherever they are merged).
    pub fn set_tags(&mut self, tags: &TagList) {
        let me = self.membership.me();
        let port = me.addr.port();
        let entry = own_entry(&me.sid, &me.hid, port, tags);
        if entry.tags != me.tags {
            self.membership.set_texts(entry.props, entry.tags);
        }
    }

    /// Input: the node saw `sid` leave (a disconnect): the membership stops telling the
    /// node about it until it is heard from again.
    pub fn departed(&mut self, now: u64, sid: &Sid) {
        self.membership.departed(Instant::from_millis(now), sid);
        self.told.remove(sid);
    }

    /// Command: the node leaves: every alive member gets a `bye` (polled as usual), then
    /// nothing more goes out.
    pub fn leave(&mut self) {
        self.membership.leave();
    }

    /// Input: the node lost `sid` (for any reason): it is no longer on the LAN.
    pub fn lost(&mut self, sid: &Sid) {
        self.lan.remove(sid);
        self.told.remove(sid);
    }

    /// Input: time passed.
    pub fn handle_timeout(&mut self, now: u64) -> Vec<ToNode> {
        if self.membership.seeds_unanswered() && now >= self.next_resolve {
            self.next_resolve = now + RESOLVE_EVERY;
            let addrs = resolve(&self.names);
            let _ = self.membership.set_seeds(Instant::from_millis(now), &addrs);
        }
        self.membership.handle_timeout(Instant::from_millis(now));
        let mut out = Vec::new();
        if now >= self.next_refresh {
            self.next_refresh = now + self.refresh_every;
            for member in self.membership.members() {
                if member.state == MemberState::Alive && member.heard && !member.placeholder {
                    out.extend(to_node(&member.entry, Some(MessageKind::Heartbeat), true));
                }
            }
            let mut sids: Vec<Sid> = self
                .membership
                .routes()
                .iter()
                .map(|r| r.entry.sid)
                .collect();
            sids.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            sids.dedup();
            for sid in sids {
                if !self.routes_to_node(&sid) {
                    continue;
                }
                if let Some(route) = self.membership.route(&sid) {
                    let entry = route.entry;
                    self.told.insert(sid, entry);
                    out.extend(to_node(&entry, Some(MessageKind::Heartbeat), true));
                }
            }
        }
        out.into_iter()
            .filter_map(|t| self.sealed_for_node(t))
            .collect()
    }

    /// `to_node` as the node takes it: sealed for `c` when sealing is on.
    fn sealed_for_node(&mut self, mut to_node: ToNode) -> Option<ToNode> {
        if self.seal.is_on() {
            let len = self.seal.seal_len(&to_node.frame, Protocol::Multicast)?;
            to_node.frame = self.seal.sealed(len).to_vec();
        }
        Some(to_node)
    }

    /// Output: the next `mx` frame to send, with the TCP address it goes to.
    pub fn poll_transmit(&mut self, now: u64) -> Option<(SocketAddr, &[u8])> {
        loop {
            let out = self
                .membership
                .poll_transmit(Instant::from_millis(now), &mut self.buf)?;
            if !self.seal.is_on() {
                return Some((out.to, self.buf.get(..out.len).unwrap_or_default()));
            }
            let frame = self.buf.get(..out.len).unwrap_or_default();
            if let Some(len) = self.seal.seal_len(frame, Protocol::Tcp) {
                return Some((out.to, self.seal.sealed(len)));
            }
            tracing::debug!(to = %out.to, "a membership frame could not be sealed");
        }
    }

    /// Output: the membership's changes, as frames for the node.
    pub fn poll_to_node(&mut self) -> Option<ToNode> {
        loop {
            let Some(event) = self.membership.poll_event() else {
                return self.poll_route_to_node();
            };
            let (sid, kind, full) = match event {
                MemberEvent::Joined(sid) | MemberEvent::Back(sid) => {
                    (sid, MessageKind::Heartbeat, true)
                }
                MemberEvent::Lost(sid) => (sid, MessageKind::Disconnect, false),
            };
            let Some(member) = self.membership.member(&sid) else {
                continue;
            };
            if let Some(frame) =
                to_node(&member.entry, Some(kind), full).and_then(|t| self.sealed_for_node(t))
            {
                return Some(frame);
            }
        }
    }
}

impl Seeds {
    /// The next change of a route in use, as a frame for the node: a full heartbeat from the
    /// gateway's address, or the disconnect of a service no gateway offers any more.
    fn poll_route_to_node(&mut self) -> Option<ToNode> {
        loop {
            let (sid, up) = match self.membership.poll_route_event()? {
                RouteEvent::Up(sid) => (sid, true),
                RouteEvent::Down(sid) => (sid, false),
            };
            if !self.routes_to_node(&sid) {
                continue;
            }
            let frame = match (up, self.membership.route(&sid)) {
                (true, Some(route)) => {
                    let entry = route.entry;
                    self.told.insert(sid, entry);
                    to_node(&entry, Some(MessageKind::Heartbeat), true)
                }
                _ => self
                    .told
                    .remove(&sid)
                    .and_then(|entry| to_node(&entry, Some(MessageKind::Disconnect), false)),
            };
            if let Some(frame) = frame.and_then(|t| self.sealed_for_node(t)) {
                return Some(frame);
            }
        }
    }
}

/// The frame `entry` would send on its LAN: a full heartbeat (`full`: with its props and
/// tags), a periodic one, or a disconnect.
fn to_node(entry: &Entry, kind: Option<MessageKind>, full: bool) -> Option<ToNode> {
    let protocols: Vec<&str> = entry.protocols.as_str()?.split_ascii_whitespace().collect();
    if protocols.is_empty() {
        return None; // only its beats were seen: its protocols come with an exchange
    }
    let tags: Vec<&str> = tcl_list::elements(entry.tags.as_str()?)
        .filter_map(Result::ok)
        .map(|e| e.raw())
        .collect();
    let message = Message {
        kind,
        channel: Some(0),
        hid: Some(Str::from(entry.hid.as_str()?)),
        sid: Some(Str::from(entry.sid.as_str()?)),
        protocols: Some(List::from_items(&protocols)),
        data: full.then(|| Str::from(entry.props.as_str().unwrap_or_default())),
        tags: full.then(|| List::from_items(&tags)),
        ..Message::default()
    };
    let frame = message.encode_to_vec(FilterPlacement::Last).ok()?;
    Some(ToNode {
        source: Source::multicast(entry.addr, false),
        frame,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Entry {
        let tags: TagList = ["web", "db x"]
            .iter()
            .map(|t| cluster_core::Tag::new(t.as_bytes()).unwrap())
            .collect();
        own_entry(
            &Sid::new(b"Zbdc22e7").unwrap(),
            &Hid::new(b"02:fc:00:00:00:01").unwrap(),
            41917,
            &tags,
        )
    }

    #[test]
    fn the_own_entry_advertises_the_tcp_port_and_braced_tags() {
        let entry = me();
        assert_eq!(entry.props.as_str(), Some("t {port 41917}"));
        assert_eq!(entry.tags.as_str(), Some("{web} {db x}"));
        assert_eq!(entry.protocols.as_str(), Some("t c"));
    }

    #[test]
    fn a_member_reaches_the_node_as_its_full_heartbeat_or_disconnect() {
        let mut entry = me();
        entry.addr = "10.252.2.12:41917".parse().unwrap();
        let full = to_node(&entry, Some(MessageKind::Heartbeat), true).unwrap();
        assert_eq!(full.source, Source::multicast(entry.addr, false));
        let (message, _) = Message::parse(&full.frame).unwrap();
        assert_eq!(message.kind, Some(MessageKind::Heartbeat));
        assert_eq!(message.sid.unwrap(), "Zbdc22e7");
        assert_eq!(message.data.unwrap(), "t {port 41917}");
        let tags: Vec<String> = message
            .tags
            .unwrap()
            .into_iter()
            .map(|t| String::from_utf8(t.to_vec()).unwrap())
            .collect();
        assert_eq!(tags, ["web", "db x"]);
        let gone = to_node(&entry, Some(MessageKind::Disconnect), false).unwrap();
        let (message, _) = Message::parse(&gone.frame).unwrap();
        assert_eq!(message.kind, Some(MessageKind::Disconnect));
        assert_eq!((message.data, message.tags), (None, None));
    }

    #[test]
    fn a_member_known_only_from_its_beats_is_not_told_to_the_node() {
        let mut entry = me();
        entry.protocols = MemberText::EMPTY;
        assert_eq!(to_node(&entry, Some(MessageKind::Heartbeat), true), None);
    }

    #[test]
    fn new_tags_go_out_with_a_higher_incarnation() {
        let mut seeds = Seeds::new(Vec::new(), me(), 1_500, 1, 0);
        let tags: TagList = [cluster_core::Tag::new(b"api").unwrap()]
            .into_iter()
            .collect();
        seeds.set_tags(&tags);
        let entry = seeds.membership().me();
        assert_eq!((entry.tags.as_str(), entry.incarnation), (Some("{api}"), 1));
        seeds.set_tags(&tags);
        assert_eq!(
            seeds.membership().me().incarnation,
            1,
            "no change, no new incarnation"
        );
    }

    #[test]
    fn seeds_resolve_addresses_and_skip_what_does_not_resolve() {
        let names = ["10.1.2.3:41917".to_owned(), "no port".to_owned()];
        assert_eq!(
            resolve(&names),
            ["10.1.2.3:41917".parse::<SocketAddr>().unwrap()]
        );
    }

    fn node(sid: &str, seeds: &[&str], seed: u64) -> Seeds {
        let entry = own_entry(
            &Sid::new(sid.as_bytes()).unwrap(),
            &Hid::new(b"02:fc:00:00:00:01").unwrap(),
            41917,
            &TagList::new(),
        );
        let names = seeds.iter().map(|s| (*s).to_owned()).collect();
        Seeds::new(names, entry, 1_500, seed, 0)
    }

    /// Every frame `from` (at `from_ip`) sends, as the engine reads it at `to`: opened, then
    /// offered to the membership. Returns how many the membership took.
    fn deliver(now: u64, from: &mut Seeds, from_ip: &str, to: &mut Seeds) -> usize {
        let peer = SocketAddr::new(from_ip.parse().unwrap(), 50_000);
        let mut taken = 0;
        while let Some((_, frame)) = from.poll_transmit(now) {
            let frame = frame.to_vec();
            if let Some(plain) = to.plain(now, &frame, Protocol::Tcp)
                && to.handle_frame(now, peer, &plain)
            {
                taken += 1;
            }
        }
        taken
    }

    #[cfg(feature = "seal")]
    #[test]
    fn sealed_membership_frames_are_membership_only_for_nodes_with_the_key() {
        use cluster_core::{Key, KeyRing, seal::KEY_LEN};
        let ring = KeyRing::new(Key::new(1, [9; KEY_LEN]));
        let mut a = node("Aaaaaaaa", &["10.0.0.2:41917"], 1);
        a.set_keys(Some(ring.clone()), 11);
        let mut b = node("Bbbbbbbb", &[], 2);
        b.set_keys(Some(ring.clone()), 12);
        let mut keyless = node("Cccccccc", &["10.0.0.1:41917"], 3);
        // a's push is sealed: the keyless node does not take it (its node drops it: the
        // sealed layout's empty filter names nobody) ...
        a.handle_timeout(0);
        assert_eq!(deliver(0, &mut a, "10.0.0.1", &mut keyless), 0);
        assert!(keyless.membership().members().is_empty());
        // ... the keyed node does, and its sealed answer teaches a.
        a.handle_timeout(2_000);
        assert_eq!(deliver(2_000, &mut a, "10.0.0.1", &mut b), 1);
        assert_eq!(deliver(2_000, &mut b, "10.0.0.2", &mut a), 1);
        assert!(
            a.membership()
                .member(&Sid::new(b"Bbbbbbbb").unwrap())
                .is_some()
        );
        // The keyless node's plain push is not membership traffic for a sealed node.
        keyless.handle_timeout(0);
        assert_eq!(deliver(0, &mut keyless, "10.0.0.3", &mut a), 0);
        assert!(
            a.membership()
                .member(&Sid::new(b"Cccccccc").unwrap())
                .is_none()
        );
        // A copy of a sealed frame is refused the second time (replay).
        let mut b2 = node("Bbbbbbbb", &["10.0.0.1:41917"], 4);
        b2.set_keys(Some(ring), 14);
        b2.handle_timeout(0);
        let (_, frame) = b2.poll_transmit(0).unwrap();
        let frame = frame.to_vec();
        assert!(a.plain(0, &frame, Protocol::Tcp).is_some());
        assert!(a.plain(0, &frame, Protocol::Tcp).is_none());
    }

    #[test]
    fn routes_reach_the_node_unless_the_sid_is_on_the_lan_a_member_or_us() {
        let mut gateway = node("Gaaaaaaa", &[], 1);
        let tcl = own_entry(
            &Sid::new(b"Tcl00001").unwrap(),
            &Hid::new(b"02:fc:00:00:00:51").unwrap(),
            41917,
            &TagList::new(),
        );
        gateway.set_exports(&[tcl]);
        let mut far = node("Rrrrrrrr", &["10.0.0.1:41917"], 2);
        let mut near = node("Nnnnnnnn", &["10.0.0.1:41917"], 3);
        near.heard_on_lan(0, tcl.sid);
        for other in [&mut far, &mut near] {
            other.handle_timeout(0);
            deliver(0, other, "10.0.0.9", &mut gateway);
            deliver(0, &mut gateway, "10.0.0.1", other);
        }
        let told: Vec<ToNode> = core::iter::from_fn(|| far.poll_to_node()).collect();
        let routed = told
            .iter()
            .map(|t| Message::parse(&t.frame).unwrap().0)
            .find(|m| m.sid.unwrap() == "Tcl00001")
            .expect("the far node's node is told of the routed service");
        assert_eq!(routed.kind, Some(MessageKind::Heartbeat));
        assert_eq!(routed.data.unwrap(), "t {port 41917}");
        let from = told
            .iter()
            .find(|t| Message::parse(&t.frame).unwrap().0.sid.unwrap() == "Tcl00001")
            .unwrap();
        assert_eq!(
            from.source,
            Source::multicast("10.0.0.1:41917".parse().unwrap(), false)
        );
        let near_told: Vec<ToNode> = core::iter::from_fn(|| near.poll_to_node()).collect();
        assert!(
            near_told
                .iter()
                .all(|t| Message::parse(&t.frame).unwrap().0.sid.unwrap() != "Tcl00001"),
            "a node that hears the service on its LAN is not told of the route"
        );
        // The service leaves the gateway's LAN: the far node's node gets its disconnect.
        gateway.set_exports(&[]);
        gateway.handle_timeout(1_000);
        deliver(1_000, &mut gateway, "10.0.0.1", &mut far);
        let gone = core::iter::from_fn(|| far.poll_to_node())
            .map(|t| Message::parse(&t.frame).unwrap().0.kind)
            .collect::<Vec<_>>();
        assert!(gone.contains(&Some(MessageKind::Disconnect)), "{gone:?}");
    }

    #[test]
    fn a_lan_service_is_exported_once_heard_for_a_while_and_never_ourselves() {
        let mut seeds = node("Gaaaaaaa", &[], 1);
        let tcl = Sid::new(b"Tcl00001").unwrap();
        seeds.heard_on_lan(1_000, tcl);
        seeds.heard_on_lan(2_500, tcl);
        seeds.heard_on_lan(1_000, Sid::new(b"Gaaaaaaa").unwrap());
        assert!(seeds.is_on_lan(&tcl));
        assert!(!seeds.may_export(1_000 + EXPORT_AFTER - 1, &tcl));
        assert!(seeds.may_export(1_000 + EXPORT_AFTER, &tcl));
        assert!(!seeds.is_on_lan(&Sid::new(b"Gaaaaaaa").unwrap()));
        seeds.lost(&tcl);
        assert!(!seeds.is_on_lan(&tcl) && !seeds.may_export(60_000, &tcl));
        seeds.heard_on_lan(70_000, tcl);
        seeds.keep_lan(|sid| *sid != tcl);
        assert!(
            !seeds.is_on_lan(&tcl),
            "a sid the node does not know is forgotten"
        );
    }

    #[test]
    fn the_refresh_runs_at_a_third_of_the_ttl_at_most_every_5_s() {
        let seeds = Seeds::new(Vec::new(), me(), 1_500, 1, 0);
        assert_eq!(seeds.refresh_every, 500);
        let seeds = Seeds::new(Vec::new(), me(), 600_000, 1, 0);
        assert_eq!(seeds.refresh_every, REFRESH_EVERY);
    }
}
