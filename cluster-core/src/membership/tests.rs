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
