//! Sealed frames on the in-memory Ethernet (feature `seal`): stacks given the same key ring
//! through `Driver::set_keys` discover each other and answer queries with every datagram
//! sealed; stacks with another key or none stay apart from them, and the stats count what
//! each dropped; keys rotate through the driver without losing a peer. Virtual time, fixed
//! seeds; the hub and the hosts are in `common/`.
#![cfg(feature = "seal")]

mod common;

use cluster_core::seal::is_sealed;
use cluster_core::wire::Frame;
use cluster_core::{
    Event, Key, KeyRing, LostReason, Node, QueryEvent, QueryRequest, SendRequest, Sid, Targets,
};
use smoltcp::time::Duration;

use common::{Answer, Lan, cluster_datagrams};

/// UDP payload of one Ethernet frame without IP fragmentation: MTU 1500, less the IPv4 and
/// UDP headers.
const ETHERNET_PAYLOAD: usize = 1500 - 20 - 8;

fn key(id: u8) -> Key {
    Key::new(id, [0xa5 ^ id.wrapping_mul(29); 32])
}

fn ring(id: u8) -> KeyRing {
    KeyRing::new(key(id))
}

/// Every cluster datagram on the medium so far is one whole sealed frame, of at most the
/// node's `TRANSMIT_BUF` bytes, and shows none of the senders' tags in clear.
fn assert_every_datagram_is_sealed(lan: &Lan) {
    let hub = lan.hub.borrow();
    let datagrams = cluster_datagrams(&hub.log);
    assert!(!datagrams.is_empty());
    for (from, _, _, _, payload) in &datagrams {
        let (frame, used) = Frame::parse(payload).expect("a frame");
        assert_eq!(used, payload.len(), "one whole frame per datagram");
        assert!(is_sealed(&frame), "host {from} sent an unsealed frame");
        assert!(payload.len() <= Node::<Answer>::TRANSMIT_BUF);
        let tag = format!("host{from}");
        assert!(
            !payload.windows(tag.len()).any(|w| w == tag.as_bytes()),
            "host {from}'s tag in clear"
        );
    }
}

fn lost_anyone(lan: &Lan, host: usize) -> bool {
    lan.hosts[host]
        .events
        .iter()
        .any(|e| matches!(e, Event::Lost { .. }))
}

#[test]
fn the_default_nodes_sealed_frames_fit_one_ethernet_datagram() {
    // The driver's default `TX` is this bound, and each frame leaves as one datagram: smoltcp
    // without `proto-ipv4-fragmentation` sends nothing larger.
    const {
        assert!(Node::<Answer>::TRANSMIT_BUF <= ETHERNET_PAYLOAD);
    }
    // The figure the crate docs give (1401 bytes unsealed).
    assert_eq!(Node::<Answer>::TRANSMIT_BUF, 1470);
}

#[test]
fn a_sealed_pair_discovers_each_other_and_a_query_is_answered() {
    let mut lan = Lan::with_setup(&["temperature 21.5", "b"], |_, driver| {
        driver.set_keys(Some(ring(1)));
        assert_eq!(driver.keys().map(|r| r.send_key().id()), Some(1));
    });
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
    let response = lan.hosts[1]
        .events
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

    // Every frame was sealed, from the join heartbeats on (the keys were set before the first
    // poll), and nothing was dropped on either side.
    assert_every_datagram_is_sealed(&lan);
    for host in &lan.hosts {
        let node = host.driver.node().stats();
        assert_eq!(
            (node.unsealed, node.unknown_key, node.forged, node.replayed),
            (0, 0, 0, 0)
        );
        assert!(node.frames_accepted > 0);
        assert_eq!(host.driver.stats().datagrams_dropped, 0);
        assert_eq!(host.driver.stats().frames_unsendable, 0);
    }
}

