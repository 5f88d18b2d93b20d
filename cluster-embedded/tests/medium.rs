//! Several smoltcp stacks in one process, wired by an in-memory Ethernet hub: every frame a
//! port transmits reaches every other port, in order. Time is virtual (the loop jumps to the
//! earliest deadline), seeds are fixed, so every run sends the same bytes. No root, no
//! sockets of the OS. The hub and the hosts are in `common/`.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;

use cluster_core::wire::Message;
use cluster_core::{
    Config, Event, LostReason, Node, Protocol, ProtocolList, QueryEvent, QueryRequest, SendRequest,
    Targets,
};
use cluster_embedded::{
    EVENT_HOLD, Error, Group, MacHid, UdpBuffers, core_instant, firmware_config,
};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpCidr, IpProtocol, Ipv4Packet,
};

use common::{Answer, Hub, Lan, Port, TestDriver, cluster_datagrams, config, ip, leak, mac, stack};

// ----- the tests -----

#[test]
fn three_stacks_discover_each_other_with_addresses_tags_and_protocols() {
    let mut lan = Lan::new(&["a", "b", "c"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    for a in 0..3 {
        for b in (0..3).filter(|b| *b != a) {
            let sid = lan.sid(b);
            let service = lan.hosts[a].driver.node().service(sid.as_bytes()).unwrap();
            assert_eq!(service.ip(), Some(IpAddr::V4(lan.hosts[b].ip)));
            assert!(
                !service.is_local(),
                "remote mode: another address is not local"
            );
            assert_eq!(
                service.protocols(),
                ProtocolList::new(&[Protocol::Multicast])
            );
            assert_eq!(service.tags().as_slice(), [format!("host{b}").as_str()]);
            assert_eq!(service.hid(), MacHid::new(mac(b)).as_str());
        }
    }
    // Discovery took a handful of frames, not a heartbeat period: everyone joined at once.
    assert!(
        lan.now < Instant::from_millis(1_000 + 600),
        "now {}",
        lan.now
    );
}

#[test]
fn a_query_gets_the_answer_of_the_queried_node() {
    let mut lan = Lan::new(&["temperature 21.5", "b", "c"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let target = [lan.sid(0)];
    let now = lan.now;
    let id = lan.hosts[1]
        .driver
        .query(
            now,
            &QueryRequest::new(Targets::services(&target), b"status?"),
        )
        .unwrap();
    lan.run_until(Duration::from_secs(3), |lan| {
        lan.hosts[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::Query(QueryEvent::Done { .. })))
    });
    let events = &lan.hosts[1].events;
    let response = events
        .iter()
        .find_map(|e| match e {
            Event::Query(QueryEvent::Response {
                id: i,
                sid,
                payload,
            }) if *i == id => Some((*sid, payload.data_str().map(str::to_owned))),
            _ => None,
        })
        .expect("a response");
    assert_eq!(response, (lan.sid(0), Some("temperature 21.5".to_owned())));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Query(QueryEvent::Done {
            answered: 1,
            missing: 0,
            timed_out: false,
            ..
        })
    )));
    // The queried node saw the query, and only it answered (the query went by multicast
    // with a filter naming it).
    let asker = lan.sid(1);
    assert!(lan.hosts[0].events.iter().any(|e| matches!(
        e,
        Event::QueryReceived { sid, payload, .. }
            if *sid == asker && payload.data() == Some(&b"status?"[..])
    )));
    assert!(
        !lan.hosts[2]
            .events
            .iter()
            .any(|e| matches!(e, Event::QueryReceived { .. }))
    );
    // Both sides ran without giving up a frame or refusing a direct send.
    for host in &lan.hosts {
        let stats = host.driver.stats();
        assert_eq!(stats.frames_unsendable, 0);
        assert_eq!(
            stats.direct_sends_refused, 0,
            "a c-only node never asks for t"
        );
    }
}

