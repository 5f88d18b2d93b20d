//! Stream connections (`t` and `u`).
//!
//! The driver reads every connection itself: each connection's read half lives in its
//! [`ConnHandle`] (which the engine keeps while the connection is open), and a
//! per-connection waker puts the connection on the driver's [`Ready`] list when the socket
//! has bytes, so the driver reads only the connections that have some and hands the bytes
//! to the engine (which cuts them into frames, one reassembler per connection) without a hop
//! through another task or a copy into a message.
//!
//! One task per connection connects (outgoing connections) and writes the frames the driver
//! queues, reporting each outcome as an [`IoEvent`]. The driver also writes directly on a
//! connected stream (`try_write`) when nothing is queued for it, which saves the hop to the
//! writer task and back; whatever does not go out at once is queued for the task, behind
//! which ordering is kept.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use cluster_core::{ConnId, SendId};
use cluster_host::conn::{IoEvent, Outbound, Target, WRITE_QUEUE};
use cluster_host::conn_read::{ConnReader, Read, ReadableConn};
use cluster_host::engine::Write;
pub(crate) use cluster_host::ready::Ready;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, tcp};
#[cfg(unix)]
use tokio::net::{UnixStream, unix};
use tokio::sync::mpsc;

/// A connected stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Stream {
    fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Self::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Tcp(r), WriteHalf::Tcp(w))
            }
            #[cfg(unix)]
            Self::Unix(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Unix(r), WriteHalf::Unix(w))
            }
        }
    }
}

/// The read half of a stream, read by the driver.
#[derive(Debug)]
enum ReadHalf {
    Tcp(tcp::OwnedReadHalf),
    #[cfg(unix)]
    Unix(unix::OwnedReadHalf),
}

impl ReadHalf {
    /// Reads what the socket has into `buf`; `Ok(0)` at the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        let polled = match self {
            Self::Tcp(r) => Pin::new(r).poll_read(cx, &mut buf),
            #[cfg(unix)]
            Self::Unix(r) => Pin::new(r).poll_read(cx, &mut buf),
        };
        polled.map_ok(|()| buf.filled().len())
    }
}

/// The write half of a stream, shared by its task and the driver. Dropping the last
/// reference shuts the write direction down.
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Tcp(tcp::OwnedWriteHalf),
    #[cfg(unix)]
    Unix(unix::OwnedWriteHalf),
}

impl WriteHalf {
    /// Writes what the socket takes now, without waiting.
    pub(crate) fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(w) => w.try_write(bytes),
            #[cfg(unix)]
            Self::Unix(w) => w.try_write(bytes),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            Self::Tcp(w) => w.writable().await,
            #[cfg(unix)]
            Self::Unix(w) => w.writable().await,
        }
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.try_write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(w) => w.shutdown().await,
            #[cfg(unix)]
            Self::Unix(w) => w.shutdown().await,
        }
    }
}

/// What the driver reads a connection with: its read half and its waker.
#[derive(Debug)]
pub(crate) struct Reader {
    half: ReadHalf,
    waker: Waker,
}

impl Reader {
    fn new(half: ReadHalf, id: ConnId, ready: &Arc<Ready>) -> Self {
        Self {
            half,
            waker: ready.waker(id),
        }
    }
}

impl ConnReader for Reader {
    /// Reads what the connection has into `buf`, without waiting.
    fn read(&mut self, buf: &mut [u8]) -> Read {
        let mut cx = Context::from_waker(&self.waker);
        match self.half.poll_read(&mut cx, buf) {
            Poll::Pending => Read::Pending,
            Poll::Ready(Ok(0) | Err(_)) => Read::Closed,
            Poll::Ready(Ok(n)) => Read::Bytes(n),
        }
    }
}

/// The halves an outgoing connection's task leaves for the driver once connected.
#[derive(Debug)]
struct Connected {
    writer: Arc<WriteHalf>,
    reader: ReadHalf,
}

/// The driver's handle on a connection. Dropping it closes the write queue: the task writes
/// what is queued (reporting each outcome) and shuts the connection down; the read half goes
/// with the handle.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    id: ConnId,
    queue: mpsc::Sender<Outbound>,
    ready: Arc<Ready>,
    /// The stream, once connected, for direct writes.
    direct: Option<Arc<WriteHalf>>,
    /// The read half, once connected (taken by the driver while it reads).
    reader: Option<Reader>,
    /// Where an outgoing connection's task leaves its halves once connected.
    connected: Option<Arc<Mutex<Option<Connected>>>>,
    /// Frames handed to the task whose outcome is not known yet: while there are any,
    /// direct writes would overtake them.
    pending: usize,
}

impl ReadableConn for ConnHandle {
    type Reader = Reader;

    /// The read half, for the driver to read with; `None` before the connection is up.
    fn take_reader(&mut self) -> Option<Reader> {
        self.adopt();
        self.reader.take()
    }

    fn put_reader(&mut self, reader: Reader) {
        self.reader = Some(reader);
    }
}

