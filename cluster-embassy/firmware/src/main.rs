//! A cluster node on embassy as firmware for ARM's MPS2 AN386 board (Cortex-M4F), which QEMU
//! emulates (`qemu-system-arm -M mps2-an386`): embassy's Cortex-M executor, embassy-time on
//! the board's CMSDK timer (SysTick runs the timer queue every millisecond), embassy-net on
//! the LAN9220 Ethernet controller (`mps2-board`'s LAN9118 driver behind `embassy-net-driver`,
//! interrupt-driven), and `cluster-embassy` with 32 services of capacity. Everything lives in
//! static memory.
//!
//! It reads its options from the semihosting command line (`mps2_board::options`, the same
//! as the smoltcp image's), answers every query with `--answer`, and prints the lines of
//! `cluster join --json` on the console. Its application task greets every service it
//! discovers, queries everyone every `--query-every` seconds (60) and prints the answers as
//! they arrive, adds a tag or leaves when told to, so that the image links every part of the
//! adapter an application uses (`DATA = 512`, 4 events, 4 answers). Console commands:
//! `leave`, `stats`, `query TEXT`, `keys`. With the feature `sealed` it seals every frame
//! under the key ring of `--key-file`. `measure.sh` measures this image;
//! `cluster-embedded/qemu/run.sh --embassy` boots it.
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::task::Waker;

