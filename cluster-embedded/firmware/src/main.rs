//! A cluster node as firmware for a Cortex-M4F board: ARM's MPS2 with the AN386 image, which
//! QEMU emulates (`qemu-system-arm -M mps2-an386`) with its SMSC LAN9220 Ethernet controller.
//! cortex-m-rt, the controller behind this crate's smoltcp driver ([`lan9118`]), a CMSDK timer
//! as the millisecond clock (SysTick wakes the core), the CMSDK UART as the console, and `cluster-embedded`'s driver with
//! 32 services of capacity. Everything lives in static memory; nothing is allocated.
//!
//! It reads its options at run time from the semihosting command line ([`options`]), joins
//! the cluster, answers every query with `--answer`, and prints the node's events on the
//! console as the JSON lines of `cluster join --json` ([`print`]). By default it also greets
//! every service it discovers with an event, queries everyone every `--query-every` seconds
//! (60) and prints the answers as `cluster query --json` does, adds a tag or leaves when a
//! peer sends it `tag` or `leave`, so that the image links every part of the driver an
//! application uses, with the sizes the footprint goals are measured at (`DATA = 512`,
//! `EVENTS = 4`).
//!
//! Lines typed on the console are commands: `leave` (send the disconnect, then end the
//! emulation), `stats` (a `stats` line with the counters, uptime and the stack's high-water
//! mark), `query TEXT` (query everyone now), `keys` (read the key file again: rotation).
//!
//! Variants (features): `small` only answers and prints events, with `DATA = 256`,
//! `EVENTS = 1` and smaller socket buffers; `sealed` seals every frame under the key ring of
//! `--key-file`, read through semihosting before the node starts. `measure.sh` measures these
//! very images; `../qemu/run.sh` boots them.
#![no_std]
#![no_main]

mod print;

pub use cluster_embedded::Group;
use cluster_embedded::cluster_core::{Answer, Config, NoHeld, Node};
use cluster_embedded::smoltcp::iface::{
    Config as IfaceConfig, Interface, SocketHandle, SocketSet, SocketStorage,
};
use cluster_embedded::smoltcp::time::{Duration, Instant};
use cluster_embedded::smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address, Ipv4Cidr};
use cluster_embedded::{Driver, MacHid, UdpBuffers, core_instant, firmware_config};
use cortex_m_rt::entry;
use panic_halt as _;
use static_cell::{ConstStaticCell, StaticCell};

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use mps2_board::clock::Clock;
use mps2_board::lan9118::{self, Lan9118};
use mps2_board::mmio::Registers;
use mps2_board::options::{self, ANSWER, Options};
use mps2_board::uart::Uart;
use mps2_board::{host, stack};

/// Answers every query with the text of `--answer` (the core's answer-everything policy, over
/// a bounded buffer so that the node stays `const`-constructible).
pub type Sensor = Answer<heapless::Vec<u8, ANSWER>>;

/// Services this node can know.
const SERVICES: usize = 32;
/// Largest application payload (`data` plus `raw`) sent or received.
#[cfg(not(feature = "small"))]
pub const DATA: usize = 512;
#[cfg(feature = "small")]
pub const DATA: usize = 256;
/// Events with data the node holds for the application (the driver holds none).
#[cfg(not(feature = "small"))]
const EVENTS: usize = 4;
#[cfg(feature = "small")]
const EVENTS: usize = 1;
/// The UDP socket's buffers: datagrams, receive bytes, transmit bytes (at least the node's
/// `TRANSMIT_BUF`: the driver reserves that much there for each frame).
#[cfg(not(feature = "small"))]
type Udp = UdpBuffers<8, 2048, 2048>;
#[cfg(feature = "small")]
type Udp = UdpBuffers<4, 1536, { Node::<Sensor, SERVICES, DATA>::TRANSMIT_BUF }>;
/// The driver of this firmware, with the smallest frame buffer the node accepts.
pub type FirmwareDriver = Driver<
    'static,
    Sensor,
    SERVICES,
    DATA,
    EVENTS,
    { Node::<Sensor, SERVICES, DATA>::TRANSMIT_BUF },
>;
type FirmwareNode = Node<Sensor, SERVICES, DATA, NoHeld, EVENTS>;

/// The Ethernet controller and its two frame buffers (`measure.sh` lists them apart, as the
/// device's memory).
static DEVICE: ConstStaticCell<Lan9118> =
    // SAFETY: the board's Ethernet controller; this cell is its only owner.
    ConstStaticCell::new(Lan9118::new(unsafe { Registers::new() }));
