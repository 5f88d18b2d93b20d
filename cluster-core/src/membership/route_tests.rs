//! Gateways in virtual time: exports travel as routes, changes arrive within a beat, two
//! gateways give one route, a lost gateway fails over.

use core::net::SocketAddr;
use std::boxed::Box;
use std::format;
use std::vec;
use std::vec::Vec;

use super::*;

const PORT: u16 = 41_917;

fn sid(text: &str) -> Sid {
    Sid::new(text.as_bytes()).unwrap()
}

fn entry(name: &str, ip: &str) -> Entry {
    Entry {
        sid: sid(name),
        hid: Hid::new(b"02:fc:00:00:00:01").unwrap(),
        addr: SocketAddr::new(ip.parse().unwrap(), PORT),
        incarnation: 0,
        protocols: MemberText::new(b"t c").unwrap(),
        props: MemberText::new(b"t {port 41917}").unwrap(),
        tags: MemberText::new(b"web").unwrap(),
    }
}

/// A LAN-only service as a gateway exports it.
fn lan_service(name: &str, tags: &str) -> Entry {
    let mut e = entry(name, "10.1.0.50");
    e.tags = MemberText::new(tags.as_bytes()).unwrap();
    e
}

struct Net {
    nodes: Vec<(&'static str, Box<Membership<8, 4>>)>,
    /// Nodes whose frames are lost (crashed).
    down: Vec<&'static str>,
}

impl Net {
    fn new(nodes: &[(&'static str, &'static str)]) -> Self {
        let nodes = nodes
            .iter()
            .enumerate()
            .map(|(i, &(ip, name))| {
                let m = Membership::new(
                    MembershipConfig::default(),
                    entry(name, ip),
                    i as u64 + 1,
                    Instant::ZERO,
                );
                (ip, Box::new(m))
            })
            .collect();
        Self {
            nodes,
            down: Vec::new(),
        }
    }

    fn node(&mut self, ip: &str) -> &mut Membership<8, 4> {
        &mut self.nodes.iter_mut().find(|(i, _)| *i == ip).unwrap().1
    }

