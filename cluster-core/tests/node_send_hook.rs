//! The `on_send` hook and the payload pool: a send's payload is built in the pool's free slot,
//! the hook rewrites it there, and a full pool is reported before the hook is asked.

mod common;

use cluster_core::wire::{Message, MessageKind};
use cluster_core::{
    Config, Destination, Node, Outgoing, Policy, QueryError, QueryRequest, SendError, SendRequest,
    Sid, Targets, Verdict,
};
use common::node::*;

const PEER: &str = "PEER0001";

/// Rejects sends whose data is `no`, and writes every other payload's data in upper case.
#[derive(Debug, Default)]
struct Shouting {
    asked: u32,
}

impl Policy for Shouting {
    fn on_send(&mut self, outgoing: &mut Outgoing<'_>) -> Verdict {
        self.asked += 1;
        let data = outgoing
            .payload
            .data()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if data == b"NO" {
            return Verdict::Reject;
        }
        outgoing.payload.set_data(Some(&data)).unwrap();
        Verdict::Accept
    }
}

type ShoutingNode = Node<Shouting, 32, 512>;

/// A node that knows PEER0001, its start-up frames drained.
fn node_with_peer() -> ShoutingNode {
    let mut node =
        ShoutingNode::new(Config::reference(), HID, Shouting::default(), 3, at(0)).unwrap();
    transmits(&mut node, at(0));
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, PEER))
        .unwrap();
    node.handle_timeout(at(1010));
    transmits(&mut node, at(1010));
    while node.poll_event().is_some() {}
    node.policy_mut().asked = 0;
    node
}

/// The frames the node sends now, each direct send reported delivered (which frees its
/// payload).
fn transmits(node: &mut ShoutingNode, now: cluster_core::Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut delivered = Vec::new();
    let mut buf = vec![0u8; ShoutingNode::TRANSMIT_BUF];
    while let Some(t) = node.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
        if let Destination::Service { send, .. } = t.dst {
            delivered.push(send);
        }
    }
    for send in delivered {
        node.transport_ok(now, send);
    }
    out
}

fn data_of(frame: &[u8]) -> (MessageKind, String) {
    let (m, _) = Message::parse(frame).unwrap();
    let data = m.data.map(|d| d.to_str().unwrap().to_owned());
    (m.kind.unwrap(), data.unwrap_or_default())
}

#[test]
fn the_hook_rewrites_the_payload_that_is_sent() {
    let mut node = node_with_peer();
    let peers = [Sid::new(PEER.as_bytes()).unwrap()];
    node.send(
        at(2000),
        &SendRequest::new(Targets::services(&peers), b"hi"),
    )
    .unwrap();
    node.query(
        at(2000),
        &QueryRequest::new(Targets::services(&peers), b"up?"),
    )
    .unwrap();
    let sent: Vec<_> = transmits(&mut node, at(2000))
        .iter()
        .map(|f| data_of(f))
        .collect();
    assert!(
        sent.contains(&(MessageKind::Event, "HI".to_owned())),
        "{sent:?}"
    );
    assert!(
        sent.contains(&(MessageKind::Query, "UP?".to_owned())),
        "{sent:?}"
    );
    assert_eq!(node.policy_mut().asked, 2);
}

#[test]
fn a_rejected_send_leaves_its_payload_slot_free() {
    let mut node = node_with_peer();
    let peers = [Sid::new(PEER.as_bytes()).unwrap()];
    for _ in 0..10 {
        assert_eq!(
            node.send(
                at(2000),
                &SendRequest::new(Targets::services(&peers), b"no")
            ),
            Err(SendError::Rejected)
        );
    }
    // Four sends (the pool's slots) still fit, untransmitted.
    for n in 0..4 {
        let data = format!("event {n}");
        node.send(
            at(2000),
            &SendRequest::new(Targets::services(&peers), data.as_bytes()),
        )
        .unwrap();
    }
    let sent = transmits(&mut node, at(2000));
    assert_eq!(sent.len(), 4);
    assert_eq!(
        data_of(&sent[3]),
        (MessageKind::Event, "EVENT 3".to_owned())
    );
}

#[test]
fn a_full_payload_pool_is_reported_before_the_hook_is_asked() {
    let mut node = node_with_peer();
    let peers = [Sid::new(PEER.as_bytes()).unwrap()];
    let to_peer = |data: &'static [u8]| SendRequest::new(Targets::services(&peers), data);
    let mut queued = 0;
    while node.send(at(2000), &to_peer(b"fill")).is_ok() {
        queued += 1;
    }
    assert_eq!(queued, 4, "one payload slot per queued send");
    node.policy_mut().asked = 0;
    // The hook would reject both; the full pool wins, and the hook is not asked.
    assert_eq!(node.send(at(2000), &to_peer(b"no")), Err(SendError::Full));
    assert_eq!(
        node.query(
            at(2000),
            &QueryRequest::new(Targets::services(&peers), b"no")
        ),
        Err(QueryError::Send(SendError::Full))
    );
    assert_eq!(node.policy_mut().asked, 0);
    assert_eq!(transmits(&mut node, at(2000)).len(), 4);
    // With room again, the hook decides.
    assert_eq!(
        node.send(at(2000), &to_peer(b"no")),
        Err(SendError::Rejected)
    );
    assert_eq!(
        node.query(
            at(2000),
            &QueryRequest::new(Targets::services(&peers), b"no")
        ),
        Err(QueryError::Send(SendError::Rejected))
    );
    assert_eq!(node.policy_mut().asked, 2);
}
