//! The task that owns the node: it waits for the first of a command, a datagram, a
//! connection event, a new connection, the multicast socket becoming writable again, or the
//! deadline; then hands that one input to the [`Engine`] (which makes the call and drains the
//! node's outputs, the driving contract of `cluster_core`). Only the waiting and the sockets
//! are here; the rest is `cluster-host`'s.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
#[cfg(unix)]
use std::path::PathBuf;
use std::time::Duration;

use cluster_core::{ConnId, Policy, Protocol, SendId};
use cluster_host::conn::{IoEvent, Target};
use cluster_host::engine::Write;
use cluster_host::socket;
use cluster_host::{Engine, Event, Io, QueryEvent};
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::conn::{self, ConnHandle};
use crate::handle::Command;
use crate::query::QueryStream;

/// Largest datagram read (spec 7.4: no truncation at 4096).
const DATAGRAM_BUFFER: usize = 65_535;

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

/// The sockets, the subscribers' channel and the connection tasks: what the engine asks
/// things of ([`Io`]).
#[derive(Debug)]
pub(crate) struct TokioIo {
    pub(crate) udp: UdpSocket,
    pub(crate) tcp: Option<TcpListener>,
    #[cfg(unix)]
    pub(crate) unix: Option<(UnixListener, PathBuf)>,
    pub(crate) events: broadcast::Sender<Event>,
    pub(crate) io_tx: mpsc::Sender<IoEvent>,
    pub(crate) connect_timeout: Duration,
}

impl TokioIo {
    fn remove_unix_file(&mut self) {
        #[cfg(unix)]
        if let Some((_, path)) = self.unix.take() {
            drop(socket::remove_unix_socket(&path));
        }
    }
}

impl Drop for TokioIo {
    /// A driver dropped without leaving (its task was aborted) still removes its socket file.
    fn drop(&mut self) {
        self.remove_unix_file();
    }
}

impl Io for TokioIo {
    type Conn = ConnHandle;
    type Query = mpsc::UnboundedSender<QueryEvent>;

    fn send_datagram(&mut self, bytes: &[u8], to: SocketAddrV4) -> io::Result<()> {
        // `WouldBlock` makes the driver wait for writability.
        self.udp.try_send_to(bytes, SocketAddr::V4(to)).map(drop)
    }

    fn connect(&mut self, id: ConnId, target: Target) -> ConnHandle {
        conn::connect(id, target, self.connect_timeout, self.io_tx.clone())
    }

    /// Writes straight to the connection's socket when nothing is queued on it (skipping
    /// the hop to its task and back), else queues for its task.
    fn write(&mut self, conn: &mut ConnHandle, bytes: &[u8], send: SendId) -> Write {
        conn.write(bytes, send)
    }

    fn written(&mut self, conn: &mut ConnHandle) {
        conn.written();
    }

    fn event(&mut self, event: Event) {
        // With no subscriber the event has nowhere to go.
        let _ = self.events.send(event);
    }

    fn query_event(
        &mut self,
        query: &mpsc::UnboundedSender<QueryEvent>,
        event: QueryEvent,
    ) -> bool {
        query.send(event).is_ok()
    }

    fn reopen_tcp(&mut self) -> io::Result<u16> {
        let listener = socket::tcp_listener().and_then(TcpListener::from_std)?;
        let port = listener.local_addr()?.port();
        self.tcp = Some(listener);
        Ok(port)
    }

    #[cfg(unix)]
    fn reopen_unix(&mut self) -> io::Result<()> {
        let Some((old, path)) = self.unix.take() else {
            return Err(io::ErrorKind::NotFound.into());
        };
        drop(old);
        drop(socket::remove_unix_socket(&path));
        let listener = socket::unix_listener(&path).and_then(UnixListener::from_std)?;
        self.unix = Some((listener, path));
        Ok(())
    }

