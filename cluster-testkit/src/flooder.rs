//! A flooder for the loopback flood test (`cluster-tokio/tests/flood.rs`) and the flood
//! benchmark (`benches/benches/flood.rs`): what it throws at the nodes of one group and
//! port, and how.
//!
//! * [`Sniffer`]: a socket joined to the group on the cluster port that keeps copies of the
//!   real nodes' datagrams (those sent from the cluster port; the flooder sends from
//!   ephemeral ports), for replays and forgeries.
//! * [`Flood`]: a deterministic generator of hostile datagrams, one [`Kind`] at a time: random
//!   garbage, frames with the right header and bogus lengths, valid frames of invented
//!   services (right hid, thousands of sids), frames with a foreign hid, verbatim replays of
//!   captured frames, and forged sealed frames (captured sealed frames with their nonce,
//!   key id or stuffing altered, or sealed-looking frames of random bytes).
//! * [`udp_flood`] and [`tcp_flood`]: send a fixed number of them, paced or as fast as
//!   possible, to the group from a few ephemeral ports, or over TCP connections to a node's
//!   advertised port.
//!
//! Everything stays on loopback: the sockets send with `IP_MULTICAST_IF = 127.0.0.1` and TTL 0,
//! the TCP connections go to `127.0.0.1`.

use std::io::{ErrorKind, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str, encode_varint};

/// The hid of the frames with a foreign hid (no test node uses it).
pub const FOREIGN_HID: &str = "02:00:00:00:00:ff";
/// Invented sids are this prefix and five digits: ten characters, so that they never equal
/// the sid of a real node (eight characters).
pub const INVENTED_PREFIX: &str = "flood";

/// True for a sid the flooder invents.
#[must_use]
pub fn is_invented(sid: &str) -> bool {
    sid.len() == INVENTED_PREFIX.len() + 5 && sid.starts_with(INVENTED_PREFIX)
}

/// What one datagram (or one item written on a connection) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Random bytes, sometimes with `C0 8D` inside.
    Garbage,
    /// A header with a length that does not match what follows (longer, over the limit,
    /// overflowing, truncated), a bad footer, or a body that does not decode.
    BogusLength,
    /// A valid frame of an invented service, from this host, with the nodes' hid.
    Invented,
    /// A valid frame with another hid.
    ForeignHid,
    /// A captured frame of a real node, resent unchanged.
    Replay,
    /// A sealed-looking frame that does not authenticate, or names a key nobody has.
    Forged,
}

impl Kind {
    /// Every kind, in a fixed order (the index of [`Tally::by_kind`]).
    pub const ALL: [Self; 6] = [
        Self::Garbage,
        Self::BogusLength,
        Self::Invented,
        Self::ForeignHid,
        Self::Replay,
        Self::Forged,
    ];

    /// A short name, for reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Garbage => "garbage",
            Self::BogusLength => "bogus length",
            Self::Invented => "invented service",
            Self::ForeignHid => "foreign hid",
            Self::Replay => "replay",
            Self::Forged => "forged sealed",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::Garbage => 0,
            Self::BogusLength => 1,
            Self::Invented => 2,
            Self::ForeignHid => 3,
            Self::Replay => 4,
            Self::Forged => 5,
        }
    }
}

/// Relative weights of the kinds in a flood, in the order of [`Kind::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix(pub [u32; 6]);

impl Mix {
    /// The test's mix: a third invented services, the rest spread over the other kinds.
    pub const MIXED: Self = Self([15, 15, 30, 10, 20, 10]);

    /// The same mix without `kind`.
    #[must_use]
    pub const fn without(self, kind: Kind) -> Self {
        let mut weights = self.0;
        weights[kind.index()] = 0;
        Self(weights)
    }

    /// One kind only.
    #[must_use]
    pub const fn only(kind: Kind) -> Self {
        let mut weights = [0; 6];
        weights[kind.index()] = 1;
        Self(weights)
    }
}

