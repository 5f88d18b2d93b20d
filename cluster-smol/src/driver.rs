//! The task that owns the node: it waits for the first of a command, a datagram, a
//! connection event, a new connection, the multicast socket becoming writable again, or the
//! deadline; then hands that one input to the [`Engine`] (which makes the call and drains the
//! node's outputs). Only the waiting and the sockets are here; the rest is `cluster-host`'s.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::{Async, Timer};
use async_net::TcpListener;
#[cfg(unix)]
use async_net::unix::UnixListener;
use cluster_core::{ConnId, Policy, Protocol, SendId};
use cluster_host::arrival;
use cluster_host::conn::{IoEvent, Outbound, Target};
use cluster_host::engine::Write;
#[cfg(unix)]
use cluster_host::socket::UnixSocket;
use cluster_host::socket::{self, DATAGRAM_BUFFER, SockRef};
use cluster_host::{Command, Engine, Flow, Io};
use futures_lite::FutureExt;

use crate::conn::{self, ConnHandle, Stream};

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
    pub(crate) tcp: Option<TcpListener>,
    #[cfg(unix)]
    pub(crate) unix: UnixSocket<UnixListener>,
    pub(crate) io_tx: Sender<IoEvent>,
    pub(crate) executor: Arc<Executor<'static>>,
    /// The connection tasks not known to have finished (dropping one cancels it).
    pub(crate) tasks: Vec<Task<()>>,
    pub(crate) connect_timeout: Duration,
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
        );
        self.keep(task);
        handle
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
        );
        self.keep(task);
        handle
    }

    fn write(&mut self, conn: &mut ConnHandle, bytes: &[u8], send: SendId) -> Write {
        let frame = Outbound {
            bytes: bytes.to_vec(),
            send: Some(send),
        };
        if conn.try_queue(frame) {
            Write::Queued
        } else {
            Write::Refused
        }
    }

    fn reopen_tcp(&mut self) -> io::Result<u16> {
        let listener = socket::tcp_listener()?;
        let port = listener.local_addr()?.port();
        self.tcp = Some(TcpListener::try_from(listener)?);
        Ok(port)
    }

    #[cfg(unix)]
    fn reopen_unix(&mut self) -> io::Result<()> {
        self.unix.reopen(UnixListener::try_from)?;
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

/// Why the loop woke.
enum Wake {
    Command(Option<Command>),
    Io(IoEvent),
    Datagram(io::Result<Received>),
    Datagram6(io::Result<Received>),
    TcpAccept(io::Result<(async_net::TcpStream, SocketAddr)>),
    #[cfg(unix)]
    UnixAccept(io::Result<async_net::unix::UnixStream>),
    Writable,
    Timer,
}

/// The task's state.
pub(crate) struct Driver<P: Policy> {
    engine: Engine<P, SmolIo>,
    io: SmolIo,
    clock: Clock,
    io_rx: Receiver<IoEvent>,
    datagram: Vec<u8>,
    /// The read buffer of the IPv6 socket (empty without one).
    datagram6: Vec<u8>,
    /// Control messages of a read on each socket (the arriving interface).
    control: [Vec<u8>; 2],
}

/// A datagram's length, sender and arriving interface (when known).
type Received = (usize, SocketAddr, Option<u32>);

/// Reads one datagram from `socket` into `buf`: with `arrival`, through
/// [`arrival::recv_from`] (which also says on which interface it arrived), else with
/// `recv_from`.
async fn recv_datagram(
    socket: &Async<UdpSocket>,
    buf: &mut [u8],
    control: &mut [u8],
    arrival: bool,
) -> io::Result<Received> {
    if arrival {
        socket
            .read_with(|s| arrival::recv_from(&SockRef::from(s), buf, control))
            .await
    } else {
        let (n, from) = socket.recv_from(buf).await?;
        Ok((n, from, None))
    }
}

/// Never ready: a source that is not there.
async fn never<T>() -> T {
    std::future::pending().await
}

impl<P: Policy> Driver<P> {
    pub(crate) fn new(
        engine: Engine<P, SmolIo>,
        io: SmolIo,
        clock: Clock,
        io_rx: Receiver<IoEvent>,
    ) -> Self {
        let datagram = vec![0; DATAGRAM_BUFFER];
        let datagram6 = vec![
            0;
            if io.udp6.is_some() {
                DATAGRAM_BUFFER
            } else {
                0
            }
        ];
        Self {
            engine,
            io,
            datagram,
            datagram6,
            control: [
                vec![0; arrival::CONTROL_BUFFER],
                vec![0; arrival::CONTROL_BUFFER],
            ],
            clock,
            io_rx,
        }
    }

    /// Runs until the node leaves (a `Leave` command, or every handle dropped).
    pub(crate) async fn run(mut self) {
        // The join frames were queued by `Node::new`.
        self.engine.start(self.clock.ms(), &mut self.io);
        loop {
            // Deadlines first, compared with the clock directly, so timers never starve.
            self.engine.handle_timers(self.clock.ms(), &mut self.io);
            self.engine.answer_flushes();
            let deadline = self.engine.next_deadline();
            let wake = self.wait(deadline).await;
            if !self.handle(wake) {
                break;
            }
            self.engine.answer_flushes();
        }
        self.shutdown().await;
    }

    async fn wait(&mut self, deadline: Option<u64>) -> Wake {
        let Self {
            engine,
            io,
            clock,
            io_rx,
            datagram,
            datagram6,
            control: [control, control6],
            ..
        } = self;
        let arrival = engine.membership().reports_arrival();
        let blocked = engine.is_blocked();
        let clock = *clock;
        let udp = &io.udp;
        let next_command = engine.next_command();
        let command = async { Wake::Command(next_command.await) };
        let connection = async {
            match io_rx.recv().await {
                Ok(event) => Wake::Io(event),
                Err(_) => never().await,
            }
        };
        let received =
            async { Wake::Datagram(recv_datagram(udp, datagram, control, arrival).await) };
        let received6 = async {
            match &io.udp6 {
                Some(udp6) => {
                    Wake::Datagram6(recv_datagram(udp6, datagram6, control6, arrival).await)
                }
                None => never().await,
            }
        };
        let writable = async {
            if blocked {
                // An error shows at the next send; the engine counts it.
                let _ = udp.writable().await;
                Wake::Writable
            } else {
                never().await
            }
        };
        let tcp = async {
            match &io.tcp {
                Some(listener) => Wake::TcpAccept(listener.accept().await),
                None => never().await,
            }
        };
        #[cfg(unix)]
        let unix = async {
            match io.unix.listener() {
                Some(listener) => Wake::UnixAccept(listener.accept().await.map(|(s, _)| s)),
                None => never().await,
            }
        };
        #[cfg(not(unix))]
        let unix = never::<Wake>();
        let timer = async {
            match deadline {
                Some(ms) => {
                    Timer::at(clock.at(ms)).await;
                    Wake::Timer
                }
                None => never().await,
            }
        };
        // `race` picks among ready sources at random, so that none starves the others.
        command
            .race(connection)
            .race(received)
            .race(received6)
            .race(writable)
            .race(tcp)
            .race(unix)
            .race(timer)
            .await
    }

    /// One input or command (the engine drains after it). Returns false when the node left.
    fn handle(&mut self, wake: Wake) -> bool {
        let now = self.clock.ms();
        let io = &mut self.io;
        match wake {
            Wake::Timer
            | Wake::Datagram(Err(_))
            | Wake::Datagram6(Err(_))
            | Wake::TcpAccept(Err(_)) => {}
            #[cfg(unix)]
            Wake::UnixAccept(Err(_)) => {}
            Wake::Writable => self.engine.resume(now, io),
            Wake::Command(command) => {
                if self.engine.command(now, command, io) == Flow::Left {
                    return false;
                }
            }
            Wake::Io(event) => self.engine.handle_io(now, event, io),
            Wake::Datagram(Ok((len, from, arrived))) => {
                let bytes = self.datagram.get(..len).unwrap_or_default();
                self.engine
                    .handle_datagram_on(now, from, arrived, bytes, io);
            }
            Wake::Datagram6(Ok((len, from, arrived))) => {
                let bytes = self.datagram6.get(..len).unwrap_or_default();
                self.engine
                    .handle_datagram_on(now, from, arrived, bytes, io);
            }
            // `None` from `accepted`: the table is full; the stream, not taken, closes here.
            Wake::TcpAccept(Ok((stream, peer))) => {
                let _ = self.engine.accepted(now, Protocol::Tcp, Some(peer), |id| {
                    let _ = stream.set_nodelay(true);
                    io.accepted(id, stream)
                });
            }
            #[cfg(unix)]
            Wake::UnixAccept(Ok(stream)) => {
                let _ = self
                    .engine
                    .accepted(now, Protocol::Unix, None, |id| io.accepted(id, stream));
            }
        }
        true
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