    #[cfg(not(unix))]
    fn reopen_unix(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Why the loop woke.
enum Wake {
    Command(Option<Command>),
    Io(IoEvent),
    Datagram(io::Result<(usize, SocketAddr)>),
    TcpAccept(io::Result<(tokio::net::TcpStream, SocketAddr)>),
    #[cfg(unix)]
    UnixAccept(io::Result<tokio::net::UnixStream>),
    Writable,
    Timer,
}

/// The task's state.
pub(crate) struct Driver<P: Policy> {
    engine: Engine<P, TokioIo>,
    io: TokioIo,
    clock: Clock,
    commands: mpsc::Receiver<Command>,
    io_rx: mpsc::Receiver<IoEvent>,
    leave_waiters: Vec<oneshot::Sender<()>>,
    flush_waiters: Vec<oneshot::Sender<()>>,
    datagram: Vec<u8>,
}

impl<P: Policy> std::fmt::Debug for Driver<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("engine", &self.engine)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

impl<P: Policy> Driver<P> {
    pub(crate) fn new(
        engine: Engine<P, TokioIo>,
        io: TokioIo,
        clock: Clock,
        commands: mpsc::Receiver<Command>,
        io_rx: mpsc::Receiver<IoEvent>,
    ) -> Self {
        Self {
            engine,
            io,
            clock,
            commands,
            io_rx,
            leave_waiters: Vec::new(),
            flush_waiters: Vec::new(),
            datagram: vec![0; DATAGRAM_BUFFER],
        }
    }

    /// Runs until the node leaves (a `Leave` command, or every handle dropped).
    pub(crate) async fn run(mut self) {
        // The join frames were queued by `Node::new`.
        self.engine.start(self.clock.ms(), &mut self.io);
        loop {
            // Deadlines first, compared with the clock directly, so timers never starve.
            self.engine.handle_timers(self.clock.ms(), &mut self.io);
            self.answer_flushes();
            let deadline = self.engine.next_deadline();
            let wake = self.wait(deadline).await;
            if !self.handle(wake) {
                break;
            }
            self.answer_flushes();
        }
        self.shutdown().await;
    }

    async fn wait(&mut self, deadline: Option<u64>) -> Wake {
        let Self {
            engine,
            io,
            clock,
            commands,
            io_rx,
            datagram,
            ..
        } = self;
        let blocked = engine.is_blocked();
        let clock = *clock;
        let io = &*io;
        let sleep = async {
            match deadline {
                Some(ms) => tokio::time::sleep_until(clock.at(ms)).await,
                None => std::future::pending().await,
            }
        };
        let tcp = async {
            match &io.tcp {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let unix = async {
            match &io.unix {
                Some((listener, _)) => listener.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let unix = std::future::pending::<()>();
        tokio::select! {
            command = commands.recv() => Wake::Command(command),
            Some(event) = io_rx.recv() => Wake::Io(event),
            received = io.udp.recv_from(datagram) => Wake::Datagram(received),
            // An error shows at the next send; the engine counts it.
            _ = io.udp.writable(), if blocked => Wake::Writable,
            accepted = tcp => Wake::TcpAccept(accepted),
            accepted = unix => {
                #[cfg(unix)]
                { Wake::UnixAccept(accepted) }
                #[cfg(not(unix))]
                { let () = accepted; Wake::Timer }
            }
            () = sleep => Wake::Timer,
        }
    }

    /// One input or command (the engine drains after it). Returns false when the node left.
    fn handle(&mut self, wake: Wake) -> bool {
        let now = self.clock.ms();
        let io = &mut self.io;
        match wake {
            Wake::Timer | Wake::Datagram(Err(_)) | Wake::TcpAccept(Err(_)) => {}
            #[cfg(unix)]
            Wake::UnixAccept(Err(_)) => {}
            Wake::Writable => self.engine.resume(now, io),
            Wake::Command(None) => {
                self.engine.leave(now, io);
                return false;
            }
            Wake::Command(Some(Command::Leave(reply))) => {
                self.leave_waiters.push(reply);
                self.engine.leave(now, io);
                return false;
            }
            Wake::Command(Some(command)) => self.command(now, command),
            Wake::Io(event) => self.engine.handle_io(now, event, io),
            Wake::Datagram(Ok((len, from))) => {
                let bytes = self.datagram.get(..len).unwrap_or_default();
                self.engine.handle_datagram(now, from, bytes, io);
            }
            Wake::TcpAccept(Ok((stream, peer))) => {
                let _ = stream.set_nodelay(true);
                let (timeout, tx) = (io.connect_timeout, io.io_tx.clone());
                self.engine.accepted(now, Protocol::Tcp, Some(peer), |id| {
                    conn::accepted(id, conn::Stream::Tcp(stream), timeout, tx)
                });
            }
            #[cfg(unix)]
            Wake::UnixAccept(Ok(stream)) => {
                let (timeout, tx) = (io.connect_timeout, io.io_tx.clone());
                self.engine.accepted(now, Protocol::Unix, None, |id| {
                    conn::accepted(id, conn::Stream::Unix(stream), timeout, tx)
                });
            }
        }
        true
    }

    fn command(&mut self, now: u64, command: Command) {
        let engine = &mut self.engine;
        let io = &mut self.io;
        // A reply whose asker went away has nobody to tell.
        match command {
            Command::Send(spec, reply) => {
                let _ = reply.send(engine.send(now, &spec, io));
            }
            Command::Query(spec, reply) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let result = engine
                    .query(now, &spec, tx, io)
                    .map(|started| QueryStream::new(started.id, started.targets, rx));
                let _ = reply.send(result);
            }
            Command::Tags(edits, reply) => {
                let _ = reply.send(engine.update_tags(now, &edits, io));
            }
            Command::OwnTags(reply) => {
                let _ = reply.send(engine.tags());
            }
            Command::Discover(reply) => {
                let _ = reply.send(engine.discover(now, io));
            }
            Command::Heartbeat(reply) => {
                engine.heartbeat(now, io);
                let _ = reply.send(());
            }
            Command::Services(reply) => {
                let _ = reply.send(engine.services());
            }
            Command::Resolve(selector, reply) => {
                let _ = reply.send(engine.resolve(&selector));
            }
            Command::Info(reply) => {
                let _ = reply.send(engine.info());
            }
            Command::Stats(reply) => {
                let _ = reply.send(engine.stats());
            }
            Command::Subscribe(channel, reply) => {
                let _ = reply.send(engine.subscribe(channel));
            }
            Command::Flush(reply) => self.flush_waiters.push(reply),
            // Handled by `handle`.
            Command::Leave(reply) => self.leave_waiters.push(reply),
        }
    }

    fn answer_flushes(&mut self) {
        if self.engine.in_flight() == 0 {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
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
        self.engine.close_all();
        self.io.remove_unix_file();
        for waiter in self.leave_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}
