//! Helpers of the socket tests: a fresh port per test, loopback-only options, and waiting
//! for events with a timeout that is only an upper bound (never a synchronisation).

#![allow(dead_code, unreachable_pub)]

pub mod lan;
pub mod openmetrics;
pub mod process;
pub mod routed;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use cluster_tokio::{Event, Events, Options, Profile};

/// The hid every loopback test node shares (nodes on one host must agree).
pub const HID: &str = "02:00:00:00:00:aa";

/// Upper bound of any wait in these tests.
pub const PATIENCE: Duration = Duration::from_secs(10);

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A UDP port no other test of this run uses: test binaries run one after the other, tests
/// of a binary in parallel, and runs at the same time differ by process id.
pub fn fresh_port() -> u16 {
    let base = 24_000 + (std::process::id() % 400) as u16 * 50;
    base + NEXT.fetch_add(1, Ordering::Relaxed) % 50
}

/// Fast timers, traffic on loopback only.
pub fn options(port: u16) -> Options {
    Options::new(Profile::LanFast)
        .port(port)
        .interface(Ipv4Addr::LOCALHOST)
        .hid(HID)
        .heartbeat(Duration::from_millis(200))
        .ttl(Duration::from_millis(1500))
}

/// Waits for the first event that `pick` maps to `Some`, at most [`PATIENCE`].
pub async fn wait_for<T>(events: &mut Events, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => found,
        Ok(None) => panic!("the node stopped before the expected event"),
        Err(_) => panic!("no expected event within {PATIENCE:?}"),
    }
}

/// A peer played by the test: it heartbeats as sid `sid` with the given protocols and props
/// every 100 ms from a raw multicast socket on loopback, and never answers anything.
pub struct Ghost {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ghost {
    pub fn start(
        port: u16,
        sid: &'static str,
        protocols: &'static [&'static str],
        props: String,
    ) -> Self {
        use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
        let (socket, setup) = cluster_host::socket::multicast_socket(
            cluster_host::options::DEFAULT_GROUP,
            port,
            false,
            Some(Ipv4Addr::LOCALHOST),
        )
        .expect("ghost socket");
        socket.set_nonblocking(false).expect("blocking");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let heartbeat = Message {
                kind: Some(MessageKind::Heartbeat),
                sid: Some(Str::from(sid)),
                hid: Some(Str::from(HID)),
                channel: Some(0),
                protocols: Some(List::from_items(protocols)),
                data: Some(Str::from(props.as_str())),
                known: Some(0),
                ..Message::default()
            };
            let mut frame = [0u8; 256];
            let len = heartbeat
                .encode(FilterPlacement::Last, &mut frame)
                .expect("encode");
            while !stopped.load(Ordering::Relaxed) {
                let _ = socket.send_to(&frame[..len], setup.destination);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ghost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
