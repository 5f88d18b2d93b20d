//! `Node::TRANSMIT_BUF` is a bound on the largest frame a node encodes, worked out field by
//! field. These tests fill a node to every limit (the longest sid, hid, tags, props, query ids
//! and channels, payloads of `DATA` bytes, filters naming every service) and make it send
//! every kind of frame into a buffer of exactly `TRANSMIT_BUF` bytes: none may be refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use cluster_core::{
    Config, Destination, Hid, Instant, MAX_TAGS, Node, Policy, QueryRequest, Refusal, Reply,
    Resolver, SendRequest, Service, Sid, Source, Tag, Targets, UnixPath,
};

/// Answers every query with `data` and `raw` filling the whole payload.
struct Fill<const DATA: usize>;

impl<const DATA: usize> Policy for Fill<DATA> {
    fn answer_query(
        &mut self,
        _from: &Service,
        _query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        let half = DATA / 2;
        let _ = reply.set_data(&vec![b'd'; half]);
        let _ = reply.set_raw(&vec![b'r'; DATA - half]);
        Ok(())
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A text of exactly `len` bytes starting with `prefix`.
fn text(prefix: &str, len: usize) -> String {
    let mut s = String::from(prefix);
    while s.len() < len {
        s.push('x');
    }
    s.truncate(len);
    s
}

fn peer_sid(i: usize) -> String {
    text(&format!("p{i}-"), Sid::MAX_LEN)
}

fn peer_addr(i: usize) -> SocketAddr {
    let [a, b] = u16::try_from(i + 1).unwrap().to_be_bytes();
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, a, b)), 23000)
}

fn encode(message: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 1 << 16];
    let len = message.encode(FilterPlacement::Last, &mut out).unwrap();
    out.truncate(len);
    out
}

/// A peer's frame of `kind` with the fields of a join (props, tags) when `join`.
fn peer_frame(i: usize, kind: MessageKind, join: bool) -> Vec<u8> {
    let sid = peer_sid(i);
    let tags: Vec<String> = (0..MAX_TAGS).map(|t| text(&format!("{t}"), 8)).collect();
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    let protocols = ["t", "c"];
    encode(&Message {
        sid: Some(Str::from(sid.as_str())),
        hid: Some("02:fc:00:00:00:02".into()),
        kind: Some(kind),
        channel: Some(0),
        protocols: Some(List::from_items(&protocols)),
        data: join.then(|| Str::from("t {port 40000}")),
        known: Some(1),
        tags: join.then(|| List::from_items(&tags)),
        ..Message::default()
    })
}

/// A peer's query to `to`, with the longest ruid.
fn peer_query(i: usize, to: &str) -> Vec<u8> {
    let sid = peer_sid(i);
    let ruid = text(&format!("q{i}#"), 32);
    let protocols = ["t", "c"];
    let filter = [to];
    encode(&Message {
        sid: Some(Str::from(sid.as_str())),
        hid: Some("02:fc:00:00:00:02".into()),
        kind: Some(MessageKind::Query),
        channel: Some(0),
        protocols: Some(List::from_items(&protocols)),
        ruid: Some(Str::from(ruid.as_str())),
        data: Some("status".into()),
        keepalive: Some(true),
        filter: Some(List::from_items(&filter)),
        ..Message::default()
    })
}

/// What was sent: frames per kind and the longest one.
#[derive(Debug, Default)]
struct Sent {
    kinds: BTreeMap<u64, usize>,
    longest: usize,
}

/// Drains every transmit into a buffer of exactly `TRANSMIT_BUF` bytes, checks each frame
/// decodes and that none was refused, that `has_transmit` tells exactly when one is owed, and
/// reports every direct send's outcome with `outcome`.
fn drain<P: Policy, const S: usize, const D: usize>(
    node: &mut Node<P, S, D>,
    now: Instant,
    sent: &mut Sent,
    mut outcome: impl FnMut(&Destination) -> bool,
) {
    let mut buf = vec![0u8; Node::<P, S, D>::TRANSMIT_BUF];
    let mut pending = Vec::new();
    loop {
        // `has_transmit` says exactly whether `poll_transmit` has a frame (adapters that
        // write into a queue's reserved space rely on it).
        while node.has_transmit(now) {
            let t = node
                .poll_transmit(now, &mut buf)
                .expect("has_transmit promised a frame");
            let (message, used) = Message::parse(&buf[..t.len]).expect("a frame that decodes");
            assert_eq!(used, t.len);
            *sent
                .kinds
                .entry(message.kind.unwrap().to_type())
                .or_default() += 1;
            sent.longest = sent.longest.max(t.len);
            if let Some(id) = t.dst.send_id() {
                pending.push((id, outcome(&t.dst)));
            }
        }
        assert!(
            node.poll_transmit(now, &mut buf).is_none(),
            "has_transmit said there was no frame"
        );
        if pending.is_empty() {
            break;
        }
        for (id, ok) in pending.drain(..) {
            if ok {
                node.transport_ok(now, id);
            } else {
                node.transport_failed(now, id);
            }
        }
    }
    while node.poll_event().is_some() {}
    let stats = node.stats();
    assert_eq!(stats.transmit_buffer_too_small, 0, "a frame did not fit");
    assert_eq!(stats.encode_errors, 0);
}

