//! The task that owns the node: it waits for the first of a command, bytes, a transport
//! outcome or the node's deadline, makes exactly one input or command call, then drains the
//! node's outputs (the driving contract of `cluster_core`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cluster_core::{ConnId, Destination, Endpoint, Instant, Policy, Protocol, SendId};
use cluster_host::json::JoinedInfo;
use cluster_host::socket::{self, canonical};
use cluster_host::{
    CommandError, Event, HostNode, LocalAddrs, QueryEvent, ServiceInfo, Translated, TransportStats,
    Transports, translate, with_tag_ops,
};
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::conn::{self, ConnHandle, IoEvent, Outbound, Target};
use crate::handle::Command;
use crate::query::QueryStream;

/// Events from connection tasks queued before they wait (backpressure on readers).
const IO_QUEUE: usize = 256;
/// Largest datagram read (spec 7.4: no truncation at 4096).
const DATAGRAM_BUFFER: usize = 65_535;

/// The clock: milliseconds since the node was created, on tokio's clock (so that paused-time
/// tests work).
#[derive(Debug, Clone, Copy)]
struct Clock(tokio::time::Instant);

impl Clock {
    fn ms(self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn now(self) -> Instant {
        Instant::from_millis(self.ms())
    }

    fn at(self, ms: u64) -> tokio::time::Instant {
        self.0 + Duration::from_millis(ms)
    }
}

/// What the driver owns.
pub(crate) struct Driver<P: Policy> {
    node: Box<HostNode<P>>,
    clock: Clock,
    udp: UdpSocket,
    group: SocketAddr,
    tcp: Option<TcpListener>,
    #[cfg(unix)]
    unix: Option<(UnixListener, PathBuf)>,
    transports: Transports<ConnHandle>,
    counters: TransportStats,
    addrs: LocalAddrs,
    connect_timeout: Duration,
    commands: mpsc::Receiver<Command>,
    io_tx: mpsc::Sender<IoEvent>,
    io_rx: mpsc::Receiver<IoEvent>,
    events: broadcast::Sender<Event>,
    queries: HashMap<String, mpsc::UnboundedSender<QueryEvent>>,
    /// Follow-up commands found while draining events (cancelled queries, refreshes).
    followups: Vec<Followup>,
    leave_waiters: Vec<oneshot::Sender<()>>,
    /// Direct sends handed to a connection whose outcome is not known yet.
    in_flight: usize,
    flush_waiters: Vec<oneshot::Sender<()>>,
    buf: Vec<u8>,
    datagram: Vec<u8>,
}

impl<P: Policy> std::fmt::Debug for Driver<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("node", &self.node)
            .field("connections", &self.transports.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Followup {
    CancelQuery(String),
    Refresh(Protocol),
}

/// Why the loop woke.
enum Wake {
    Command(Option<Command>),
    Io(IoEvent),
    Datagram(std::io::Result<(usize, SocketAddr)>),
    TcpAccept(std::io::Result<(tokio::net::TcpStream, SocketAddr)>),
    #[cfg(unix)]
    UnixAccept(std::io::Result<tokio::net::UnixStream>),
    Timer,
}

/// The sockets and settings a driver starts with.
pub(crate) struct Parts<P: Policy> {
    pub(crate) node: Box<HostNode<P>>,
    pub(crate) clock_start: tokio::time::Instant,
    pub(crate) udp: UdpSocket,
    pub(crate) group: SocketAddr,
    pub(crate) tcp: Option<TcpListener>,
    #[cfg(unix)]
    pub(crate) unix: Option<(UnixListener, PathBuf)>,
    pub(crate) addrs: LocalAddrs,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: broadcast::Sender<Event>,
}

impl<P: Policy> Driver<P> {
    pub(crate) fn new(parts: Parts<P>) -> Self {
        let (io_tx, io_rx) = mpsc::channel(IO_QUEUE);
        Self {
            node: parts.node,
            clock: Clock(parts.clock_start),
            udp: parts.udp,
            group: parts.group,
            tcp: parts.tcp,
            #[cfg(unix)]
            unix: parts.unix,
            transports: Transports::new(parts.idle_timeout),
            counters: TransportStats::default(),
            addrs: parts.addrs,
            connect_timeout: parts.connect_timeout,
            commands: parts.commands,
            io_tx,
            io_rx,
            events: parts.events,
            queries: HashMap::new(),
            followups: Vec::new(),
            leave_waiters: Vec::new(),
            in_flight: 0,
            flush_waiters: Vec::new(),
            buf: vec![0; HostNode::<P>::TRANSMIT_BUF],
            datagram: vec![0; DATAGRAM_BUFFER],
        }
    }

    /// Runs until the node leaves (a `Leave` command, or every handle dropped).
    pub(crate) async fn run(mut self) {
        // The join frames were queued by `Node::new`.
        self.drain().await;
        loop {
            let now = self.clock.ms();
            // Deadlines first, compared with the clock directly, so timers never starve.
            if self
                .node
                .poll_timeout()
                .is_some_and(|d| d.as_millis() <= now)
            {
                self.node.handle_timeout(Instant::from_millis(now));
                self.drain().await;
                continue;
            }
            if self.transports.next_deadline().is_some_and(|d| d <= now) {
                for id in self.transports.expired(now) {
                    self.counters.idle_closes += 1;
                    self.close_conn(id);
                    self.drain().await;
                }
                continue;
            }
            self.addrs.refresh_if_due(now);
            let deadline = [
                self.node.poll_timeout().map(Instant::as_millis),
                self.transports.next_deadline(),
                Some(self.addrs.next_refresh()),
            ]
            .into_iter()
            .flatten()
            .min();
            let wake = self.wait(deadline).await;
            if !self.handle(wake).await {
                break;
            }
        }
        self.shutdown();
    }

    async fn wait(&mut self, deadline: Option<u64>) -> Wake {
        let sleep = async {
            match deadline {
                Some(ms) => tokio::time::sleep_until(self.clock.at(ms)).await,
                None => std::future::pending().await,
            }
        };
        let tcp = async {
            match &self.tcp {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(unix)]
        let unix = async {
            match &self.unix {
                Some((listener, _)) => listener.accept().await.map(|(s, _)| s),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let unix = std::future::pending::<()>();
        tokio::select! {
            command = self.commands.recv() => Wake::Command(command),
            Some(io) = self.io_rx.recv() => Wake::Io(io),
            received = self.udp.recv_from(&mut self.datagram) => Wake::Datagram(received),
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

    /// One input or command, then the drain. Returns false when the node left.
    async fn handle(&mut self, wake: Wake) -> bool {
        let now = self.clock.now();
        match wake {
            Wake::Timer => return true,
            Wake::Command(None) => {
                self.leave().await;
                return false;
            }
            Wake::Command(Some(Command::Leave(reply))) => {
                self.leave_waiters.push(reply);
                self.leave().await;
                return false;
            }
            Wake::Command(Some(command)) => self.command(now, command),
            Wake::Io(io) => self.io(now, io),
            Wake::Datagram(Ok((len, from))) => {
                self.counters.datagrams_received += 1;
                let from = canonical(from);
                let local = self.addrs.is_local(from.ip(), now.as_millis());
                let bytes = self.datagram.get(..len).unwrap_or_default();
                // Errors are counted in the node's stats; nothing else to do.
                let _ = self.node.handle_datagram(
                    now,
                    cluster_core::Source::multicast(from, local),
                    bytes,
                );
            }
            Wake::Datagram(Err(_)) => return true,
            Wake::TcpAccept(Ok((stream, peer))) => {
                let _ = stream.set_nodelay(true);
                self.counters.accepts += 1;
                let peer = canonical(peer);
                let local = self.addrs.is_local(peer.ip(), now.as_millis());
                self.open_accepted(Protocol::Tcp, Some(peer), local, conn::Stream::Tcp(stream));
                return true;
            }
            #[cfg(unix)]
            Wake::UnixAccept(Ok(stream)) => {
                self.counters.accepts += 1;
                self.open_accepted(Protocol::Unix, None, true, conn::Stream::Unix(stream));
                return true;
            }
            #[cfg(unix)]
            Wake::TcpAccept(Err(_)) | Wake::UnixAccept(Err(_)) => return true,
            #[cfg(not(unix))]
            Wake::TcpAccept(Err(_)) => return true,
        }
        self.drain().await;
        true
    }

    fn open_accepted(
        &mut self,
        protocol: Protocol,
        peer: Option<SocketAddr>,
        local: bool,
        stream: conn::Stream,
    ) {
        let now = self.clock.ms();
        let io = self.io_tx.clone();
        let timeout = self.connect_timeout;
        self.transports
            .open(protocol, peer, local, false, None, now, |id| {
                conn::accepted(id, stream, timeout, io)
            });
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Send(spec, reply) => {
                let result = spec
                    .with_request(|request| self.node.send(now, request))
                    .map_err(CommandError::from)
                    .and_then(|r| r.map_err(CommandError::from));
                let _ = reply.send(result);
            }
            Command::Query(spec, reply) => {
                let result = self.start_query(now, &spec);
                let _ = reply.send(result);
            }
            Command::Tags(edits, reply) => {
                let result = with_tag_ops(&edits, |ops| self.node.update_tags(now, ops))
                    .and_then(|r| r)
                    .map_err(CommandError::from);
                let _ = reply.send(result);
            }
            Command::OwnTags(reply) => {
                let tags = self
                    .node
                    .tags()
                    .iter()
                    .map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned())
                    .collect();
                let _ = reply.send(tags);
            }
            Command::Discover(reply) => {
                let _ = reply.send(self.node.discover(now));
            }
            Command::Heartbeat(reply) => {
                self.node.heartbeat(now);
                let _ = reply.send(());
            }
            Command::Services(reply) => {
                let _ = reply.send(ServiceInfo::all(&self.node));
            }
            Command::Resolve(selector, reply) => {
                let _ = reply.send(selector.matching(&self.node).map_err(CommandError::from));
            }
            Command::Info(reply) => {
                let _ = reply.send(self.info());
            }
            Command::Stats(reply) => {
                let _ = reply.send((self.node.stats(), self.counters));
            }
            Command::Subscribe(channel, reply) => {
                let _ = reply.send(self.node.subscribe(channel));
            }
            Command::Flush(reply) => self.flush_waiters.push(reply),
            Command::Leave(_) => {}
        }
    }

    fn start_query(
        &mut self,
        now: Instant,
        spec: &cluster_host::QuerySpec,
    ) -> Result<QueryStream, CommandError> {
        let targets = spec.to.matching(&self.node)?;
        let id = spec.with_request(|request| self.node.query(now, request))??;
        let id = String::from_utf8_lossy(id.as_bytes()).into_owned();
        let (tx, rx) = mpsc::unbounded_channel();
        self.queries.insert(id.clone(), tx);
        Ok(QueryStream::new(id, targets, rx))
    }

    fn info(&self) -> JoinedInfo {
        let group = match self.group {
            SocketAddr::V4(v4) => v4,
            SocketAddr::V6(_) => std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0),
        };
        JoinedInfo {
            sid: *self.node.sid(),
            hid: *self.node.hid(),
            group,
            protocols: self.node.protocols(),
            tcp_port: self
                .tcp
                .as_ref()
                .and_then(|l| l.local_addr().ok())
                .map(|a| a.port()),
            #[cfg(unix)]
            unix_path: self
                .unix
                .as_ref()
                .map(|(_, p)| p.to_string_lossy().into_owned()),
            #[cfg(not(unix))]
            unix_path: None,
        }
    }

    fn io(&mut self, now: Instant, io: IoEvent) {
        match io {
            IoEvent::Read { conn, bytes } => {
                let Some(entry) = self.transports.get(conn) else {
                    return; // closed by us meanwhile
                };
                let source = entry.source(conn);
                let protocol = entry.protocol;
                self.transports.touch(conn, now.as_millis());
                let _ = self.node.handle_datagram(now, source, &bytes);
                if self.transports.needs_sid(conn) {
                    let sid = self
                        .node
                        .services()
                        .find(|s| s.conn(protocol) == Some(conn))
                        .map(|s| *s.sid());
                    if let Some(sid) = sid {
                        self.transports.note_sid(conn, sid);
                    }
                }
            }
            IoEvent::Closed { conn } => {
                if let Some(entry) = self.transports.remove(conn) {
                    self.node.connection_closed(now, entry.source(conn));
                }
            }
            IoEvent::Connected { conn, writer } => {
                if let Some(entry) = self.transports.get_mut(conn) {
                    entry.writer.direct = Some(writer);
                }
            }
            IoEvent::Written { conn, send, ok } => {
                if let Some(entry) = self.transports.get_mut(conn) {
                    entry.writer.pending = entry.writer.pending.saturating_sub(1);
                }
                if ok {
                    self.counters.writes_ok += 1;
                    self.transports.touch(conn, now.as_millis());
                } else {
                    self.counters.writes_failed += 1;
                }
                if let Some(send) = send {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.report(now, send, ok);
                }
            }
        }
    }

    fn report(&mut self, now: Instant, send: SendId, ok: bool) {
        if ok {
            self.node.transport_ok(now, send);
        } else {
            self.node.transport_failed(now, send);
        }
    }

    /// Closes a connection on our side (idle, or at leave) and tells the node.
    fn close_conn(&mut self, id: ConnId) {
        if let Some(entry) = self.transports.remove(id) {
            let source = entry.source(id);
            drop(entry);
            self.node.connection_closed(self.clock.now(), source);
        }
    }

    /// Step 2 of the contract: every transmit, then every event; then the follow-up commands
    /// found on the way, each followed by its own drain.
    async fn drain(&mut self) {
        loop {
            self.drain_transmits().await;
            self.drain_events();
            let Some(followup) = self.followups.pop() else {
                break;
            };
            let now = self.clock.now();
            match followup {
                Followup::CancelQuery(id) => {
                    self.node.cancel_query(now, &id);
                }
                Followup::Refresh(protocol) => self.refresh(now, protocol),
            }
        }
        if self.in_flight == 0 {
            for waiter in self.flush_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    async fn drain_transmits(&mut self) {
        loop {
            let now = self.clock.now();
            let Some(transmit) = self.node.poll_transmit(now, &mut self.buf) else {
                break;
            };
            match transmit.dst {
                Destination::Group { send } => {
                    let mut ok = true;
                    for segment in transmit.segments(&self.buf) {
                        if self.udp.send_to(segment, self.group).await.is_err() {
                            self.counters.datagrams_failed += 1;
                            ok = false;
                            break;
                        }
                        self.counters.datagrams_sent += 1;
                    }
                    if let Some(send) = send {
                        self.report(self.clock.now(), send, ok);
                    }
                }
                Destination::Service {
                    sid,
                    via,
                    conn,
                    endpoint,
                    send,
                } => {
                    let buf = std::mem::take(&mut self.buf);
                    let frame = buf.get(..transmit.len).unwrap_or_default();
                    let queued = self.queue_direct(sid, via, conn, endpoint, frame, send);
                    self.buf = buf;
                    if !queued {
                        self.counters.writes_failed += 1;
                        self.report(now, send, false);
                    }
                }
            }
        }
    }

    /// Writes a direct send on the connection to `sid` (newest wins), at once when nothing is
    /// queued on it and the socket takes the whole frame, else through the connection's task,
    /// connecting when there is none. False when it cannot even be queued (no endpoint,
    /// queue full): a failure.
    fn queue_direct(
        &mut self,
        sid: cluster_core::Sid,
        via: Protocol,
        hint: Option<ConnId>,
        endpoint: Endpoint,
        frame: &[u8],
        send: SendId,
    ) -> bool {
        let now = self.clock.ms();
        let id = match self.transports.route(&sid, via, hint) {
            Some(id) => id,
            None => {
                let (target, peer, local) = match endpoint {
                    Endpoint::Tcp(addr) => {
                        let local = self.addrs.is_local(addr.ip(), now);
                        (Target::Tcp(addr), Some(addr), local)
                    }
                    #[cfg(unix)]
                    Endpoint::Unix(path) => {
                        let Some(path) = path.as_str() else {
                            return false;
                        };
                        (Target::Unix(PathBuf::from(path)), None, true)
                    }
                    _ => return false,
                };
                let io = self.io_tx.clone();
                let timeout = self.connect_timeout;
                self.counters.connects += 1;
                self.transports
                    .open(via, peer, local, true, Some(sid), now, |id| {
                        conn::connect(id, target, timeout, io)
                    })
            }
        };
        let Some(entry) = self.transports.get_mut(id) else {
            return false;
        };
        let handle = &mut entry.writer;
        let mut written = 0;
        if handle.pending == 0
            && let Some(direct) = &handle.direct
        {
            // Errors other than a full socket are left to the task, which reports them and
            // closes the connection.
            if let Ok(n) = direct.try_write(frame) {
                written = n;
            }
            if written >= frame.len() {
                self.counters.writes_ok += 1;
                self.transports.touch(id, now);
                self.report(self.clock.now(), send, true);
                return true;
            }
        }
        let rest = frame.get(written..).unwrap_or_default();
        let queued = handle
            .queue
            .try_send(Outbound {
                bytes: rest.to_vec(),
                send: Some(send),
            })
            .is_ok();
        if queued {
            handle.pending += 1;
            self.in_flight += 1;
            self.transports.touch(id, now);
        }
        queued
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.node.poll_event() {
            match translate(&self.node, &event) {
                Some(Translated::Event(event)) => {
                    let _ = self.events.send(event);
                }
                Some(Translated::Query { id, event }) => {
                    let done = matches!(event, QueryEvent::Done(_));
                    let delivered = self
                        .queries
                        .get(&id)
                        .is_some_and(|tx| tx.send(event).is_ok());
                    if done {
                        self.queries.remove(&id);
                    } else if !delivered && self.queries.remove(&id).is_some() {
                        // The caller dropped its stream: free the node's query slot.
                        self.followups.push(Followup::CancelQuery(id));
                    }
                }
                Some(Translated::Refresh(protocol)) => {
                    self.followups.push(Followup::Refresh(protocol));
                }
                None => {}
            }
        }
    }

    /// A peer reported our `protocol` failing (type 8): reopen its listener (spec 5.11).
    fn refresh(&mut self, now: Instant, protocol: Protocol) {
        match protocol {
            Protocol::Tcp if self.tcp.is_some() => {
                let reopened = socket::tcp_listener().and_then(TcpListener::from_std);
                if let Ok(listener) = reopened {
                    let port = listener.local_addr().ok().map(|a| a.port());
                    self.tcp = Some(listener);
                    self.node.set_tcp_port(now, port);
                    let _ = self.events.send(Event::ProtocolRefreshed { protocol });
                }
            }
            #[cfg(unix)]
            Protocol::Unix => {
                if let Some((_, path)) = self.unix.take() {
                    drop(socket::remove_unix_socket(&path));
                    let reopened = socket::unix_listener(&path).and_then(UnixListener::from_std);
                    if let Ok(listener) = reopened {
                        self.unix = Some((listener, path));
                        let _ = self.events.send(Event::ProtocolRefreshed { protocol });
                    }
                }
            }
            _ => {}
        }
    }

    /// Leaves: the disconnect goes out, every service is reported lost.
    async fn leave(&mut self) {
        let now = self.clock.now();
        self.node.leave(now);
        self.drain().await;
    }

    /// Closes everything; the unix socket file is removed. Connection tasks finish the
    /// writes already queued, then close their connection.
    fn shutdown(&mut self) {
        let ids: Vec<ConnId> = self.transports.iter().map(|(id, _)| id).collect();
        for id in ids {
            self.transports.remove(id);
        }
        self.remove_unix_file();
        for waiter in self.leave_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    fn remove_unix_file(&mut self) {
        #[cfg(unix)]
        if let Some((_, path)) = self.unix.take() {
            drop(socket::remove_unix_socket(&path));
        }
    }
}

impl<P: Policy> Drop for Driver<P> {
    /// A driver dropped without leaving (its task was aborted) still removes its socket file.
    fn drop(&mut self) {
        self.remove_unix_file();
    }
}