/// SplitMix64: small, seeded, good enough to pick bytes and kinds.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n > 0`; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Real frames captured by a [`Sniffer`], shared with the flooders. At most
/// [`Captured::KEEP`] are kept; older ones are replaced at random. Only frames captured at
/// least [`Captured::MIN_AGE`] ago are replayed or forged: a replay is a copy of a frame every
/// node has had time to receive (relaying a fresh frame before its original arrives is
/// another attack; see the ignored tests of `tests/flood.rs`).
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<Frame>>>);

/// A captured datagram and when it was captured.
type Frame = (Instant, Vec<u8>);

impl Captured {
    /// Frames kept at most.
    pub const KEEP: usize = 512;
    /// How old a frame must be to be replayed.
    pub const MIN_AGE: Duration = Duration::from_millis(500);

    fn push(&self, frame: &[u8], rng: &mut Rng) {
        let mut frames = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = (Instant::now(), frame.to_vec());
        if frames.len() < Self::KEEP {
            frames.push(entry);
        } else {
            let at = rng.below(Self::KEEP as u64) as usize;
            frames[at] = entry;
        }
    }

    /// How many frames are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True when nothing was captured yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the frames `keep` accepts.
    pub fn retain(&self, mut keep: impl FnMut(&[u8]) -> bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(_, frame)| keep(frame));
    }

    /// Copies of the frames whose `sid` field (plain frames only) is `sid`, oldest first.
    #[must_use]
    pub fn of_sid(&self, sid: &[u8]) -> Vec<Vec<u8>> {
        let mut found: Vec<Frame> = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, f)| {
                Message::parse(f)
                    .ok()
                    .and_then(|(m, _)| m.sid)
                    .is_some_and(|s| s.as_bytes() == sid)
            })
            .cloned()
            .collect();
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, f)| f).collect()
    }

    /// Copies of every frame, oldest first.
    #[must_use]
    pub fn all(&self) -> Vec<Vec<u8>> {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        all.sort_by_key(|(at, _)| *at);
        all.into_iter().map(|(_, f)| f).collect()
    }

    /// Copies one frame at least [`Captured::MIN_AGE`] old, picked at random, into `out`
    /// (sealed ones only if `sealed`). False when there is none.
    fn pick(&self, rng: &mut Rng, sealed: bool, out: &mut Vec<u8>) -> bool {
        let frames = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if frames.is_empty() {
            return false;
        }
        for _ in 0..8 {
            let (at, frame) = &frames[rng.below(frames.len() as u64) as usize];
            if at.elapsed() >= Self::MIN_AGE && (!sealed || sealed_envelope_at(frame).is_some()) {
                out.clear();
                out.extend_from_slice(frame);
                return true;
            }
        }
        false
    }
}