fn every_frame_fits<const S: usize, const D: usize>() {
    let mut config = Config::reference();
    config.remote = true;
    config.protocols = cluster_core::ProtocolList::new(&[
        cluster_core::Protocol::Tcp,
        cluster_core::Protocol::Unix,
        cluster_core::Protocol::Multicast,
    ]);
    for t in 0..MAX_TAGS {
        config
            .add_tag(&text(&format!("tag{t}-"), Tag::MAX_LEN))
            .unwrap();
    }
    let hid = text("hid-", Hid::MAX_LEN);
    let sid = text("own-", Sid::MAX_LEN);
    let mut node = Node::<Fill<D>, S, D>::with_sid(config, &hid, &sid, Fill, 7, at(0)).unwrap();
    // The longest props: a port and a path full of characters the Tcl list must escape (a
    // path is kept only with the feature `unix`).
    node.set_tcp_port(at(0), Some(65535));
    let path = text("/ {\"$[\\", UnixPath::MAX_LEN);
    assert_eq!(
        node.set_unix_path(at(0), Some(&path)),
        cfg!(feature = "unix")
    );
    let mut sent = Sent::default();
    let mut now = 0;
    let fail_streams = |d: &Destination| !matches!(d, Destination::Service { .. });
    drain(&mut node, at(now), &mut sent, fail_streams);

    // Every peer first heard through a periodic heartbeat: one discovery filtered to all.
    now += 10;
    for i in 0..S {
        let frame = peer_frame(i, MessageKind::Heartbeat, false);
        let _ = node.handle_datagram(at(now), Source::multicast(peer_addr(i), false), &frame);
    }
    assert_eq!(node.known(), S);
    drain(&mut node, at(now), &mut sent, fail_streams);

    // Their join discoveries, answered directly; their queries, answered with full payloads.
    now += 10;
    for i in 0..S {
        let from = Source::multicast(peer_addr(i), false);
        let _ = node.handle_datagram(at(now), from, &peer_frame(i, MessageKind::Discovery, true));
        let _ = node.handle_datagram(at(now), from, &peer_query(i, &sid));
        drain(&mut node, at(now), &mut sent, |_| true);
    }

    // A query and an event to everyone, as one filtered multicast each.
    now += 10;
    let everyone = Resolver::resolve(&[]);
    let half = vec![b'q'; D / 2];
    let rest = vec![b'r'; D - D / 2];
    let id = text("id-", 32);
    let query = QueryRequest {
        broadcast: true,
        raw: Some(&rest),
        id: Some(&id),
        channel: u64::MAX,
        ..QueryRequest::new(Targets::resolve(&everyone), &half)
    };
    node.query(at(now), &query).unwrap();
    let ruid = text("ruid-", 32);
    let event = SendRequest {
        broadcast: Some(true),
        channel: u64::MAX,
        ruid: Some(&ruid),
        raw: Some(&rest),
        ..SendRequest::new(Targets::resolve(&everyone), &half)
    };
    node.send(at(now), &event).unwrap();
    drain(&mut node, at(now), &mut sent, |_| true);

    // Direct events: `t` fails for everyone, then the multicast fallback works for half of
    // the peers (a failed report follows) and fails for the others (a ping follows, the
    // peers being unheard for longer than the recently-seen guard).
    now += 5_000;
    let direct = SendRequest {
        broadcast: Some(false),
        ..event
    };
    node.send(at(now), &direct).unwrap();
    let mut fallbacks = 0;
    drain(&mut node, at(now), &mut sent, |d| match d {
        Destination::Service { .. } => false,
        Destination::Group { .. } => {
            fallbacks += 1;
            fallbacks % 2 == 0
        }
    });
    now += 10_000;
    node.handle_timeout(at(now));
    drain(&mut node, at(now), &mut sent, |_| true);

    node.leave(at(now));
    drain(&mut node, at(now), &mut sent, |_| true);

    for kind in [0, 1, 2, 3, 4, 5, 6, 8] {
        assert!(
            sent.kinds.contains_key(&kind),
            "no frame of type {kind}: {sent:?}"
        );
    }
    eprintln!(
        "Node<_, {S}, {D}>: longest frame {} bytes of TRANSMIT_BUF {} ({sent:?})",
        sent.longest,
        Node::<Fill<D>, S, D>::TRANSMIT_BUF
    );
}

