//! A firmware-shaped cluster node on embassy for a Cortex-M4F: embassy's Cortex-M executor,
//! SysTick as embassy-time's driver (1 kHz), a loopback Ethernet device standing in for the
//! MAC driver, embassy-net, and `cluster-embassy` with 32 services of capacity. Everything
//! lives in static memory.
//!
//! It joins the cluster and answers queries with a fixed text (its policy). Its application
//! task greets every service it discovers with an event, queries everyone once a minute
//! (reading the answers as they arrive), adds a tag or leaves when told to, so that the binary
//! links every part of the adapter an application uses, with the default sizes (`DATA = 512`,
//! 4 events, 4 answers). With the feature `sealed` it seals every frame under a key ring set
//! before the node starts. `measure.sh` builds both and prints their flash and RAM figures.
#![no_std]
#![no_main]

use core::cell::{Cell, RefCell};
use core::task::{Context, Waker};

use cluster_embassy::cluster_core::wire::Message;
use cluster_embassy::cluster_core::{
    Config, Node, Policy, QueryEvent, QueryRequest, Refusal, Reply, Resolver, SendRequest, Service,
    TagOp, Targets,
};
use cluster_embassy::embassy_net::driver::{
    self, Capabilities, Driver, HardwareAddress, LinkState,
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
use panic_halt as _;
use static_cell::{ConstStaticCell, StaticCell};

// ----- embassy-time's driver: SysTick, one tick per millisecond -----

struct SysTickDriver {
    ticks: Mutex<Cell<u64>>,
    queue: Mutex<RefCell<Queue>>,
}

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        // The tick interrupt looks at the queue every millisecond.
        critical_section::with(|cs| {
            self.queue.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
    });
}

// ----- the MAC driver's stand-in -----

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

struct LoopRx<'a>(&'a mut [u8]);

struct LoopTx<'a> {
    buf: &'a mut [u8; FRAME],
    len: &'a mut usize,
}

impl driver::RxToken for LoopRx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl driver::TxToken for LoopTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(FRAME);
        *self.len = len;
        f(&mut self.buf[..len])
    }
}

const MAC: [u8; 6] = [0x02, 0xc2, 0x05, 0x7e, 0x00, 0x01];

impl Driver for Loopback {
    type RxToken<'a> = LoopRx<'a>;
    type TxToken<'a> = LoopTx<'a>;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(LoopRx<'_>, LoopTx<'_>)> {
        if self.rx_len == 0 && self.tx_len > 0 {
            let len = core::mem::take(&mut self.tx_len);
            self.rx[..len].copy_from_slice(&self.tx[..len]);
            self.rx_len = len;
        }
        let len = core::mem::take(&mut self.rx_len);
        if len == 0 {
            // A real driver registers the waker with its receive interrupt.
            cx.waker().wake_by_ref();
            return None;
        }
        let rx = LoopRx(&mut self.rx[..len]);
        let tx = LoopTx {
            buf: &mut self.tx,
            len: &mut self.tx_len,
        };
        Some((rx, tx))
    }

    fn transmit(&mut self, _cx: &mut Context<'_>) -> Option<LoopTx<'_>> {
        Some(LoopTx {
            buf: &mut self.tx,
            len: &mut self.tx_len,
        })
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = FRAME;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(MAC)
    }
}

// ----- the node -----

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
const DATA: usize = 512;

/// The node and its channels: 4 events, 2 subscriptions, 4 answers, 1 query stream.
type FirmwareState = State<CriticalSectionRawMutex, Sensor, SERVICES, DATA, 4, 2, 4, 1>;
type FirmwareRunner = Runner<'static, CriticalSectionRawMutex, Sensor, SERVICES, DATA, 4, 2, 4, 1>;
type FirmwareHandle = Handle<'static, CriticalSectionRawMutex, Sensor, SERVICES, DATA, 4, 2, 4, 1>;
/// The smallest frame buffer the node accepts; the UDP socket: 8 datagrams, 2 KiB each way.
type FirmwareBuffers = Buffers<{ Node::<Sensor, SERVICES, DATA>::TRANSMIT_BUF }, 8, 2048, 2048>;

static DEVICE: ConstStaticCell<Loopback> = ConstStaticCell::new(Loopback {
    rx: [0; FRAME],
    rx_len: 0,
    tx: [0; FRAME],
    tx_len: 0,
});
static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
// The node starts empty (`Node::empty` inside `State::new`, a `const`) and `new` starts it in
// place.
static STATE: ConstStaticCell<FirmwareState> = ConstStaticCell::new(State::new(Sensor));
static BUFFERS: StaticCell<FirmwareBuffers> = StaticCell::new();

/// The cluster's key (id 1). A constant stands in for the device's provisioning storage, where
/// a real firmware keeps it (never in the image).
#[cfg(feature = "sealed")]
const KEY: [u8; 32] = *b"stand-in key: provision per site";

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, &'static mut Loopback>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn cluster_task(runner: FirmwareRunner) {
    runner.run().await;
}

/// What the application does with the cluster: everything a node can do.
#[embassy_executor::task]
async fn app_task(cluster: FirmwareHandle, mut events: Events<'static, DATA>) {
    let mut next_query = Instant::from_secs(60);
    loop {
        let event =
            match embassy_futures::select::select(events.next(), Timer::at(next_query)).await {
                embassy_futures::select::Either::First(event) => event,
                embassy_futures::select::Either::Second(()) => {
                    next_query += Duration::from_secs(60);
                    let everyone = Resolver::resolve(&[]);
                    let query = QueryRequest::new(Targets::resolve(&everyone), b"status?");
                    if let Ok(mut answers) = cluster.query(&query).await {
                        while let Some(news) = answers.next().await {
                            if let QueryEvent::Response { payload, .. } = news {
                                core::hint::black_box(payload);
                            }
                        }
                    }
                    continue;
                }
            };
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
            other => {
                core::hint::black_box(other);
            }
        }
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        halt()
    };
    // A 1 ms tick from a 16 MHz core clock.
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(16_000 - 1);
    core.SYST.clear_current();
    core.SYST.enable_counter();
    core.SYST.enable_interrupt();
    // Use the part's RNG peripheral here; the SysTick value stands in for it.
    let seed = u64::from(cortex_m::peripheral::SYST::get_current()) ^ 0x5eed_c105_u64;

    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 50), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, net_runner) = embassy_net::new(
        DEVICE.take(),
        net_config,
        RESOURCES.init_with(StackResources::new),
        seed,
    );
    let Ok(token) = net_task(net_runner) else {
        halt()
    };
    spawner.spawn(token);

    let state = STATE.take();
    // The keys stay across the start: set before it, they seal the join frames too.
    #[cfg(feature = "sealed")]
    {
        use cluster_embassy::cluster_core::{Key, KeyRing};
        state
            .node_mut()
            .set_keys(Some(KeyRing::new(Key::new(1, KEY))));
    }
    let mut config = firmware_config(Config::lan_fast());
    if config.add_tag("sensor").is_err() {
        halt()
    }
    let Ok((cluster, runner)) = cluster_embassy::new(
        stack,
        state,
        BUFFERS.init_with(FirmwareBuffers::new),
        Group::CLUSTER,
        config,
        seed.rotate_left(17),
    ) else {
        halt()
    };
    let Ok(events) = cluster.events() else { halt() };
    let (Ok(run), Ok(app)) = (cluster_task(runner), app_task(cluster, events)) else {
        halt()
    };
    spawner.spawn(run);
    spawner.spawn(app);
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
