//! The instructions a node spends on a frame, sealed or not, counted on the board: a sender
//! node's heartbeats handed to a receiver node, both the firmware's size (32 services,
//! `DATA = 512`), with the board's 25 MHz timer read around the receiver's `handle_datagram`
//! and the sender's `poll_transmit`. Under QEMU's `-icount shift=0` a nanosecond is one
//! instruction, so a tick (40 ns) is 40 instructions; `../qemu/seal-bench.sh` runs it and
//! prints the figures. With the feature `sealed` both nodes seal under one key, without it
//! they run plain; the difference is what sealing costs a frame on a Cortex-M4.
#![no_std]
#![no_main]

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_embedded::cluster_core::{Config, DefaultPolicy, Instant, Node, Source};
use cluster_embedded::firmware_config;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use mps2_board::clock::Clock;
use mps2_board::mmio::Registers;
use panic_halt as _;
use static_cell::ConstStaticCell;

/// The firmware's node.
type BenchNode = Node<DefaultPolicy, 32, 512>;

static SENDER: ConstStaticCell<BenchNode> = ConstStaticCell::new(BenchNode::empty(DefaultPolicy));
static RECEIVER: ConstStaticCell<BenchNode> = ConstStaticCell::new(BenchNode::empty(DefaultPolicy));
static FRAME: ConstStaticCell<[u8; BenchNode::TRANSMIT_BUF]> =
    ConstStaticCell::new([0; BenchNode::TRANSMIT_BUF]);

/// Frames handled before counting: the join, the discovery and the receiver's first sight of
/// the sender.
const WARM_UP: u32 = 10;
/// Frames counted.
const FRAMES: u32 = 200;

#[entry]
fn main() -> ! {
    // SAFETY: the board's first timer; the clock is its only user.
    let clock = Clock::start(unsafe { Registers::new() });
    let sender = SENDER.take();
    let receiver = RECEIVER.take();
    let buf = FRAME.take();
    let started = start(sender, 1).and_then(|()| start(receiver, 2));
    if started.is_err() {
        hprintln!("seal-bench: the nodes did not start");
        debug::exit(debug::EXIT_FAILURE);
    }
    let source = Source::multicast(
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 23000),
        false,
    );
    let (mut frames, mut accepted) = (0u32, 0u32);
    let (mut receive_ticks, mut transmit_ticks) = (0u32, 0u32);
    let mut ms = 0u64;
    while frames < WARM_UP + FRAMES {
        ms += 100;
        let now = Instant::from_millis(ms);
        sender.handle_timeout(now);
        loop {
            let before = clock.ticks();
            let Some(transmit) = sender.poll_transmit(now, buf) else {
                break;
            };
            let between = clock.ticks();
            let ok = receiver
                .handle_datagram(now, source, buf.get(..transmit.len).unwrap_or_default())
                .is_ok();
            let after = clock.ticks();
            frames += 1;
            if frames > WARM_UP {
                transmit_ticks = transmit_ticks.wrapping_add(between.wrapping_sub(before));
                receive_ticks = receive_ticks.wrapping_add(after.wrapping_sub(between));
                accepted += u32::from(ok);
            }
        }
        while sender.poll_event().is_some() {}
        while receiver.poll_event().is_some() {}
        while receiver.poll_transmit(now, buf).is_some() {}
    }
    let per_frame = |ticks: u32| u64::from(ticks) * 40 / u64::from(FRAMES);
    hprintln!(
        "seal-bench: sealed={} frames={} accepted={} receive={} transmit={} (instructions per frame)",
        cfg!(feature = "sealed"),
        FRAMES,
        accepted,
        per_frame(receive_ticks),
        per_frame(transmit_ticks)
    );
    debug::exit(if accepted == FRAMES {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Starts `node` with a 100 ms heartbeat (and the key ring, sealed).
fn start(node: &mut BenchNode, seed: u64) -> Result<(), ()> {
    let mut config = firmware_config(Config::lan_fast());
    config.heartbeat_min = core::time::Duration::from_millis(100);
    config.heartbeat_max = config.heartbeat_min;
    #[cfg(feature = "sealed")]
    {
        use cluster_embedded::cluster_core::{Key, KeyRing};
        node.set_keys(Some(KeyRing::new(Key::new(1, [0x5a; 32]))));
    }
    let hid = if seed == 1 {
        "02:00:00:00:00:01"
    } else {
        "02:00:00:00:00:02"
    };
    node.start(config, hid, seed, Instant::ZERO).map_err(|_| ())
}
