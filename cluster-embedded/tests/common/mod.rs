//! The in-memory Ethernet shared by the medium tests: a hub wiring several smoltcp stacks
//! (every frame a port transmits reaches every other port, in order), firmware-like hosts
//! running the driver on them, and the `Lan` that polls them on virtual time (the loop jumps
//! to the earliest deadline). Each test file uses a part of it.
#![allow(dead_code, reason = "each test file uses a part of the support code")]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::rc::Rc;

use cluster_core::{Config, Event, LostReason, Node, Sid};
use cluster_embedded::{Driver, Group, MacHid, UdpBuffers, core_instant, firmware_config};
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpCidr, IpProtocol, Ipv4Packet, UdpPacket,
};

// ----- the medium -----

/// Frames in flight (one queue per port) and every frame ever sent, with its sender.
#[derive(Default)]
pub(crate) struct Hub {
    pub(crate) queues: Vec<VecDeque<Vec<u8>>>,
    /// Ports whose cable is cut: they neither send nor receive.
    pub(crate) cut: Vec<bool>,
    pub(crate) log: Vec<(usize, Vec<u8>)>,
}

impl Hub {
    pub(crate) fn deliver(&mut self, from: usize, frame: Vec<u8>) {
        if self.cut[from] {
            return;
        }
        for (to, queue) in self.queues.iter_mut().enumerate() {
            if to != from && !self.cut[to] {
                queue.push_back(frame.clone());
            }
        }
        self.log.push((from, frame));
    }

    pub(crate) fn in_flight(&self) -> bool {
        self.queues.iter().any(|q| !q.is_empty())
    }
}

/// One port of the hub: a smoltcp Ethernet device.
pub(crate) struct Port {
    pub(crate) hub: Rc<RefCell<Hub>>,
    pub(crate) index: usize,
}

pub(crate) struct Rx(Vec<u8>);

pub(crate) struct Tx {
    pub(crate) hub: Rc<RefCell<Hub>>,
    pub(crate) from: usize,
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        self.hub.borrow_mut().deliver(self.from, frame);
        result
    }
}

impl Device for Port {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, _now: Instant) -> Option<(Rx, Tx)> {
        let frame = self.hub.borrow_mut().queues[self.index].pop_front()?;
        Some((Rx(frame), self.tx()))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx> {
        Some(self.tx())
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

impl Port {
    fn tx(&self) -> Tx {
        Tx {
            hub: Rc::clone(&self.hub),
            from: self.index,
        }
    }
}

// ----- the hosts -----

/// Answers every query with a fixed text.
pub(crate) type Answer = cluster_core::Answer<&'static str>;

pub(crate) type TestDriver = Driver<'static, Answer>;

/// One firmware-like host: a port, an interface, one UDP socket and the driver.
pub(crate) struct Host {
    pub(crate) port: Port,
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    pub(crate) driver: Box<TestDriver>,
    pub(crate) ip: Ipv4Addr,
    pub(crate) events: Vec<Event>,
    pub(crate) deadline: Option<Instant>,
}

pub(crate) fn mac(index: usize) -> [u8; 6] {
    [0x02, 0xce, 0, 0, 0, index as u8 + 1]
}

pub(crate) fn ip(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 251, 0, index as u8 + 1)
}

/// An interface on port `index` with address 10.251.0.<index+1>/24, and a socket set with one
/// UDP socket over leaked buffers.
pub(crate) fn stack(
    hub: &Rc<RefCell<Hub>>,
    index: usize,
    now: Instant,
) -> (Port, Interface, SocketSet<'static>, SocketHandle) {
    let mut port = Port {
        hub: Rc::clone(hub),
        index,
    };
    let mut config = IfaceConfig::new(EthernetAddress(mac(index)).into());
    config.random_seed = index as u64;
    let mut iface = Interface::new(config, &mut port, now);
    iface.update_ip_addrs(|addrs| {
        addrs.push(IpCidr::new(ip(index).into(), 24)).unwrap();
    });
    let storage: &'static mut [SocketStorage<'static>] =
        Box::leak(Box::new([SocketStorage::EMPTY; 1]));
    let buffers: &'static mut UdpBuffers = Box::leak(Box::new(UdpBuffers::new()));
    let mut sockets = SocketSet::new(storage);
    let socket = sockets.add(buffers.socket());
    (port, iface, sockets, socket)
}

/// A node that lives as long as the test (the driver borrows it).
pub(crate) fn leak(
    node: Result<Node<Answer>, cluster_core::ConfigError>,
) -> &'static mut Node<Answer> {
    Box::leak(Box::new(node.unwrap()))
}

pub(crate) fn config(tag: &str) -> Config {
    let mut config = firmware_config(Config::lan_fast());
    config.add_tag(tag).unwrap();
    config
}

pub(crate) struct Lan {
    pub(crate) hub: Rc<RefCell<Hub>>,
    pub(crate) hosts: Vec<Host>,
    pub(crate) now: Instant,
}

