//! The task that owns the node. Each source of input (commands, write outcomes and
//! connection events from the connections' tasks, bytes on the `t` and `u` connections,
//! which the task reads itself, datagrams, new connections, the multicast socket becoming
//! writable again) is polled with a
//! waker of its own ([`Wakeups`]), so a wake-up asks only the sources that have news, and the
//! sources stay registered with the reactor across polls (no future is rebuilt per input, and
//! the deadline's timer is re-armed only when the deadline moves). Each input goes to the
//! [`Engine`], which makes the call and drains the node's outputs. Only the waiting and the
//! sockets are here; the rest is `cluster-host`'s.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::UnixListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::{Async, Timer};
use cluster_core::{ConnId, Policy, Protocol, SendId};
use cluster_host::arrival;
use cluster_host::conn::{IoEvent, Target};
use cluster_host::conn_read::{self, Listed};
use cluster_host::engine::Write;
#[cfg(any(target_os = "linux", target_os = "android"))]
use cluster_host::recv_batch::RecvBatch;
#[cfg(unix)]
use cluster_host::socket::UnixSocket;
use cluster_host::socket::{self, DATAGRAM_BUFFER, SockRef};
use cluster_host::wakeups::Wakeups;
use cluster_host::{Engine, Flow, Io};
use futures_lite::{FutureExt, Stream as _};

use crate::conn::{self, ConnHandle, Ready, Stream};

/// The clock: milliseconds since the join, on the monotonic clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(pub(crate) Instant);

