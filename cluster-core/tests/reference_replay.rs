//! This project's node plays node C of the captured reference scenarios r1 and r2: given the
//! same peers (their captured frames) and the same commands, it emits the reference's frames
//! byte for byte.

mod common;

use cluster_core::{
    Config, DefaultPolicy, Destination, Protocol, ProtocolList, QueryRequest, Resolver,
    SendRequest, TagOp, Targets,
};
use common::node::*;
use common::{hex, load, unhex};
use serde_json::Value;

struct Scenario {
    vectors: Value,
    node: TestNode,
    now: u64,
}

impl Scenario {
    /// Node C of `scenario` (sid, tags THREE, TCP port), having heard the join heartbeats of A
    /// and B from the captures.
    fn new(sid: &str, port: u16, peers: &[&str]) -> Self {
        let doc = load("captured.json");
        let mut config = Config::reference();
        config.add_tag("THREE").unwrap();
        let mut node = TestNode::with_sid(config, HID, sid, DefaultPolicy, 1, at(0)).unwrap();
        node.set_tcp_port(at(0), Some(port));
        let mut scenario = Self {
            vectors: doc["vectors"].clone(),
            node,
            now: 0,
        };
        scenario.transmits();
        for peer in peers {
            let frame = scenario.frame(peer);
            scenario.now += 10;
            scenario
                .node
                .handle_datagram(at(scenario.now), multicast_from(true), &frame)
                .unwrap();
        }
        scenario.now += 10_000;
        scenario.node.handle_timeout(at(scenario.now));
        scenario.transmits();
        events(&mut scenario.node);
        assert_eq!(scenario.node.known(), peers.len());
        scenario
    }

    fn frame(&self, name: &str) -> Vec<u8> {
        let vector = self
            .vectors
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("vector {name} missing"));
        unhex(vector["hex"].as_str().unwrap())
    }

    fn transmits(&mut self) -> Vec<(Destination, Vec<u8>)> {
        drain(&mut self.node, at(self.now))
    }

    /// The next transmit must be the captured frame `name`.
    fn expect(&mut self, name: &str) -> Destination {
        let frames = self.transmits();
        assert!(!frames.is_empty(), "{name}: nothing sent");
        assert_eq!(hex(&frames[0].1), hex(&self.frame(name)), "{name}");
        frames[0].0
    }
}

const R1_PEERS: [&str; 2] = ["r1-01-join-heartbeat-A", "r1-03-join-heartbeat-B"];

#[test]
fn r1_join_heartbeat_of_c_is_byte_exact() {
    let mut node = TestNode::with_sid(
        {
            let mut c = Config::reference();
            c.add_tag("THREE").unwrap();
            c
        },
        HID,
        "dYfVbc96",
        DefaultPolicy,
        1,
        at(0),
    )
    .unwrap();
    node.set_tcp_port(at(0), Some(45829));
    let frames = drain(&mut node, at(0));
    let doc = load("captured.json");
    let expected = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "r1-05-join-heartbeat-C")
        .unwrap();
    assert_eq!(hex(&frames[0].1), expected["hex"].as_str().unwrap());
}

#[test]
fn r1_broadcast_query_with_the_reference_id_is_byte_exact() {
    let mut c = Scenario::new("dYfVbc96", 45829, &R1_PEERS);
    let resolver = Resolver::resolve(&["ONE"]);
    let request = QueryRequest {
        broadcast: true,
        id: Some("qdf#6"),
        ..QueryRequest::new(Targets::resolve(&resolver), b"bq")
    };
    c.node.query(at(c.now), &request).unwrap();
    c.expect("r1-09-query-broadcast");
}

#[test]
fn r1_tags_change_heartbeat_is_byte_exact() {
    let mut c = Scenario::new("dYfVbc96", 45829, &R1_PEERS);
    assert!(
        c.node
            .update_tags(at(c.now), &[TagOp::Append("FOUR")])
            .unwrap()
    );
    c.node.handle_timeout(at(c.now));
    c.expect("r1-11-tags-change-heartbeat");
}

