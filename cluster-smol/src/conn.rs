//! Stream connections (`t` and `u`).
//!
//! The driver reads every connection itself: the handle of a connected stream holds a
//! [`Reader`] (the non-blocking socket and a waker that puts the connection on the driver's
//! [`Ready`] list when the reactor sees it readable), so the driver reads only the
//! connections that have bytes and hands the bytes to the engine without a hop through
//! another task, a channel or a copy into a message.
//!
//! One task per connection, on the driver's private task set, connects (outgoing
//! connections) and writes the frames the driver queues, reporting each write's outcome as
//! an [`IoEvent`]. A frame the socket takes whole at once, with nothing queued before it,
//! the driver writes itself ([`ConnHandle::write`]): no task hop, copy or outcome report.

use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::{Async, Timer};
use cluster_core::{ConnId, SendId};
use cluster_host::conn::{IoEvent, Outbound, Target, WRITE_QUEUE};
use cluster_host::conn_read::{ConnReader, Read, ReadableConn};
use cluster_host::engine::Write;
pub(crate) use cluster_host::ready::Ready;
use futures_lite::{AsyncWrite, AsyncWriteExt, FutureExt, future};

/// A connected stream as the driver reads and writes it directly: the non-blocking socket
/// itself.
#[derive(Debug, Clone)]
pub(crate) enum Direct {
    Tcp(Arc<Async<std::net::TcpStream>>),
    #[cfg(unix)]
    Unix(Arc<Async<std::os::unix::net::UnixStream>>),
}

impl Direct {
    /// Writes what the socket takes now, without waiting (`WouldBlock` when full).
    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.get_ref().write(bytes),
            #[cfg(unix)]
            Self::Unix(stream) => stream.get_ref().write(bytes),
        }
    }

    /// Reads what the socket has now, without waiting (`WouldBlock` when empty).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.get_ref().read(buf),
            #[cfg(unix)]
            Self::Unix(stream) => stream.get_ref().read(buf),
        }
    }

    /// `Ready` once the reactor saw the socket readable since the last registration, else
    /// registers `cx` for it.
    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Tcp(stream) => stream.poll_readable(cx),
            #[cfg(unix)]
            Self::Unix(stream) => stream.poll_readable(cx),
        }
    }
}

/// What the driver reads a connection with: its socket, its waker, and whether the socket
/// may hold bytes (else the next read first waits for the reactor).
#[derive(Debug)]
pub(crate) struct Reader {
    socket: Direct,
    waker: Waker,
    maybe_bytes: bool,
}

impl Reader {
    fn new(socket: Direct, id: ConnId, ready: &Arc<Ready>) -> Self {
        Self {
            socket,
            waker: ready.waker(id),
            maybe_bytes: true,
        }
    }
}

impl ConnReader for Reader {
    /// The connection was listed on [`Ready`] (the reactor saw it readable, or it is new):
    /// takes the reactor's notice, so that it cannot make a later turn read the socket for
    /// nothing, and lets the next read try the socket first.
    fn listed(&mut self) {
        let mut cx = Context::from_waker(&self.waker);
        // Pending (registered) or not, the read tries the socket: an error shows there.
        let _ = self.socket.poll_readable(&mut cx);
        self.maybe_bytes = true;
    }

    /// Reads what the connection has into `buf`, without waiting. A read that did not fill
    /// `buf` emptied the socket: the next one registers with the reactor without reading
    /// first (the registration reports at once bytes that came in between), so no read
    /// finds the socket empty on the common path.
    fn read(&mut self, buf: &mut [u8]) -> Read {
        let mut cx = Context::from_waker(&self.waker);
        loop {
            if !self.maybe_bytes {
                match self.socket.poll_readable(&mut cx) {
                    Poll::Pending => return Read::Pending,
                    Poll::Ready(Err(_)) => return Read::Closed,
                    Poll::Ready(Ok(())) => self.maybe_bytes = true,
                }
            }
            match self.socket.try_read(buf) {
                Ok(0) => return Read::Closed,
                Ok(n) => {
                    self.maybe_bytes = n == buf.len();
                    return Read::Bytes(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.maybe_bytes = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Read::Closed,
            }
        }
    }
}

/// Where an outgoing connection's task leaves its socket once connected.
type Connected = Arc<Mutex<Option<Direct>>>;

/// The driver's handle on a connection. Dropping it closes the write queue: the task
/// writes what is queued (reporting each outcome) and shuts the connection down; the
/// reader goes with the handle.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    id: ConnId,
    queue: Sender<Outbound>,
    ready: Arc<Ready>,
    /// The socket, once connected, for direct writes.
    direct: Option<Direct>,
    /// The reader, once connected (taken by the driver while it reads).
    reader: Option<Reader>,
    /// Where an outgoing connection's task leaves its socket once connected.
    connected: Option<Connected>,
    /// Frames handed to the task whose outcome is not known yet: while there are any,
    /// direct writes would overtake them.
    pending: usize,
}

impl ReadableConn for ConnHandle {
    type Reader = Reader;

