//! One task per stream connection (`t` or `u`): it connects (for outgoing connections),
//! writes the frames the driver queues and reports each write's outcome, and forwards what
//! it reads. Everything goes back to the driver as an [`IoEvent`].
//!
//! The driver also writes directly on a connected stream (`try_write`) when nothing is
//! queued for it, which saves the hop to the writer task and back; whatever does not go out
//! at once is queued for the task, behind which ordering is kept.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cluster_core::wire::{Reassembler, StreamItem};
use cluster_core::{ConnId, SendId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, tcp};
#[cfg(unix)]
use tokio::net::{UnixStream, unix};
use tokio::sync::mpsc;

/// Frames queued on one connection before a send counts as failed (backpressure).
pub(crate) const WRITE_QUEUE: usize = 64;
/// Read chunk size.
const READ_CHUNK: usize = 64 * 1024;

/// What connection tasks tell the driver.
#[derive(Debug)]
pub(crate) enum IoEvent {
    /// Bytes read.
    Read { conn: ConnId, bytes: Vec<u8> },
    /// The connection ended (end of file, error, or a failed connect).
    Closed { conn: ConnId },
    /// A queued frame was written (or not).
    Written {
        conn: ConnId,
        send: Option<SendId>,
        ok: bool,
    },
    /// An outgoing connection is established: the driver may write on it directly.
    Connected {
        conn: ConnId,
        writer: Arc<WriteHalf>,
    },
}

/// A frame to write, and the send it belongs to.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) bytes: Vec<u8>,
    pub(crate) send: Option<SendId>,
}

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
    pub(crate) queue: mpsc::Sender<Outbound>,
    /// The stream, once connected, for direct writes.
    pub(crate) direct: Option<Arc<WriteHalf>>,
    /// Frames handed to the task whose outcome is not known yet: while there are any,
    /// direct writes would overtake them.
    pub(crate) pending: usize,
}

/// Where an outgoing connection goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(PathBuf),
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
        };
        match stream {
            Some(stream) => {
                let (reader, writer) = stream.split();
                let writer = Arc::new(writer);
                let connected = IoEvent::Connected {
                    conn,
                    writer: Arc::clone(&writer),
                };
                if io.send(connected).await.is_ok() {
                    run(conn, reader, writer, timeout, rx, io).await;
                }
            }
            None => fail_all(conn, &mut rx, &io).await,
        }
    });
    ConnHandle {
        queue,
        direct: None,
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