/// A socket joined to the group on the cluster port, on loopback, that keeps copies of the
/// datagrams sent from the cluster port (the real nodes' own sockets) until dropped.
#[derive(Debug)]
pub struct Sniffer {
    frames: Captured,
    seen: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sniffer {
    /// Starts sniffing `port` on the reference group.
    ///
    /// # Panics
    ///
    /// When the socket cannot be opened.
    #[must_use]
    pub fn start(port: u16) -> Self {
        let (socket, _) = cluster_host::socket::multicast_socket(
            cluster_host::options::DEFAULT_GROUP,
            port,
            false,
            Some(Ipv4Addr::LOCALHOST),
        )
        .expect("sniffer socket");
        socket.set_nonblocking(false).expect("blocking sniffer");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let frames = Captured::default();
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (frames, seen, stop) = (frames.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::new(u64::from(port));
                let mut buf = vec![0u8; 65_535];
                while !stop.load(Ordering::Relaxed) {
                    match socket.recv_from(&mut buf) {
                        Ok((n, SocketAddr::V4(from))) if from.port() == port => {
                            seen.fetch_add(1, Ordering::Relaxed);
                            frames.push(&buf[..n], &mut rng);
                        }
                        Ok(_) => {}
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => panic!("sniffer: {e}"),
                    }
                }
            })
        };
        Self {
            frames,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The captured frames, shared.
    #[must_use]
    pub fn frames(&self) -> Captured {
        self.frames.clone()
    }

    /// Real datagrams seen so far.
    #[must_use]
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where a captured frame's stuffed envelope starts, when the frame has the sealed layout
/// (`C0 8D L 0E 00 0B S envelope 00 00`).
fn sealed_envelope_at(frame: &[u8]) -> Option<usize> {
    let rest = frame.strip_prefix(&[0xC0, 0x8D])?;
    let (_, l_len) = cluster_core::wire::decode_varint(rest).ok()?;
    let body = rest.get(l_len..)?;
    let after_prefix = body.strip_prefix(&[0x0E, 0x00, 0x0B])?;
    let (_, s_len) = cluster_core::wire::decode_varint(after_prefix).ok()?;
    Some(2 + l_len + 3 + s_len)
}

/// The generator: each call to [`Flood::next`] writes one hostile datagram.
#[derive(Debug)]
pub struct Flood {
    rng: Rng,
    mix: Mix,
    total: u32,
    hid: String,
    captured: Captured,
    sids: u32,
    next_sid: u32,
    dead_port: u16,
}

impl Flood {
    /// A generator of `mix`, seeded with `seed`, whose invented services have the nodes' `hid`
    /// and cycle through `sids` sids; replays and forgeries come from `captured`.
    /// `dead_port` is a TCP port nobody listens on, which some invented services advertise.
    #[must_use]
    pub fn new(
        seed: u64,
        mix: Mix,
        hid: &str,
        sids: u32,
        captured: Captured,
        dead_port: u16,
    ) -> Self {
        Self {
            rng: Rng::new(seed),
            mix,
            total: mix.0.iter().sum(),
            hid: hid.to_owned(),
            captured,
            sids: sids.max(1),
            next_sid: 0,
            dead_port,
        }
    }

    fn pick_kind(&mut self) -> Kind {
        let mut at = self.rng.below(u64::from(self.total)) as u32;
        for kind in Kind::ALL {
            let weight = self.mix.0[kind.index()];
            if at < weight {
                return kind;
            }
            at -= weight;
        }
        Kind::Garbage
    }

    /// Writes the next datagram into `out` (cleared first) and says what it is. A replay or
    /// forgery with nothing captured yet becomes garbage.
    pub fn next(&mut self, out: &mut Vec<u8>) -> Kind {
        out.clear();
        let kind = self.pick_kind();
        match kind {
            Kind::Garbage => self.garbage(out),
            Kind::BogusLength => self.bogus_length(out),
            Kind::Invented => self.invented(out),
            Kind::ForeignHid => self.foreign(out),
            Kind::Replay => {
                if !self.captured.pick(&mut self.rng, false, out) {
                    self.garbage(out);
                    return Kind::Garbage;
                }
            }
            Kind::Forged => self.forged(out),
        }
        kind
    }

    fn garbage(&mut self, out: &mut Vec<u8>) {
        let len = 1 + self.rng.below(1400) as usize;
        out.resize(len, 0);
        self.rng.fill(out);
        if self.rng.below(4) == 0 && len >= 4 {
            // Headers in the middle, which a parser must not trust.
            for _ in 0..=self.rng.below(4) {
                let at = self.rng.below(len as u64 - 1) as usize;
                out[at] = 0xC0;
                out[at + 1] = 0x8D;
            }
        }
    }

    fn bogus_length(&mut self, out: &mut Vec<u8>) {
        let body_len = self.rng.below(600) as usize;
        let mut body = vec![0u8; body_len];
        self.rng.fill(&mut body);
        out.extend_from_slice(&[0xC0, 0x8D]);
        let mut varint = [0u8; 10];
        let declared: Option<u64> = match self.rng.below(6) {
            // Longer than what follows: a partial frame that waits for more.
            0 => Some(body_len as u64 + 1 + self.rng.below(8000)),
            // Over the 1 MiB frame limit.
            1 => Some((1 << 21) | self.rng.below(1 << 30)),
            // A varint that overflows 64 bits.
            2 => {
                out.extend_from_slice(&[0xFF; 10]);
                out.push(0x7F);
                None
            }
            // A varint cut by the end of the datagram.
            3 => {
                out.extend_from_slice(&[0x85, 0xA3]);
                return;
            }
            // The right length and a bad footer, or a body that does not decode.
            _ => Some(body_len as u64),
        };
        if let Some(declared) = declared {
            let n = encode_varint(declared, &mut varint).expect("room for a varint");
            out.extend_from_slice(&varint[..n]);
        }
        out.extend_from_slice(&body);
        if self.rng.below(2) == 0 {
            out.extend_from_slice(&[0x00, 0x00]);
        } else {
            out.extend_from_slice(&[0x5A, 0xA5]);
        }
    }

    fn invented_sid(&mut self) -> String {
        let sid = format!("{INVENTED_PREFIX}{:05}", self.next_sid % self.sids);
        self.next_sid = self.next_sid.wrapping_add(1);
        sid
    }

    fn invented(&mut self, out: &mut Vec<u8>) {
        let sid = self.invented_sid();
        let hid = self.hid.clone();
        let dead = format!("t {{port {}}}", self.dead_port);
        let c: &[&str] = &["c"];
        let tc: &[&str] = &["t", "c"];
        let tags: &[&str] = &["flood", "invented"];
        let base = Message {
            sid: Some(Str::from(sid.as_str())),
            hid: Some(Str::from(hid.as_str())),
            channel: Some(0),
            protocols: Some(List::from_items(c)),
            ..Message::default()
        };
        let message = match self.rng.below(20) {
            // A join heartbeat: props and tags.
            0..=9 => Message {
                kind: Some(MessageKind::Heartbeat),
                data: Some(Str::from("")),
                known: Some(0),
                tags: Some(List::from_items(tags)),
                ..base
            },
            // A periodic heartbeat: no tags, so the node asks for them.
            10..=15 => Message {
                kind: Some(MessageKind::Heartbeat),
                known: Some(3),
                ..base
            },
            // A discovery, answered by multicast.
            16 | 17 => Message {
                kind: Some(MessageKind::Discovery),
                data: Some(Str::from("")),
                known: Some(0),
                tags: Some(List::from_items(tags)),
                ..base
            },
            // A discovery advertising a TCP port nobody listens on: the answer's connection
            // fails and falls back to multicast.
            18 => Message {
                kind: Some(MessageKind::Discovery),
                protocols: Some(List::from_items(tc)),
                data: Some(Str::from(dead.as_str())),
                known: Some(0),
                tags: Some(List::from_items(tags)),
                ..base
            },
            // A broadcast event.
            _ => Message {
                kind: Some(MessageKind::Event),
                data: Some(Str::from("flood")),
                ..base
            },
        };
        encode_into(&message, out);
    }

    fn foreign(&mut self, out: &mut Vec<u8>) {
        let sid = format!("foreign{:03}", self.rng.below(1000));
        let c: &[&str] = &["c"];
        let message = Message {
            kind: Some(MessageKind::Heartbeat),
            sid: Some(Str::from(sid.as_str())),
            hid: Some(Str::from(FOREIGN_HID)),
            channel: Some(0),
            protocols: Some(List::from_items(c)),
            data: Some(Str::from("")),
            known: Some(0),
            ..Message::default()
        };
        encode_into(&message, out);
    }

    fn forged(&mut self, out: &mut Vec<u8>) {
        if self.captured.pick(&mut self.rng, true, out)
            && let Some(envelope) = sealed_envelope_at(out)
        {
            // The envelope's head: code byte, version, key id, pad length, pad, salt, counter.
            let head_end = (envelope + 28).min(out.len().saturating_sub(2));
            if self.rng.below(4) == 0 && envelope + 16 < head_end {
                // A key id no ring holds (the version byte is never C0, so the key id is the
                // third stuffed byte), and a new salt, so that the replay window, which is
                // checked first, lets it through (the salt starts at the fifth stuffed byte
                // when no pad byte and no C0 come before).
                out[envelope + 2] = 0x77;
                let at = envelope + 4 + self.rng.below(12) as usize;
                out[at] = if out[at] == 0x3F { 0x40 } else { 0x3F };
            } else if envelope + 1 < head_end {
                // Any change to the head alters the nonce (authenticated) or the stuffing.
                let at = envelope + 1 + self.rng.below((head_end - envelope - 1) as u64) as usize;
                let mut flipped = out[at] ^ (1 + self.rng.below(255) as u8);
                if flipped == 0xC0 {
                    flipped ^= 0x01;
                }
                out[at] = flipped;
            }
            return;
        }
        // Nothing sealed captured: a sealed-looking frame of random bytes (no C0 inside).
        out.clear();
        let stuffed_len = 60 + self.rng.below(200) as usize;
        let mut stuffed = vec![0u8; stuffed_len];
        self.rng.fill(&mut stuffed);
        for byte in &mut stuffed {
            if *byte == 0xC0 {
                *byte = 0x3F;
            }
        }
        let mut varint = [0u8; 10];
        let mut body = vec![0x0E, 0x00, 0x0B];
        let n = encode_varint(stuffed_len as u64, &mut varint).expect("varint");
        body.extend_from_slice(&varint[..n]);
        body.extend_from_slice(&stuffed);
        out.extend_from_slice(&[0xC0, 0x8D]);
        let n = encode_varint(body.len() as u64, &mut varint).expect("varint");
        out.extend_from_slice(&varint[..n]);
        out.extend_from_slice(&body);
        out.extend_from_slice(&[0x00, 0x00]);
    }
}

fn encode_into(message: &Message<'_>, out: &mut Vec<u8>) {
    let mut buf = [0u8; 512];
    let len = message
        .encode(FilterPlacement::Last, &mut buf)
        .expect("an invented frame encodes");
    out.extend_from_slice(&buf[..len]);
}

/// What a flooder sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Datagrams (or items on connections) handed to the kernel.
    pub sent: u64,
    /// Bytes handed to the kernel.
    pub bytes: u64,
    /// Sends the kernel refused (`ENOBUFS` and the like); not counted in `sent`.
    pub refused: u64,
    /// Sent per kind, in the order of [`Kind::ALL`].
    pub by_kind: [u64; 6],
    /// TCP connections opened.
    pub connections: u64,
}

impl Tally {
    fn note(&mut self, kind: Kind, bytes: usize) {
        self.sent += 1;
        self.bytes += bytes as u64;
        self.by_kind[kind.index()] += 1;
    }