impl ConnHandle {
    /// Takes over the halves an outgoing connection's task left, once connected.
    fn adopt(&mut self) {
        let Some(cell) = &self.connected else {
            return;
        };
        let Some(connected) = cell.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        self.direct = Some(connected.writer);
        self.reader = Some(Reader::new(connected.reader, self.id, &self.ready));
        self.connected = None;
    }

    /// Writes a direct send at once when nothing is queued on the connection and the socket
    /// takes the whole frame, else queues (the rest of) it for the task, without waiting.
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
        let rest = frame.get(written..).unwrap_or_default();
        let queued = self
            .queue
            .try_send(Outbound {
                bytes: rest.to_vec(),
                send: Some(send),
            })
            .is_ok();
        if queued {
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

/// Starts the writer task of an accepted connection; the driver reads it from the start.
pub(crate) fn accepted(
    conn: ConnId,
    stream: Stream,
    timeout: Duration,
    io: mpsc::Sender<IoEvent>,
    ready: &Arc<Ready>,
) -> ConnHandle {
    let (queue, rx) = mpsc::channel(WRITE_QUEUE);
    let (reader, writer) = stream.split();
    let writer = Arc::new(writer);
    tokio::spawn(run(conn, Arc::clone(&writer), timeout, rx, io));
    // Bytes may be waiting already: the first read finds them.
    ready.push(conn);
    ConnHandle {
        id: conn,
        queue,
        ready: Arc::clone(ready),
        direct: Some(writer),
        reader: Some(Reader::new(reader, conn, ready)),
        connected: None,
        pending: 0,
    }
}

/// Starts the task of an outgoing connection; frames may be queued before it connects.
pub(crate) fn connect(
    conn: ConnId,
    target: Target,
    timeout: Duration,
    io: mpsc::Sender<IoEvent>,
    ready: &Arc<Ready>,
) -> ConnHandle {
    let (queue, mut rx) = mpsc::channel(WRITE_QUEUE);
    let connected = Arc::new(Mutex::new(None));
    let cell = Arc::clone(&connected);
    let listed = Arc::clone(ready);
    tokio::spawn(async move {
        let stream = match target {
            Target::Tcp(addr) => {
                match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        tune(&stream);
                        Some(Stream::Tcp(stream))
                    }
                    _ => None,
                }
            }
            #[cfg(unix)]
            Target::Unix(path) => {
                match tokio::time::timeout(timeout, UnixStream::connect(&path)).await {
                    Ok(Ok(stream)) => Some(Stream::Unix(stream)),
                    _ => None,
                }
            }
            // A target this build cannot reach (`u` off unix).
            _ => None,
        };
        match stream {
            Some(stream) => {
                let (reader, writer) = stream.split();
                let writer = Arc::new(writer);
                // The driver writes on it directly and reads it from now on.
                *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(Connected {
                    writer: Arc::clone(&writer),
                    reader,
                });
                drop(cell);
                listed.push(conn);
                run(conn, writer, timeout, rx, io).await;
            }
            None => fail_all(conn, &mut rx, &io).await,
        }
    });
    ConnHandle {
        id: conn,
        queue,
        ready: Arc::clone(ready),
        direct: None,
        reader: None,
        connected: Some(connected),
        pending: 0,
    }
}

/// Sets a new TCP connection up: no Nagle delay, so each frame leaves at once; and (Linux)
/// delayed acknowledgements from the start, so that in a request and answer exchange each
/// frame is acknowledged by the answer rather than by a packet of its own (the kernel
/// otherwise acknowledges a new connection's first segments at once). Best effort.
pub(crate) fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = stream.set_quickack(false);
}

/// Reports every queued frame as failed, then the connection as closed.
async fn fail_all(conn: ConnId, rx: &mut mpsc::Receiver<Outbound>, io: &mpsc::Sender<IoEvent>) {
    rx.close();
    while let Some(out) = rx.recv().await {
        let _ = io.send(IoEvent::written(conn, &out, false)).await;
    }
    let _ = io.send(IoEvent::Closed { conn }).await;
}

/// Writes the frames queued on one connection until the driver drops its handle or a write
/// fails.
///
/// A write that does not complete within `timeout` (a peer that stopped reading) fails, and
/// so does every frame queued after it.
async fn run(
    conn: ConnId,
    writer: Arc<WriteHalf>,
    timeout: Duration,
    mut rx: mpsc::Receiver<Outbound>,
    io: mpsc::Sender<IoEvent>,
) {
    let result: io::Result<()> = async {
        while let Some(out) = rx.recv().await {
            let written = match tokio::time::timeout(timeout, writer.write_all(&out.bytes)).await {
                Ok(result) => result,
                Err(_) => Err(io::ErrorKind::TimedOut.into()),
            };
            let ok = written.is_ok();
            let _ = io.send(IoEvent::written(conn, &out, ok)).await;
            written?;
        }
        // The driver dropped its handle: close our side (the last reference to the write
        // half shuts it down when dropped, should the handle still hold one).
        match Arc::try_unwrap(writer) {
            Ok(mut writer) => writer.shutdown().await,
            Err(_) => Ok(()),
        }
    }
    .await;
    if result.is_err() {
        fail_all(conn, &mut rx, &io).await;
    }
}
