//! The remedies for lossy LANs (`Node`, "Loss"), one node driven by hand: query
//! retransmission, the answer memory, and the probing of silent services.

mod common;

use cluster_core::wire::{Message, MessageKind};
use cluster_core::{
    Config, ConnId, Destination, Event, Node, Policy, QueryEvent, QueryRequest, Refusal, Reply,
    Service, Sid, Source, Targets,
};
use common::node::*;

/// Answers every query with `n:<data>`, `n` counting the calls.
#[derive(Debug, Default)]
struct Counting {
    calls: u32,
}

impl Policy for Counting {
    fn answer_query(
        &mut self,
        _from: &Service,
        query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        use core::fmt::Write;
        self.calls += 1;
        let data = query.data.map(|d| d.as_bytes()).unwrap_or_default();
        let text = String::from_utf8_lossy(data);
        write!(reply, "{}:{text}", self.calls).map_err(|_| Refusal::new("too long"))
    }
}

type LossNode = Node<Counting, 32, 512>;

/// A `lan_fast` node that knows the peers `sids` (heard at t = 10 ms, with a TCP port).
fn node_with_peers(sids: &[&str]) -> LossNode {
    let mut node = LossNode::new(Config::lan_fast(), HID, Counting::default(), 5, at(0)).unwrap();
    flush(&mut node, at(0));
    for sid in sids {
        node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, sid))
            .unwrap();
    }
    flush(&mut node, at(10));
    while node.poll_event().is_some() {}
    node
}

/// Every transmit at `now`, each direct send reported delivered.
fn flush(node: &mut LossNode, now: cluster_core::Instant) -> Vec<(Destination, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; LossNode::TRANSMIT_BUF];
    while let Some(t) = node.poll_transmit(now, &mut buf) {
        if let Some(send) = t.dst.send_id() {
            node.transport_ok(now, send);
        }
        out.push((t.dst, buf[..t.len].to_vec()));
    }
    out
}

fn sid(text: &str) -> Sid {
    Sid::new(text.as_bytes()).unwrap()
}

