//! The adapter's bounds on real sockets, loopback only, on every runtime:
//! the connection table's limit (a flood of idle connections is refused and counted while
//! real peers keep working), a connection that declares a huge frame (dropped, resynced,
//! counted, nothing buffered), an event subscriber that falls behind (told and counted),
//! and key rotation through the handles while queries keep being answered. Every wait is
//! bounded by [`PATIENCE`](crate::common::PATIENCE) and ends on the awaited event or condition, never on a
//! sleep alone.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::common::{HID, Runtime, discovered, fresh_port, options, wait_for, within};
use async_io::Timer;
use async_net::TcpStream;
use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use cluster_core::{Sid, Stats};
use cluster_host::prelude::{
    Answer, Event, Handle, Key, KeyRing, QuerySpec, Selector, SendSpec, TransportStats,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// Asks `to` through `from` and returns the answer's text; fails unless it answered.
async fn ask(from: &Handle, to: &Handle) -> String {
    let stream = from
        .query(QuerySpec::new(Selector::service(to.sid()), "who?"))
        .await
        .expect("query started");
    let outcome = within("the answer", stream.collect()).await;
    assert_eq!(outcome.summary.answered, 1, "{outcome:?}");
    outcome.responses[0].1.data_lossy()
}

/// Polls `handle`'s counters until `done` holds, at most the patience.
async fn counters_until(
    handle: &Handle,
    mut done: impl FnMut(&Stats, &TransportStats) -> bool,
) -> (Stats, TransportStats) {
    within("the expected counters", async {
        loop {
            let (node, transport) = handle.stats().await.expect("stats");
            if done(&node, &transport) {
                return (node, transport);
            }
            Timer::after(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// A heartbeat of a local service `sid` (the test's hid), as a peer sends it.
fn heartbeat(sid: &str) -> Vec<u8> {
    let protocols = ["c"];
    let message = Message {
        kind: Some(MessageKind::Heartbeat),
        sid: Some(Str::from(sid)),
        hid: Some(Str::from(HID)),
        channel: Some(0),
        protocols: Some(List::from_items(&protocols)),
        known: Some(0),
        ..Message::default()
    };
    let mut frame = vec![0u8; 256];
    let len = message
        .encode(FilterPlacement::Last, &mut frame)
        .expect("encode");
    frame.truncate(len);
    frame
}

async fn tcp_port(handle: &Handle) -> u16 {
    handle.info().await.unwrap().tcp_port.expect("t runs")
}

pub async fn connections_over_the_limit_are_refused_and_counted_while_real_peers_keep_working(
    rt: impl Runtime,
) {
    const MAX: usize = 4;
    let port = fresh_port();
    let a = rt
        .join_with(options(port).max_connections(MAX), Answer::new("a here"))
        .await;
    let mut a_events = a.events();
    let b = rt.join_with(options(port), Answer::new("b here")).await;
    let mut b_events = b.events();
    discovered(&mut a_events, b.sid()).await;
    discovered(&mut b_events, a.sid()).await;
    assert_eq!(ask(&b, &a).await, "a here");
    assert_eq!(ask(&a, &b).await, "b here");

    // A flood of idle connections from nowhere, one at a time, each seen by the node
    // before the next.
    let target = (Ipv4Addr::LOCALHOST, tcp_port(&a).await);
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..MAX + 3 {
        let (_, before) = a.stats().await.unwrap();
        let seen = before.accepts + before.connections_refused;
        let stream = TcpStream::connect(target).await.unwrap();
        let (_, after) = counters_until(&a, |_, t| t.accepts + t.connections_refused > seen).await;
        if after.connections_refused > before.connections_refused {
            refused.push(stream);
        } else {
            kept.push(stream);
        }
    }
    assert!(
        refused.len() >= 3,
        "{} kept, {} refused",
        kept.len(),
        refused.len()
    );
    for mut stream in refused {
        // Closed at once: the end of the stream (or a reset) without a byte.
        let mut byte = [0u8; 1];
        let read = within("the refused connection's end", stream.read(&mut byte)).await;
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let (_, t) = a.stats().await.unwrap();
    assert!(t.connections_open <= MAX as u64, "{t:?}");
    assert!(t.connections_refused >= 3, "{t:?}");

    // The real peer's connections were kept: queries go both ways.
    assert_eq!(ask(&b, &a).await, "a here");
    assert_eq!(ask(&a, &b).await, "b here");

    // A newcomer: reaching it takes an outgoing connection, for which an idle connection
    // of the flood (no known service on it) is closed.
    let c = rt.join_with(options(port), Answer::new("c here")).await;
    let mut c_events = c.events();
    discovered(&mut a_events, c.sid()).await;
    discovered(&mut c_events, a.sid()).await;
    assert_eq!(ask(&a, &c).await, "c here");
    assert_eq!(ask(&c, &a).await, "a here");
    assert_eq!(ask(&b, &a).await, "a here");
    let (_, t) = a.stats().await.unwrap();
    assert!(t.connections_evicted >= 1, "{t:?}");
    assert!(t.connections_open <= MAX as u64, "{t:?}");
    drop(kept);
    for node in [a, b, c] {
        node.leave().await.unwrap();
    }
}

pub async fn a_connection_declaring_a_huge_frame_is_resynced_and_counted_without_buffering_it(
    rt: impl Runtime,
) {
    let port = fresh_port();
    let a = rt.join(options(port)).await;
    let mut events = a.events();
    let mut raw = TcpStream::connect((Ipv4Addr::LOCALHOST, tcp_port(&a).await))
        .await
        .unwrap();
    // A header declaring a 1,000,000-byte body (within the frame length limit, beyond a
    // connection's buffer) and 4 MiB of body; then a header declaring 2^40 bytes (beyond
    // the frame length limit); then a real frame.
    raw.write_all(&[0xC0, 0x8D, 0xC0, 0x84, 0x3D])
        .await
        .unwrap();
    let body = vec![0u8; 64 * 1024];
    for _ in 0..64 {
        raw.write_all(&body).await.unwrap();
    }
    raw.write_all(&[0xC0, 0x8D, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20])
        .await
        .unwrap();
    raw.write_all(&heartbeat("raw00001")).await.unwrap();
    // The stream resynced: the frame after the garbage is read.
    discovered(&mut events, Sid::new(b"raw00001").unwrap()).await;
    let (_, t) = a.stats().await.unwrap();
    assert_eq!(t.stream_frames_oversized, 1, "{t:?}");
    assert!(t.stream_garbage_bytes >= 64 * 64 * 1024, "{t:?}");
    assert_eq!(t.connections_open, 1, "the connection stays open");
    a.leave().await.unwrap();
}

pub async fn a_subscriber_that_falls_behind_is_told_and_counted(rt: impl Runtime) {
    const SENT: usize = 1100;
    let port = fresh_port();
    let a = rt.join(options(port)).await;
    // Never read until the end: it falls behind.
    let mut idle = a.events();
    let mut reader = a.events();
    let b = rt.join(options(port)).await;
    let mut b_events = b.events();
    discovered(&mut b_events, a.sid()).await;
    for n in 0..SENT {
        let text = n.to_string();
        b.send(SendSpec::new(Selector::service(a.sid()), text.as_str()))
            .await
            .unwrap();
        wait_for(&mut reader, |e| match e {
            Event::Message { payload, .. } if payload.data_lossy() == text => Some(()),
            _ => None,
        })
        .await;
        within("the flush", b.flush()).await.unwrap();
    }
    let Some(Event::Dropped { count }) = idle.try_next() else {
        panic!("the idle subscriber is told first");
    };
    assert!(count >= (SENT - 1024) as u64, "{count}");
    let (_, t) = a.stats().await.unwrap();
    assert_eq!(t.events_lagged, count);
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}

fn key(id: u8) -> Key {
    Key::new(id, [id.wrapping_mul(0x11); 32])
}

pub async fn keys_rotate_through_the_handles_while_queries_keep_being_answered(rt: impl Runtime) {
    let port = fresh_port();
    let first = KeyRing::new(key(1));
    let a = rt
        .join_with(options(port).keys(first.clone()), Answer::new("a here"))
        .await;
    let mut a_events = a.events();
    let b = rt
        .join_with(options(port).keys(first.clone()), Answer::new("b here"))
        .await;
    let mut b_events = b.events();
    discovered(&mut a_events, b.sid()).await;
    discovered(&mut b_events, a.sid()).await;
    assert_eq!(ask(&a, &b).await, "b here");

    // Add key 2; send with it; drop key 1: each step on one node, then the other, with
    // queries both ways after each.
    let mut both = first.clone();
    both.add(key(2)).unwrap();
    let mut sending_2 = both.clone();
    sending_2.set_send(2).unwrap();
    let mut only_2 = sending_2.clone();
    only_2.remove(1).unwrap();
    for ring in [both, sending_2, only_2] {
        for node in [&a, &b] {
            node.set_keys(Some(ring.clone())).await.unwrap();
            assert_eq!(ask(&a, &b).await, "b here");
            assert_eq!(ask(&b, &a).await, "a here");
        }
    }

    // A node still on key 1 only is kept out: its frames are dropped and counted.
    let late = rt.join(options(port).keys(first)).await;
    counters_until(&a, |s, _| s.unknown_key > 0).await;
    assert!(
        !a.services()
            .await
            .unwrap()
            .iter()
            .any(|s| s.sid == late.sid())
    );
    late.leave().await.unwrap();

    // Nobody was lost on the way, and no frame failed to authenticate.
    for (events, node) in [(&mut a_events, &a), (&mut b_events, &b)] {
        while let Some(event) = events.try_next() {
            assert!(!matches!(event, Event::Lost { .. }), "{event:?}");
        }
        assert_eq!(node.stats().await.unwrap().0.forged, 0);
    }
    a.leave().await.unwrap();
    b.leave().await.unwrap();
}