impl Lan {
    /// `answers.len()` hosts, host `i` tagged `host<i>` and answering queries `answers[i]`.
    pub(crate) fn new(answers: &[&'static str]) -> Self {
        Self::with_setup(answers, |_, _| {})
    }

    /// As [`new`](Self::new), with `setup(i, driver)` called on host `i`'s driver after
    /// `Driver::new` and before its first poll.
    pub(crate) fn with_setup(
        answers: &[&'static str],
        mut setup: impl FnMut(usize, &mut TestDriver),
    ) -> Self {
        let hub = Rc::new(RefCell::new(Hub::default()));
        let now = Instant::from_millis(1_000);
        let mut lan = Self {
            hub,
            hosts: Vec::new(),
            now,
        };
        for (index, answer) in answers.iter().enumerate() {
            {
                let mut hub = lan.hub.borrow_mut();
                hub.queues.push(VecDeque::new());
                hub.cut.push(false);
            }
            let (port, mut iface, mut sockets, socket) = stack(&lan.hub, index, now);
            let hid = MacHid::new(mac(index));
            let node = leak(Node::new(
                config(&format!("host{index}")),
                hid.as_str(),
                Answer::new(*answer),
                0x5eed_0000 + index as u64,
                core_instant(now),
            ));
            let mut driver = Box::new(
                TestDriver::new(node, Group::CLUSTER, &mut iface, &mut sockets, socket).unwrap(),
            );
            setup(index, &mut driver);
            lan.hosts.push(Host {
                port,
                iface,
                sockets,
                driver,
                ip: ip(index),
                events: Vec::new(),
                deadline: Some(now),
            });
        }
        lan
    }

    pub(crate) fn sid(&self, host: usize) -> Sid {
        *self.hosts[host].driver.sid()
    }

    /// Polls every host once at the current time: interface in, driver, interface out.
    pub(crate) fn poll_all(&mut self) {
        let now = self.now;
        for host in &mut self.hosts {
            host.iface.poll(now, &mut host.port, &mut host.sockets);
            let next = host.driver.poll(now, &mut host.iface, &mut host.sockets);
            host.iface.poll(now, &mut host.port, &mut host.sockets);
            while let Some(event) = host.driver.poll_event() {
                host.events.push(event);
            }
            host.deadline = match (next, host.iface.poll_at(now, &host.sockets)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }

    /// One step: poll everyone; if no frame is in flight, jump to the earliest deadline.
    pub(crate) fn step(&mut self) {
        self.poll_all();
        if self.hub.borrow().in_flight() {
            return;
        }
        let next = self.hosts.iter().filter_map(|h| h.deadline).min();
        self.now = match next {
            Some(at) if at > self.now => at,
            _ => self.now + Duration::from_millis(1),
        };
    }

    /// Steps until `done` holds, at most `limit` of virtual time.
    pub(crate) fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            assert!(
                self.now < end,
                "not done after {limit} of virtual time (now {})",
                self.now
            );
            self.step();
        }
    }

    pub(crate) fn runs_for(&mut self, time: Duration) {
        let end = self.now + time;
        while self.now < end {
            self.step();
        }
    }

    pub(crate) fn knows(&self, host: usize, sid: &Sid) -> bool {
        self.hosts[host]
            .events
            .iter()
            .any(|e| matches!(e, Event::Discovered { sid: s } if s == sid))
    }

    pub(crate) fn all_know_each_other(&self) -> bool {
        (0..self.hosts.len())
            .all(|a| (0..self.hosts.len()).all(|b| a == b || self.knows(a, &self.sid(b))))
    }

    pub(crate) fn lost(&self, host: usize, sid: &Sid) -> Option<LostReason> {
        self.hosts[host].events.iter().find_map(|e| match e {
            Event::Lost { sid: s, reason } if s == sid => Some(*reason),
            _ => None,
        })
    }
}

/// The UDP datagrams on the medium to the cluster group: (sender port, IPv4 TTL, source
/// address, source port, payload).
pub(crate) fn cluster_datagrams(
    log: &[(usize, Vec<u8>)],
) -> Vec<(usize, u8, Ipv4Addr, u16, Vec<u8>)> {
    let mut out = Vec::new();
    for (from, frame) in log {
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        if eth.ethertype() != EthernetProtocol::Ipv4 {
            continue;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        if ip.next_header() != IpProtocol::Udp {
            continue;
        }
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        if ip.dst_addr() == Group::CLUSTER.addr && udp.dst_port() == Group::CLUSTER.port {
            assert_eq!(
                eth.dst_addr(),
                EthernetAddress([0x01, 0x00, 0x5e, 0x66, 0xe6, 0xe6]),
                "multicast MAC of the group"
            );
            out.push((
                *from,
                ip.hop_limit(),
                ip.src_addr(),
                udp.src_port(),
                udp.payload().to_vec(),
            ));
        }
    }
    out
}