fn filter_of(frame: &[u8]) -> Vec<String> {
    let (m, _) = Message::parse(frame).unwrap();
    m.filter
        .unwrap()
        .iter()
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// A query from `from` with id `ruid`, as a reference node sends it over TCP.
fn query_frame(from: &str, ruid: &str, data: &str) -> Vec<u8> {
    encode_json(&serde_json::json!([
        ["filter", ["ONE", HID]],
        ["sid", from],
        ["hid", HID],
        ["type", 4],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["ruid", ruid],
        ["data", data],
        ["keepalive", 1]
    ]))
}

fn response_frame(from: &str, ruid: &str, to: &str) -> Vec<u8> {
    encode_json(&serde_json::json!([
        ["sid", from],
        ["hid", HID],
        ["type", 5],
        ["channel", 0],
        ["protocols", ["t", "c"]],
        ["ruid", ruid],
        ["keepalive", 1],
        ["data", "ok"],
        ["filter", [to]]
    ]))
}

fn responses(frames: &[(Destination, Vec<u8>)]) -> Vec<(Destination, String)> {
    frames
        .iter()
        .filter(|(_, f)| kind_of(f) == MessageKind::Response)
        .map(|(d, f)| {
            let (m, _) = Message::parse(f).unwrap();
            (*d, m.data.unwrap().to_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn a_query_is_sent_again_by_multicast_to_the_targets_that_have_not_answered() {
    let mut node = node_with_peers(&["PEER0001", "PEER0002"]);
    let me = node.sid().as_str().unwrap().to_owned();
    let peers = [sid("PEER0001"), sid("PEER0002")];
    let id = node
        .query(
            at(100),
            &QueryRequest::new(Targets::services(&peers), b"status"),
        )
        .unwrap();
    let first = flush(&mut node, at(100));
    let direct = first
        .iter()
        .filter(|(d, f)| {
            matches!(d, Destination::Service { .. }) && kind_of(f) == MessageKind::Query
        })
        .count();
    assert_eq!(direct, 2, "one TCP query per target");
    assert_eq!(
        node.poll_timeout(),
        Some(at(350)),
        "the first retransmission"
    );

    // PEER0001 answers; at 350 ms only PEER0002 is asked again.
    let ruid = id.as_str().unwrap();
    node.handle_datagram(
        at(200),
        multicast_from(true),
        &response_frame("PEER0001", ruid, &me),
    )
    .unwrap();
    node.handle_timeout(at(350));
    let again = flush(&mut node, at(350));
    let queries: Vec<_> = again
        .iter()
        .filter(|(_, f)| kind_of(f) == MessageKind::Query)
        .collect();
    assert_eq!(queries.len(), 1, "{again:?}");
    let (dst, frame) = queries[0];
    assert!(matches!(dst, Destination::Group { send: Some(_) }));
    // The reference's service-level query: filter first, naming the one target.
    assert_eq!(
        field_names(frame),
        [
            "filter",
            "sid",
            "hid",
            "type",
            "channel",
            "protocols",
            "ruid",
            "data",
            "keepalive"
        ]
    );
    assert_eq!(filter_of(frame), ["PEER0002"]);
    let (m, _) = Message::parse(frame).unwrap();
    assert_eq!(m.ruid.unwrap().as_bytes(), ruid.as_bytes());

    // Its answer, then a second copy of it: one response event each, the copy ignored.
    for t in [400, 410] {
        node.handle_datagram(
            at(t),
            multicast_from(true),
            &response_frame("PEER0002", ruid, &me),
        )
        .unwrap();
    }
    let events: Vec<_> = std::iter::from_fn(|| node.poll_event()).collect();
    let responses = events
        .iter()
        .filter(|e| matches!(e, Event::Query(QueryEvent::Response { .. })))
        .count();
    assert_eq!(responses, 2, "{events:?}");
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Query(QueryEvent::Done {
                answered: 2,
                missing: 0,
                ..
            })
        )),
        "{events:?}"
    );
    node.handle_timeout(at(600));
    let after = flush(&mut node, at(600));
    assert!(
        after.iter().all(|(_, f)| kind_of(f) != MessageKind::Query),
        "no query after the end: {after:?}"
    );
    assert_eq!(node.stats().queries_retried, 1);
}

#[test]
fn retransmission_stops_at_the_timeout_and_the_reference_profile_sends_once() {
    let mut node = node_with_peers(&["PEER0001"]);
    let peers = [sid("PEER0001")];
    node.query(at(100), &QueryRequest::new(Targets::services(&peers), b"q"))
        .unwrap();
    flush(&mut node, at(100));
    let mut retried = Vec::new();
    while let Some(t) = node.poll_timeout() {
        node.handle_timeout(t);
        let frames = flush(&mut node, t);
        if frames.iter().any(|(_, f)| kind_of(f) == MessageKind::Query) {
            retried.push(t.as_millis());
        }
        if t.as_millis() > 2100 {
            break;
        }
    }
    // Every 250 ms until the timeout (2 s after 100 ms).
    assert_eq!(retried, [350, 600, 850, 1100, 1350, 1600, 1850]);

    let mut reference =
        LossNode::new(Config::reference(), HID, Counting::default(), 5, at(0)).unwrap();
    flush(&mut reference, at(0));
    reference
        .handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    flush(&mut reference, at(10));
    reference
        .query(at(100), &QueryRequest::new(Targets::services(&peers), b"q"))
        .unwrap();
    assert_eq!(flush(&mut reference, at(100)).len(), 1);
    reference.handle_timeout(at(29_000));
    let later = flush(&mut reference, at(29_000));
    assert!(
        later.iter().all(|(_, f)| kind_of(f) != MessageKind::Query),
        "{later:?}"
    );
    assert_eq!(reference.stats().queries_retried, 0);
}

#[test]
fn a_copy_of_a_query_is_answered_from_memory_over_its_own_protocol_without_the_policy() {
    let mut node = node_with_peers(&["PEER0001"]);
    let tcp = Source::tcp(ConnId(1), lan([127, 0, 0, 1]), true);
    let query = query_frame("PEER0001", "qPE#1.7", "status");
    node.handle_datagram(at(100), tcp, &query).unwrap();
    let first = responses(&flush(&mut node, at(100)));
    assert_eq!(first.len(), 1);
    assert!(matches!(first[0].0, Destination::Service { .. }));
    assert_eq!(first[0].1, "1:status");
    // The retransmitted copy comes by multicast: the same answer goes back by multicast.
    node.handle_datagram(at(400), multicast_from(true), &query)
        .unwrap();
    let again = responses(&flush(&mut node, at(400)));
    assert_eq!(again.len(), 1);
    assert!(matches!(again[0].0, Destination::Group { .. }));
    assert_eq!(again[0].1, "1:status");
    assert_eq!(node.policy_mut().calls, 1);
    let received = std::iter::from_fn(|| node.poll_event())
        .filter(|e| matches!(e, Event::QueryReceived { .. }))
        .count();
    assert_eq!(received, 1, "the application sees the query once");
    assert_eq!(node.stats().answers_repeated, 1);
}

#[test]
fn a_reference_asker_reusing_its_id_is_answered_anew_when_the_text_differs() {
    let mut node = node_with_peers(&["PEER0001"]);
    let tcp = Source::tcp(ConnId(1), lan([127, 0, 0, 1]), true);
    // Reference ids never change (spec Q3). Other text is a new query; the same text within
    // the memory gets the remembered answer.
    for (t, data, answer) in [(100, "a", "1:a"), (200, "b", "2:b"), (300, "a", "1:a")] {
        node.handle_datagram(at(t), tcp, &query_frame("PEER0001", "qPE#1", data))
            .unwrap();
        let sent = responses(&flush(&mut node, at(t)));
        assert_eq!(sent.len(), 1, "at {t}");
        assert_eq!(sent[0].1, answer, "at {t}");
    }
    assert_eq!(node.policy_mut().calls, 2);
    // Past the memory, the same text is a new query.
    node.handle_datagram(at(2400), tcp, &query_frame("PEER0001", "qPE#1", "a"))
        .unwrap();
    let sent = responses(&flush(&mut node, at(2400)));
    assert_eq!(sent[0].1, "3:a");
}

#[test]
fn a_late_copy_of_an_answered_query_with_a_counter_is_dropped_after_the_memory() {
    let mut node = node_with_peers(&["PEER0001"]);
    let tcp = Source::tcp(ConnId(1), lan([127, 0, 0, 1]), true);
    for n in 1..=3 {
        let ruid = format!("qPE#1.{n}");
        node.handle_datagram(at(100 * n), tcp, &query_frame("PEER0001", &ruid, "s"))
            .unwrap();
        assert_eq!(responses(&flush(&mut node, at(100 * n))).len(), 1);
    }
    // 20 s later (long after `answer_memory`), TCP hands over a copy of the first.
    node.handle_datagram(at(20_000), tcp, &query_frame("PEER0001", "qPE#1.1", "s"))
        .unwrap();
    assert!(responses(&flush(&mut node, at(20_000))).is_empty());
    assert_eq!(node.stats().copies_dropped, 1);
    // A new query of that asker is answered.
    node.handle_datagram(at(20_100), tcp, &query_frame("PEER0001", "qPE#1.4", "s"))
        .unwrap();
    assert_eq!(responses(&flush(&mut node, at(20_100))).len(), 1);
    // An id without a counter (or another asker's format) is never recognised that way.
    node.handle_datagram(at(20_200), tcp, &query_frame("PEER0001", "custom", "s"))
        .unwrap();
    node.handle_datagram(at(23_000), tcp, &query_frame("PEER0001", "custom", "s"))
        .unwrap();
    assert_eq!(responses(&flush(&mut node, at(23_000))).len(), 2);
    assert_eq!(node.policy_mut().calls, 6);
}

#[test]
fn a_service_silent_for_half_its_ttl_is_asked_for_a_heartbeat() {
    let mut node = node_with_peers(&["PEER0001"]);
    let mut probes = Vec::new();
    while let Some(t) = node.poll_timeout() {
        if t.as_millis() > 1800 {
            break;
        }
        node.handle_timeout(t);
        for (_, frame) in flush(&mut node, t) {
            if kind_of(&frame) == MessageKind::Discovery {
                assert_eq!(filter_of(&frame), ["PEER0001"]);
                assert_eq!(field_names(&frame)[0], "filter");
                probes.push(t.as_millis());
            }
        }
    }
    // Heard at 10 ms, ttl 2 s: probed at the heartbeats after 1010 ms, not before.
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|t| *t > 1010), "{probes:?}");
    assert_eq!(node.stats().silent_probes, probes.len() as u64);
}