// Initialised at run time rather than `const`: their empty states are not all zero bits, so
// a `const` initialiser would put them in .data (RAM and a flash image) instead of .bss.
static UDP: StaticCell<Udp> = StaticCell::new();
static SOCKETS: StaticCell<[SocketStorage<'static>; 1]> = StaticCell::new();
static IFACE: StaticCell<Interface> = StaticCell::new();
// The node starts empty: `Node::empty` is `const` and all zero bits but the policy, so it
// takes no flash image (.bss) and `Node::start` fills it in place, without a node-sized stack
// temporary.
static NODE: ConstStaticCell<FirmwareNode> =
    ConstStaticCell::new(FirmwareNode::empty(Answer(heapless::Vec::new())));
// The driver is stored with the `Result` of `Driver::new`, so that `new` writes it in place
// (unwrapping it first would cost a driver-sized stack temporary).
static DRIVER: StaticCell<Result<FirmwareDriver, cluster_embedded::Error>> = StaticCell::new();
/// The semihosting command line; the options borrow from it for the node's life.
static COMMAND_LINE: ConstStaticCell<[u8; 256]> = ConstStaticCell::new([0; 256]);

#[entry]
fn main() -> ! {
    stack::paint();
    // Start-up and the main loop each in a function of their own, so that neither's locals
    // sit under the other's calls on the stack.
    run(start())
}

/// What start-up hands the main loop.
struct Running {
    clock: Clock,
    uart: Uart,
    options: Options<'static>,
    device: &'static mut Lan9118,
    iface: &'static mut Interface,
    sockets: SocketSet<'static>,
    driver: &'static mut FirmwareDriver,
}

/// Start-up: the clock, the console, the options, the Ethernet controller, the stack, and the
/// node started in place in `NODE` with its driver in `DRIVER`. A failure is fatal.
#[inline(never)]
fn start() -> Running {
    let Some(core) = cortex_m::Peripherals::take() else {
        host::exit_failure()
    };
    // SAFETY: the board's first timer; the clock is its only user.
    let clock = Clock::start(unsafe { Registers::new() });
    // SysTick wakes the main loop's `wfi` every millisecond.
    let mut syst = core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(mps2_board::CORE_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
    // SAFETY: the board's first UART; nothing else drives it.
    let mut uart = Uart::new(unsafe { Registers::new() });
    let line = host::command_line(COMMAND_LINE.take()).unwrap_or("");
    let options = match options::parse(line) {
        Ok(options) => options,
        Err(why) => mps2_board::lines::fatal(&mut uart, why),
    };
    let device = DEVICE.take();
    let mac = match device.init() {
        Ok(mac) => mac,
        Err(lan9118::InitError::NotFound) => {
            mps2_board::lines::fatal(&mut uart, "no LAN9118 at 0x40200000")
        }
        Err(lan9118::InitError::Timeout) => {
            mps2_board::lines::fatal(&mut uart, "the LAN9118 did not come up")
        }
    };
    // The board has no RNG: the MAC and the controller's free-running counter, which reads
    // the time since reset in 40 ns steps, vary between nodes and between boots.
    let seed = mix(
        u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
            ^ (u64::from(device.free_run()) << 32),
    );

    let mut iface_config = IfaceConfig::new(EthernetAddress(mac).into());
    iface_config.random_seed = seed;
    let iface = IFACE.init_with(|| Interface::new(iface_config, device, Instant::ZERO));
    let cidr = Ipv4Cidr::new(Ipv4Address::from(options.ip), options.prefix);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::Ipv4(cidr));
    });
    let storage = SOCKETS.init_with(|| [SocketStorage::EMPTY; 1]);
    let mut sockets = SocketSet::new(&mut storage[..]);
    let socket = sockets.add(UDP.init_with(Udp::new).socket());

    let group = Group {
        port: options.port,
        ..Group::CLUSTER
    };
    let driver = match start_node(iface, &mut sockets, socket, mac, &options, group, seed) {
        Ok(driver) => driver,
        Err(why) => mps2_board::lines::fatal(&mut uart, why),
    };
    print::joined(&mut uart, driver, group);
    Running {
        clock,
        uart,
        options,
        device,
        iface,
        sockets,
        driver,
    }
}