#[test]
fn every_frame_of_the_default_node_fits_transmit_buf() {
    every_frame_fits::<32, 512>();
}

#[test]
fn every_frame_of_a_tiny_node_fits_transmit_buf() {
    every_frame_fits::<2, 64>();
}

#[test]
fn every_frame_of_a_larger_node_fits_transmit_buf() {
    every_frame_fits::<200, 4096>();
}

/// `has_transmit` settles, as `poll_transmit` would, the direct sends that lead to no frame:
/// a protocol with nothing to connect to (the next one is tried, or the send fails when none
/// is left), and a send whose service has gone. It never announces a frame that does not
/// come.
#[test]
fn has_transmit_settles_the_sends_that_lead_to_no_frame() {
    type Small = Node<Fill<64>, 4, 64>;
    let mut config = Config::reference();
    config.remote = true;
    config.protocols = cluster_core::ProtocolList::new(&[
        cluster_core::Protocol::Tcp,
        cluster_core::Protocol::Multicast,
    ]);
    let mut node = Small::with_sid(config, "hid", "own", Fill, 7, at(0)).unwrap();
    let mut buf = vec![0u8; Small::TRANSMIT_BUF];
    let mut drain = |node: &mut Small, now: u64| -> Vec<Destination> {
        let mut dsts = Vec::new();
        while node.has_transmit(at(now)) {
            let t = node.poll_transmit(at(now), &mut buf).expect("a frame");
            dsts.push(t.dst);
            if let Some(id) = t.dst.send_id() {
                node.transport_ok(at(now), id);
            }
        }
        assert!(node.poll_transmit(at(now), &mut buf).is_none());
        while node.poll_event().is_some() {}
        dsts
    };
    drain(&mut node, 0);
    // Peer 0 advertises `t` with a port; peer 1 advertises `t` without one.
    let _ = node.handle_datagram(
        at(10),
        Source::multicast(peer_addr(0), false),
        &peer_frame(0, MessageKind::Heartbeat, true),
    );
    let _ = node.handle_datagram(
        at(10),
        Source::multicast(peer_addr(1), false),
        &peer_frame(1, MessageKind::Heartbeat, false),
    );
    assert_eq!(node.known(), 2);
    drain(&mut node, 10);

    // To peer 1, `t` has nothing to connect to: it fails without a frame, and the first frame
    // owed is the multicast fallback.
    let peer1 = Sid::new(peer_sid(1).as_bytes()).unwrap();
    let to_peer1 = [peer1];
    let direct = SendRequest {
        broadcast: Some(false),
        ..SendRequest::new(Targets::services(&to_peer1), b"hello")
    };
    node.send(at(20), &direct).unwrap();
    let dsts = drain(&mut node, 20);
    assert!(
        matches!(dsts.first(), Some(Destination::Group { send: Some(_) })),
        "{dsts:?}"
    );

    // To peer 1 over `t` only: `t` fails without a frame and no protocol is left, so the
    // send is settled as failed and nothing is announced.
    let tcp_only = SendRequest {
        broadcast: Some(false),
        protocols: Some(cluster_core::ProtocolList::new(&[
            cluster_core::Protocol::Tcp,
        ])),
        ..SendRequest::new(Targets::services(&to_peer1), b"hello")
    };
    let failed_before = node.stats().sends_failed;
    node.send(at(30), &tcp_only).unwrap();
    assert!(!node.has_transmit(at(30)));
    assert_eq!(node.stats().sends_failed, failed_before + 1);
    assert!(node.poll_transmit(at(30), &mut buf).is_none());

    // To peer 0, then peer 0 leaves before the frame is polled: nothing is announced.
    let peer0 = Sid::new(peer_sid(0).as_bytes()).unwrap();
    let to_peer0 = [peer0];
    let direct = SendRequest {
        broadcast: Some(false),
        ..SendRequest::new(Targets::services(&to_peer0), b"hello")
    };
    node.send(at(40), &direct).unwrap();
    let _ = node.handle_datagram(
        at(40),
        Source::multicast(peer_addr(0), false),
        &peer_frame(0, MessageKind::Disconnect, false),
    );
    assert_eq!(node.known(), 1);
    assert!(!node.has_transmit(at(40)));
    assert!(node.poll_transmit(at(40), &mut buf).is_none());
}
