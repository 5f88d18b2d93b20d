//! The node image: the footprint measurement of issue 14 as it was filed. A cluster node as
//! firmware for a Cortex-M4F with the smoltcp driver, 32 services of capacity and every
//! command an application uses, on a loopback Ethernet device that stands in for the MAC
//! driver, with SysTick as the millisecond clock. No console, options or board support: those
//! are the application's (the board image, `main.rs`, adds them), so this image is what the
//! cluster itself costs a firmware. Everything lives in static memory; nothing is allocated.
//!
//! It joins the cluster and answers every query with a fixed text. It greets every service it
//! discovers with an event, queries everyone once a minute, adds a tag or leaves when a peer
//! sends it `tag` or `leave`, so that the image links every part of the driver an application
//! uses, with the sizes the footprint goals are measured at (`DATA = 512`, `EVENTS = 4`). With
//! the feature `sealed` it seals every frame under a key ring set before the node starts. `measure.sh`
//! measures it (the variants `default` and `sealed`, which the goals apply to); it only
//! builds for the target and does not run on the board (no MAC driver).
#![no_std]
#![no_main]

use cluster_embedded::cluster_core::{
    Answer, Config, Event, NoHeld, Node, QueryRequest, Resolver, SendRequest, TagOp, Targets,
};
use cluster_embedded::smoltcp::iface::{
    Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage,
};
use cluster_embedded::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use cluster_embedded::smoltcp::time::{Duration, Instant};
use cluster_embedded::smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address};
use cluster_embedded::{Driver, Group, MacHid, UdpBuffers, core_instant, firmware_config};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use panic_halt as _;
use static_cell::{ConstStaticCell, StaticCell};

/// The MAC driver's frame size (Ethernet header and a 1500-byte payload).
const FRAME: usize = 1514;

/// A stand-in for a MAC driver: every transmitted frame comes back as a received one (one
/// frame of buffer each way), so that both the transmit and the receive paths are linked.
struct Loopback {
    rx: [u8; FRAME],
    rx_len: usize,
    tx: [u8; FRAME],
    tx_len: usize,
}

struct LoopRx<'a>(&'a [u8]);

struct LoopTx<'a> {
    buf: &'a mut [u8; FRAME],
    len: &'a mut usize,
}

impl phy::RxToken for LoopRx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME);
        *self.len = len;
        f(self.buf.get_mut(..len).unwrap_or_default())
    }
}