/// The main loop: commands, the stack and the node when a frame waits or a deadline is due,
/// the application, then sleep until the next millisecond.
#[inline(never)]
fn run(running: Running) -> ! {
    let Running {
        mut clock,
        mut uart,
        options,
        device,
        iface,
        mut sockets,
        driver,
    } = running;
    let mut app = App::new(&options);
    let mut wake = Instant::ZERO;
    loop {
        let now = Instant::from_millis(clock.now());
        if let Some(command) = uart.poll_line() {
            app.command(&command, now, driver, &mut uart, &options);
            wake = now;
        }
        let received = device.rx_pending();
        if received || now >= wake {
            let started = clock.ticks();
            iface.poll(now, device, &mut sockets);
            let next = driver.poll(now, iface, &mut sockets);
            iface.poll(now, device, &mut sockets);
            if received {
                app.load.note(clock.ticks().wrapping_sub(started));
            }
            let acted = app.run(now, driver, &mut uart);
            let stack_due = iface.poll_at(now, &sockets);
            if driver.has_left() && driver.is_idle() && stack_due.is_none() {
                // The disconnect is on the wire.
                cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
            }
            wake = earliest([next, stack_due, app.due()]).unwrap_or(now + Duration::from_secs(1));
            if acted {
                // Frames the application queued leave at the next poll.
                wake = now;
            }
        }
        if app.stats_wanted {
            app.stats_wanted = false;
            print::stats(&mut uart, driver, device.counters(), &app.load, clock.now());
        }
        // Sleep until SysTick's next millisecond (or another interrupt).
        cortex_m::asm::wfi();
    }
}

#[exception]
fn SysTick() {
    // Nothing to do: the interrupt only ends the main loop's `wfi`.
}

fn earliest(times: [Option<Instant>; 3]) -> Option<Instant> {
    times.into_iter().flatten().min()
}

/// The application: the periodic query and the commands.
struct App {
    query_every: Option<Duration>,
    next_query: Instant,
    stats_wanted: bool,
    load: Load,
}

/// The work of the polls that found a received frame waiting: the stack's and the node's,
/// from the frame's arrival to the frames it caused leaving (the application's share, its
/// printing, apart). Under QEMU's `-icount shift=0` a nanosecond is one instruction, so the
/// ticks (40 ns) count instructions; on hardware they count time.
pub struct Load {
    /// Such polls.
    pub polls: u32,
    /// Their clock ticks in all (25 MHz).
    pub ticks: u64,
}

impl Load {
    fn note(&mut self, ticks: u32) {
        self.polls = self.polls.wrapping_add(1);
        self.ticks += u64::from(ticks);
    }
}

impl App {
    fn new(options: &Options<'_>) -> Self {
        let query_every =
            (options.query_every > 0).then(|| Duration::from_secs(u64::from(options.query_every)));
        Self {
            query_every,
            next_query: query_every.map_or(Instant::ZERO, |every| Instant::ZERO + every),
            stats_wanted: false,
            load: Load { polls: 0, ticks: 0 },
        }
    }

    /// When the next periodic query is due.
    fn due(&self) -> Option<Instant> {
        cfg!(not(feature = "small"))
            .then_some(self.query_every.map(|_| self.next_query))
            .flatten()
    }

    /// One command line from the console.
    fn command(
        &mut self,
        line: &[u8],
        now: Instant,
        driver: &mut FirmwareDriver,
        out: &mut Uart,
        options: &Options<'_>,
    ) {
        let (word, rest) = match line.iter().position(|&b| b == b' ') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (line, &line[line.len()..]),
        };
        match word {
            b"leave" => driver.leave(now),
            b"stats" => self.stats_wanted = true,
            b"query" => query_everyone(now, driver, rest),
            b"keys" => {
                if let Err(why) = keys(driver, options) {
                    mps2_board::lines::warning(out, why);
                }
            }
            b"" => {}
            _ => {
                mps2_board::lines::warning(out, "unknown command (leave, stats, query TEXT, keys)")
            }
        }
    }

    /// Prints the node's events and does what they ask; true when it queued frames.
    fn run(&mut self, now: Instant, driver: &mut FirmwareDriver, out: &mut Uart) -> bool {
        let mut acted = false;
        while let Some(event) = driver.poll_event() {
            print::event(out, driver, &event);
            acted |= react(now, driver, &event);
        }
        if let Some(every) = self.query_every
            && cfg!(not(feature = "small"))
            && now >= self.next_query
        {
            if driver.node().known() > 0 {
                query_everyone(now, driver, b"status?");
                acted = true;
            }
            self.next_query = now + every;
        }
        acted
    }
}