    /// Runs every node until `until` (ms), delivering frames at once.
    fn run(&mut self, from: u64, until: u64) {
        let mut buf = vec![0u8; 16_384];
        let mut now = from;
        while now <= until {
            let at = Instant::from_millis(now);
            let mut sent = true;
            while sent {
                sent = false;
                for k in 0..self.nodes.len() {
                    let ip = self.nodes[k].0;
                    if self.down.contains(&ip) {
                        continue;
                    }
                    self.nodes[k].1.handle_timeout(at);
                    while let Some(out) = self.nodes[k].1.poll_transmit(at, &mut buf) {
                        sent = true;
                        let to = out.to.ip();
                        let is_to = |text: &str| text.parse::<IpAddr>() == Ok(to);
                        if self.down.iter().any(|d| is_to(d)) {
                            continue;
                        }
                        let Some(j) = self.nodes.iter().position(|(i, _)| is_to(i)) else {
                            continue;
                        };
                        let (message, _) = Message::parse(&buf[..out.len]).unwrap();
                        let source = SocketAddr::new(ip.parse().unwrap(), 50_000);
                        assert_eq!(self.nodes[j].1.handle_frame(at, source, &message), Ok(true));
                    }
                }
            }
            now += 10;
        }
    }
}

fn events(m: &mut Membership<8, 4>) -> Vec<RouteEvent> {
    core::iter::from_fn(|| m.poll_route_event()).collect()
}

const G1: &str = "10.1.0.1";
const G2: &str = "10.1.0.2";
const R: &str = "10.2.0.1";

fn seeded(names: &[(&'static str, &'static str)]) -> Net {
    let mut net = Net::new(names);
    let seed: SocketAddr = SocketAddr::new(G1.parse().unwrap(), PORT);
    for k in 1..net.nodes.len() {
        net.nodes[k].1.set_seeds(Instant::ZERO, &[seed]).unwrap();
    }
    net
}

#[test]
fn exports_reach_members_as_routes_through_the_gateways_address() {
    let mut net = seeded(&[(G1, "Gaaaaaaa"), (R, "Rrrrrrrr")]);
    net.node(G1).set_exports(&[lan_service("Tcl00001", "plc")]);
    net.run(0, 3_000);
    let r = net.node(R);
    let route = *r.route(&sid("Tcl00001")).expect("a route");
    assert_eq!(route.gateway, sid("Gaaaaaaa"));
    assert_eq!(route.entry.addr, SocketAddr::new(G1.parse().unwrap(), PORT));
    assert_eq!(route.entry.tags.as_str(), Some("plc"));
    assert_eq!(events(r), [RouteEvent::Up(sid("Tcl00001"))]);
    assert!(
        r.member(&sid("Tcl00001")).is_none(),
        "a routed service is not a member"
    );
    assert!(
        net.node(G1).routes().is_empty(),
        "the gateway keeps no route for its own exports"
    );
}

#[test]
fn a_change_of_the_exports_is_known_within_a_beat_interval() {
    let mut net = seeded(&[(G1, "Gaaaaaaa"), (R, "Rrrrrrrr")]);
    net.node(G1).set_exports(&[lan_service("Tcl00001", "plc")]);
    net.run(0, 30_000);
    let _ = events(net.node(R));
    // The service leaves the LAN: well before the next anti-entropy exchange (10 s),
    // the next sweep's pushes carry the empty list.
    net.node(G1).set_exports(&[]);
    net.run(30_010, 31_100);
    assert_eq!(events(net.node(R)), [RouteEvent::Down(sid("Tcl00001"))]);
    net.node(G1)
        .set_exports(&[lan_service("Tcl00001", "plc line2")]);
    net.run(31_110, 32_200);
    assert_eq!(events(net.node(R)), [RouteEvent::Up(sid("Tcl00001"))]);
    let tags = net.node(R).route(&sid("Tcl00001")).unwrap().entry.tags;
    assert_eq!(tags.as_str(), Some("plc line2"));
}

#[test]
fn two_gateways_give_one_route_and_the_second_takes_over_when_the_first_is_lost() {
    let mut net = seeded(&[(G1, "Gaaaaaaa"), (G2, "Gbbbbbbb"), (R, "Rrrrrrrr")]);
    let tcl = lan_service("Tcl00001", "plc");
    net.node(G1).set_exports(&[tcl]);
    net.node(G2).set_exports(&[tcl]);
    net.run(0, 5_000);
    let r = net.node(R);
    assert_eq!(r.routes().len(), 2, "one route per gateway is kept");
    assert_eq!(r.route(&sid("Tcl00001")).unwrap().gateway, sid("Gaaaaaaa"));
    assert_eq!(events(r), [RouteEvent::Up(sid("Tcl00001"))]);
    // The gateways hear the service themselves: neither keeps the other's route in use
    // for the node (the driver skips sids it exports), but both know it.
    assert_eq!(
        net.node(G2).route(&sid("Tcl00001")).unwrap().gateway,
        sid("Gaaaaaaa")
    );
    net.down.push(G1);
    net.run(5_010, 11_000);
    let r = net.node(R);
    let route = *r
        .route(&sid("Tcl00001"))
        .expect("the second gateway's route");
    assert_eq!(route.gateway, sid("Gbbbbbbb"));
    assert_eq!(route.entry.addr, SocketAddr::new(G2.parse().unwrap(), PORT));
    assert_eq!(events(r), [RouteEvent::Up(sid("Tcl00001"))]);
    assert_eq!(r.routes().len(), 1);
}

#[test]
fn a_lost_gateway_takes_its_routes_with_it_and_brings_them_back() {
    let mut net = seeded(&[(G1, "Gaaaaaaa"), (R, "Rrrrrrrr")]);
    net.node(G1).set_exports(&[lan_service("Tcl00001", "plc")]);
    net.run(0, 3_000);
    let _ = events(net.node(R));
    net.down.push(G1);
    net.run(3_010, 9_000);
    assert_eq!(events(net.node(R)), [RouteEvent::Down(sid("Tcl00001"))]);
    assert!(net.node(R).routes().is_empty());
    net.down.clear();
    net.run(9_010, 20_000);
    assert_eq!(events(net.node(R)), [RouteEvent::Up(sid("Tcl00001"))]);
}

#[test]
fn a_version_1_exchange_is_read_without_its_appendix() {
    let mut gateway = Membership::<8, 4>::new(
        MembershipConfig::default(),
        entry("Gaaaaaaa", G1),
        1,
        Instant::ZERO,
    );
    gateway.set_exports(&[lan_service("Tcl00001", "plc")]);
    let r_addr = SocketAddr::new(R.parse().unwrap(), PORT);
    gateway.set_seeds(Instant::ZERO, &[r_addr]).unwrap();
    gateway.handle_timeout(Instant::ZERO);
    let mut buf = vec![0u8; 16_384];
    let out = gateway.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let (mut message, _) = Message::parse(&buf[..out.len]).unwrap();
    let word = MxWord::parse(message.op.unwrap().as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(word.version, 2);
    let old = MxWord { version: 1, ..word };
    let old_text = old.text();
    message.op = Some(crate::wire::Str::from(old_text.as_str()));
    let mut r = Membership::<8, 4>::new(
        MembershipConfig::default(),
        entry("Rrrrrrrr", R),
        2,
        Instant::ZERO,
    );
    let from = SocketAddr::new(G1.parse().unwrap(), 50_000);
    assert_eq!(r.handle_frame(Instant::ZERO, from, &message), Ok(true));
    assert!(r.member(&sid("Gaaaaaaa")).is_some());
    assert!(r.routes().is_empty(), "version 1 has no exports");
}

#[test]
fn more_exports_than_fit_are_counted() {
    let mut m = Membership::<8, 4>::new(
        MembershipConfig::default(),
        entry("Gaaaaaaa", G1),
        1,
        Instant::ZERO,
    );
    let many: Vec<Entry> = (0..6)
        .map(|i| lan_service(&format!("Tcl0000{i}"), "x"))
        .collect();
    m.set_exports(&many);
    assert_eq!(m.exports().len(), 4);
    assert_eq!(m.stats().routes_full, 1);
}

/// The frames `from` has now: those for `to_ip` are handed to `to`, the others dropped.
fn hand(
    now: Instant,
    from: &mut Membership<8, 4>,
    from_ip: &str,
    to: &mut Membership<8, 4>,
    to_ip: &str,
) -> Vec<(SocketAddr, Verb)> {
    let mut buf = vec![0u8; 16_384];
    let mut sent = Vec::new();
    while let Some(out) = from.poll_transmit(now, &mut buf) {
        sent.push((out.to, out.verb));
        if to_ip.parse::<IpAddr>() != Ok(out.to.ip()) {
            continue;
        }
        let (message, _) = Message::parse(&buf[..out.len]).unwrap();
        let source = SocketAddr::new(from_ip.parse().unwrap(), 50_000);
        assert_eq!(to.handle_frame(now, source, &message), Ok(true));
    }
    sent
}

#[test]
fn a_node_that_knows_the_gateway_only_from_exchanges_asks_for_its_exports_at_its_first_beat() {
    const X: &str = "10.3.0.1";
    let new = |name: &str, ip: &str, seed: u64| {
        Box::new(Membership::<8, 4>::new(
            MembershipConfig::default(),
            entry(name, ip),
            seed,
            Instant::ZERO,
        ))
    };
    let (mut g, mut r, mut x) = (
        new("Gaaaaaaa", G1, 1),
        new("Rrrrrrrr", R, 2),
        new("Xxxxxxxx", X, 3),
    );
    g.set_exports(&[lan_service("Tcl00001", "plc")]);
    let x_addr = SocketAddr::new(X.parse().unwrap(), PORT);
    // G and R each exchange with X only (G's first sweep, which pushes its new exports to
    // all it knows, is over before R comes); X then tells each about the other.
    g.set_seeds(Instant::ZERO, &[x_addr]).unwrap();
    for now in [0, 1_000, 2_000] {
        let now = Instant::from_millis(now);
        g.handle_timeout(now);
        hand(now, &mut g, G1, &mut x, X);
        hand(now, &mut x, X, &mut g, G1);
    }
    let t = Instant::from_millis(2_000);
    r.set_seeds(t, &[x_addr]).unwrap();
    r.handle_timeout(t);
    hand(t, &mut r, R, &mut x, X);
    hand(t, &mut x, X, &mut r, R);
    let x_push = |x: &mut Membership<8, 4>, to: &mut Membership<8, 4>, to_ip: &str| {
        x.set_seeds(t, &[SocketAddr::new(to_ip.parse().unwrap(), PORT)])
            .unwrap();
        x.handle_timeout(t);
        hand(t, x, X, to, to_ip);
    };
    x_push(&mut x, &mut g, G1);
    x_push(&mut x, &mut r, R);
    assert!(g.member(&sid("Rrrrrrrr")).is_some() && r.member(&sid("Gaaaaaaa")).is_some());
    assert!(r.routes().is_empty());
    // G's beat announces its exports: R asks for them, and G's pull carries them.
    let beat = Instant::from_millis(3_000);
    g.handle_timeout(beat);
    let sent = hand(beat, &mut g, G1, &mut r, R);
    assert!(sent.iter().any(|&(_, verb)| verb == Verb::Beat), "{sent:?}");
    r.handle_timeout(beat);
    let asked = hand(beat, &mut r, R, &mut g, G1);
    let g_addr = SocketAddr::new(G1.parse().unwrap(), PORT);
    assert!(asked.contains(&(g_addr, Verb::Push)), "{asked:?}");
    hand(beat, &mut g, G1, &mut r, R);
    assert_eq!(
        r.route(&sid("Tcl00001")).map(|r| r.gateway),
        Some(sid("Gaaaaaaa"))
    );
}

#[test]
fn every_cut_of_an_exchange_with_exports_is_merged_or_a_typed_error() {
    let mut gateway = Membership::<8, 4>::new(
        MembershipConfig::default(),
        entry("Gaaaaaaa", G1),
        1,
        Instant::ZERO,
    );
    gateway.set_exports(&[lan_service("Tcl00001", "plc"), lan_service("Tcl00002", "x")]);
    gateway
        .set_seeds(Instant::ZERO, &[SocketAddr::new(R.parse().unwrap(), PORT)])
        .unwrap();
    gateway.handle_timeout(Instant::ZERO);
    let mut buf = vec![0u8; 16_384];
    let out = gateway.poll_transmit(Instant::ZERO, &mut buf).unwrap();
    let (message, _) = Message::parse(&buf[..out.len]).unwrap();
    let raw = message.raw.unwrap();
    let from = SocketAddr::new(G1.parse().unwrap(), 50_000);
    for cut in 0..raw.len() {
        let mut r = Membership::<8, 4>::new(
            MembershipConfig::default(),
            entry("Rrrrrrrr", R),
            2,
            Instant::ZERO,
        );
        let cut_message = Message {
            raw: Some(&raw[..cut]),
            ..message
        };
        match r.handle_frame(Instant::ZERO, from, &cut_message) {
            Ok(true) | Err(MembershipError::Entries(_)) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
        assert!(r.routes().len() <= 2);
    }
}