#[test]
fn remembered_answers_give_way_to_new_sends_and_their_copies_are_then_not_answered() {
    let mut node = node_with_peers(&["PEER0001"]);
    let tcp = Source::tcp(ConnId(1), lan([127, 0, 0, 1]), true);
    // Four answers remembered: every slot of the payload pool holds one.
    for n in 1..=4 {
        let ruid = format!("r{n}");
        node.handle_datagram(at(100 + n), tcp, &query_frame("PEER0001", &ruid, "s"))
            .unwrap();
        assert_eq!(responses(&flush(&mut node, at(100 + n))).len(), 1);
    }
    // A send still finds room: the oldest remembered answer makes way.
    let peers = [sid("PEER0001")];
    node.send(
        at(200),
        &cluster_core::SendRequest::new(Targets::services(&peers), b"event"),
    )
    .unwrap();
    flush(&mut node, at(200));
    assert_eq!(node.stats().holds_reclaimed, 1);
    // A copy of that first query is not answered (the policy is not asked again); a copy of
    // the last still is, from memory.
    node.handle_datagram(at(300), tcp, &query_frame("PEER0001", "r1", "s"))
        .unwrap();
    assert!(responses(&flush(&mut node, at(300))).is_empty());
    node.handle_datagram(at(310), tcp, &query_frame("PEER0001", "r4", "s"))
        .unwrap();
    assert_eq!(responses(&flush(&mut node, at(310)))[0].1, "4:s");
    assert_eq!(node.policy_mut().calls, 4);
    assert_eq!(node.stats().copies_dropped, 1);
    assert_eq!(node.stats().answers_repeated, 1);
}