/// The default variant greets each service it discovers and obeys `tag` and `leave` events.
#[cfg(not(feature = "small"))]
fn react(
    now: Instant,
    driver: &mut FirmwareDriver,
    event: &cluster_embedded::cluster_core::Event<DATA>,
) -> bool {
    use cluster_embedded::cluster_core::{Event, SendRequest, TagOp, Targets};
    match event {
        Event::Discovered { sid } => {
            let target = [*sid];
            let hello = SendRequest::new(Targets::services(&target), b"hello");
            driver.send(now, &hello).is_ok()
        }
        Event::Message { payload, .. } if payload.data() == Some(b"tag") => {
            driver.update_tags(now, &[TagOp::Append("tagged")]).is_ok()
        }
        Event::Message { payload, .. } if payload.data() == Some(b"leave") => {
            driver.leave(now);
            true
        }
        _ => false,
    }
}

/// The small variant only reads its events.
#[cfg(feature = "small")]
fn react(
    _now: Instant,
    _driver: &mut FirmwareDriver,
    _event: &cluster_embedded::cluster_core::Event<DATA>,
) -> bool {
    false
}

/// Queries every known service with `text`.
#[cfg(not(feature = "small"))]
fn query_everyone(now: Instant, driver: &mut FirmwareDriver, text: &[u8]) {
    use cluster_embedded::cluster_core::{QueryRequest, Resolver, Targets};
    let everyone = Resolver::resolve(&[]);
    let query = QueryRequest::new(Targets::resolve(&everyone), text);
    let _ = driver.query(now, &query);
}

/// The small variant does not query.
#[cfg(feature = "small")]
fn query_everyone(_now: Instant, _driver: &mut FirmwareDriver, _text: &[u8]) {}

/// Starts the node in place in `NODE` and creates the driver that runs it in `DRIVER`.
fn start_node(
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    socket: SocketHandle,
    mac: [u8; 6],
    options: &Options<'_>,
    group: Group,
    seed: u64,
) -> Result<&'static mut FirmwareDriver, &'static str> {
    let mut config = firmware_config(Config::lan_fast());
    if let Some(ms) = options.heartbeat_ms {
        config.heartbeat_min = core::time::Duration::from_millis(u64::from(ms));
        config.heartbeat_max = config.heartbeat_min;
    }
    if let Some(ms) = options.ttl_ms {
        config.ttl = core::time::Duration::from_millis(u64::from(ms));
    }
    for tag in options.tags.split(',').filter(|t| !t.is_empty()) {
        config.add_tag(tag).map_err(|_| "bad --tags")?;
    }
    let node = NODE.take();
    node.policy_mut().0 = options.answer.clone();
    // The keys stay across `start`: set before it, they seal the join frames too.
    #[cfg(feature = "sealed")]
    {
        let path = options
            .key_file
            .ok_or("this image seals its frames: --key-file is required")?;
        node.set_keys(Some(read_keys(path)?));
    }
    #[cfg(not(feature = "sealed"))]
    if options.key_file.is_some() {
        return Err("this image has no sealing: use the sealed variant for --key-file");
    }
    let hid = MacHid::new(mac);
    node.start(config, hid.as_str(), seed, core_instant(Instant::ZERO))
        .map_err(|_| "invalid configuration")?;
    DRIVER
        .init_with(|| FirmwareDriver::new(node, group, iface, sockets, socket))
        .as_mut()
        .map_err(|_| "cannot join the group")
}

/// Reads the key file through semihosting.
#[cfg(feature = "sealed")]
#[inline(never)]
fn read_keys(path: &str) -> Result<cluster_embedded::cluster_core::KeyRing, &'static str> {
    let mut buf = [0u8; 512];
    let text = host::read_file(path, &mut buf).map_err(|_| "cannot read the key file")?;
    let text = core::str::from_utf8(text).map_err(|_| "the key file is not text")?;
    cluster_embedded::cluster_core::KeyRing::parse(text).map_err(|_| "bad key file")
}

/// The `keys` command: the key file again, for rotation. The keys in use stay on error.
fn keys(driver: &mut FirmwareDriver, options: &Options<'_>) -> Result<(), &'static str> {
    #[cfg(feature = "sealed")]
    {
        let path = options.key_file.ok_or("no --key-file")?;
        driver.set_keys(Some(read_keys(path)?));
        Ok(())
    }
    #[cfg(not(feature = "sealed"))]
    {
        let _ = (driver, options);
        Err("this image has no sealing")
    }
}

/// A 64-bit mix (splitmix64's finaliser), so that close seeds give unrelated sids.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
