//! `Node::poll_event_with` lends the same events, in the same order, as `Node::poll_event`
//! returns: two identical runs of two nodes exchanging messages and queries, one drained
//! each way.

use std::net::SocketAddr;

use cluster_core::{
    Config, ConnId, DefaultPolicy, Destination, Event, Instant, Node, QueryEvent, QueryRequest,
    Resolver, SendRequest, Source, Targets,
};

type TestNode = Node<DefaultPolicy, 8, 128>;

#[derive(Clone, Copy)]
enum Drain {
    ByValue,
    Lent,
}

fn drain(node: &mut TestNode, how: Drain) -> Vec<Event<128>> {
    match how {
        Drain::ByValue => std::iter::from_fn(|| node.poll_event()).collect(),
        Drain::Lent => {
            std::iter::from_fn(|| node.poll_event_with(|_, event| event.clone())).collect()
        }
    }
}

/// Every event each node reported, in order.
fn run(how: Drain) -> [Vec<Event<128>>; 2] {
    let hid = "02:fc:00:00:00:01";
    let start = Instant::ZERO;
    let mut nodes = [1, 2].map(|seed| {
        let mut node = TestNode::new(Config::lan_fast(), hid, DefaultPolicy, seed, start).unwrap();
        node.set_tcp_port(start, Some(40_000 + u16::try_from(seed).unwrap()));
        assert!(node.subscribe(7));
        node
    });
    let host: SocketAddr = "127.0.0.1:23000".parse().unwrap();
    let mut buf = vec![0u8; TestNode::TRANSMIT_BUF];
    let mut now = start;
    let mut log: [Vec<Event<128>>; 2] = Default::default();
    let everyone = Resolver::resolve(&[]);
    for step in 0..400 {
        if step % 20 == 10 && nodes[0].known() > 0 {
            let text = format!("message {step}");
            let request = SendRequest {
                broadcast: Some(step % 40 == 10),
                channel: 7,
                ..SendRequest::new(Targets::resolve(&everyone), text.as_bytes())
            };
            nodes[0].send(now, &request).unwrap();
            let query = QueryRequest::new(Targets::resolve(&everyone), b"status");
            nodes[1].query(now, &query).unwrap();
        }
        for from in 0..2 {
            let to = 1 - from;
            while let Some(transmit) = nodes[from].poll_transmit(now, &mut buf) {
                let frame = buf[..transmit.len].to_vec();
                let source = match transmit.dst {
                    Destination::Group { .. } => Source::multicast(host, true),
                    Destination::Service { .. } => Source::tcp(ConnId(from as u32), host, true),
                };
                if let Some(id) = transmit.dst.send_id() {
                    nodes[from].transport_ok(now, id);
                }
                let _ = nodes[to].handle_datagram(now, source, &frame);
            }
            log[from].extend(drain(&mut nodes[from], how));
        }
        let next = nodes
            .iter()
            .filter_map(Node::poll_timeout)
            .min()
            .unwrap_or(now);
        now = next.max(now.saturating_add_millis(5));
        for node in &mut nodes {
            node.handle_timeout(now);
        }
    }
    log
}

#[test]
fn lent_events_are_the_events_returned_by_value() {
    let by_value = run(Drain::ByValue);
    let lent = run(Drain::Lent);
    assert_eq!(by_value, lent);
    let messages = lent[1]
        .iter()
        .filter(|e| matches!(e, Event::Message { payload, .. } if payload.data_str().is_some_and(|d| d.starts_with("message "))))
        .count();
    let responses = lent[1]
        .iter()
        .filter(|e| matches!(e, Event::Query(QueryEvent::Response { payload, .. }) if payload.data().is_some()))
        .count();
    let received = lent[0]
        .iter()
        .filter(|e| matches!(e, Event::QueryReceived { payload, .. } if payload.data() == Some(b"status")))
        .count();
    assert!(messages >= 10, "{messages} messages");
    assert!(responses >= 10, "{responses} responses");
    assert!(received >= 10, "{received} queries received");
}
