//! Helpers of the socket tests: the runtime a test runs under ([`Runtime`]), a fresh port per
//! test, loopback-only options, and waiting with a timeout that is only an upper bound (never
//! a synchronisation).

use std::collections::HashSet;
use std::future::Future;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Mutex;
use std::time::Duration;

use async_io::Timer;
use cluster_core::{DefaultPolicy, Policy};
use cluster_host::prelude::{Driver, Event, Events, Handle, JoinError, Options, Profile};
use futures_lite::FutureExt;

/// The hid every loopback test node shares (nodes on one host must agree).
pub const HID: &str = "02:00:00:00:00:bb";

/// Upper bound of any wait in these tests.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// An adapter on an executor, as the suite runs it: the test body is blocked on, and the
/// drivers spawned on, the same runtime. Each adapter's `tests/suite.rs` implements it and
/// runs [`adapter_suite!`](crate::adapter_suite) with it.
pub trait Runtime: Copy + Send + Sync + 'static {
    /// Runs a test body to its end.
    fn run<F: Future>(self, body: F) -> F::Output;

    /// Runs `task` (a driver, usually) in the background on this runtime.
    fn spawn(self, task: impl Future<Output = ()> + Send + 'static);

    /// Joins with `policy` and returns the handle and its driver, not spawned (the
    /// adapter's `Cluster::start`).
    fn start<P: Policy + Send + 'static>(
        self,
        options: Options,
        policy: P,
    ) -> impl Future<Output = Result<(Handle, Driver), JoinError>>;

    /// Joins with the default policy, the driver spawned on this runtime.
    fn join(self, options: Options) -> impl Future<Output = Handle> {
        self.join_with(options, DefaultPolicy)
    }

    /// Joins with `policy`, the driver spawned on this runtime.
    fn join_with<P: Policy + Send + 'static>(
        self,
        options: Options,
        policy: P,
    ) -> impl Future<Output = Handle> {
        async move {
            let (handle, driver) = self.start(options, policy).await.expect("join");
            self.spawn(driver);
            handle
        }
    }

    /// Spawns `driver` so that dropping the returned [`Crash`] drops the driver (stops the
    /// node without its disconnect), whatever the executor.
    fn spawn_crashable(self, driver: Driver) -> Crash {
        let (crash, crashed) = async_channel::bounded::<()>(1);
        self.spawn(driver.or(async move {
            let _ = crashed.recv().await;
        }));
        Crash { _stop: crash }
    }
}

/// Dropping it stops a driver spawned with [`Runtime::spawn_crashable`].
#[derive(Debug)]
pub struct Crash {
    /// Never used: dropping it closes the channel the driver races against.
    _stop: async_channel::Sender<()>,
}

/// Ports handed out in this process.
static USED: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A UDP port that no socket of this host holds now (the kernel's choice) and that no
/// other test of this process got: every test has a cluster of its own.
pub fn fresh_port() -> u16 {
    let mut used = USED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let used = used.get_or_insert_with(HashSet::new);
    loop {
        let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("probe a free port");
        let port = probe.local_addr().expect("local address").port();
        if used.insert(port) {
            return port;
        }
    }
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

/// `future`, or a panic naming `what` after [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    future
        .or(async {
            Timer::after(PATIENCE).await;
            panic!("{what}: not within {PATIENCE:?}")
        })
        .await
}

/// Waits for the first event that `pick` maps to `Some`, at most [`PATIENCE`].
pub async fn wait_for<T>(events: &mut Events, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    let found = within("the expected event", async {
        while let Some(event) = events.next().await {
            if let Some(found) = pick(&event) {
                return Some(found);
            }
        }
        None
    })
    .await;
    found.expect("the node stopped before the expected event")
}

/// Waits for `who`'s discovery.
pub async fn discovered(events: &mut Events, who: cluster_core::Sid) -> cluster_host::ServiceInfo {
    wait_for(events, |e| match e {
        Event::Discovered(s) if s.sid == who => Some(s.clone()),
        _ => None,
    })
    .await
}

/// Waits until every one of `who` was discovered, in any order.
pub async fn discovered_all(events: &mut Events, who: &[cluster_core::Sid]) {
    let mut missing = who.to_vec();
    while !missing.is_empty() {
        wait_for(events, |e| match e {
            Event::Discovered(s) if missing.contains(&s.sid) => {
                missing.retain(|m| *m != s.sid);
                Some(())
            }
            _ => None,
        })
        .await;
    }
}

/// Waits for `who`'s loss and returns why.
pub async fn lost(events: &mut Events, who: cluster_core::Sid) -> cluster_core::LostReason {
    wait_for(events, |e| match e {
        Event::Lost { sid, reason } if *sid == who => Some(*reason),
        _ => None,
    })
    .await
}