    /// Adds another tally.
    pub fn add(&mut self, other: &Self) {
        self.sent += other.sent;
        self.bytes += other.bytes;
        self.refused += other.refused;
        self.connections += other.connections;
        for (a, b) in self.by_kind.iter_mut().zip(other.by_kind) {
            *a += b;
        }
    }

    /// Sent of one kind.
    #[must_use]
    pub fn of(&self, kind: Kind) -> u64 {
        self.by_kind[kind.index()]
    }
}

/// Keeps a sender at `per_sec` items per second from `start`, by sleeping whenever it is
/// more than a millisecond ahead. `None`: as fast as possible.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    per_sec: Option<u64>,
}

impl Pacer {
    /// Starts pacing now.
    #[must_use]
    pub fn new(per_sec: Option<u64>) -> Self {
        Self {
            start: Instant::now(),
            per_sec,
        }
    }

    /// Waits until item `index` is due.
    pub fn wait(&self, index: u64) {
        let Some(per_sec) = self.per_sec else {
            return;
        };
        let due = Duration::from_micros(index.saturating_mul(1_000_000) / per_sec.max(1));
        let elapsed = self.start.elapsed();
        if due > elapsed + Duration::from_millis(1) {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// UDP sockets on ephemeral ports that send to the group on loopback.
#[derive(Debug)]
pub struct Senders {
    sockets: Vec<UdpSocket>,
    to: SocketAddrV4,
}

impl Senders {
    /// `count` sockets (each its own source port) sending to the reference group on `port`.
    ///
    /// # Panics
    ///
    /// When a socket cannot be opened.
    #[must_use]
    pub fn new(port: u16, count: usize) -> Self {
        let sockets = (0..count.max(1))
            .map(|_| {
                let (socket, _) = cluster_host::socket::multicast_socket(
                    cluster_host::options::DEFAULT_GROUP,
                    0,
                    false,
                    Some(Ipv4Addr::LOCALHOST),
                )
                .expect("flood socket");
                socket.set_nonblocking(false).expect("blocking");
                socket
            })
            .collect();
        Self {
            sockets,
            to: SocketAddrV4::new(cluster_host::options::DEFAULT_GROUP, port),
        }
    }
}

/// Sends `count` datagrams of `flood` to the group, `per_sec` per second (`None`: as fast as
/// the kernel takes them), spread over the senders' source ports. Stops early when `stop` is
/// set.
pub fn udp_flood(
    senders: &Senders,
    flood: &mut Flood,
    count: u64,
    per_sec: Option<u64>,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(4096);
    let pacer = Pacer::new(per_sec);
    for index in 0..count {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        pacer.wait(index);
        let kind = flood.next(&mut buf);
        let socket = &senders.sockets[index as usize % senders.sockets.len()];
        match socket.send_to(&buf, senders.to) {
            Ok(_) => tally.note(kind, buf.len()),
            Err(_) => tally.refused += 1,
        }
    }
    tally
}

/// Opens `connections` TCP connections to `to`, one after the other, and writes
/// `items_per_connection` items of `flood` on each (paced at `per_sec` items per second
/// overall) before closing it. One connection in four is left holding a partial frame (a
/// header that declares more than is sent) until the function returns, at most four at a
/// time. Connections the node refuses or resets are counted and skipped.
pub fn tcp_flood(
    to: SocketAddr,
    flood: &mut Flood,
    connections: u64,
    items_per_connection: u64,
    per_sec: Option<u64>,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let mut held: Vec<TcpStream> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    let pacer = Pacer::new(per_sec);
    let mut index = 0;
    for conn in 0..connections {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut stream) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) else {
            tally.refused += 1;
            continue;
        };
        tally.connections += 1;
        // The node may write back (discovery answers to invented services): never block on a
        // full buffer, and never read.
        let _ = stream.set_write_timeout(Some(Duration::from_millis(200)));
        for _ in 0..items_per_connection {
            pacer.wait(index);
            index += 1;
            let kind = flood.next(&mut buf);
            if stream.write_all(&buf).is_err() {
                tally.refused += 1;
                break;
            }
            tally.note(kind, buf.len());
        }
        if conn % 4 == 3 && held.len() < 4 {
            // C0 8D, then a length of 40,000 bytes, then only a few of them.
            let _ = stream.write_all(&[0xC0, 0x8D, 0xC0, 0xB8, 0x02, 1, 2, 3]);
            held.push(stream);
        }
    }
    drop(held);
    tally
}

/// A TCP port nobody listens on (bound, then closed).
#[must_use]
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A value of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`, ...).
///
/// # Panics
///
/// When the process or the key does not exist (Linux only).
#[must_use]
pub fn status_kib(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    text.lines()
        .find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}
