use core::net::SocketAddr;

use super::*;
use crate::wire::{List, MessageKind, Str};

fn entry(sid: &str, ip: &str) -> Entry {
    Entry {
        sid: Sid::new(sid.as_bytes()).unwrap(),
        hid: Hid::new(b"02:fc:00:00:00:01").unwrap(),
        addr: SocketAddr::new(ip.parse().unwrap(), 41917),
        incarnation: 0,
        protocols: MemberText::new(b"t c").unwrap(),
        props: MemberText::new(b"t {port 41917}").unwrap(),
        tags: MemberText::new(b"web").unwrap(),
    }
}

fn node(sid: &str, ip: &str) -> Membership<8> {
    Membership::new(
        MembershipConfig::default(),
        entry(sid, ip),
        1,
        Instant::ZERO,
    )
}

/// Delivers every frame `from` has for `to_addr` to `to`; returns how many.
fn deliver(now: Instant, from: &mut Membership<8>, from_ip: &str, to: &mut Membership<8>) -> usize {
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while let Some(out) = from.poll_transmit(now, &mut buf) {
        let (message, _) = Message::parse(&buf[..out.len]).unwrap();
        let source = SocketAddr::new(from_ip.parse().unwrap(), 50_000);
        assert_eq!(to.handle_frame(now, source, &message), Ok(true));
        n += 1;
    }
    n
}

#[test]
fn a_seed_that_never_answers_gets_a_push_every_retry_forever() {
    let mut m = node("Aaaaaaaa", "10.0.0.1");
    let seed: SocketAddr = "10.9.9.9:41917".parse().unwrap();
    m.set_seeds(Instant::ZERO, &[seed]).unwrap();
    let mut buf = [0u8; 4096];
    let mut pushes = 0;
    let mut now = Instant::ZERO;
    while now.as_millis() <= 600_000 {
        m.handle_timeout(now);
        while let Some(out) = m.poll_transmit(now, &mut buf) {
            assert_eq!((out.to, out.verb), (seed, Verb::Push));
            pushes += 1;
        }
        now = m.poll_timeout().max(now.saturating_add_millis(1));
    }
    assert_eq!(
        pushes, 301,
        "one at the start, then one every 2 s for 600 s"
    );
    assert!(m.seeds_unanswered());
}

#[test]
fn a_push_is_answered_with_a_pull_and_both_sides_learn_each_other() {
    let mut a = node("Aaaaaaaa", "10.0.0.1");
    let mut b = node("Bbbbbbbb", "10.0.0.2");
    let b_addr: SocketAddr = "10.0.0.2:41917".parse().unwrap();
    a.set_seeds(Instant::ZERO, &[b_addr]).unwrap();
    a.handle_timeout(Instant::ZERO);
    assert_eq!(deliver(Instant::ZERO, &mut a, "10.0.0.1", &mut b), 1);
    assert_eq!(deliver(Instant::ZERO, &mut b, "10.0.0.2", &mut a), 1);
    assert!(!a.seeds_unanswered());
    let known = *a.member(&Sid::new(b"Bbbbbbbb").unwrap()).unwrap();
    assert_eq!(known.entry.addr, b_addr);
    assert_eq!(known.entry.tags.as_str(), Some("web"));
    assert!(known.heard && !known.placeholder);
    assert_eq!(a.poll_event(), Some(MemberEvent::Joined(known.entry.sid)));
    let back = b.member(&Sid::new(b"Aaaaaaaa").unwrap()).unwrap();
    assert_eq!(back.entry.addr, "10.0.0.1:41917".parse().unwrap());
}

#[test]
fn a_departed_member_is_lost_quietly_and_back_when_heard() {
    let mut a = node("Aaaaaaaa", "10.0.0.1");
    let mut b = node("Bbbbbbbb", "10.0.0.2");
    let now = Instant::from_millis(1_000);
    b.handle_timeout(now);
    deliver(now, &mut b, "10.0.0.2", &mut a); // nothing yet: b knows nobody
    a.set_seeds(now, &["10.0.0.2:41917".parse().unwrap()])
        .unwrap();
    a.handle_timeout(now);
    deliver(now, &mut a, "10.0.0.1", &mut b);
    deliver(now, &mut b, "10.0.0.2", &mut a);
    while a.poll_event().is_some() {}
    let sid = Sid::new(b"Bbbbbbbb").unwrap();
    a.departed(now, &sid);
    assert_eq!(a.member(&sid).unwrap().state, MemberState::Lost);
    assert_eq!(a.poll_event(), None);
    let later = Instant::from_millis(2_500);
    b.handle_timeout(later);
    assert!(deliver(later, &mut b, "10.0.0.2", &mut a) > 0);
    assert_eq!(a.poll_event(), Some(MemberEvent::Back(sid)));
}