#[test]
fn stacks_with_another_key_or_none_never_discover_the_sealed_pair_nor_it_them() {
    // Hosts 0 and 1 share key 1, host 2 seals with key 2, host 3 does not seal.
    let rings = [Some(ring(1)), Some(ring(1)), Some(ring(2)), None];
    let mut lan = Lan::with_setup(&["a", "b", "c", "d"], |index, driver| {
        driver.set_keys(rings[index].clone());
    });
    lan.run_until(Duration::from_secs(5), |lan| {
        lan.knows(0, &lan.sid(1)) && lan.knows(1, &lan.sid(0))
    });
    // Well past the ttl (2 s) and a few heartbeats of everyone.
    lan.runs_for(Duration::from_secs(5));

    let sids: Vec<Sid> = (0..4).map(|host| lan.sid(host)).collect();
    for (a, b) in [(0, 2), (0, 3), (1, 2), (1, 3), (2, 3)] {
        assert!(!lan.knows(a, &sids[b]), "host {a} discovered host {b}");
        assert!(!lan.knows(b, &sids[a]), "host {b} discovered host {a}");
    }
    assert_eq!(lan.hosts[0].driver.node().known(), 1);
    assert_eq!(lan.hosts[1].driver.node().known(), 1);
    assert_eq!(lan.hosts[2].driver.node().known(), 0);
    assert_eq!(lan.hosts[3].driver.node().known(), 0);
    assert!(!lost_anyone(&lan, 0) && !lost_anyone(&lan, 1));

    // The keyed hosts dropped the others' frames before they touched any state: key 2's as
    // sealed with a key they do not hold, the unkeyed host's as unsealed. Each such datagram
    // is one the driver counts as dropped.
    for host in 0..3 {
        let node = lan.hosts[host].driver.node().stats();
        let driver = lan.hosts[host].driver.stats();
        assert!(node.unknown_key > 0, "host {host}: {node:?}");
        assert!(node.unsealed > 0, "host {host}: {node:?}");
        assert_eq!((node.forged, node.replayed), (0, 0), "host {host}");
        assert_eq!(driver.datagrams_dropped, node.unknown_key + node.unsealed);
    }
    // The unkeyed host reads a sealed frame as an ordinary one whose empty filter names
    // nobody: filtered out, not an error.
    let plain = lan.hosts[3].driver.node().stats();
    assert!(plain.filtered_out > 0, "{plain:?}");
    assert_eq!(lan.hosts[3].driver.stats().datagrams_dropped, 0);
}

#[test]
fn keys_rotate_through_the_driver_without_losing_a_peer() {
    // Hosts 0 and 1 rotate from key 1 to key 2; host 2 keeps key 1 only.
    let mut lan = Lan::with_setup(&["a", "b", "c"], |_, driver| {
        driver.set_keys(Some(ring(1)));
    });
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let rotate = |lan: &mut Lan, host: usize, ring: KeyRing| {
        lan.hosts[host].driver.set_keys(Some(ring));
    };

    // 1. Every rotating ring accepts key 2 as well.
    let mut both = ring(1);
    both.add(key(2)).unwrap();
    rotate(&mut lan, 0, both.clone());
    rotate(&mut lan, 1, both.clone());
    lan.runs_for(Duration::from_secs(1));
    // 2. One after the other, they send with key 2.
    both.set_send(2).unwrap();
    rotate(&mut lan, 0, both.clone());
    lan.runs_for(Duration::from_secs(1));
    rotate(&mut lan, 1, both);
    lan.runs_for(Duration::from_secs(1));
    // 3. Key 1 goes.
    rotate(&mut lan, 0, ring(2));
    rotate(&mut lan, 1, ring(2));
    lan.runs_for(Duration::from_secs(4));

    for host in [0, 1] {
        let peer = lan.sid(1 - host);
        assert!(
            lan.lost(host, &peer).is_none(),
            "host {host} lost its peer during the rotation"
        );
        // Host 2, still sending with key 1, expired once key 1 was gone.
        assert_eq!(lan.lost(host, &lan.sid(2)), Some(LostReason::Expired));
        assert_eq!(
            lan.hosts[host].driver.keys().map(|r| r.ids().collect()),
            Some(vec![2])
        );
        let stats = lan.hosts[host].driver.node().stats();
        assert_eq!((stats.forged, stats.replayed), (0, 0));
    }
    // The stack left with key 1 lost both once they sent with key 2 only, and counted their
    // frames as sealed with a key it does not hold: the new key was really in use.
    assert_eq!(lan.lost(2, &lan.sid(0)), Some(LostReason::Expired));
    assert_eq!(lan.lost(2, &lan.sid(1)), Some(LostReason::Expired));
    assert!(lan.hosts[2].driver.node().stats().unknown_key > 0);
    assert_every_datagram_is_sealed(&lan);
}

#[test]
fn a_sealed_event_with_a_full_payload_leaves_whole_and_arrives() {
    let mut lan = Lan::with_setup(&["a", "b"], |_, driver| {
        driver.set_keys(Some(ring(7)));
    });
    lan.run_until(Duration::from_secs(5), Lan::all_know_each_other);
    let payload: Vec<u8> = (0..512).map(|i| b'a' + (i % 26) as u8).collect();
    let target = [lan.sid(1)];
    let now = lan.now;
    lan.hosts[0]
        .driver
        .send(now, &SendRequest::new(Targets::services(&target), &payload))
        .unwrap();
    lan.run_until(Duration::from_secs(1), |lan| {
        lan.hosts[1].events.iter().any(
            |e| matches!(e, Event::Message { payload: p, .. } if p.data() == Some(&payload[..])),
        )
    });
    assert_every_datagram_is_sealed(&lan);
    let hub = lan.hub.borrow();
    let largest = cluster_datagrams(&hub.log)
        .iter()
        .map(|d| d.4.len())
        .max()
        .unwrap();
    assert!(
        largest > 512 && largest <= ETHERNET_PAYLOAD,
        "largest datagram {largest} B"
    );
    assert_eq!(lan.hosts[0].driver.stats().frames_unsendable, 0);
}
