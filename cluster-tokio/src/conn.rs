//! One task per stream connection (`t` or `u`): it connects (for outgoing connections),
//! writes the frames the driver queues and reports each write's outcome, and forwards what
//! it reads. Everything goes back to the driver as an [`IoEvent`].
//!
//! The driver also writes directly on a connected stream (`try_write`) when nothing is
//! queued for it, which saves the hop to the writer task and back; whatever does not go out
//! at once is queued for the task, behind which ordering is kept.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cluster_core::wire::{Reassembler, StreamItem};
use cluster_core::{ConnId, SendId};
use cluster_host::conn::{IoEvent, Outbound, READ_CHUNK, Target, WRITE_QUEUE};
use cluster_host::engine::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

enum ReadHalf {
    Tcp(tcp::OwnedReadHalf),
    #[cfg(unix)]
    Unix(unix::OwnedReadHalf),
}

impl ReadHalf {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(r) => r.read(buf).await,
            #[cfg(unix)]
            Self::Unix(r) => r.read(buf).await,
        }
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

/// The driver's handle on a connection task. Dropping it closes the write queue: the task
/// writes what is queued (reporting each outcome), shuts the connection down and stops
/// reading.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    queue: mpsc::Sender<Outbound>,
    /// The stream, once connected, for direct writes.
    direct: Option<Arc<WriteHalf>>,
    /// Where an outgoing connection's task leaves its stream once connected.
    connected: Option<Arc<OnceLock<Arc<WriteHalf>>>>,
    /// Frames handed to the task whose outcome is not known yet: while there are any,
    /// direct writes would overtake them.
    pending: usize,
}

impl ConnHandle {
    /// Writes a direct send at once when nothing is queued on the connection and the socket
    /// takes the whole frame, else queues (the rest of) it for the task, without waiting.
    pub(crate) fn write(&mut self, frame: &[u8], send: SendId) -> Write {
        if self.direct.is_none()
            && let Some(writer) = self.connected.as_ref().and_then(|c| c.get())
        {
            self.direct = Some(Arc::clone(writer));
            self.connected = None;
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

/// Starts the task of an accepted connection.
pub(crate) fn accepted(
    conn: ConnId,
    stream: Stream,
    timeout: Duration,
    io: mpsc::Sender<IoEvent>,
) -> ConnHandle {
    let (queue, rx) = mpsc::channel(WRITE_QUEUE);
    let (reader, writer) = stream.split();
    let writer = Arc::new(writer);
    tokio::spawn(run(conn, reader, Arc::clone(&writer), timeout, rx, io));
    ConnHandle {
        queue,
        direct: Some(writer),
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
) -> ConnHandle {
    let (queue, mut rx) = mpsc::channel(WRITE_QUEUE);
    let connected = Arc::new(OnceLock::new());
    let cell = Arc::clone(&connected);
    tokio::spawn(async move {
        let stream = match target {
            Target::Tcp(addr) => {
                match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
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
                // The driver may write on it directly from now on.
                let _ = cell.set(Arc::clone(&writer));
                drop(cell);
                run(conn, reader, writer, timeout, rx, io).await;
            }
            None => fail_all(conn, &mut rx, &io).await,
        }
    });
    ConnHandle {
        queue,
        direct: None,
        connected: Some(connected),
        pending: 0,
    }
}

/// Reports every queued frame as failed, then the connection as closed.
async fn fail_all(conn: ConnId, rx: &mut mpsc::Receiver<Outbound>, io: &mpsc::Sender<IoEvent>) {
    rx.close();
    while let Some(out) = rx.recv().await {
        let _ = io
            .send(IoEvent::Written {
                conn,
                send: out.send,
                ok: false,
            })
            .await;
    }
    let _ = io.send(IoEvent::Closed { conn }).await;
}

/// Reads and writes one connection until either side ends.
///
/// A write that does not complete within `timeout` (a peer that stopped reading) fails, and
/// so does every frame queued after it.
/// The longest frame reassembled from a stream connection (the host node's payloads are at
/// most 8 KiB; this leaves room for every other field).
const STREAM_FRAME: usize = 64 * 1024;

async fn run(
    conn: ConnId,
    mut reader: ReadHalf,
    writer: Arc<WriteHalf>,
    timeout: Duration,
    mut rx: mpsc::Receiver<Outbound>,
    io: mpsc::Sender<IoEvent>,
) {
    let read_io = io.clone();
    let reading = tokio::spawn(async move {
        let mut buf = vec![0u8; READ_CHUNK];
        // Frames are reassembled here, one buffer per connection, and the node gets whole
        // frames: its own reassembly buffers are few and meant for UDP senders.
        let mut stream = Box::new(Reassembler::<STREAM_FRAME>::new());
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut frames = Vec::new();
                    stream.push(buf.get(..n).unwrap_or_default(), |item| {
                        if let StreamItem::Frame(frame) = item {
                            frames.push(frame.as_bytes().to_vec());
                        }
                    });
                    for bytes in frames {
                        if read_io.send(IoEvent::Read { conn, bytes }).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let _ = read_io.send(IoEvent::Closed { conn }).await;
    });
    let result: io::Result<()> = async {
        while let Some(out) = rx.recv().await {
            let written = match tokio::time::timeout(timeout, writer.write_all(&out.bytes)).await {
                Ok(result) => result,
                Err(_) => Err(io::ErrorKind::TimedOut.into()),
            };
            let ok = written.is_ok();
            let _ = io
                .send(IoEvent::Written {
                    conn,
                    send: out.send,
                    ok,
                })
                .await;
            written?;
        }
        // The driver dropped its handle: close our side (the last reference to the write
        // half shuts it down when dropped, should an event still hold one).
        match Arc::try_unwrap(writer) {
            Ok(mut writer) => writer.shutdown().await,
            Err(_) => Ok(()),
        }
    }
    .await;
    if result.is_err() {
        fail_all(conn, &mut rx, &io).await;
    }
    reading.abort();
}
