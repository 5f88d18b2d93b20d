//! Building a node in place: `Node::empty` (a `const`, for statics) and `Node::start`, which
//! joins exactly as `Node::new` does, and joins again after `leave`.

mod common;

use cluster_core::{
    Config, ConfigError, DefaultPolicy, Destination, Node, QueryError, QueryRequest, SendError,
    SendRequest, Targets,
};
use common::node::*;

/// An empty node in a `static`: `Node::empty` is `const`.
static EMPTY: Node<DefaultPolicy, 4, 64> = Node::empty(DefaultPolicy);

fn config() -> Config {
    let mut config = Config::reference();
    config.add_tag("ONE").unwrap();
    config
}

/// Every frame and event of a short life: join, a peer, a query, a send, a timeout, leave.
fn script(node: &mut TestNode) -> Vec<String> {
    let mut log = Vec::new();
    let mut record = |node: &mut TestNode, now: u64| {
        for (dst, frame) in drain(node, at(now)) {
            log.push(format!("{now} {dst:?} {}", common::hex(&frame)));
        }
        for event in events(node) {
            log.push(format!("{now} {event:?}"));
        }
    };
    record(node, 0);
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(2, "PEER0001"))
        .unwrap();
    record(node, 10);
    node.handle_timeout(at(1010));
    record(node, 1010);
    let everyone = cluster_core::Resolver::resolve(&[]);
    node.query(
        at(2000),
        &QueryRequest::new(Targets::resolve(&everyone), b"status"),
    )
    .unwrap();
    node.send(
        at(2000),
        &SendRequest::new(Targets::resolve(&everyone), b"hi"),
    )
    .unwrap();
    record(node, 2000);
    node.handle_timeout(at(200_000));
    record(node, 200_000);
    node.leave(at(200_001));
    record(node, 200_001);
    log
}

#[test]
fn an_empty_node_does_nothing_until_started() {
    let mut node = TestNode::empty(DefaultPolicy);
    assert!(node.poll_timeout().is_none());
    assert!(drain(&mut node, at(0)).is_empty());
    node.handle_datagram(at(10), multicast_from(true), &peer_heartbeat(1, "PEER0001"))
        .unwrap();
    node.handle_timeout(at(5000));
    assert_eq!(node.known(), 0);
    assert!(drain(&mut node, at(5000)).is_empty());
    assert!(events(&mut node).is_empty());
    let everyone = cluster_core::Resolver::resolve(&[]);
    assert_eq!(
        node.send(at(5000), &SendRequest::new(Targets::none(), b"hi")),
        Err(SendError::NotStarted)
    );
    assert_eq!(
        node.query(
            at(5000),
            &QueryRequest::new(Targets::resolve(&everyone), b"status")
        ),
        Err(QueryError::Send(SendError::NotStarted))
    );
    assert!(!node.has_left());
    assert!(node.sid().is_empty());
    assert_eq!(EMPTY.known(), 0);
}

#[test]
fn start_fills_an_empty_node_exactly_as_new_builds_one() {
    let mut built = TestNode::new(config(), HID, DefaultPolicy, 42, at(0)).unwrap();
    let mut started = TestNode::empty(DefaultPolicy);
    started.start(config(), HID, 42, at(0)).unwrap();
    assert_eq!(started.sid(), built.sid());
    assert_eq!(started.heartbeat_interval(), built.heartbeat_interval());
    assert_eq!(started.tags(), built.tags());
    let log = script(&mut started);
    assert!(log.len() >= 8, "{log:#?}");
    assert_eq!(log, script(&mut built));
}

#[test]
fn start_after_leave_joins_again_with_a_new_sid() {
    let mut node = TestNode::new(config(), HID, DefaultPolicy, 1, at(0)).unwrap();
    let old_script = script(&mut node);
    assert!(node.has_left());
    let old_sid = *node.sid();
    let sends = node.stats();

    node.start(config(), HID, 2, at(300_000)).unwrap();
    assert!(!node.has_left());
    assert_ne!(*node.sid(), old_sid);
    assert_eq!(node.known(), 0);
    // The counters go on.
    assert!(node.stats().frames_accepted >= sends.frames_accepted);
    // The join: a heartbeat with props and tags, then a discovery, to the group.
    let join = drain(&mut node, at(300_000));
    let kinds: Vec<_> = join.iter().map(|(_, f)| kind_of(f)).collect();
    assert_eq!(
        kinds,
        [
            cluster_core::wire::MessageKind::Heartbeat,
            cluster_core::wire::MessageKind::Discovery
        ]
    );
    assert!(
        join.iter()
            .all(|(dst, _)| matches!(dst, Destination::Group { .. }))
    );
    // A fresh node from the same seed behaves the same from here, but for the clock.
    let mut fresh = TestNode::new(config(), HID, DefaultPolicy, 2, at(300_000)).unwrap();
    assert_eq!(*fresh.sid(), *node.sid());
    assert_eq!(drain(&mut fresh, at(300_000)), join);
    assert!(!old_script.is_empty());
}

#[test]
fn a_refused_start_leaves_the_node_unchanged() {
    let mut node = TestNode::new(config(), HID, DefaultPolicy, 1, at(0)).unwrap();
    let sid = *node.sid();
    let mut bad = config();
    bad.ttl = std::time::Duration::ZERO;
    assert_eq!(node.start(bad, HID, 2, at(10)), Err(ConfigError::ZeroTtl));
    assert_eq!(
        node.start(config(), "", 2, at(10)),
        Err(ConfigError::BadHid)
    );
    assert_eq!(*node.sid(), sid);
    assert_eq!(drain(&mut node, at(10)).len(), 2);
}