#[test]
fn an_event_reaches_its_target_only() {
    let mut lan = Lan::new(&["a", "b", "c"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let target = [lan.sid(2)];
    let now = lan.now;
    lan.hosts[0]
        .driver
        .send(
            now,
            &SendRequest::new(Targets::services(&target), b"hello c"),
        )
        .unwrap();
    let from = lan.sid(0);
    lan.run_until(Duration::from_secs(1), |lan| {
        lan.hosts[2].events.iter().any(|e| {
            matches!(
                e,
                Event::Message { sid, payload, .. }
                    if *sid == from && payload.data() == Some(&b"hello c"[..])
            )
        })
    });
    assert!(
        !lan.hosts[1]
            .events
            .iter()
            .any(|e| matches!(e, Event::Message { .. }))
    );
}

/// Host 0 sends host 1 five messages, which reach host 1's socket together; host 1's node
/// holds `EVENTS` = 3 (the default) events with data.
fn burst_of_five() -> Lan {
    let mut lan = Lan::new(&["a", "b"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let target = [lan.sid(1)];
    let now = lan.now;
    for text in ["m1", "m2", "m3", "m4", "m5"] {
        let host = &mut lan.hosts[0];
        let request = SendRequest::new(Targets::services(&target), text.as_bytes());
        host.driver.send(now, &request).unwrap();
        host.driver.poll(now, &mut host.iface, &mut host.sockets);
        host.iface.poll(now, &mut host.port, &mut host.sockets);
        assert!(host.driver.is_idle());
    }
    let host = &mut lan.hosts[1];
    host.iface.poll(now, &mut host.port, &mut host.sockets);
    lan
}

/// The messages' texts and the dropped count among host 1's events, read now.
fn read_messages(lan: &mut Lan) -> (Vec<Vec<u8>>, u32) {
    let mut texts = Vec::new();
    let mut dropped = 0;
    while let Some(event) = lan.hosts[1].driver.poll_event() {
        match event {
            Event::Message { payload, .. } => texts.push(payload.data().unwrap().to_vec()),
            Event::Dropped { count } => dropped += count,
            _ => {}
        }
    }
    (texts, dropped)
}

/// The driver holds no events of its own: those with data wait in the node, which keeps
/// `EVENTS` of them; while its queue is full the rest of a burst waits in the socket, and
/// nothing is dropped when the application reads its events and polls again.
#[test]
fn a_burst_beyond_the_nodes_events_waits_in_the_socket_until_they_are_read() {
    let mut lan = burst_of_five();
    let now = lan.now;
    let host = &mut lan.hosts[1];
    let next = host.driver.poll(now, &mut host.iface, &mut host.sockets);
    assert_eq!(next, Some(now), "poll again once the events are read");
    assert_eq!(host.driver.stats().holds, 1);
    assert_eq!(
        read_messages(&mut lan),
        (vec![b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()], 0)
    );
    let host = &mut lan.hosts[1];
    host.driver.poll(now, &mut host.iface, &mut host.sockets);
    assert_eq!(
        read_messages(&mut lan),
        (vec![b"m4".to_vec(), b"m5".to_vec()], 0)
    );
    assert_eq!(lan.hosts[1].driver.node().stats().events_dropped, 0);
}

/// An application that does not read its events holds the datagrams back for
/// `EVENT_HOLD` at most: then the node reads them again (staying current on its peers) and
/// drops the data events beyond its queue, reported as `Dropped`.
#[test]
fn unread_events_hold_the_socket_for_event_hold_at_most() {
    let mut lan = burst_of_five();
    let now = lan.now;
    let host = &mut lan.hosts[1];
    let received = host.driver.stats().datagrams_received;
    assert_eq!(
        host.driver.poll(now, &mut host.iface, &mut host.sockets),
        Some(now),
        "a new hold: read the events, then poll again"
    );
    // The events were not read: the next poll asks to run again when the hold ends (the
    // node's own deadline is later), not at once, so the application does not spin.
    assert!(node_deadline(&lan, 1) > now + EVENT_HOLD);
    let host = &mut lan.hosts[1];
    let later = now + Duration::from_millis(30);
    assert_eq!(
        host.driver.poll(later, &mut host.iface, &mut host.sockets),
        Some(now + EVENT_HOLD)
    );
    let almost = now + EVENT_HOLD - Duration::from_millis(1);
    assert_eq!(
        host.driver.poll(almost, &mut host.iface, &mut host.sockets),
        Some(now + EVENT_HOLD)
    );
    assert_eq!(host.driver.stats().datagrams_received, received + 3);
    let after = now + EVENT_HOLD;
    host.driver.poll(after, &mut host.iface, &mut host.sockets);
    assert_eq!(host.driver.stats().datagrams_received, received + 5);
    assert_eq!(
        read_messages(&mut lan),
        (vec![b"m1".to_vec(), b"m2".to_vec(), b"m3".to_vec()], 2)
    );
    assert_eq!(lan.hosts[1].driver.node().stats().events_dropped, 2);
}

/// The node's next deadline on host `host`.
fn node_deadline(lan: &Lan, host: usize) -> Instant {
    let deadline = lan.hosts[host].driver.node().poll_timeout().unwrap();
    Instant::from_millis(deadline.as_millis() as i64)
}

/// While a hold goes on unread, the poll asks to run again at the node's own deadline when
/// that comes before the hold's end (its timers run on time), and handles it then.
#[test]
fn a_hold_does_not_delay_the_nodes_deadline() {
    let mut lan = burst_of_five();
    let deadline = node_deadline(&lan, 1);
    // Start the hold 40 ms before the node's deadline (or now, if that is sooner).
    let start = lan.now.max(deadline - Duration::from_millis(40));
    assert!(deadline > start + Duration::from_millis(10));
    let host = &mut lan.hosts[1];
    assert_eq!(
        host.driver.poll(start, &mut host.iface, &mut host.sockets),
        Some(start)
    );
    let unread = start + Duration::from_millis(10);
    assert_eq!(
        host.driver.poll(unread, &mut host.iface, &mut host.sockets),
        Some(deadline),
        "the node's deadline, before the hold's end"
    );
    host.driver
        .poll(deadline, &mut host.iface, &mut host.sockets);
    assert!(
        node_deadline(&lan, 1) > deadline,
        "the deadline was handled"
    );
    assert_eq!(lan.hosts[1].driver.stats().holds, 1, "the hold goes on");
}

#[test]
fn a_node_that_leaves_is_lost_with_reason_disconnect() {
    let mut lan = Lan::new(&["a", "b", "c"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let now = lan.now;
    lan.hosts[2].driver.leave(now);
    let gone = lan.sid(2);
    lan.run_until(Duration::from_millis(100), |lan| {
        lan.lost(0, &gone).is_some() && lan.lost(1, &gone).is_some()
    });
    assert_eq!(lan.lost(0, &gone), Some(LostReason::Disconnected));
    assert_eq!(lan.lost(1, &gone), Some(LostReason::Disconnected));
    // The leaver forgot everyone, and left the group.
    for other in [lan.sid(0), lan.sid(1)] {
        assert_eq!(lan.lost(2, &other), Some(LostReason::Left));
    }
    assert!(lan.hosts[2].driver.has_left());
    assert!(!lan.hosts[2].iface.has_multicast_group(Group::CLUSTER.addr));
    // It stays quiet afterwards, while the others carry on.
    let sent = lan.hosts[2].driver.stats().datagrams_sent;
    lan.runs_for(Duration::from_secs(3));
    assert_eq!(lan.hosts[2].driver.stats().datagrams_sent, sent);
    let now = lan.now;
    let leaver = &mut lan.hosts[2];
    let next = leaver
        .driver
        .poll(now, &mut leaver.iface, &mut leaver.sockets);
    assert_eq!(next, None, "no deadline after leaving");
    assert!(lan.lost(0, &lan.sid(1)).is_none());
}

#[test]
fn a_silent_node_expires_after_its_ttl() {
    let mut lan = Lan::new(&["a", "b"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    lan.hub.borrow_mut().cut[1] = true;
    let gone = lan.sid(1);
    let cut_at = lan.now;
    lan.run_until(Duration::from_secs(5), |lan| lan.lost(0, &gone).is_some());
    assert_eq!(lan.lost(0, &gone), Some(LostReason::Expired));
    // lan_fast: ttl 2 s, checked at each heartbeat (at most 0.6 s apart).
    let after = lan.now - cut_at;
    assert!(
        after <= Duration::from_millis(2_700),
        "expired after {after}"
    );
}

#[test]
fn frames_leave_from_the_cluster_port_with_ttl_1_and_igmp_joins_the_group() {
    let mut lan = Lan::new(&["a", "b"]);
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let hub = lan.hub.borrow();
    let datagrams = cluster_datagrams(&hub.log);
    assert!(
        datagrams.len() >= 4,
        "join heartbeat and discovery from each"
    );
    for (from, ttl, src, src_port, payload) in &datagrams {
        assert_eq!(*ttl, 1, "remote mode: multicast TTL 1 (spec 1.1)");
        assert_eq!(*src, ip(*from));
        assert_eq!(*src_port, 23000, "sent from the bound socket (spec 1.1)");
        // Each datagram is one whole frame that decodes, advertising `c` only.
        let (message, used) = Message::parse(payload).unwrap();
        assert_eq!(used, payload.len());
        let protocols: Vec<&[u8]> = message.protocols.unwrap().iter().collect();
        assert_eq!(protocols, [b"c"]);
    }
    // The first cluster frames of a host are its join heartbeat then its discovery (5.3).
    for host in 0..2 {
        let kinds: Vec<_> = datagrams
            .iter()
            .filter(|d| d.0 == host)
            .take(2)
            .map(|d| Message::parse(&d.4).unwrap().0.kind.unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                cluster_core::wire::MessageKind::Heartbeat,
                cluster_core::wire::MessageKind::Discovery
            ]
        );
    }
    // Each host announced its membership with IGMP.
    for host in 0..2 {
        assert!(
            hub.log.iter().any(|(from, frame)| {
                let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
                *from == host
                    && eth.ethertype() == EthernetProtocol::Ipv4
                    && Ipv4Packet::new_checked(eth.payload())
                        .unwrap()
                        .next_header()
                        == IpProtocol::Igmp
            }),
            "IGMP report from host {host}"
        );
    }
}

#[test]
fn the_same_seeds_send_the_same_bytes() {
    let run = || {
        let mut lan = Lan::new(&["a", "b", "c"]);
        lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
        lan.runs_for(Duration::from_secs(2));
        let log = lan.hub.borrow().log.clone();
        (lan.now, log)
    };
    let (first_end, first) = run();
    let (second_end, second) = run();
    assert_eq!(first_end, second_end);
    assert!(first == second, "the medium is deterministic");
}

#[test]
fn a_full_transmit_buffer_delays_frames_without_losing_them() {
    // One datagram of room: the join heartbeat fits, the discovery waits for the next poll.
    let hub = Rc::new(RefCell::new(Hub::default()));
    let now = Instant::from_millis(0);
    let mut hosts = Vec::new();
    for index in 0..2 {
        hub.borrow_mut().queues.push(VecDeque::new());
        hub.borrow_mut().cut.push(false);
        let mut port = Port {
            hub: Rc::clone(&hub),
            index,
        };
        let mut iface = Interface::new(
            IfaceConfig::new(EthernetAddress(mac(index)).into()),
            &mut port,
            now,
        );
        iface.update_ip_addrs(|addrs| addrs.push(IpCidr::new(ip(index).into(), 24)).unwrap());
        let storage: &'static mut [SocketStorage<'static>] =
            Box::leak(Box::new([SocketStorage::EMPTY; 1]));
        let buffers: &'static mut UdpBuffers<1, 2048, 2048> =
            Box::leak(Box::new(UdpBuffers::new()));
        let mut sockets = SocketSet::new(storage);
        let socket = sockets.add(buffers.socket());
        let node = leak(Node::new(
            config("tiny"),
            MacHid::new(mac(index)).as_str(),
            Answer::new("x"),
            index as u64,
            core_instant(now),
        ));
        let driver = Box::new(
            TestDriver::new(node, Group::CLUSTER, &mut iface, &mut sockets, socket).unwrap(),
        );
        hosts.push((port, iface, sockets, driver, Vec::new()));
    }
    let (_, iface, sockets, driver, _) = &mut hosts[0];
    let first = driver.poll(now, iface, sockets);
    assert_eq!(
        first,
        Some(now),
        "a frame waits for room: poll again at once"
    );
    assert!(!driver.is_idle());
    let mut now = now;
    for _ in 0..200 {
        for (port, iface, sockets, driver, events) in &mut hosts {
            iface.poll(now, port, sockets);
            driver.poll(now, iface, sockets);
            iface.poll(now, port, sockets);
            while let Some(event) = driver.poll_event() {
                events.push(event);
            }
        }
        now += Duration::from_millis(10);
    }
    for (_, _, _, driver, events) in &hosts {
        assert!(driver.stats().send_stalls > 0);
        assert_eq!(driver.stats().frames_unsendable, 0);
        assert!(events.iter().any(|e| matches!(e, Event::Discovered { .. })));
    }
    // The node writes into the room reserved in the socket only when it has a frame: every
    // datagram is one whole frame, none is empty.
    let datagrams = cluster_datagrams(&hub.borrow().log);
    assert!(datagrams.len() >= 4);
    for (.., payload) in &datagrams {
        let (_, used) = Message::parse(payload).expect("a whole frame");
        assert_eq!(used, payload.len());
    }
}

#[test]
fn a_socket_that_cannot_hold_tx_bytes_is_refused() {
    let hub = Rc::new(RefCell::new(Hub::default()));
    hub.borrow_mut().queues.push(VecDeque::new());
    hub.borrow_mut().cut.push(false);
    let now = Instant::from_millis(0);
    let mut port = Port {
        hub: Rc::clone(&hub),
        index: 0,
    };
    let mut iface = Interface::new(
        IfaceConfig::new(EthernetAddress(mac(0)).into()),
        &mut port,
        now,
    );
    let node = || {
        leak(Node::new(
            config("small"),
            MacHid::new(mac(0)).as_str(),
            Answer::new("x"),
            1,
            core_instant(now),
        ))
    };
    // The default driver reserves `TRANSMIT_BUF` (1401) bytes in the socket for each frame.
    const TX: usize = Node::<Answer>::TRANSMIT_BUF;
    let storage = Box::leak(Box::new([SocketStorage::EMPTY; 2]));
    let mut sockets = SocketSet::new(&mut storage[..]);
    let short: &'static mut UdpBuffers<2, 2048, { TX - 1 }> =
        Box::leak(Box::new(UdpBuffers::new()));
    let socket = sockets.add(short.socket());
    let refused = TestDriver::new(node(), Group::CLUSTER, &mut iface, &mut sockets, socket);
    assert_eq!(refused.unwrap_err(), Error::SocketTooSmall);
    assert!(!iface.has_multicast_group(Group::CLUSTER.addr));
    // Exactly `TX` bytes will do.
    let exact: &'static mut UdpBuffers<2, 2048, TX> = Box::leak(Box::new(UdpBuffers::new()));
    let socket = sockets.add(exact.socket());
    let mut driver =
        TestDriver::new(node(), Group::CLUSTER, &mut iface, &mut sockets, socket).unwrap();
    driver.poll(now, &mut iface, &mut sockets);
    iface.poll(now, &mut port, &mut sockets);
    assert_eq!(driver.stats().datagrams_sent, 1, "the join heartbeat");
}

#[test]
fn nodes_in_local_mode_or_advertising_tcp_are_refused() {
    let hub = Rc::new(RefCell::new(Hub::default()));
    hub.borrow_mut().queues.push(VecDeque::new());
    hub.borrow_mut().cut.push(false);
    let now = Instant::from_millis(0);
    let (_port, mut iface, mut sockets, socket) = stack(&hub, 0, now);
    let hid = MacHid::new(mac(0));
    let make = |config: Config| -> &'static mut Node<Answer> {
        leak(Node::new(
            config,
            hid.as_str(),
            Answer::new("x"),
            1,
            core_instant(now),
        ))
    };

    let mut local = firmware_config(Config::lan_fast());
    local.remote = false;
    let refused = TestDriver::new(
        make(local),
        Group::CLUSTER,
        &mut iface,
        &mut sockets,
        socket,
    );
    assert_eq!(refused.unwrap_err(), Error::LocalMode);

    let mut tcp = firmware_config(Config::lan_fast());
    tcp.protocols = ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast]);
    let refused = TestDriver::new(make(tcp), Group::CLUSTER, &mut iface, &mut sockets, socket);
    assert_eq!(refused.unwrap_err(), Error::UnsupportedProtocol);

    // Neither touched the socket or the interface: a valid node still starts.
    assert!(!iface.has_multicast_group(Group::CLUSTER.addr));
    let ok = TestDriver::new(
        make(firmware_config(Config::lan_fast())),
        Group::CLUSTER,
        &mut iface,
        &mut sockets,
        socket,
    );
    assert!(ok.is_ok());
    assert!(iface.has_multicast_group(Group::CLUSTER.addr));
}