    /// The reader, for the driver to read with; `None` before the connection is up.
    fn take_reader(&mut self) -> Option<Reader> {
        self.adopt();
        self.reader.take()
    }

    fn put_reader(&mut self, reader: Reader) {
        self.reader = Some(reader);
    }
}

impl ConnHandle {
    /// Takes over the socket an outgoing connection's task left, once connected.
    fn adopt(&mut self) {
        let Some(cell) = &self.connected else {
            return;
        };
        let Some(direct) = cell.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        self.reader = Some(Reader::new(direct.clone(), self.id, &self.ready));
        self.direct = Some(direct);
        self.connected = None;
    }

    /// Writes a frame at once when nothing is queued on the connection and the socket takes
    /// it whole, else queues (the rest of) it for the task, without waiting.
    pub(crate) fn write(&mut self, frame: &[u8], send: SendId) -> Write {
        if self.direct.is_none() {
            self.adopt();
        }
        let mut written = 0;
        if self.pending == 0
            && let Some(direct) = &self.direct
        {
            // Errors other than a full socket are left to the task, which reports them and
            // closes the connection.
            if let Ok(n) = direct.try_write(frame) {
                written = n;
            }
            if written >= frame.len() {
                return Write::Written;
            }
        }
        let frame = Outbound {
            bytes: frame.get(written..).unwrap_or_default().to_vec(),
            send: Some(send),
        };
        if self.queue.try_send(frame).is_ok() {
            self.pending += 1;
            Write::Queued
        } else {
            Write::Refused
        }
    }

    /// The task reported the outcome of a queued frame.
    pub(crate) fn written(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }
}

/// A stream its task writes while the driver reads it (async-net's streams are `Clone`),
/// and which the driver can write directly.
pub(crate) trait Stream: AsyncWrite + Clone + Unpin + Send + 'static {
    /// The socket, for direct reads and writes.
    fn direct(&self) -> Direct;
}

impl Stream for async_net::TcpStream {
    fn direct(&self) -> Direct {
        Direct::Tcp(self.clone().into())
    }
}

#[cfg(unix)]
impl Stream for async_net::unix::UnixStream {
    fn direct(&self) -> Direct {
        Direct::Unix(self.clone().into())
    }
}

/// Sets a new TCP connection up: no Nagle delay, so each frame leaves at once; and (Linux)
/// delayed acknowledgements from the start, so that in a request and answer exchange each
/// frame is acknowledged by the answer rather than by a packet of its own. Best effort.
pub(crate) fn tune(stream: &async_net::TcpStream) {
    let _ = stream.set_nodelay(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::TcpStreamExt;
        let socket: Arc<Async<std::net::TcpStream>> = stream.clone().into();
        let _ = socket.get_ref().set_quickack(false);
    }
}

