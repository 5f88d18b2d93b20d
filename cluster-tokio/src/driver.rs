//! The task that owns the node. Each source of input (commands, write outcomes from the
//! connections' tasks, bytes on the `t` and `u` connections, which the task reads itself,
//! datagrams, new connections, the multicast socket becoming writable again) is polled with
//! a waker of its own, so a wake-up asks only the sources that have news; each input goes to
//! the [`Engine`], which makes the call and drains the node's outputs (the driving contract
//! of `cluster_core`). When no source has anything the task sleeps until one wakes it or the
//! deadline passes. Only the waiting and the sockets are here; the rest is `cluster-host`'s.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

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
use tokio::io::{Interest, ReadBuf};
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tracing::Instrument;

use crate::conn::{self, ConnHandle, Ready};

/// The clock: milliseconds since the node was created, on tokio's clock (so that paused-time
/// tests work).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(pub(crate) tokio::time::Instant);

impl Clock {
    fn ms(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(self, ms: u64) -> tokio::time::Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// A time no deadline reaches (tokio's timer takes about 30 years as "never").
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// The sockets and the connection tasks: what the engine asks things of ([`Io`]).
#[derive(Debug)]
pub(crate) struct TokioIo {
    pub(crate) udp: UdpSocket,
    /// The IPv6 multicast socket, when IPv6 is used.
    pub(crate) udp6: Option<UdpSocket>,
    pub(crate) tcp: Option<TcpListener>,
    #[cfg(unix)]
    pub(crate) unix: UnixSocket<UnixListener>,
    pub(crate) io_tx: mpsc::Sender<IoEvent>,
    pub(crate) connect_timeout: Duration,
    /// A listener was replaced: the driver must ask the new one for connections.
    pub(crate) reopened: bool,
    /// The connections with bytes to read.
    pub(crate) ready: Arc<Ready>,
}

impl conn_read::ReadyIo for TokioIo {
    fn ready(&self) -> &Ready {
        &self.ready
    }
}

impl Io for TokioIo {
    type Conn = ConnHandle;

    fn send_datagram(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()> {
        // `WouldBlock` makes the driver wait for writability.
        self.udp.try_send_to(bytes, SocketAddr::V4(to)).map(drop)
    }

    fn connect(&mut self, id: ConnId, target: Target) -> ConnHandle {
        conn::connect(
            id,
            target,
            self.connect_timeout,
            self.io_tx.clone(),
            &self.ready,
        )
    }

    /// Writes straight to the connection's socket when nothing is queued on it (skipping
    /// the hop to its task and back), else queues for its task.
    fn write(&mut self, conn: &mut ConnHandle, bytes: &[u8], send: SendId) -> Write {
        conn.write(bytes, send)
    }

    fn written(&mut self, conn: &mut ConnHandle) {
        conn.written();
    }

    fn reopen_tcp(&mut self) -> io::Result<u16> {
        let listener = socket::tcp_listener().and_then(TcpListener::from_std)?;
        let port = listener.local_addr()?.port();
        self.tcp = Some(listener);
        self.reopened = true;
        Ok(port)
    }

    #[cfg(unix)]
    fn reopen_unix(&mut self) -> io::Result<()> {
        self.unix.reopen(UnixListener::from_std)?;
        self.reopened = true;
        Ok(())
    }

    #[cfg(not(unix))]
    fn reopen_unix(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn multicast_socket(&self) -> Option<SockRef<'_>> {
        Some(SockRef::from(&self.udp))
    }

    fn multicast_socket_v6(&self) -> Option<SockRef<'_>> {
        self.udp6.as_ref().map(SockRef::from)
    }

    fn send_datagram_v6(&mut self, bytes: &[u8], to: SocketAddrV6) -> io::Result<()> {
        let udp6 = self.udp6.as_ref().ok_or(io::ErrorKind::NotConnected)?;
        udp6.try_send_to(bytes, SocketAddr::V6(to)).map(drop)
    }
}

/// A datagram's length, sender and arriving interface (when known).
type Received = (usize, SocketAddr, Option<u32>);

/// Reads one datagram from `socket` into `buf`: with `arrival`, through
/// [`arrival::recv_from`] (which also says on which interface it arrived), else with
/// tokio's `recv_from`.
fn recv_datagram(
    socket: &UdpSocket,
    cx: &mut Context<'_>,
    buf: &mut [u8],
    control: &mut [u8],
    arrival: bool,
) -> Poll<io::Result<Received>> {
    if !arrival {
        let mut read = ReadBuf::new(buf);
        return match socket.poll_recv_from(cx, &mut read) {
            Poll::Ready(Ok(from)) => Poll::Ready(Ok((read.filled().len(), from, None))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        };
    }
    loop {
        match socket.poll_recv_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        // `try_io` clears the readiness on `WouldBlock`: the next poll registers the waker.
        match socket.try_io(Interest::READABLE, || {
            arrival::recv_from(&SockRef::from(socket), buf, control)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => return Poll::Ready(other),
        }
    }
}

/// Inputs handled in one poll of the driver before it yields to the runtime, so that the
/// other tasks of a busy runtime get their turn.
const BUDGET: usize = 64;

/// The driver's sources of input, in the order a round asks them.
const SOURCES: u8 = 8;
/// The multicast socket's writability, the last source.
const WRITABLE: u8 = 6;
/// The two listeners' sources.
const ACCEPTS: u8 = (1 << 4) | (1 << 5);
/// Reads of one connection in a round before the others get their turn.
const READS: usize = 4;

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
    engine: Engine<P, TokioIo>,
    io: TokioIo,
    clock: Clock,
    io_rx: mpsc::Receiver<IoEvent>,
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
    sleep: Pin<Box<Sleep>>,
    /// Which sources woke the task.
    wakeups: Arc<Wakeups>,
    /// Each source's waker, in the order of the sources.
    wakers: Arc<[Waker]>,
    /// The deadline `sleep` is set to: when [`Engine::handle_timers`] is next due (`None`
    /// before the first turn).
    armed: Option<u64>,
}

impl<P: Policy> Driver<P> {
    pub(crate) fn new(
        engine: Engine<P, TokioIo>,
        io: TokioIo,
        clock: Clock,
        io_rx: mpsc::Receiver<IoEvent>,
    ) -> Self {
        let wakeups = Wakeups::new(SOURCES);
        let wakers = wakeups.wakers(SOURCES);
        Self {
            engine,
            io,
            clock,
            io_rx,
            datagram: vec![0; DATAGRAM_BUFFER],
            control: vec![0; arrival::CONTROL_BUFFER],
            #[cfg(any(target_os = "linux", target_os = "android"))]
            batch: RecvBatch::new(),
            readable: Vec::new(),
            sleep: Box::pin(tokio::time::sleep_until(clock.0)),
            armed: None,
            wakeups,
            wakers,
        }
    }

    /// Runs until the node leaves (a `Leave` command, or every handle dropped).
    pub(crate) async fn run(mut self) {
        // The join frames were queued by `Node::new`.
        self.engine.start(self.clock.ms(), &mut self.io);
        let span = tracing::debug_span!("cluster_node", sid = %self.engine.node().sid());
        std::future::poll_fn(|cx| self.poll_run(cx))
            .instrument(span)
            .await;
        self.shutdown().await;
    }

    /// The loop, as one poll. Each source is polled with a waker of its own, which notes
    /// the source in [`Wakeups`] before waking the task, so a poll asks only the sources that
    /// woke it (every source on the first poll). Then rounds: each source that may have
    /// something is asked for at most one input (commands, write outcomes, bytes from every
    /// connection that has some, datagrams, new connections, writability, IPv6 datagrams, in
    /// that order),
    /// handed to the engine (which drains after it) with the clock read once per round; a
    /// source that has nothing registered its waker and is left until it wakes the task (as
    /// are the connections once every listed one was read dry, without a round to find
    /// that). Once none is left the task sleeps until one wakes it or the deadline passes; after a
    /// budget of inputs it yields, noting the sources it did not finish. The clock is
    /// compared with the deadline directly at the start of every round, so timers never
    /// starve; the deadline is read again after the timers ran, before sleeping and before
    /// yielding, so one an input moved earlier is seen within a budget of inputs.
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut budget = BUDGET;
        // One bit per source that may have an input.
        let mut live = self.wakeups.take(cx.waker());
        let wakers = Arc::clone(&self.wakers);
        loop {
            let now = self.clock.ms();
            if self.armed.is_none_or(|due| due <= now) {
                self.engine.handle_timers(now, &mut self.io);
                self.arm();
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
                    2 => self.poll_connections(cx, now),
                    3 => self.poll_datagram(cx, now),
                    4 => self.poll_tcp_accept(cx, now),
                    5 => self.poll_unix_accept(cx, now),
                    6 => self.poll_writable(cx, now),
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
                self.arm();
                if self.sleep.as_mut().poll(cx).is_ready() {
                    continue;
                }
                return Poll::Pending;
            }
            budget = budget.saturating_sub(handled);
            if budget == 0 {
                self.arm();
                // The sources not finished are asked first at the next poll.
                self.wakeups.note(live);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Sets the sleep to the engine's deadline, when it moved.
    fn arm(&mut self) {
        let deadline = self.engine.next_deadline();
        if deadline != self.armed {
            let at = deadline.map_or_else(far_future, |ms| self.clock.at(ms));
            self.sleep.as_mut().reset(at);
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
        match self.io_rx.poll_recv(cx) {
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

    fn poll_datagram(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let arrival = self.engine.membership().reports_arrival();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if !arrival || !self.batch.is_empty() {
            return self.poll_datagram_batch(cx, now);
        }
        let received = recv_datagram(
            &self.io.udp,
            cx,
            &mut self.datagram,
            &mut self.control,
            arrival,
        );
        self.handle_received(now, received)
    }

    /// Hands the engine the next datagram of the last batch read; once all were handed
    /// out, reads the next batch when the socket is readable. A batch that emptied the
    /// socket's queue clears tokio's readiness with the read that took it (the one read
    /// that found the queue empty), so the socket wakes the task for the next datagram
    /// and no read finds it empty.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn poll_datagram_batch(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        loop {
            if let Some((bytes, from)) = self.batch.next_datagram() {
                self.engine
                    .handle_datagram_on(now, from, None, bytes, &mut self.io);
                return Polled::Handled;
            }
            match self.io.udp.poll_recv_ready(cx) {
                Poll::Ready(Ok(())) => {}
                // An error shows again at the next read; nothing to hand the node.
                Poll::Ready(Err(_)) => return Polled::Handled,
                Poll::Pending => return Polled::Idle,
            }
            let (udp, batch) = (&self.io.udp, &mut self.batch);
            let read = udp.try_io(Interest::READABLE, || {
                batch.read_from(&SockRef::from(udp))?;
                if batch.drained() {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(())
                }
            });
            match read {
                // Datagrams to hand out, or none (the socket's next poll registers the
                // waker).
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Polled::Handled,
            }
        }
    }

    fn poll_datagram_v6(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let Some(udp6) = &self.io.udp6 else {
            return Polled::Idle;
        };
        let arrival = self.engine.membership().reports_arrival();
        let received = recv_datagram(udp6, cx, &mut self.datagram, &mut self.control, arrival);
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
        let Some(listener) = &self.io.tcp else {
            return Polled::Idle;
        };
        match listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, peer))) => {
                let (timeout, tx, ready) = (
                    self.io.connect_timeout,
                    self.io.io_tx.clone(),
                    &self.io.ready,
                );
                // `None`: the table is full; the stream, not taken, closes here.
                let _ = self.engine.accepted(now, Protocol::Tcp, Some(peer), |id| {
                    conn::tune(&stream);
                    conn::accepted(id, conn::Stream::Tcp(stream), timeout, tx, ready)
                });
                Polled::Handled
            }
            Poll::Ready(Err(_)) => Polled::Handled,
            Poll::Pending => Polled::Idle,
        }
    }

    #[cfg(unix)]
    fn poll_unix_accept(&mut self, cx: &mut Context<'_>, now: u64) -> Polled {
        let Some(listener) = self.io.unix.listener() else {
            return Polled::Idle;
        };
        match listener.poll_accept(cx) {
            Poll::Ready(Ok((stream, _))) => {
                let (timeout, tx, ready) = (
                    self.io.connect_timeout,
                    self.io.io_tx.clone(),
                    &self.io.ready,
                );
                // `None`: the table is full; the stream, not taken, closes here.
                let _ = self.engine.accepted(now, Protocol::Unix, None, |id| {
                    conn::accepted(id, conn::Stream::Unix(stream), timeout, tx, ready)
                });
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
        match self.io.udp.poll_send_ready(cx) {
            // An error shows at the next send; the engine counts it.
            Poll::Ready(_) => {
                self.engine.resume(now, &mut self.io);
                Polled::Handled
            }
            Poll::Pending => Polled::Idle,
        }
    }

    /// After the leave: the disconnect goes out (waiting for the socket if it was full, at
    /// most the connect timeout), connections are closed once their queued frames are
    /// written (their tasks finish on their own), and the unix socket file is removed.
    async fn shutdown(mut self) {
        let deadline = tokio::time::Instant::now() + self.io.connect_timeout;
        while self.engine.is_blocked() {
            match tokio::time::timeout_at(deadline, self.io.udp.writable()).await {
                Ok(Ok(())) => self.engine.resume(self.clock.ms(), &mut self.io),
                _ => break,
            }
        }
        // Windows has no `u` (unix sockets).
        #[cfg(unix)]
        self.io.unix.remove();
        self.engine.finish();
    }
}
