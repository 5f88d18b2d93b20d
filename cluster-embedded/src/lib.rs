//! `cluster-embedded`: a [`cluster_core`] node on smoltcp, for microcontrollers.
//!
//! The [`Driver`] takes over one [`Node`](cluster_core::Node) (by exclusive reference, so that
//! the node never moves) and runs it on a smoltcp UDP socket:
//! it joins the multicast group `230.230.230.230` through the interface (IGMP), sends and
//! receives frames on port 23000, passes time from [`smoltcp::time::Instant`], queues the
//! node's events for the application, and tells the caller when to poll next. It is itself
//! poll-based and sans-executor: `no_std`, no allocator, no tasks, and all of its memory is
//! fixed by const generics (the socket buffers are the caller's, see [`UdpBuffers`]).
//!
//! # The polling loop
//!
//! ```no_run
//! use cluster_core::{Config, DefaultPolicy, Event, Node};
//! use cluster_embedded::{Driver, Group, MacHid, UdpBuffers, core_instant, firmware_config};
//! use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
//! use smoltcp::phy::Device;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};
//!
//! fn run(device: &mut impl Device, clock: impl Fn() -> Instant, seed: u64) {
//!     let mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
//!     let mut iface_config = IfaceConfig::new(EthernetAddress(mac).into());
//!     iface_config.random_seed = seed;
//!     let mut iface = Interface::new(iface_config, device, clock());
//!     iface.update_ip_addrs(|addrs| {
//!         let _ = addrs.push(IpCidr::new(Ipv4Address::new(192, 168, 1, 50).into(), 24));
//!     });
//!
//!     // Static in firmware (e.g. `static_cell::ConstStaticCell`); locals here.
//!     let mut buffers: UdpBuffers = UdpBuffers::new();
//!     let mut storage = [SocketStorage::EMPTY; 1];
//!     let mut sockets = SocketSet::new(&mut storage[..]);
//!     let socket = sockets.add(buffers.socket());
//!
//!     // A node in remote mode that runs `c` only, with tags, answering queries through
//!     // its policy.
//!     let mut config = firmware_config(Config::lan_fast());
//!     config.add_tag("sensor").unwrap();
//!     let hid = MacHid::new(mac);
//!     // The node stays where it is created and the driver borrows it. In firmware it is a
//!     // `static` holding `Node::empty(policy)` (a `const`, in `.bss`), started in place.
//!     let mut node: Node = Node::empty(DefaultPolicy);
//!     node.start(config, hid.as_str(), seed, core_instant(clock()))
//!         .expect("valid config");
//!     let mut driver: Driver<'_> =
//!         Driver::new(&mut node, Group::CLUSTER, &mut iface, &mut sockets, socket)
//!             .expect("joined");
//!
//!     loop {
//!         let now = clock();
//!         iface.poll(now, device, &mut sockets); // frames in, queued datagrams out
//!         let next = driver.poll(now, &mut iface, &mut sockets);
//!         iface.poll(now, device, &mut sockets); // send what the node just queued
//!         while let Some(event) = driver.poll_event() {
//!             if let Event::Discovered { sid } = event {
//!                 let _service = driver.node().service(sid.as_bytes());
//!             }
//!         }
//!         // Sleep until the first of: `deadline`, a frame from the device, a command.
//!         let deadline = match (next, iface.poll_at(now, &sockets)) {
//!             (Some(a), Some(b)) => Some(a.min(b)),
//!             (a, b) => a.or(b),
//!         };
//!         # let _ = deadline; break;
//!     }
//! }
//! ```
//!
//! Commands ([`Driver::send`], [`Driver::query`], [`Driver::update_tags`],
//! [`Driver::discover`], [`Driver::leave`], ...) queue frames in the node; they leave at the
//! next [`Driver::poll`], so poll (and then `iface.poll`) right after a command.
//!
//! # What is supported
//!
//! * **Protocol `c` only, in remote mode.** A firmware node is alone on its host, so it runs
//!   in remote mode (multicast TTL 1; a peer is "local" only if it is this interface's own
//!   address) and advertises `protocols = {c}`: the driver refuses a node configured
//!   otherwise ([`Error::LocalMode`], [`Error::UnsupportedProtocol`]); build its config with
//!   [`firmware_config`]. Peers reach a multicast-only node by multicast with a filter:
//!   discovery answers, query responses and this project's direct sends (spec 8, item 6). A
//!   Tcl reference node's cluster-level *direct* events do not reach it (they never fall
//!   back to multicast in the reference); its broadcasts do.
//! * **No `t` (TCP) and no `u`.** The node never asks for them when it runs `c` only; should
//!   a direct send over `t` or `u` come up anyway, the driver reports it failed at once
//!   ([`Stats::direct_sends_refused`]) and the node falls back to multicast.
//! * **Datagram size.** Frames go out as datagrams of at most 4096 bytes (the node chunks
//!   larger frames). smoltcp without `proto-ipv4-fragmentation` neither sends nor reassembles
//!   datagrams above the MTU (1472 bytes of payload on Ethernet). The default `DATA = 512`
//!   keeps every frame this node sends below that; peers' heartbeats, discoveries and
//!   answers are far below it. Enable smoltcp's `proto-ipv4-fragmentation` in the
//!   application to receive larger frames from hosts.
//! * **Own echoes.** smoltcp does not loop multicast back to the sender; the node would drop
//!   its own frames anyway.
//! * **Sealed frames** (feature `seal`). Give the driver a `cluster_core::KeyRing` with
//!   `Driver::set_keys` before its first poll, and the node seals every frame with
//!   XChaCha20-Poly1305 and drops, before they touch its state, frames that are unsealed,
//!   sealed with a key it does not hold, forged or replayed (see `cluster_core::seal`).
//!   Calling it again later rotates the keys. Such a node and the host nodes of
//!   `cluster join --key-file FILE` with the same keys form one cluster; nodes without the
//!   keys (this project's or the Tcl reference's) neither see it nor are seen by it. The seal
//!   adds about 60 bytes to a frame: the default node's frames, sealed, take at most 1470
//!   bytes, so each still leaves as one Ethernet datagram. In firmware, read the keys from
//!   the device's provisioning storage; `KeyRing::parse` reads the key-file format of
//!   `cluster --key-file` (`[*]ID HEX`).
//!
//! # Events
//!
//! [`Driver::poll_event`] returns the core's [`Event`](cluster_core::Event). They wait inside
//! the node, which holds `EVENTS` events with data (its last const generic; see
//! [`Driver::poll_event`] for what may be dropped beyond them); the driver holds none, and
//! while the node's queue is full it leaves datagrams in the socket for [`EVENT_HOLD`] at
//! most.
//! `Discovered { sid }` carries only the sid: read the service's address, tags and protocols
//! with `driver.node().service(sid)` before the next poll.
//!
//! # Memory
//!
//! Everything is static: the node (const generics `SERVICES`, `DATA` and `EVENTS`, its event
//! queue of `EVENTS` events of about `DATA + 90` bytes; with `seal` also a replay table of
//! `SERVICES` senders and a `2 × DATA` buffer that sealed frames are opened in), the driver
//! (its counters), and the socket buffers ([`UdpBuffers`]). The driver has no frame buffer:
//! the node writes each frame straight into the socket's transmit buffer, which must hold at
//! least `TX` bytes ([`Node::TRANSMIT_BUF`](cluster_core::Node::TRANSMIT_BUF), which
//! includes the seal's room with `seal`). The firmware's node image in
//! `cluster-embedded/firmware/` (Cortex-M4F, `thumbv7em-none-eabihf`, 32 services,
//! `EVENTS = 4`, every command, a loopback device in place of the MAC driver, release,
//! `opt-level = "z"`) measures them; run `cluster-embedded/firmware/measure.sh`. With rustc
//! 1.95 and smoltcp 0.14:
//!
//! | | default sizes, every command | default sizes, `seal` |
//! | --- | ---: | ---: |
//! | flash (`.text + .rodata`) | 49.5 KiB | 56.2 KiB |
//! | static RAM (node + driver + smoltcp and its buffers) | 25.8 KiB | 28.3 KiB |
//! | of which the node, `Node<_, 32, DATA, NoHeld, 4>` (its 4 events included) | 21.0 KiB | 23.4 KiB |
//! | of which the driver (counters, the read hold) | 88 B | 88 B |
//! | stack of the main loop (estimate) | 5.3 KiB | 5.6 KiB |
//! | stack at start-up, on the path through `Node::start` | 6.4 KiB | 6.4 KiB |
//!
//! Of the sealed build's extra 6.8 KiB of flash, 2.4 KiB are the AEAD (the core's own
//! XChaCha20-Poly1305) and 3.1 KiB the rest of the core's `seal` module; its extra RAM is the
//! node's opening buffer (`2 × DATA`) and replay table (32 senders). The firmware's board
//! image (the same application with a MAC driver, a console and options) takes 10.0 KiB more
//! flash; with `DATA = 256`, `EVENTS = 1` and smaller socket buffers it takes 52.7 KiB of
//! flash and 21.2 KiB of static RAM.
//!
//! The driver never moves the node (it borrows it), so create the node where it stays and
//! start it there: in firmware, a `static_cell::ConstStaticCell` holding
//! [`Node::empty`](cluster_core::Node::empty) (a `const` that is all zero bits but the
//! policy, so it takes no flash image) and [`Node::start`](cluster_core::Node::start) on it,
//! which joins in place. [`Node::new`](cluster_core::Node::new) returns the node by value and
//! needs about twice its size of stack once.
//!
//! # Features
//!
//! | feature | adds |
//! | --- | --- |
//! | *(default)* | nothing: `no_std`, no allocator |
//! | `defmt` | `defmt::Format` on the driver's types, and its log lines through `defmt` (the core has no `defmt` support: wrap its types in `defmt::Debug2Format`) |
//! | `seal` | sealed frames: `Driver::set_keys` and `Driver::keys`, and `cluster-core/seal` (XChaCha20-Poly1305 under a pre-shared key ring, replay protection; no allocator) |
//! | `tap` | host only: the `tap_node` example on a Linux TAP device, with `--key-file` (pulls `std` into smoltcp; turns on `seal`) |
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

#[macro_use]
mod log;

mod buffers;
mod driver;
mod error;
mod time;

pub use buffers::UdpBuffers;
pub use cluster_core::MacHid;
pub use driver::{Driver, EVENT_HOLD, Group, Stats};
pub use error::Error;
pub use time::{core_instant, net_instant};

pub use cluster_core;
pub use smoltcp;

use cluster_core::{Config, Protocol, ProtocolList};

/// `config` made fit for a firmware node: remote mode (multicast TTL 1, peers on other hosts
/// accepted) and the protocol `c` only. Everything else is kept.
#[must_use]
pub fn firmware_config(mut config: Config) -> Config {
    config.remote = true;
    config.protocols = ProtocolList::new(&[Protocol::Multicast]);
    config
}