#[test]
fn ordinary_frames_are_left_to_the_node_and_bad_mx_frames_are_typed_errors() {
    let mut m = node("Aaaaaaaa", "10.0.0.1");
    let from: SocketAddr = "10.0.0.2:1".parse().unwrap();
    let protocols = ["t", "c"];
    let mut message = Message {
        kind: Some(MessageKind::Heartbeat),
        channel: Some(0),
        sid: Some(Str::from("Bbbbbbbb")),
        hid: Some(Str::from("02:fc:00:00:00:02")),
        protocols: Some(List::from_items(&protocols)),
        ..Message::default()
    };
    assert_eq!(m.handle_frame(Instant::ZERO, from, &message), Ok(false));
    message.op = Some(Str::from("flush"));
    assert_eq!(m.handle_frame(Instant::ZERO, from, &message), Ok(false));
    message.op = Some(Str::from("mx/1 push x 1"));
    assert_eq!(
        m.handle_frame(Instant::ZERO, from, &message),
        Err(MembershipError::Word(MxWordError::Malformed))
    );
    message.op = Some(Str::from("mx/1 push 0 41917"));
    message.raw = Some(&[3, 0xFF]);
    assert_eq!(
        m.handle_frame(Instant::ZERO, from, &message),
        Err(MembershipError::Entries(EntryError::BadVarint))
    );
    message.op = Some(Str::from("mx/7 gossip 0 41917"));
    assert_eq!(m.handle_frame(Instant::ZERO, from, &message), Ok(true));
    assert_eq!(m.stats().bad_frames, 2);
    message.sid = None;
    message.op = Some(Str::from("mx/1 beat 0 41917"));
    assert_eq!(
        m.handle_frame(Instant::ZERO, from, &message),
        Err(MembershipError::Sender)
    );
}

#[test]
fn a_full_table_replaces_the_member_lost_longest_ago_and_counts_refusals() {
    let mut m = node("Aaaaaaaa", "10.0.0.1");
    let beat = |m: &mut Membership<8>, i: u8, at: u64| {
        let sid = std::format!("M{i:07}");
        let protocols = ["t", "c"];
        let message = Message {
            kind: Some(MessageKind::Heartbeat),
            channel: Some(0),
            sid: Some(Str::from(sid.as_str())),
            hid: Some(Str::from("02:fc:00:00:00:02")),
            protocols: Some(List::from_items(&protocols)),
            op: Some(Str::from("mx/1 beat 0 41917")),
            ..Message::default()
        };
        let from = SocketAddr::new(std::format!("10.0.1.{i}").parse().unwrap(), 1);
        m.handle_frame(Instant::from_millis(at), from, &message)
    };
    for i in 0..8 {
        assert_eq!(beat(&mut m, i, 0), Ok(true));
    }
    assert_eq!(beat(&mut m, 8, 0), Ok(true));
    assert_eq!(m.stats().table_full, 1);
    // Time passes: all are lost; a newcomer takes a lost member's place.
    m.handle_timeout(Instant::from_millis(10_000));
    assert!(m.members().iter().all(|x| x.state == MemberState::Lost));
    assert_eq!(beat(&mut m, 9, 10_000), Ok(true));
    assert!(m.member(&Sid::new(b"M0000009").unwrap()).is_some());
    assert_eq!(m.members().len(), 8);
}