impl Device for Loopback {
    type RxToken<'a> = LoopRx<'a>;
    type TxToken<'a> = LoopTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(LoopRx<'_>, LoopTx<'_>)> {
        if self.rx_len == 0 && self.tx_len > 0 {
            let len = core::mem::take(&mut self.tx_len);
            self.rx = self.tx;
            self.rx_len = len;
        }
        let len = core::mem::take(&mut self.rx_len);
        if len == 0 {
            return None;
        }
        let rx = LoopRx(self.rx.get(..len).unwrap_or_default());
        let tx = LoopTx {
            buf: &mut self.tx,
            len: &mut self.tx_len,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _now: Instant) -> Option<LoopTx<'_>> {
        Some(LoopTx {
            buf: &mut self.tx,
            len: &mut self.tx_len,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

/// The longest answer.
const ANSWER: usize = 32;
/// Answers every query with a reading (the core's answer-everything policy).
type Sensor = Answer<heapless::Vec<u8, ANSWER>>;

/// Services this node can know.
const SERVICES: usize = 32;
/// Largest application payload (`data` plus `raw`) sent or received.
const DATA: usize = 512;
/// Events with data the node holds for the application (the driver holds none).
const EVENTS: usize = 4;
/// The UDP socket's buffers: datagrams, receive bytes, transmit bytes.
type Udp = UdpBuffers<8, 2048, 2048>;
/// The driver of this firmware, with the smallest frame buffer the node accepts.
type NodeDriver = Driver<
    'static,
    Sensor,
    SERVICES,
    DATA,
    EVENTS,
    { Node::<Sensor, SERVICES, DATA>::TRANSMIT_BUF },
>;
type FirmwareNode = Node<Sensor, SERVICES, DATA, NoHeld, EVENTS>;

/// The loopback device and its two frame buffers (`measure.sh` leaves them out of the RAM
/// figure, as the MAC driver's memory).
static DEVICE: ConstStaticCell<Loopback> = ConstStaticCell::new(Loopback {
    rx: [0; FRAME],
    rx_len: 0,
    tx: [0; FRAME],
    tx_len: 0,
});
// Initialised at run time rather than `const`: their empty states are not all zero bits, so
// a `const` initialiser would put them in .data (RAM and a flash image) instead of .bss.
static UDP: StaticCell<Udp> = StaticCell::new();
static SOCKETS: StaticCell<[SocketStorage<'static>; 1]> = StaticCell::new();
static IFACE: StaticCell<Interface> = StaticCell::new();
// The node starts empty (`Node::empty` is `const` and all zero bits but the policy, so it
// takes no flash image) and `Node::start` fills it in place.
static NODE: ConstStaticCell<FirmwareNode> =
    ConstStaticCell::new(FirmwareNode::empty(Answer(heapless::Vec::new())));
// Stored with the `Result` of `Driver::new`, so that `new` writes the driver in place.
static DRIVER: StaticCell<Result<NodeDriver, cluster_embedded::Error>> = StaticCell::new();

const MAC: [u8; 6] = [0x02, 0xc1, 0x05, 0x7e, 0x00, 0x01];

/// The cluster's key (id 1). A constant stands in for the device's provisioning storage, where
/// a real firmware keeps it (never in the image).
#[cfg(feature = "sealed")]
const KEY: [u8; 32] = *b"stand-in key: provision per site";

#[entry]
fn main() -> ! {
    // Start-up and the main loop each in a function of their own, as in the board image.
    run(start())
}

/// What start-up hands the main loop.
struct Running {
    syst: cortex_m::peripheral::SYST,
    device: &'static mut Loopback,
    iface: &'static mut Interface,
    sockets: SocketSet<'static>,
    driver: &'static mut NodeDriver,
}

/// Start-up: SysTick, the stack, and the node started in place in `NODE` with its driver in
/// `DRIVER`. A failure halts.
#[inline(never)]
fn start() -> Running {
    let Some(core) = cortex_m::Peripherals::take() else {
        halt()
    };
    // A 1 ms tick from a 25 MHz core clock.
    let mut syst = core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(25_000 - 1);
    syst.clear_current();
    syst.enable_counter();
    // Use the part's RNG peripheral here; the SysTick value stands in for it.
    let seed = u64::from(cortex_m::peripheral::SYST::get_current()) ^ 0x5eed_c105_u64;

    let device = DEVICE.take();
    let mut iface_config = IfaceConfig::new(EthernetAddress(MAC).into());
    iface_config.random_seed = seed;
    let iface = IFACE.init_with(|| Interface::new(iface_config, device, Instant::ZERO));
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(Ipv4Address::new(192, 168, 1, 50).into(), 24));
    });
    let storage = SOCKETS.init_with(|| [SocketStorage::EMPTY; 1]);
    let mut sockets = SocketSet::new(&mut storage[..]);
    let socket = sockets.add(UDP.init_with(Udp::new).socket());
    let Some(driver) = start_node(iface, &mut sockets, socket, seed) else {
        halt()
    };
    Running {
        syst,
        device,
        iface,
        sockets,
        driver,
    }
}

/// Starts the node in place in `NODE` and creates the driver that runs it in `DRIVER`.
fn start_node(
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    socket: SocketHandle,
    seed: u64,
) -> Option<&'static mut NodeDriver> {
    let mut config = firmware_config(Config::lan_fast());
    config.add_tag("sensor").ok()?;
    let node = NODE.take();
    node.policy_mut()
        .0
        .extend_from_slice(b"temperature 21.5")
        .ok()?;
    // The keys stay across `start`: set before it, they seal the join frames too.
    #[cfg(feature = "sealed")]
    {
        use cluster_embedded::cluster_core::{Key, KeyRing};
        node.set_keys(Some(KeyRing::new(Key::new(1, KEY))));
    }
    let hid = MacHid::new(MAC);
    node.start(config, hid.as_str(), seed, core_instant(Instant::ZERO))
        .ok()?;
    DRIVER
        .init_with(|| NodeDriver::new(node, Group::CLUSTER, iface, sockets, socket))
        .as_mut()
        .ok()
}

/// The main loop: the stack, the node and the application on every millisecond.
#[inline(never)]
fn run(running: Running) -> ! {
    let Running {
        mut syst,
        device,
        iface,
        mut sockets,
        driver,
    } = running;
    let mut millis: i64 = 0;
    let mut next_query = Instant::from_secs(60);
    loop {
        if syst.has_wrapped() {
            millis += 1;
        }
        let now = Instant::from_millis(millis);
        iface.poll(now, device, &mut sockets);
        let _next = driver.poll(now, iface, &mut sockets);
        iface.poll(now, device, &mut sockets);
        while let Some(event) = driver.poll_event() {
            react(now, driver, &event);
        }
        if now >= next_query && driver.node().known() > 0 {
            let everyone = Resolver::resolve(&[]);
            let query = QueryRequest::new(Targets::resolve(&everyone), b"status?");
            let _ = driver.query(now, &query);
            next_query = now + Duration::from_secs(60);
        }
        // A real firmware sleeps here (WFI) until the earlier of `_next` and `iface.poll_at`,
        // or an interrupt from the MAC.
    }
}

/// Greets each service discovered and obeys `tag` and `leave` events.
fn react(now: Instant, driver: &mut NodeDriver, event: &Event<DATA>) {
    match event {
        Event::Discovered { sid } => {
            let target = [*sid];
            let hello = SendRequest::new(Targets::services(&target), b"hello");
            let _ = driver.send(now, &hello);
        }
        Event::Message { payload, .. } if payload.data() == Some(b"tag") => {
            let _ = driver.update_tags(now, &[TagOp::Append("tagged")]);
        }
        Event::Message { payload, .. } if payload.data() == Some(b"leave") => {
            driver.leave(now);
        }
        _ => {}
    }
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
