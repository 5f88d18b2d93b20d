//! One task per stream connection (`t` or `u`): it connects (for outgoing connections),
//! writes the frames the driver queues and reports each write's outcome, and forwards what
//! it reads. Everything goes back to the driver as an [`IoEvent`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cluster_core::wire::{Reassembler, StreamItem};
use cluster_core::{ConnId, SendId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
}

/// A frame to write, and the send it belongs to.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub(crate) bytes: Vec<u8>,
    pub(crate) send: Option<SendId>,
}

/// The driver's handle on a connection task. Dropping it closes the write queue: the task
/// writes what is queued (reporting each outcome), shuts the connection down and stops
/// reading.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) queue: mpsc::Sender<Outbound>,
}

/// Where an outgoing connection goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(PathBuf),
}

/// Starts the task of an accepted connection.
pub(crate) fn accepted<S>(
    conn: ConnId,
    stream: S,
    timeout: Duration,
    io: mpsc::Sender<IoEvent>,
) -> ConnHandle
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (queue, rx) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(run(conn, stream, timeout, rx, io));
    ConnHandle { queue }
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
        match target {
            Target::Tcp(addr) => {
                match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        run(conn, stream, timeout, rx, io).await;
                    }
                    _ => fail_all(conn, &mut rx, &io).await,
                }
            }
            #[cfg(unix)]
            Target::Unix(path) => {
                match tokio::time::timeout(timeout, tokio::net::UnixStream::connect(&path)).await {
                    Ok(Ok(stream)) => run(conn, stream, timeout, rx, io).await,
                    _ => fail_all(conn, &mut rx, &io).await,
                }
            }
        }
    });
    ConnHandle { queue }
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

async fn run<S>(
    conn: ConnId,
    stream: S,
    timeout: Duration,
    mut rx: mpsc::Receiver<Outbound>,
    io: mpsc::Sender<IoEvent>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
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
        // The driver dropped its handle: close our side.
        writer.shutdown().await
    }
    .await;
    if result.is_err() {
        fail_all(conn, &mut rx, &io).await;
    }
    reading.abort();
}
