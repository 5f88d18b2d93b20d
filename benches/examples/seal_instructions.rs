//! Sealing and opening frames N times, for instruction counting under callgrind
//! (`benches/seal_counts.sh`): `seal_instructions MODE N` with MODE `sealed` or `plain`.
//!
//! A sender node (32 services, `DATA = 512`, as the firmware's) produces N heartbeats (its
//! join, discovery and periodic heartbeats, sealed under a key ring in `sealed` mode) in
//! `transmit`, and a receiver with the same ring handles each in `receive`. Both are kept out
//! of line so that callgrind's `--toggle-collect` can count each on its own: the difference
//! between `sealed` and `plain` is the cost of sealing (in `transmit`) and of opening (in
//! `receive`, the AEAD, the envelope and the replay window) per frame.

use std::hint::black_box;

use cluster_benches::{HID, source};
use cluster_core::{Config, DefaultPolicy, Instant, Key, KeyRing, Node};

/// The firmware's node.
type SmallNode = Node<DefaultPolicy, 32, 512>;

/// The sender's next frame, if any, copied out.
#[inline(never)]
fn transmit(node: &mut SmallNode, now: Instant, buf: &mut [u8]) -> Option<Vec<u8>> {
    let transmit = node.poll_transmit(now, buf)?;
    buf.get(..transmit.len).map(<[u8]>::to_vec)
}

/// The receiver handles one frame.
#[inline(never)]
fn receive(node: &mut SmallNode, now: Instant, frame: &[u8]) -> bool {
    node.handle_datagram(now, source(), black_box(frame))
        .is_ok()
}

fn node(seed: u64, sealed: bool) -> Box<SmallNode> {
    let mut config = Config::lan_fast();
    config.heartbeat_min = std::time::Duration::from_millis(100);
    config.heartbeat_max = config.heartbeat_min;
    let mut node =
        Box::new(SmallNode::new(config, HID, DefaultPolicy, seed, Instant::ZERO).expect("valid"));
    if sealed {
        node.set_keys(Some(KeyRing::new(Key::new(1, [0x5a; 32]))));
    }
    node
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sealed = match args.next().as_deref() {
        Some("sealed") => true,
        Some("plain") => false,
        _ => {
            eprintln!("usage: seal_instructions sealed|plain N");
            std::process::exit(2);
        }
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut sender = node(1, sealed);
    let mut receiver = node(2, sealed);
    let mut buf = vec![0u8; SmallNode::TRANSMIT_BUF];
    let mut received = 0usize;
    let mut ms = 0u64;
    while received < n {
        ms += 100;
        let now = Instant::from_millis(ms);
        sender.handle_timeout(now);
        while let Some(frame) = transmit(&mut sender, now, &mut buf) {
            received += usize::from(receive(&mut receiver, now, &frame));
        }
        while sender.poll_event().is_some() {}
        while receiver.poll_event().is_some() {}
        while receiver.poll_transmit(now, &mut buf).is_some() {}
    }
    assert!(
        n == 0 || receiver.known() == 1,
        "the receiver knows the sender"
    );
    black_box(received);
}