/// Runs the node's timers at `now`, sends out what they queued, and returns the sids it
/// reported lost.
fn tick(node: &mut LossNode, now: cluster_core::Instant) -> Vec<Sid> {
    node.handle_timeout(now);
    flush(node, now);
    let mut lost = Vec::new();
    while let Some(event) = node.poll_event() {
        if let Event::Lost { sid, .. } = event {
            lost.push(sid);
        }
    }
    lost
}

#[test]
fn a_late_tick_reads_the_backlog_before_expiring_anyone() {
    let peer = "peerAAAA";
    let mut node = node_with_peers(&[peer]);
    // The node runs on time until 1 s, the peer heard at 1 s for the last time on time.
    while let Some(due) = node.poll_timeout().filter(|d| d.as_millis() <= 1_000) {
        assert!(tick(&mut node, due).is_empty());
    }
    node.handle_datagram(at(1_000), multicast_from(true), &peer_heartbeat(1, peer))
        .unwrap();
    assert_eq!(node.stats().expiry_holds, 0, "ticks on time hold nothing");
    // Then the process is not run for 4 s (twice the ttl). The peer's heartbeats queued up
    // in the socket meanwhile; the driver runs the overdue timers first, then reads them.
    let late = 5_000;
    assert!(
        tick(&mut node, at(late)).is_empty(),
        "nobody expired at the late tick"
    );
    assert_eq!(node.stats().expiry_holds, 1);
    node.handle_datagram(at(late), multicast_from(true), &peer_heartbeat(1, peer))
        .unwrap();
    // Expiry is checked once the hold is over, and finds the peer alive.
    let check = node.poll_timeout().unwrap();
    assert!(
        check.as_millis() <= late + 100,
        "expiry checked again: {check:?}"
    );
    assert!(tick(&mut node, check).is_empty());
    assert!(node.service(peer.as_bytes()).is_some());
    // A peer that then stays silent still expires a ttl after its last frame, at the
    // heartbeat after it (lan_fast: 2 s, heartbeats every 400–600 ms).
    let mut lost_at = None;
    while lost_at.is_none() {
        let due = node.poll_timeout().unwrap();
        assert!(due.as_millis() < late + 4_000, "never expired");
        if tick(&mut node, due).contains(&sid(peer)) {
            lost_at = Some(due.as_millis());
        }
    }
    let lost_at = lost_at.unwrap();
    assert!(
        (late + 2_000..=late + 2_600).contains(&lost_at),
        "expired at {lost_at}"
    );
    assert_eq!(node.stats().expiry_holds, 1, "ticks on time hold nothing");
}

#[test]
fn a_driver_whose_ticks_are_always_late_still_expires_silent_services() {
    let peer = "peerAAAA";
    let mut node = node_with_peers(&[peer]);
    // A coarse loop: timers run every 1.5 s, whatever the node asked for (its heartbeats
    // are due every 400–600 ms, so every tick is late). The peer is silent after 10 ms.
    let mut lost_at = None;
    let mut now = 10;
    while lost_at.is_none() {
        now += 1_500;
        assert!(now < 10_000, "never expired");
        if tick(&mut node, at(now)).contains(&sid(peer)) {
            lost_at = Some(now);
        }
    }
    // Without holds the tick at 3,010 ms expires it (2 s after its last frame); a hold is
    // granted at most once per ttl, so it is at most one tick later.
    assert!(lost_at.unwrap() <= 4_510, "expired at {lost_at:?}");
    let holds = node.stats().expiry_holds;
    assert!((1..=3).contains(&holds), "{holds} holds");
}