impl Clock {
    fn ms(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(self, ms: u64) -> Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// The sockets and the connection tasks: what the engine asks things of ([`Io`]).
pub(crate) struct SmolIo {
    pub(crate) udp: Async<UdpSocket>,
    /// The IPv6 multicast socket, when IPv6 is used.
    pub(crate) udp6: Option<Async<UdpSocket>>,
    pub(crate) tcp: Option<Async<TcpListener>>,
    #[cfg(unix)]
    pub(crate) unix: UnixSocket<Async<UnixListener>>,
    pub(crate) io_tx: Sender<IoEvent>,
    pub(crate) executor: Arc<Executor<'static>>,
    /// The connection tasks not known to have finished (dropping one cancels it).
    pub(crate) tasks: Vec<Task<()>>,
    pub(crate) connect_timeout: Duration,
    /// A listener was replaced: the driver must ask the new one for connections.
    pub(crate) reopened: bool,
    /// The connections with bytes to read.
    pub(crate) ready: Arc<Ready>,
}

impl std::fmt::Debug for SmolIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolIo")
            .field("udp", &self.udp)
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl SmolIo {
    fn keep(&mut self, task: Task<()>) {
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(task);
    }

    /// Starts the task of an accepted connection.
    fn accepted<S: Stream>(&mut self, id: ConnId, stream: S) -> ConnHandle {
        let (handle, task) = conn::accepted(
            &self.executor,
            id,
            stream,
            self.connect_timeout,
            self.io_tx.clone(),
            &self.ready,
        );
        self.keep(task);
        handle
    }
}

impl conn_read::ReadyIo for SmolIo {
    fn ready(&self) -> &Ready {
        &self.ready
    }
}

impl Io for SmolIo {
    type Conn = ConnHandle;

    fn send_datagram(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()> {
        // The socket is non-blocking: `WouldBlock` makes the driver wait for writability.
        self.udp.get_ref().send_to(bytes, to).map(drop)
    }

    fn connect(&mut self, id: ConnId, target: Target) -> ConnHandle {
        let (handle, task) = conn::connect(
            &self.executor,
            id,
            target,
            self.connect_timeout,
            self.io_tx.clone(),
            &self.ready,
        );
        self.keep(task);
        handle
    }

    fn write(&mut self, conn: &mut ConnHandle, bytes: &[u8], send: SendId) -> Write {
        conn.write(bytes, send)
    }

    fn written(&mut self, conn: &mut ConnHandle) {
        conn.written();
    }

    fn reopen_tcp(&mut self) -> io::Result<u16> {
        let listener = socket::tcp_listener()?;
        let port = listener.local_addr()?.port();
        self.tcp = Some(Async::new(listener)?);
        self.reopened = true;
        Ok(port)
    }

    #[cfg(unix)]
    fn reopen_unix(&mut self) -> io::Result<()> {
        self.unix.reopen(Async::new)?;
        self.reopened = true;
        Ok(())
    }

    #[cfg(not(unix))]
    fn reopen_unix(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn multicast_socket(&self) -> Option<SockRef<'_>> {
        Some(SockRef::from(self.udp.get_ref()))
    }

    fn multicast_socket_v6(&self) -> Option<SockRef<'_>> {
        self.udp6.as_ref().map(|udp6| SockRef::from(udp6.get_ref()))
    }

    fn send_datagram_v6(&mut self, bytes: &[u8], to: SocketAddrV6) -> io::Result<()> {
        let udp6 = self.udp6.as_ref().ok_or(io::ErrorKind::NotConnected)?;
        udp6.get_ref().send_to(bytes, to).map(drop)
    }
}

/// A datagram's length, sender and arriving interface (when known).
type Received = (usize, SocketAddr, Option<u32>);

/// Reads one datagram from `socket` into `buf`: with `arrival`, through
/// [`arrival::recv_from`] (which also says on which interface it arrived), else with
/// `recv_from`. Reads first; only when the socket has nothing does it register with the
/// reactor (which wakes `cx` once a datagram is there).
fn recv_datagram(
    socket: &Async<UdpSocket>,
    cx: &mut Context<'_>,
    woken: bool,
    buf: &mut [u8],
    control: &mut [u8],
    arrival: bool,
) -> Poll<io::Result<Received>> {
    poll_nonblocking(socket, cx, woken, |s| {
        if arrival {
            arrival::recv_from(&SockRef::from(s), buf, control)
        } else {
            s.recv_from(buf).map(|(n, from)| (n, from, None))
        }
    })
}

/// `op` on the non-blocking `source` until it does not say `WouldBlock`; on `WouldBlock`,
/// registers `cx` with the reactor for readability (`Pending` unless the reactor already
/// saw the source readable since, when `op` runs again). When the reactor `woken` the task
/// for this source, its notice is taken first: taken only after a `WouldBlock`, the notice
/// of a datagram already read would make `op` run once more for nothing.
fn poll_nonblocking<T, R>(
    source: &Async<T>,
    cx: &mut Context<'_>,
    woken: bool,
    mut op: impl FnMut(&T) -> io::Result<R>,
) -> Poll<io::Result<R>> {
    if woken && let Poll::Ready(Err(e)) = source.poll_readable(cx) {
        return Poll::Ready(Err(e));
    }
    loop {
        match op(source.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => return Poll::Ready(other),
        }
        match source.poll_readable(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Inputs handled in one poll of the driver before it yields to the executor, so that the
/// other tasks of a busy executor get their turn.
const BUDGET: usize = 64;

/// The driver's sources of input, in the order a round asks them.
const SOURCES: u8 = 8;
/// Bytes on the stream connections.
const CONNECTIONS: u8 = 2;
/// The multicast socket's datagrams.
const DATAGRAM: u8 = 3;
/// The `t` listener's connections.
const TCP_ACCEPT: u8 = 4;
/// The `u` listener's connections.
const UNIX_ACCEPT: u8 = 5;
/// The multicast socket's writability.
const WRITABLE: u8 = 6;
/// The IPv6 multicast socket's datagrams.
const DATAGRAM_V6: u8 = 7;
/// Reads of one connection in a round before the others get their turn.
const READS: usize = 4;
/// The two listeners' sources.
const ACCEPTS: u8 = (1 << TCP_ACCEPT) | (1 << UNIX_ACCEPT);

/// What one source had for the driver in a round.
enum Polled {
    /// Nothing now (the source will wake the task).
    Idle,
    /// One input was handled.
    Handled,
    /// Inputs were handled and the source has nothing more now (it will wake the task): it
    /// is not asked again until then.
    HandledAll,
    /// The node left: the loop ends.
    Stop,
}

/// The task's state.
pub(crate) struct Driver<P: Policy> {
    engine: Engine<P, SmolIo>,
    io: SmolIo,
    clock: Clock,
    /// Connection events (pinned: the receiver keeps its listener across polls).
    io_rx: Pin<Box<Receiver<IoEvent>>>,
    /// The read buffer, of datagrams and of stream connections.
    datagram: Vec<u8>,
    /// Control messages of a read (the arriving interface).
    control: Vec<u8>,
    /// The multicast datagrams of the last batch read, while no arriving interface is read.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    batch: RecvBatch,
    /// The connections to read this round (kept for its allocation).
    readable: Vec<ConnId>,
    /// The wake-up for the engine's deadline, kept across turns (re-armed only when the
    /// deadline moves).
    timer: Timer,
    /// The deadline `timer` is set to: when [`Engine::handle_timers`] is next due (`None`
    /// before the first turn and after the timer fired).
    armed: Option<u64>,
    /// Which sources woke the task.
    wakeups: Arc<Wakeups>,
    /// Each source's waker, in the order of the sources.
    wakers: Arc<[Waker]>,
    /// The sources that woke the task and were not asked since (bits): a socket's
    /// readiness notice from the reactor is waiting there.
    woken: u8,
}

impl<P: Policy> Driver<P> {
    pub(crate) fn new(
        engine: Engine<P, SmolIo>,
        io: SmolIo,
        clock: Clock,
        io_rx: Receiver<IoEvent>,
    ) -> Self {
        let wakeups = Wakeups::new(SOURCES);
        let wakers = wakeups.wakers(SOURCES);
        Self {
            engine,
            io,
            clock,
            io_rx: Box::pin(io_rx),
            datagram: vec![0; DATAGRAM_BUFFER],
            control: vec![0; arrival::CONTROL_BUFFER],
            #[cfg(any(target_os = "linux", target_os = "android"))]
            batch: RecvBatch::new(),
            readable: Vec::new(),
            timer: Timer::never(),
            armed: None,
            wakeups,
            wakers,
            woken: 0,
        }
    }

    /// Runs until the node leaves (a `Leave` command, or every handle dropped).
    pub(crate) async fn run(mut self) {
        // The join frames were queued by `Node::new`.
        self.engine.start(self.clock.ms(), &mut self.io);
        std::future::poll_fn(|cx| self.poll_run(cx)).await;
        self.shutdown().await;
    }

    /// The loop, as one poll. Each source is polled with a waker of its own, which notes
    /// the source in [`Wakeups`] before waking the task, so a poll asks only the sources that
    /// woke it (every source on the first poll). Then rounds: each source that may have
    /// something is asked for at most one input (commands, connection events, bytes from
    /// every connection that has some, datagrams, new connections, writability, IPv6
    /// datagrams, in that order), handed to the engine (which
    /// drains after it) with the clock read once per round; a source that has nothing
    /// registered its waker and is left until it wakes the task (as are the connections once
    /// every listed one was read dry, without a round to find that). Once none is left the task
    /// sleeps until one wakes it or the deadline passes; after a budget of inputs it yields,
    /// noting the sources it did not finish. The clock is compared with the deadline directly
    /// at the start of every round, so timers never starve.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = BUDGET;
        // One bit per source that may have an input.
        let mut live = self.wakeups.take(cx.waker());
        self.woken = live;
        let wakers = Arc::clone(&self.wakers);
        loop {
            let now = self.clock.ms();
            if self.armed.is_none_or(|due| due <= now) {
                self.engine.handle_timers(now, &mut self.io);
                self.arm(now);
            }
            self.engine.answer_flushes();
            // A datagram held back by any call: wait for writability too. A listener
            // reopened by any call: ask the new one.
            if self.engine.is_blocked() {
                live |= 1 << WRITABLE;
            }
            if std::mem::take(&mut self.io.reopened) {
                live |= ACCEPTS;
            }
            let mut handled = 0;
            // The sources with their bit set, in order (a call clears only its own bit).
            let mut asked = live;
            while asked != 0 {
                let source = u8::try_from(asked.trailing_zeros()).unwrap_or(SOURCES);
                asked &= asked - 1;
                let Some(waker) = wakers.get(usize::from(source)) else {
                    break;
                };
                let cx = &mut Context::from_waker(waker);
                let polled = match source {
                    0 => self.poll_command(cx, now),
                    1 => self.poll_io(cx, now),
                    CONNECTIONS => self.poll_connections(cx, now),
                    DATAGRAM => self.poll_datagram(cx, now),
                    TCP_ACCEPT => self.poll_tcp_accept(cx, now),
                    UNIX_ACCEPT => self.poll_unix_accept(cx, now),
                    WRITABLE => self.poll_writable(cx, now),
                    _ => self.poll_datagram_v6(cx, now),
                };
                match polled {
                    Polled::Idle => live &= !(1 << source),
                    Polled::Handled => handled += 1,
                    Polled::HandledAll => {
                        handled += 1;
                        live &= !(1 << source);
                    }
                    Polled::Stop => return Poll::Ready(()),
                }
            }
            self.engine.answer_flushes();
            if live == 0 {
                self.arm(now);
                if Pin::new(&mut self.timer).poll(cx).is_ready() {
                    // A fired timer does not fire again: arm it anew next round.
                    self.armed = None;
                    continue;
                }
                return Poll::Pending;
            }
            budget = budget.saturating_sub(handled);
            if budget == 0 {
                self.arm(now);
                // The sources not finished are asked first at the next poll.
                self.wakeups.note(live);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Sets the timer to the engine's deadline when it moved earlier, or when the timer
    /// is due (or fired) at `now`. A deadline that moved later keeps the armed timer: it
    /// wakes the task once early (the round finds no timer due and arms the later one),
    /// which is cheaper than moving it now, as async-io wakes its reactor for every timer
    /// inserted (a query moves the deadline twice: its own timeout, then back).
    fn arm(&mut self, now: u64) {
        let deadline = self.engine.next_deadline();
        let keep = match (self.armed, deadline) {
            (Some(armed), Some(next)) => armed == next || (now < armed && armed < next),
            (Some(armed), None) => now < armed,
            (None, None) => true,
            (None, Some(_)) => false,
        };
        if !keep {
            match deadline {
                Some(ms) => self.timer.set_at(self.clock.at(ms)),
                None => self.timer = Timer::never(),
            }
            self.armed = deadline;
        }
    }

    fn poll_command(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let Poll::Ready(command) = self.engine.poll_command(cx) else {
            return Polled::Idle;
        };
        match self.engine.command(now, command, &mut self.io) {
            Flow::Running => Polled::Handled,
            Flow::Left => Polled::Stop,
        }
    }

    fn poll_io(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        match self.io_rx.as_mut().poll_next(cx) {
            Poll::Ready(Some(event)) => {
                self.engine.handle_io(now, event, &mut self.io);
                Polled::Handled
            }
            // The driver holds a sender: the channel never closes.
            Poll::Ready(None) | Poll::Pending => Polled::Idle,
        }
    }

    /// Reads every connection listed as having bytes (each up to [`READS`] times) and hands
    /// the bytes to the engine, which cuts them into frames.
    fn poll_connections(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let listed = conn_read::read_listed(
            &mut self.engine,
            &mut self.io,
            &mut self.readable,
            cx.waker(),
            now,
            &mut self.datagram,
            READS,
        );
        match listed {
            Listed::None => Polled::Idle,
            Listed::Drained => Polled::HandledAll,
            Listed::More => Polled::Handled,
        }
    }

    /// Whether `source` woke the task since it was last asked (once: it is asked now).
    fn take_woken(&mut self, source: u8) -> bool {
        let bit = 1 << source;
        let woken = self.woken & bit != 0;
        self.woken &= !bit;
        woken
    }

    fn poll_datagram(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let arrival = self.engine.membership().reports_arrival();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !arrival || !self.batch.is_empty() {
            return self.poll_datagram_batch(cx, now);
        }
        let woken = self.take_woken(DATAGRAM);
        let received = recv_datagram(
            &self.io.udp,
            cx,
            woken,
            &mut self.datagram,
            &mut self.control,
            arrival,
        );
        self.handle_received(now, received)
    }

    /// Hands the engine the next datagram of the last batch read; once all were handed
    /// out, reads the next batch. After a batch that emptied the socket's queue it registers
    /// with the reactor without reading first (unless the reactor woke the task for the
    /// socket since), so no read finds the socket empty.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn poll_datagram_batch(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let woken = self.take_woken(DATAGRAM);
        if self.batch.is_empty() {
            let batch = &mut self.batch;
            let mut wait_first = batch.drained() && !woken;
            let read = poll_nonblocking(&self.io.udp, cx, woken, |s| {
                if std::mem::take(&mut wait_first) {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                batch.read_from(&SockRef::from(s))
            });
            match read {
                Poll::Ready(Ok(_)) => {}
                // An error shows again at the next read; nothing to hand the node.
                Poll::Ready(Err(_)) => return Polled::Handled,
                Poll::Pending => return Polled::Idle,
            }
        }
        if let Some((bytes, from)) = self.batch.next_datagram() {
            self.engine
                .handle_datagram_on(now, from, None, bytes, &mut self.io);
        }
        Polled::Handled
    }

    fn poll_datagram_v6(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let woken = self.take_woken(DATAGRAM_V6);
        let Some(udp6) = &self.io.udp6 else {
            return Polled::Idle;
        };
        let arrival = self.engine.membership().reports_arrival();
        let received = recv_datagram(
            udp6,
            cx,
            woken,
            &mut self.datagram,
            &mut self.control,
            arrival,
        );
        self.handle_received(now, received)
    }

    /// Hands a received datagram (in the read buffer) to the engine.
    fn handle_received(&mut self, now: u64, received: Poll<io::Result<Received>>) -> Polled {
        match received {
            Poll::Ready(Ok((n, from, arrived))) => {
                let bytes = self.datagram.get(..n).unwrap_or_default();
                self.engine
                    .handle_datagram_on(now, from, arrived, bytes, &mut self.io);
                Polled::Handled
            }
            // An error shows again at the next read; nothing to hand the node.
            Poll::Ready(Err(_)) => Polled::Handled,
            Poll::Pending => Polled::Idle,
        }
    }

    fn poll_tcp_accept(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let woken = self.take_woken(TCP_ACCEPT);
        let Some(listener) = &self.io.tcp else {
            return Polled::Idle;
        };
        match poll_nonblocking(listener, cx, woken, TcpListener::accept) {
            Poll::Ready(Ok((stream, peer))) => {
                let Ok(stream) = async_net::TcpStream::try_from(stream) else {
                    return Polled::Handled;
                };
                let io = &mut self.io;
                // `None`: the table is full; the stream, not taken, closes here.
                let _ = self.engine.accepted(now, Protocol::Tcp, Some(peer), |id| {
                    conn::tune(&stream);
                    io.accepted(id, stream)
                });
                Polled::Handled
            }
            Poll::Ready(Err(_)) => Polled::Handled,
            Poll::Pending => Polled::Idle,
        }
    }

    #[cfg(unix)]
    fn poll_unix_accept(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let woken = self.take_woken(UNIX_ACCEPT);
        let Some(listener) = self.io.unix.listener() else {
            return Polled::Idle;
        };
        match poll_nonblocking(listener, cx, woken, UnixListener::accept) {
            Poll::Ready(Ok((stream, _))) => {
                let Ok(stream) = async_net::unix::UnixStream::try_from(stream) else {
                    return Polled::Handled;
                };
                let io = &mut self.io;
                // `None`: the table is full; the stream, not taken, closes here.
                let _ = self
                    .engine
                    .accepted(now, Protocol::Unix, None, |id| io.accepted(id, stream));
                Polled::Handled
            }
            Poll::Ready(Err(_)) => Polled::Handled,
            Poll::Pending => Polled::Idle,
        }
    }

    #[cfg(not(unix))]
    fn poll_unix_accept(&mut self, _: &mut Context<'_>, _: u64) -> Polled {
        Polled::Idle
    }

    /// While a datagram is held back, waits for the multicast socket to take it.
    fn poll_writable(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        if !self.engine.is_blocked() {
            return Polled::Idle;
        }
        match self.io.udp.poll_writable(cx) {
            // An error shows at the next send; the engine counts it.
            Poll::Ready(_) => {
                self.engine.resume(now, &mut self.io);
                Polled::Handled
            }
            Poll::Pending => Polled::Idle,
        }
    }

    /// After the leave: the disconnect goes out (waiting for the socket if it was full),
    /// handles are closed, connections are closed once their queued frames are written, and
    /// the unix socket file is removed. Waits at most the connect timeout.
    async fn shutdown(mut self) {
        let deadline = Instant::now() + self.io.connect_timeout;
        let expired = || async {
            Timer::at(deadline).await;
            false
        };
        while self.engine.is_blocked() {
            let writable = async { self.io.udp.writable().await.is_ok() };
            if !writable.or(expired()).await {
                break;
            }
            self.engine.resume(self.clock.ms(), &mut self.io);
        }
        // Windows has no `u` (unix sockets).
        #[cfg(unix)]
        self.io.unix.remove();
        self.engine.finish();
        // Connection tasks report to nobody now; let them finish their writes.
        self.io_rx.close();
        for task in std::mem::take(&mut self.io.tasks) {
            let finished = async {
                task.await;
                true
            };
            if !finished.or(expired()).await {
                break;
            }
        }
    }
}