use cluster_embassy::cluster_core::{
    Answer, Config, Node, QueryRequest, Resolver, SendRequest, TagOp, Targets,
};
use cluster_embassy::embassy_net::{self, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use cluster_embassy::{Buffers, Event, Events, Group, Handle, Runner, State, firmware_config};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_executor::Spawner;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_time::{Duration, Instant, Timer};
use embassy_time_queue_utils::Queue;
use mps2_board::clock::Clock;
use mps2_board::json::Line;
use mps2_board::lan9118::{self, Lan9118};
use mps2_board::mmio::Registers;
use mps2_board::options::{self, ANSWER, Options};
use mps2_board::uart::Uart;
use mps2_board::{host, lines, stack};
use panic_halt as _;
use static_cell::{ConstStaticCell, StaticCell};

// ----- embassy-time's driver: the CMSDK timer's milliseconds; SysTick runs the queue -----

struct BoardTime {
    clock: Mutex<RefCell<Option<Clock>>>,
    queue: Mutex<RefCell<Queue>>,
}

impl embassy_time_driver::Driver for BoardTime {
    fn now(&self) -> u64 {
        critical_section::with(|cs| {
            self.clock
                .borrow_ref_mut(cs)
                .as_mut()
                .map_or(0, |clock| clock.now().unsigned_abs())
        })
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        // SysTick looks at the queue every millisecond.
        critical_section::with(|cs| {
            self.queue.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static TIME: BoardTime = BoardTime {
    clock: Mutex::new(RefCell::new(None)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

#[exception]
fn SysTick() {
    let now = embassy_time_driver::now();
    critical_section::with(|cs| {
        TIME.queue.borrow_ref_mut(cs).next_expiration(now);
    });
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == mps2_board::ETHERNET_IRQ as i16 {
        lan9118::embassy_driver::on_interrupt();
    }
}

// ----- the console, shared by the tasks -----

static CONSOLE: embassy_sync::blocking_mutex::Mutex<
    CriticalSectionRawMutex,
    RefCell<Option<Uart>>,
> = embassy_sync::blocking_mutex::Mutex::new(RefCell::new(None));

/// Runs `f` on the console (a line is written whole, without another task's in between).
fn console<R>(f: impl FnOnce(&mut Uart) -> R) -> Option<R> {
    CONSOLE.lock(|cell| cell.borrow_mut().as_mut().map(f))
}

// ----- the node -----

/// Answers every query with the text of `--answer` (the core's answer-everything policy, over
/// a bounded buffer so that the state stays `const`-constructible).
type Sensor = Answer<heapless::Vec<u8, ANSWER>>;

/// Services this node can know.
const SERVICES: usize = 32;
/// Largest application payload (`data` plus `raw`) sent or received.
const DATA: usize = 512;

/// The node and its channels: 4 events, 2 subscriptions, 4 answers, 1 query stream.
type FirmwareState = State<CriticalSectionRawMutex, Sensor, SERVICES, DATA, 4, 2, 4, 1>;
type FirmwareRunner = Runner<'static, CriticalSectionRawMutex, Sensor, SERVICES, DATA, 4, 2, 4, 1>;
type FirmwareHandle = Handle<'static, CriticalSectionRawMutex, Sensor, SERVICES, DATA, 4, 2, 4, 1>;
/// The smallest frame buffer the node accepts; the UDP socket: 8 datagrams, 2 KiB each way.
type FirmwareBuffers = Buffers<{ Node::<Sensor, SERVICES, DATA>::TRANSMIT_BUF }, 8, 2048, 2048>;

/// The Ethernet controller and its two frame buffers (`measure.sh` lists them apart).
static DEVICE: ConstStaticCell<Lan9118> =
    // SAFETY: the board's Ethernet controller; this cell is its only owner.
    ConstStaticCell::new(Lan9118::new(unsafe { Registers::new() }));
static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
// The node starts empty (`Node::empty` inside `State::new`, a `const`) and `new` starts it in
// place.
static STATE: ConstStaticCell<FirmwareState> =
    ConstStaticCell::new(State::new(Answer(heapless::Vec::new())));
static BUFFERS: StaticCell<FirmwareBuffers> = StaticCell::new();
/// The semihosting command line; the options borrow from it for the node's life.
static COMMAND_LINE: ConstStaticCell<[u8; 256]> = ConstStaticCell::new([0; 256]);

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, &'static mut Lan9118>) -> ! {
    runner.run().await
}

/// Runs the node; once it has left (its disconnect sent), ends the emulation.
#[embassy_executor::task]
async fn cluster_task(runner: FirmwareRunner) {
    runner.run().await;
    // Give embassy-net a moment to put the disconnect on the wire.
    Timer::after(Duration::from_millis(50)).await;
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
}

/// What the application does with the cluster: prints the events, greets, queries, obeys.
#[embassy_executor::task]
async fn app_task(cluster: FirmwareHandle, mut events: Events<'static, DATA>, every: u32) {
    let every = Duration::from_secs(u64::from(every));
    let mut next_query = (every.as_ticks() > 0).then(|| Instant::now() + every);
    loop {
        let event = match next_query {
            Some(at) => match embassy_futures::select::select(events.next(), Timer::at(at)).await {
                embassy_futures::select::Either::First(event) => event,
                embassy_futures::select::Either::Second(()) => {
                    next_query = Some(at + every);
                    query_everyone(cluster, b"status?").await;
                    continue;
                }
            },
            None => events.next().await,
        };
        console(|out| print(out, &event));
        match event {
            Event::Discovered(service) => {
                let target = [*service.sid()];
                let hello = SendRequest::new(Targets::services(&target), b"hello");
                let _ = cluster.send(&hello).await;
            }
            Event::Message { payload, .. } if payload.data() == Some(b"tag") => {
                let _ = cluster.update_tags(&[TagOp::Append("tagged")]).await;
            }
            Event::Message { payload, .. } if payload.data() == Some(b"leave") => {
                cluster.leave().await;
            }
            _ => {}
        }
    }
}

/// Queries everyone known with `text` and prints the answers as they arrive.
async fn query_everyone(cluster: FirmwareHandle, text: &[u8]) {
    let known = cluster.with_node(Node::known).await.unwrap_or(0);
    if known == 0 {
        return;
    }
    let everyone = Resolver::resolve(&[]);
    let query = QueryRequest::new(Targets::resolve(&everyone), text);
    if let Ok(mut answers) = cluster.query(&query).await {
        while let Some(news) = answers.next().await {
            console(|out| lines::query_news(out, &news));
        }
    }
}

/// The line of one event.
fn print(out: &mut Uart, event: &Event<DATA>) {
    match event {
        Event::Discovered(service) => lines::discovered(out, service),
        Event::Lost { sid, reason } => lines::lost(out, sid.as_bytes(), *reason),
        Event::TagsChanged { sid, tags } => lines::tags(out, sid.as_bytes(), tags),
        Event::Message {
            sid,
            channel,
            ruid,
            payload,
        }
        | Event::QueryReceived {
            sid,
            channel,
            ruid,
            payload,
        } => lines::message(
            out,
            matches!(event, Event::QueryReceived { .. }),
            sid.as_bytes(),
            *channel,
            ruid.as_ref().map(|r| r.as_bytes()),
            payload.data(),
        ),
        Event::Dropped { count } => lines::dropped(out, *count),
        // `Event` is `#[non_exhaustive]`: a kind this image does not know has no line.
        _ => {}
    }
}

/// The console's commands: `leave`, `stats`, `query TEXT`, `keys`.
#[embassy_executor::task]
async fn console_task(cluster: FirmwareHandle, key_file: Option<&'static str>) {
    loop {
        Timer::after(Duration::from_millis(5)).await;
        let Some(Some(line)) = console(Uart::poll_line) else {
            continue;
        };
        let (word, rest) = match line.iter().position(|&b| b == b' ') {
            Some(at) => (&line[..at], &line[at + 1..]),
            None => (&line[..], &line[line.len()..]),
        };
        match word {
            b"leave" => cluster.leave().await,
            b"stats" => stats(cluster).await,
            b"query" => query_everyone(cluster, rest).await,
            b"keys" => {
                if let Err(why) = keys(cluster, key_file).await {
                    console(|out| lines::warning(out, why));
                }
            }
            b"" => {}
            _ => {
                console(|out| {
                    lines::warning(out, "unknown command (leave, stats, query TEXT, keys)")
                });
            }
        }
    }
}

/// `{"event":"stats",...}`: the node's and the adapter's counters, the MAC's, the uptime and
/// the stack's high-water mark.
async fn stats(cluster: FirmwareHandle) {
    let (node, transport) = cluster.stats().await;
    let garbage = cluster
        .with_node(|node| node.stream_stats().reassembly.garbage_bytes)
        .await
        .unwrap_or(0);
    // The controller's own counters are not printed: the network task owns the driver.
    console(|out| {
        let mut line = Line::event(out, "stats");
        line.number("frames_accepted", node.frames_accepted)
            .number("frames_dropped", node.frames_dropped)
            .number("decode_errors", node.decode_errors)
            .number("services_rejected", node.services_rejected)
            .number("services_evicted", node.services_evicted)
            .number("oversized", node.oversized)
            .number("events_dropped", node.events_dropped)
            .number("unsealed", node.unsealed)
            .number("unknown_key", node.unknown_key)
            .number("forged", node.forged)
            .number("replayed", node.replayed)
            .number("stream_garbage_bytes", garbage)
            .number("datagrams_received", transport.datagrams_received)
            .number("datagrams_dropped", transport.datagrams_dropped)
            .number("datagrams_sent", transport.datagrams_sent)
            .number("uptime_ms", Instant::now().as_millis())
            .number("stack_high_water", stack::high_water() as u64);
        line.end();
    });
}

/// The `keys` command: the key file again, for rotation. The keys in use stay on error.
async fn keys(cluster: FirmwareHandle, key_file: Option<&str>) -> Result<(), &'static str> {
    #[cfg(feature = "sealed")]
    {
        let ring = read_keys(key_file.ok_or("no --key-file")?)?;
        cluster
            .set_keys(Some(ring))
            .await
            .map_err(|_| "the node has left")
    }
    #[cfg(not(feature = "sealed"))]
    {
        let _ = (cluster, key_file);
        Err("this image has no sealing")
    }
}

/// Reads the key file through semihosting.
#[cfg(feature = "sealed")]
#[inline(never)]
fn read_keys(path: &str) -> Result<cluster_embassy::cluster_core::KeyRing, &'static str> {
    let mut buf = [0u8; 512];
    let text = host::read_file(path, &mut buf).map_err(|_| "cannot read the key file")?;
    let text = core::str::from_utf8(text).map_err(|_| "the key file is not text")?;
    cluster_embassy::cluster_core::KeyRing::parse(text).map_err(|_| "bad key file")
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    stack::paint();
    let Some(core) = cortex_m::Peripherals::take() else {
        host::exit_failure()
    };
    // SAFETY: the board's first timer and first UART; each has this one owner.
    let clock = Clock::start(unsafe { Registers::new() });
    critical_section::with(|cs| TIME.clock.replace(cs, Some(clock)));
    CONSOLE.lock(|cell| cell.replace(Some(Uart::new(unsafe { Registers::new() }))));
    let mut syst = core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(mps2_board::CORE_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();

    let line = host::command_line(COMMAND_LINE.take()).unwrap_or("");
    let options = match options::parse(line) {
        Ok(options) => options,
        Err(why) => fail(why),
    };
    let device = DEVICE.take();
    let mac = match device.init() {
        Ok(mac) => mac,
        Err(lan9118::InitError::NotFound) => fail("no LAN9118 at 0x40200000"),
        Err(lan9118::InitError::Timeout) => fail("the LAN9118 did not come up"),
    };
    // The board has no RNG: the MAC and the controller's free-running counter.
    let seed = mix(
        u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0])
            ^ (u64::from(device.free_run()) << 32),
    );
    // SAFETY: the handler (`DefaultHandler`) only disarms the controller's interrupt and
    // wakes the network task.
    unsafe { cortex_m::peripheral::NVIC::unmask(lan9118::Interrupt) };

    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::from(options.ip), options.prefix),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, net_runner) = embassy_net::new(
        device,
        net_config,
        RESOURCES.init_with(StackResources::new),
        seed,
    );
    let Ok(token) = net_task(net_runner) else {
        fail("cannot spawn the network task")
    };
    spawner.spawn(token);

    let group = Group {
        port: options.port,
        ..Group::CLUSTER
    };
    let (cluster, runner) = match start(stack, &options, group, seed) {
        Ok(started) => started,
        Err(why) => fail(why),
    };
    let sid = cluster.sid();
    let hid = cluster.hid();
    let protocols = cluster.with_node(Node::protocols).await.unwrap_or_default();
    console(|out| {
        lines::joined(
            out,
            sid.as_bytes(),
            hid.as_bytes(),
            group.addr.octets(),
            group.port,
            protocols,
        );
    });
    let Ok(events) = cluster.events() else {
        fail("no event subscription")
    };
    let (Ok(run), Ok(app), Ok(commands)) = (
        cluster_task(runner),
        app_task(cluster, events, options.query_every),
        console_task(cluster, options.key_file),
    ) else {
        fail("cannot spawn the node's tasks")
    };
    spawner.spawn(run);
    spawner.spawn(app);
    spawner.spawn(commands);
}

/// Starts the node in place in `STATE` and returns its handle and runner.
#[inline(never)]
fn start(
    stack: embassy_net::Stack<'static>,
    options: &Options<'static>,
    group: Group,
    seed: u64,
) -> Result<(FirmwareHandle, FirmwareRunner), &'static str> {
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
    let state = STATE.take();
    state.node_mut().policy_mut().0 = options.answer.clone();
    // The keys stay across the start: set before it, they seal the join frames too.
    #[cfg(feature = "sealed")]
    {
        let path = options
            .key_file
            .ok_or("this image seals its frames: --key-file is required")?;
        state.node_mut().set_keys(Some(read_keys(path)?));
    }
    #[cfg(not(feature = "sealed"))]
    if options.key_file.is_some() {
        return Err("this image has no sealing: use the sealed variant for --key-file");
    }
    cluster_embassy::new(
        stack,
        state,
        BUFFERS.init_with(FirmwareBuffers::new),
        group,
        config,
        seed.rotate_left(17),
    )
    .map_err(|_| "cannot start the node")
}

/// A fatal start-up error: its line on the console, then the end of the emulation.
fn fail(why: &str) -> ! {
    console(|out| lines::fatal(out, why));
    host::exit_failure()
}

/// A 64-bit mix (splitmix64's finaliser), so that close seeds give unrelated sids.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