#[test]
fn r1_event_fallback_to_multicast_is_byte_exact() {
    let mut c = Scenario::new("dYfVbc96", 45829, &R1_PEERS);
    let b = [cluster_core::Sid::new(b"YzmWx756").unwrap()];
    c.node
        .send(
            at(c.now),
            &SendRequest::new(Targets::services(&b), b"via-service-send"),
        )
        .unwrap();
    let frames = c.transmits();
    let Destination::Service { send, via, .. } = frames[0].0 else {
        panic!()
    };
    assert_eq!(via, Protocol::Tcp);
    c.node.transport_failed(at(c.now), send);
    c.expect("r1-13-event-fallback-multicast");
}

#[test]
fn r1_ping_after_a_failed_send_is_byte_exact() {
    let mut c = Scenario::new("dYfVbc96", 45829, &R1_PEERS);
    let b = [cluster_core::Sid::new(b"YzmWx756").unwrap()];
    let request = SendRequest {
        protocols: Some(ProtocolList::new(&[Protocol::Tcp])),
        ..SendRequest::new(Targets::services(&b), b"x")
    };
    c.node.send(at(c.now), &request).unwrap();
    let frames = c.transmits();
    let Destination::Service { send, .. } = frames[0].0 else {
        panic!()
    };
    c.node.transport_failed(at(c.now), send);
    assert!(c.transmits().is_empty());
    c.now += 5000;
    c.node.handle_timeout(at(c.now));
    c.expect("r1-15-ping");
}

#[test]
fn r1_channel_1_event_with_ruid_over_tcp_is_byte_exact() {
    let mut c = Scenario::new("dYfVbc96", 45829, &R1_PEERS);
    let resolver = Resolver::resolve(&["TWO"]);
    let request = SendRequest {
        channel: 1,
        ruid: Some("r-42"),
        ..SendRequest::new(Targets::resolve(&resolver), b"chan1 data")
    };
    c.node.send(at(c.now), &request).unwrap();
    let dst = c.expect("r1-25-event-channel1-ruid-tcp");
    assert!(matches!(
        dst,
        Destination::Service {
            via: Protocol::Tcp,
            ..
        }
    ));
}

const R2_PEERS: [&str; 2] = ["r2-02-join-discovery-A", "r2-04-join-discovery-B"];

#[test]
fn r2_filtered_broadcast_event_is_byte_exact() {
    let mut c = Scenario::new("WkZ52555", 38567, &R2_PEERS);
    // The discoveries of A and B were answered: send those answers first.
    c.transmits();
    let resolver = Resolver::resolve(&["TWO"]);
    let request = SendRequest {
        broadcast: Some(true),
        ..SendRequest::new(Targets::resolve(&resolver), b"hi-bcast")
    };
    c.node.send(at(c.now), &request).unwrap();
    c.expect("r2-08-event-broadcast-filtered");
}

#[test]
fn r2_direct_event_and_failed_report_are_byte_exact() {
    let mut c = Scenario::new("WkZ52555", 38567, &R2_PEERS);
    let resolver = Resolver::resolve(&["TWO"]);
    c.node
        .send(
            at(c.now),
            &SendRequest::new(Targets::resolve(&resolver), b"hi-tcp"),
        )
        .unwrap();
    let Destination::Service { send, .. } = c.expect("r2-24-event-direct-tcp") else {
        panic!()
    };
    c.node.transport_ok(at(c.now), send);
    // Now one whose TCP fails: the multicast fallback, then the failed report.
    c.node
        .send(
            at(c.now),
            &SendRequest::new(Targets::resolve(&resolver), b"again"),
        )
        .unwrap();
    let frames = c.transmits();
    let Destination::Service { send, .. } = frames[0].0 else {
        panic!()
    };
    c.node.transport_failed(at(c.now), send);
    let frames = c.transmits();
    let Destination::Group { send: Some(send) } = frames[0].0 else {
        panic!()
    };
    c.node.transport_ok(at(c.now), send);
    c.expect("r2-14-failed-report");
}

#[test]
fn r2_disconnect_on_leave_is_byte_exact() {
    let mut c = Scenario::new("WkZ52555", 38567, &R2_PEERS);
    c.node
        .update_tags(at(c.now), &[TagOp::Append("FOUR")])
        .unwrap();
    c.node.handle_timeout(at(c.now));
    c.transmits();
    c.node.leave(at(c.now));
    c.expect("r2-16-disconnect-manual");
}