/// Runs `nodes` (each with its IP) from `from` to `until` ms in 10 ms steps, routing every
/// frame to the node whose IP it is for; frames for other addresses are dropped.
fn run(nodes: &mut [(&str, &mut Membership<8>)], from: u64, until: u64) {
    let mut buf = [0u8; 4096];
    let mut t = from;
    while t <= until {
        let now = Instant::from_millis(t);
        let mut moved = true;
        while moved {
            moved = false;
            for i in 0..nodes.len() {
                nodes[i].1.handle_timeout(now);
                while let Some(out) = nodes[i].1.poll_transmit(now, &mut buf) {
                    moved = true;
                    let source = SocketAddr::new(nodes[i].0.parse().unwrap(), 50_000);
                    let (message, _) = Message::parse(&buf[..out.len]).unwrap();
                    if let Some(to) = nodes.iter().position(|n| Ok(out.to.ip()) == n.0.parse()) {
                        assert_eq!(nodes[to].1.handle_frame(now, source, &message), Ok(true));
                    }
                }
            }
        }
        t += 10;
    }
}

fn knows(m: &Membership<8>, sid: &str) -> bool {
    m.member(&Sid::new(sid.as_bytes()).unwrap())
        .is_some_and(|m| m.heard && !m.placeholder)
}

#[test]
fn nodes_that_cross_at_two_seeds_learn_of_each_other_from_the_seeds_second_answer() {
    let seeds: [SocketAddr; 2] = [
        "10.0.1.11:41917".parse().unwrap(),
        "10.0.2.11:41917".parse().unwrap(),
    ];
    let mut a1 = node("A1aaaaaa", "10.0.1.12");
    let mut b1 = node("B1bbbbbb", "10.0.2.12");
    let mut sa = node("SAaaaaaa", "10.0.1.11");
    let mut sb = node("SBbbbbbb", "10.0.2.11");
    for m in [&mut a1, &mut b1, &mut sa, &mut sb] {
        m.set_seeds(Instant::ZERO, &seeds).unwrap();
    }
    // a1 and b1 push both seeds at the same moment; each seed answers each push before it
    // reads the other one, so neither answer names the other node.
    let now = Instant::ZERO;
    let mut buf = [0u8; 4096];
    let mut pushes: heapless::Vec<(&str, SocketAddr, heapless::Vec<u8, 512>), 4> =
        heapless::Vec::new();
    for (ip, m) in [("10.0.1.12", &mut a1), ("10.0.2.12", &mut b1)] {
        m.handle_timeout(now);
        while let Some(out) = m.poll_transmit(now, &mut buf) {
            pushes
                .push((
                    ip,
                    out.to,
                    heapless::Vec::from_slice(&buf[..out.len]).unwrap(),
                ))
                .unwrap();
        }
    }
    for (ip, to, frame) in &pushes {
        let seed = if *to == seeds[0] { &mut sa } else { &mut sb };
        let (message, _) = Message::parse(frame).unwrap();
        let source = SocketAddr::new(ip.parse().unwrap(), 50_000);
        seed.handle_frame(now, source, &message).unwrap();
        let reply = seed.poll_transmit(now, &mut buf).unwrap();
        assert_eq!(reply.verb, Verb::Pull);
        let (message, _) = Message::parse(&buf[..reply.len]).unwrap();
        let back = if *ip == "10.0.1.12" { &mut a1 } else { &mut b1 };
        let source = SocketAddr::new(to.ip(), 50_000);
        back.handle_frame(now, source, &message).unwrap();
    }
    assert!(!knows(&a1, "B1bbbbbb") && !knows(&b1, "A1aaaaaa"));
    // Anti-entropy would take 8 to 12 s; the seeds' second answers come after 2 s.
    let mut nodes = [
        ("10.0.1.12", &mut a1),
        ("10.0.2.12", &mut b1),
        ("10.0.1.11", &mut sa),
        ("10.0.2.11", &mut sb),
    ];
    run(&mut nodes, 10, 2_500);
    assert!(knows(&a1, "B1bbbbbb"), "a1 knows b1");
    assert!(knows(&b1, "A1aaaaaa"), "b1 knows a1");
}

