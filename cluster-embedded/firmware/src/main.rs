//! A firmware-shaped cluster node for a Cortex-M4F: cortex-m-rt, a loopback Ethernet device
//! standing in for the MAC driver, SysTick as the millisecond clock, and the driver with 32
//! services of capacity. Everything lives in static memory.
//!
//! It joins the cluster and answers queries with a fixed text. By default it also greets
//! every service it discovers with an event, queries everyone once a minute, adds a tag or
//! leaves when told to, so that the binary links every part of the driver an application
//! uses, with the driver's default sizes (`DATA = 512`, `EVENTS = 4`). With the feature
//! `small` it only answers (and reads events), with `DATA = 256`, `EVENTS = 1` and smaller
//! socket buffers. With the feature `sealed` it seals every frame under a key ring set before
//! the node starts. `measure.sh` builds the variants and prints their flash and RAM figures.
#![no_std]
#![no_main]

use cluster_embedded::cluster_core::wire::Message;
use cluster_embedded::cluster_core::{Config, Node, Policy, Refusal, Reply, Service};
use cluster_embedded::smoltcp::iface::{
    Config as IfaceConfig, Interface, SocketSet, SocketStorage,
};
use cluster_embedded::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use cluster_embedded::smoltcp::time::Instant;
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
        f(&mut self.buf[..len])
    }
}

impl Device for Loopback {
    type RxToken<'a> = LoopRx<'a>;
    type TxToken<'a> = LoopTx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(LoopRx<'_>, LoopTx<'_>)> {
        if self.rx_len == 0 && self.tx_len > 0 {
            let len = core::mem::take(&mut self.tx_len);
            self.rx[..len].copy_from_slice(&self.tx[..len]);
            self.rx_len = len;
        }
        let len = core::mem::take(&mut self.rx_len);
        if len == 0 {
            return None;
        }
        let rx = LoopRx(&self.rx[..len]);
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

/// Answers every query with a reading.
struct Sensor;

impl Policy for Sensor {
    fn answer_query(
        &mut self,
        _from: &Service,
        _query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        reply
            .set_data(b"temperature 21.5")
            .map_err(|_| Refusal::new("no room"))
    }
}

/// Services this node can know.
const SERVICES: usize = 32;
/// Largest application payload (`data` plus `raw`) sent or received.
#[cfg(not(feature = "small"))]
const DATA: usize = 512;
#[cfg(feature = "small")]
const DATA: usize = 256;
/// Events the driver holds for the application, beyond the node's own.
#[cfg(not(feature = "small"))]
const EVENTS: usize = 4;
#[cfg(feature = "small")]
const EVENTS: usize = 1;
/// The UDP socket's buffers: datagrams, receive bytes, transmit bytes.
#[cfg(not(feature = "small"))]
type Udp = UdpBuffers<8, 2048, 2048>;
#[cfg(feature = "small")]
type Udp = UdpBuffers<4, 1536, 1024>;
/// The driver of this firmware, with the smallest frame buffer the node accepts.
type FirmwareDriver = Driver<
    'static,
    Sensor,
    SERVICES,
    DATA,
    EVENTS,
    { Node::<Sensor, SERVICES, DATA>::TRANSMIT_BUF },
>;
type FirmwareNode = Node<Sensor, SERVICES, DATA>;

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
// The node starts empty: `Node::empty` is `const` and all zero bits, so it takes no flash
// image (.bss) and `Node::start` fills it in place, without a node-sized stack temporary.
static NODE: ConstStaticCell<FirmwareNode> = ConstStaticCell::new(FirmwareNode::empty(Sensor));
// The driver is stored with the `Result` of `Driver::new`, so that `new` writes it in place
// (unwrapping it first would cost a driver-sized stack temporary).
static DRIVER: StaticCell<Result<FirmwareDriver, cluster_embedded::Error>> = StaticCell::new();

const MAC: [u8; 6] = [0x02, 0xc1, 0x05, 0x7e, 0x00, 0x01];

/// The cluster's key (id 1). A constant stands in for the device's provisioning storage, where
/// a real firmware keeps it (never in the image).
#[cfg(feature = "sealed")]
const KEY: [u8; 32] = *b"stand-in key: provision per site";

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        halt()
    };
    // A 1 ms tick from a 16 MHz core clock.
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(16_000 - 1);
    core.SYST.clear_current();
    core.SYST.enable_counter();
    let mut millis: i64 = 0;
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

    let mut config = firmware_config(Config::lan_fast());
    if config.add_tag("sensor").is_err() {
        halt()
    }
    let hid = MacHid::new(MAC);
    let Some(driver) = start(iface, &mut sockets, socket, hid, config, seed) else {
        halt()
    };

    let mut app = App::new();
    loop {
        if core.SYST.has_wrapped() {
            millis += 1;
        }
        let now = Instant::from_millis(millis);
        iface.poll(now, device, &mut sockets);
        let _next = driver.poll(now, iface, &mut sockets);
        iface.poll(now, device, &mut sockets);
        app.run(now, driver);
        // A real firmware sleeps here (WFI) until the earlier of `_next` and
        // `iface.poll_at`, or an interrupt from the MAC.
    }
}

/// What the application does with the cluster: everything a node can do.
#[cfg(not(feature = "small"))]
struct App {
    next_query: Instant,
}

#[cfg(not(feature = "small"))]
impl App {
    fn new() -> Self {
        Self {
            next_query: Instant::from_secs(60),
        }
    }

    fn run(&mut self, now: Instant, driver: &mut FirmwareDriver) {
        use cluster_embedded::cluster_core::{
            Event, QueryRequest, Resolver, SendRequest, TagOp, Targets,
        };
        use cluster_embedded::smoltcp::time::Duration;

        while let Some(event) = driver.poll_event() {
            match event {
                Event::Discovered { sid } => {
                    let target = [sid];
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
        if now >= self.next_query && driver.node().known() > 0 {
            let everyone = Resolver::resolve(&[]);
            let query = QueryRequest::new(Targets::resolve(&everyone), b"status?");
            let _ = driver.query(now, &query);
            self.next_query = now + Duration::from_secs(60);
        }
    }
}

/// What the application does with the cluster: answer queries (through `Sensor`), and read
/// the events.
#[cfg(feature = "small")]
struct App;

#[cfg(feature = "small")]
impl App {
    const fn new() -> Self {
        Self
    }

    fn run(&mut self, _now: Instant, driver: &mut FirmwareDriver) {
        while let Some(event) = driver.poll_event() {
            core::hint::black_box(event);
        }
    }
}

/// Starts the node in place in `NODE` and creates the driver that runs it in `DRIVER`. Kept
/// out of `main` so that its stack frame (the node's start) is not part of the main loop's.
#[inline(never)]
fn start(
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    socket: cluster_embedded::smoltcp::iface::SocketHandle,
    hid: MacHid,
    config: Config,
    seed: u64,
) -> Option<&'static mut FirmwareDriver> {
    let node = NODE.take();
    // The keys stay across `start`: set before it, they seal the join frames too.
    #[cfg(feature = "sealed")]
    {
        use cluster_embedded::cluster_core::{Key, KeyRing};
        node.set_keys(Some(KeyRing::new(Key::new(1, KEY))));
    }
    node.start(config, hid.as_str(), seed, core_instant(Instant::ZERO))
        .ok()?;
    DRIVER
        .init_with(|| FirmwareDriver::new(node, Group::CLUSTER, iface, sockets, socket))
        .as_mut()
        .ok()
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
