//! One task per stream connection (`t` or `u`), on the driver's private task set: it connects
//! (for outgoing connections), writes the frames the driver queues and reports each write's
//! outcome, and forwards what it reads. Everything goes back to the driver as an
//! [`IoEvent`]. A frame the socket takes whole at once, with nothing queued before it, the
//! driver writes itself ([`ConnHandle::write`]): no task hop, copy or outcome report.

use std::future::Future;
use std::io::{self, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use async_executor::{Executor, Task};
use async_io::{Async, Timer};
use cluster_core::{ConnId, SendId};
use cluster_host::conn::{IoEvent, Outbound, READ_CHUNK, Target, WRITE_QUEUE};
use cluster_host::engine::Write;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt, future};

/// A connected stream as the driver writes it directly: the non-blocking socket itself.
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
}

/// Where an outgoing connection's task leaves its socket once connected.
type Connected = Arc<Mutex<Option<Direct>>>;

/// The driver's handle on a connection task. Dropping it closes the write queue: the task
/// writes what is queued (reporting each outcome), shuts the connection down and stops
/// reading.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    queue: Sender<Outbound>,
    /// The socket, once connected, for direct writes.
    direct: Option<Direct>,
    /// Where an outgoing connection's task leaves its socket once connected.
    connected: Option<Connected>,
    /// Frames handed to the task whose outcome is not known yet: while there are any,
    /// direct writes would overtake them.
    pending: usize,
}

impl ConnHandle {
    /// Writes a frame at once when nothing is queued on the connection and the socket takes
    /// it whole, else queues (the rest of) it for the task, without waiting.
    pub(crate) fn write(&mut self, frame: &[u8], send: SendId) -> Write {
        if self.direct.is_none()
            && let Some(cell) = &self.connected
        {
            self.direct = cell.lock().unwrap_or_else(PoisonError::into_inner).clone();
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

/// A stream both halves of which can be used at once (async-net's streams are `Clone`), and
/// which the driver can write directly.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Clone + Unpin + Send + 'static {
    /// The socket, for direct writes.
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

/// Starts the task of an accepted connection.
pub(crate) fn accepted<S: Stream>(
    executor: &Executor<'static>,
    conn: ConnId,
    stream: S,
    timeout: Duration,
    io: Sender<IoEvent>,
) -> (ConnHandle, Task<()>) {
    let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
    let direct = Some(stream.direct());
    let task = executor.spawn(run(conn, stream, timeout, rx, io));
    let handle = ConnHandle {
        queue,
        direct,
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
) -> (ConnHandle, Task<()>) {
    let (queue, rx) = async_channel::bounded(WRITE_QUEUE);
    let connected = Connected::default();
    let cell = Arc::clone(&connected);
    let leave = move |direct: Direct| {
        *cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(direct);
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
        queue,
        direct: None,
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
    };
    // The reading half is dropped (stops reading) as soon as the writing half ends.
    writing.or(reading).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
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
        let handle = ConnHandle {
            queue,
            direct: Some(stream.direct()),
            connected: None,
            pending: 0,
        };
        (handle, rx, peer)
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
            queue,
            direct: None,
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
    }
}