/// `future`, or `TimedOut` after `timeout`.
async fn within<T>(
    timeout: Duration,
    future: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    future
        .or(async {
            Timer::after(timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await
}

/// `bytes` written to `writer`, or `TimedOut` after `timeout`. Most writes complete at
/// once (the socket has room): the timer is armed only for one that has to wait, so a frame
/// costs no timer (whose registration wakes the reactor) on the common path.
async fn write_within<S: Stream>(
    timeout: Duration,
    writer: &mut S,
    bytes: &[u8],
) -> io::Result<()> {
    let mut write = std::pin::pin!(writer.write_all(bytes));
    if let Some(written) = future::poll_once(write.as_mut()).await {
        return written;
    }
    within(timeout, write).await
}

/// Starts the writer task of an accepted connection; the driver reads it from the start.
pub(crate) fn accepted<S: Stream>(
    executor: &Executor<'static>,
    conn: ConnId,
    stream: S,
    timeout: Duration,
    io: Sender<IoEvent>,
    ready: &Arc<Ready>,
) -> (ConnHandle, Task<()>) {
    let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
    let direct = stream.direct();
    let task = executor.spawn(run(conn, stream, timeout, rx, io));
    // Bytes may be waiting already: the first read finds them.
    ready.push(conn);
    let handle = ConnHandle {
        id: conn,
        queue,
        ready: Arc::clone(ready),
        reader: Some(Reader::new(direct.clone(), conn, ready)),
        direct: Some(direct),
        connected: None,
        pending: 0,
    };
    (handle, task)
}

/// Starts the task of an outgoing connection; frames may be queued before it connects.
pub(crate) fn connect(
    executor: &Executor<'static>,
    conn: ConnId,
    target: Target,
    timeout: Duration,
    io: Sender<IoEvent>,
    ready: &Arc<Ready>,
) -> (ConnHandle, Task<()>) {
    let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
    let connected = Connected::default();
    let cell = Arc::clone(&connected);
    let listed = Arc::clone(ready);
    // The driver writes on it directly and reads it from now on.
    let leave = move |direct: Direct| {
        *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(direct);
        listed.push(conn);
    };
    let task = executor.spawn(async move {
        match target {
            Target::Tcp(addr) => match within(timeout, async_net::TcpStream::connect(addr)).await {
                Ok(stream) => {
                    tune(&stream);
                    leave(stream.direct());
                    run(conn, stream, timeout, rx, io).await;
                }
                Err(_) => fail_all(conn, &rx, &io).await,
            },
            #[cfg(unix)]
            Target::Unix(path) => {
                match within(timeout, async_net::unix::UnixStream::connect(&path)).await {
                    Ok(stream) => {
                        leave(stream.direct());
                        run(conn, stream, timeout, rx, io).await;
                    }
                    Err(_) => fail_all(conn, &rx, &io).await,
                }
            }
            // A target this build cannot reach (`u` off unix).
            _ => fail_all(conn, &rx, &io).await,
        }
    });
    let handle = ConnHandle {
        id: conn,
        queue,
        ready: Arc::clone(ready),
        direct: None,
        reader: None,
        connected: Some(connected),
        pending: 0,
    };
    (handle, task)
}

/// Reports every queued frame as failed, then the connection as closed.
async fn fail_all(conn: ConnId, rx: &Receiver<Outbound>, io: &Sender<IoEvent>) {
    rx.close();
    while let Ok(out) = rx.try_recv() {
        let _ = io.send(IoEvent::written(conn, &out, false)).await;
    }
    let _ = io.send(IoEvent::Closed { conn }).await;
}

/// Writes the frames queued on one connection until the driver drops its handle or a write
/// fails.
///
/// A write that does not complete within `timeout` (a peer that stopped reading) fails, and
/// so does every frame queued after it.
async fn run<S: Stream>(
    conn: ConnId,
    mut writer: S,
    timeout: Duration,
    rx: Receiver<Outbound>,
    io: Sender<IoEvent>,
) {
    let result: io::Result<()> = async {
        while let Ok(out) = rx.recv().await {
            let written = write_within(timeout, &mut writer, &out.bytes).await;
            let ok = written.is_ok();
            let _ = io.send(IoEvent::written(conn, &out, ok)).await;
            written?;
        }
        // The driver dropped its handle: close our side.
        writer.close().await
    }
    .await;
    if result.is_err() {
        fail_all(conn, &rx, &io).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    /// A handle on a connected loopback stream (no task: the test plays the task's part
    /// through the queue's receiver), and the peer's end.
    fn connected() -> (ConnHandle, Receiver<Outbound>, std::net::TcpStream) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (peer, _) = listener.accept().expect("accept");
        let stream = async_net::TcpStream::try_from(client).expect("async stream");
        let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
        let ready = Arc::new(Ready::default());
        let handle = ConnHandle {
            id: ConnId(1),
            queue,
            reader: Some(Reader::new(stream.direct(), ConnId(1), &ready)),
            ready,
            direct: Some(stream.direct()),
            connected: None,
            pending: 0,
        };
        (handle, rx, peer)
    }

    /// Waits (at most 5 s) until the reactor lists connection 1 as readable.
    ///
    /// The list may name it more than once: `Reader::listed` polls the socket's readiness,
    /// which can register the waker again, and on a loaded machine the reactor may fire it
    /// before the next take. A repeated listing costs the driver a read that finds the
    /// socket empty (`Read::Pending`), never a byte, so only the connection is checked.
    fn listed(ready: &Ready) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut ids = Vec::new();
        while ids.is_empty() {
            assert!(std::time::Instant::now() < deadline, "never listed");
            async_io::block_on(Timer::after(Duration::from_millis(1)));
            ready.take(&mut ids, Waker::noop());
        }
        ids.dedup();
        assert_eq!(ids, [ConnId(1)]);
    }

    fn read_exactly(peer: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut bytes = vec![0; n];
        peer.read_exact(&mut bytes).expect("read");
        bytes
    }

    #[test]
    fn a_frame_with_nothing_queued_is_written_at_once() {
        let (mut handle, rx, mut peer) = connected();
        assert_eq!(handle.write(b"frame", SendId::UNTRACKED), Write::Written);
        assert!(rx.try_recv().is_err(), "nothing queued for the task");
        assert_eq!(read_exactly(&mut peer, 5), b"frame");
    }

    #[test]
    fn a_frame_behind_a_queued_one_is_queued_until_that_ones_outcome_is_reported() {
        let (mut handle, rx, mut peer) = connected();
        handle.pending = 1;
        assert_eq!(handle.write(b"second", SendId::UNTRACKED), Write::Queued);
        assert_eq!(rx.try_recv().expect("queued").bytes, b"second");
        assert_eq!(handle.pending, 2);
        handle.written();
        handle.written();
        assert_eq!(handle.write(b"third", SendId::UNTRACKED), Write::Written);
        assert_eq!(read_exactly(&mut peer, 5), b"third");
    }

    #[test]
    fn an_outgoing_connection_writes_directly_once_its_task_left_the_socket() {
        let (connected_handle, _rx, mut peer) = connected();
        let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
        let cell = Connected::default();
        let mut handle = ConnHandle {
            id: ConnId(2),
            queue,
            ready: Arc::new(Ready::default()),
            direct: None,
            reader: None,
            connected: Some(Arc::clone(&cell)),
            pending: 0,
        };
        // Not connected yet: the frame waits for the task.
        assert_eq!(handle.write(b"early", SendId::UNTRACKED), Write::Queued);
        assert_eq!(rx.try_recv().expect("queued").bytes, b"early");
        handle.written();
        *cell.lock().expect("cell") = connected_handle.direct.clone();
        assert_eq!(handle.write(b"later", SendId::UNTRACKED), Write::Written);
        assert_eq!(read_exactly(&mut peer, 5), b"later");
        assert!(handle.take_reader().is_some(), "and reads it");
    }

    #[test]
    fn the_driver_reads_a_connection_when_the_reactor_lists_it_and_sees_its_end() {
        let (mut handle, _rx, mut peer) = connected();
        let ready = Arc::clone(&handle.ready);
        let mut reader = handle.take_reader().expect("connected");
        let mut buf = [0u8; 16];
        assert!(matches!(reader.read(&mut buf), Read::Pending));
        peer.write_all(b"abc").expect("write");
        listed(&ready);
        reader.listed();
        assert!(matches!(reader.read(&mut buf), Read::Bytes(3)));
        assert_eq!(&buf[..3], b"abc");
        // A short read emptied the socket: the next one waits for the reactor.
        assert!(matches!(reader.read(&mut buf), Read::Pending));
        peer.write_all(b"de").expect("write");
        listed(&ready);
        reader.listed();
        assert!(matches!(reader.read(&mut buf), Read::Bytes(2)));
        assert!(matches!(reader.read(&mut buf), Read::Pending));
        drop(peer);
        listed(&ready);
        reader.listed();
        assert!(matches!(reader.read(&mut buf), Read::Closed));
    }
}