#[test]
fn a_member_heard_only_through_its_beats_is_asked_for_its_entry_at_once() {
    let mut a = node("Aaaaaaaa", "10.0.0.1");
    let mut b = node("Bbbbbbbb", "10.0.0.2");
    let mut buf = [0u8; 4096];
    // b knows a (a pushed it once); a restarts and knows nobody, so b's beats are the first
    // it hears of b.
    a.set_seeds(Instant::ZERO, &["10.0.0.2:41917".parse().unwrap()])
        .unwrap();
    a.handle_timeout(Instant::ZERO);
    deliver(Instant::ZERO, &mut a, "10.0.0.1", &mut b);
    let mut fresh_a = node("Aaaaaaaa", "10.0.0.1");
    // b's pull to the old a is lost; b's next beat reaches the fresh a.
    while b.poll_transmit(Instant::ZERO, &mut buf).is_some() {}
    let beat_time = Instant::from_millis(1_000);
    b.handle_timeout(beat_time);
    let beat = b.poll_transmit(beat_time, &mut buf).unwrap();
    assert_eq!(beat.verb, Verb::Beat);
    let (message, _) = Message::parse(&buf[..beat.len]).unwrap();
    let source: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    fresh_a.handle_frame(beat_time, source, &message).unwrap();
    let sid = Sid::new(b"Bbbbbbbb").unwrap();
    assert!(fresh_a.member(&sid).unwrap().placeholder);
    let ask = fresh_a.poll_transmit(beat_time, &mut buf).unwrap();
    assert_eq!(
        (ask.to, ask.verb),
        ("10.0.0.2:41917".parse().unwrap(), Verb::Push)
    );
    let (message, _) = Message::parse(&buf[..ask.len]).unwrap();
    b.handle_frame(beat_time, "10.0.0.1:50000".parse().unwrap(), &message)
        .unwrap();
    deliver(beat_time, &mut b, "10.0.0.2", &mut fresh_a);
    assert!(knows(&fresh_a, "Bbbbbbbb"));
}

#[test]
fn a_member_that_says_bye_is_lost_at_once_and_the_leaver_sends_nothing_more() {
    let mut a = node("Aaaaaaaa", "10.0.0.1");
    let mut b = node("Bbbbbbbb", "10.0.0.2");
    let now = Instant::from_millis(1_000);
    a.set_seeds(now, &["10.0.0.2:41917".parse().unwrap()])
        .unwrap();
    a.handle_timeout(now);
    deliver(now, &mut a, "10.0.0.1", &mut b);
    deliver(now, &mut b, "10.0.0.2", &mut a);
    while a.poll_event().is_some() {}
    let sid = Sid::new(b"Bbbbbbbb").unwrap();
    let later = Instant::from_millis(1_500);
    b.leave();
    let mut buf = [0u8; 4096];
    let out = b.poll_transmit(later, &mut buf).unwrap();
    assert_eq!(out.verb, Verb::Bye);
    let (message, _) = Message::parse(&buf[..out.len]).unwrap();
    let source: SocketAddr = "10.0.0.2:50000".parse().unwrap();
    assert_eq!(a.handle_frame(later, source, &message), Ok(true));
    assert_eq!(a.poll_event(), Some(MemberEvent::Lost(sid)));
    assert_eq!(a.member(&sid).unwrap().state, MemberState::Lost);
    assert_eq!(b.poll_transmit(later, &mut buf), None);
    for ms in (2_000..20_000).step_by(250) {
        let t = Instant::from_millis(ms);
        b.handle_timeout(t);
        assert_eq!(b.poll_transmit(t, &mut buf), None, "at {ms} ms");
    }
}

#[test]
fn a_members_segment_is_the_one_its_own_frames_name() {
    let mut a = node("Aaaaaaaa", "10.0.0.1");
    let mut b = node("Bbbbbbbb", "10.0.0.2");
    a.set_segment(Segment::new(b"plant-a").unwrap());
    a.set_seeds(Instant::ZERO, &["10.0.0.2:41917".parse().unwrap()])
        .unwrap();
    a.handle_timeout(Instant::ZERO);
    deliver(Instant::ZERO, &mut a, "10.0.0.1", &mut b);
    deliver(Instant::ZERO, &mut b, "10.0.0.2", &mut a);
    let seen = b.member(&Sid::new(b"Aaaaaaaa").unwrap()).unwrap().segment;
    assert_eq!(seen.as_str(), Some("plant-a"));
    let none = a.member(&Sid::new(b"Bbbbbbbb").unwrap()).unwrap().segment;
    assert_eq!(none, Segment::EMPTY);
}
