//! One task per stream connection (`t` or `u`), on the driver's private task set: it connects
//! (for outgoing connections), writes the frames the driver queues and reports each write's
//! outcome, and forwards what it reads. Everything goes back to the driver as an
//! [`IoEvent`].

use std::future::Future;
use std::io;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::Timer;
use cluster_core::ConnId;
use cluster_host::conn::{IoEvent, Outbound, READ_CHUNK, Target, WRITE_QUEUE};
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};

/// The driver's handle on a connection task. Dropping it closes the write queue: the task
/// writes what is queued (reporting each outcome), shuts the connection down and stops
/// reading.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    queue: Sender<Outbound>,
}

impl ConnHandle {
    /// Queues a frame without waiting; false when the queue is full or closed.
    pub(crate) fn try_queue(&self, frame: Outbound) -> bool {
        self.queue.try_send(frame).is_ok()
    }
}

/// A stream both halves of which can be used at once (async-net's streams are `Clone`).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Clone + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Clone + Unpin + Send + 'static> Stream for S {}

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

/// Starts the task of an accepted connection.
pub(crate) fn accepted<S: Stream>(
    executor: &Executor<'static>,
    conn: ConnId,
    stream: S,
    timeout: Duration,
    io: Sender<IoEvent>,
) -> (ConnHandle, Task<()>) {
    let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
    let task = executor.spawn(run(conn, stream, timeout, rx, io));
    (ConnHandle { queue }, task)
}

/// Starts the task of an outgoing connection; frames may be queued before it connects.
pub(crate) fn connect(
    executor: &Executor<'static>,
    conn: ConnId,
    target: Target,
    timeout: Duration,
    io: Sender<IoEvent>,
) -> (ConnHandle, Task<()>) {
    let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
    let task = executor.spawn(async move {
        match target {
            Target::Tcp(addr) => match within(timeout, async_net::TcpStream::connect(addr)).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    run(conn, stream, timeout, rx, io).await;
                }
                Err(_) => fail_all(conn, &rx, &io).await,
            },
            #[cfg(unix)]
            Target::Unix(path) => {
                match within(timeout, async_net::unix::UnixStream::connect(&path)).await {
                    Ok(stream) => run(conn, stream, timeout, rx, io).await,
                    Err(_) => fail_all(conn, &rx, &io).await,
                }
            }
            // A target this build cannot reach (`u` off unix).
            _ => fail_all(conn, &rx, &io).await,
        }
    });
    (ConnHandle { queue }, task)
}

/// Reports every queued frame as failed, then the connection as closed.
async fn fail_all(conn: ConnId, rx: &Receiver<Outbound>, io: &Sender<IoEvent>) {
    rx.close();
    while let Ok(out) = rx.try_recv() {
        let _ = io.send(IoEvent::written(conn, &out, false)).await;
    }
    let _ = io.send(IoEvent::Closed { conn }).await;
}

/// Reads and writes one connection until the driver drops its handle (or a write fails).
///
/// A write that does not complete within `timeout` (a peer that stopped reading) fails, and
/// so does every frame queued after it. The end of the peer's stream is reported as
/// [`IoEvent::Closed`]; the driver then drops its handle, which ends the writing half.
async fn run<S: Stream>(
    conn: ConnId,
    stream: S,
    timeout: Duration,
    rx: Receiver<Outbound>,
    io: Sender<IoEvent>,
) {
    let mut reader = stream.clone();
    let mut writer = stream;
    let read_io = io.clone();
    let reading = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = buf.get(..n).unwrap_or_default().to_vec();
                    if read_io.send(IoEvent::Read { conn, bytes }).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = read_io.send(IoEvent::Closed { conn }).await;
        // Only the writing half ends the task.
        std::future::pending::<()>().await;
    };
    let writing = async move {
        let result: io::Result<()> = async {
            while let Ok(out) = rx.recv().await {
                let written = within(timeout, writer.write_all(&out.bytes)).await;
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
    };
    // The reading half is dropped (stops reading) as soon as the writing half ends.
    writing.or(reading).await;
}
