//! The driver reading its stream connections itself: the turn each adapter's driver gives a
//! connection that [`Ready`] listed. The sockets differ by runtime
//! ([`ConnReader`]); the turn, its share of reads and what the engine is told are the same.

use std::task::Waker;

use cluster_core::{ConnId, Policy};

use crate::conn::IoEvent;
use crate::engine::{Engine, Io};
use crate::ready::Ready;

/// What one read of a connection gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Nothing now: the connection's waker lists it again when it has bytes.
    Pending,
    /// The stream ended (end of file or an error).
    Closed,
    /// These many bytes, now at the start of the buffer.
    Bytes(usize),
}

/// How a driver reads one connection, without waiting.
pub trait ConnReader {
    /// The connection was listed on [`Ready`] and its turn begins.
    /// Nothing by default; a reader that remembers the socket was empty forgets it here.
    fn listed(&mut self) {}

    /// Reads what the connection has into `buf`, without waiting.
    fn read(&mut self, buf: &mut [u8]) -> Read;
}

/// An adapter's handle on a connection ([`Io::Conn`]) that lends the driver its reader.
pub trait ReadableConn {
    /// The connection's read side.
    type Reader: ConnReader;

    /// The reader, for the driver to read with; `None` before the connection is up (its
    /// task lists it then) or while it is lent.
    fn take_reader(&mut self) -> Option<Self::Reader>;

    /// Gives the reader back after the turn.
    fn put_reader(&mut self, reader: Self::Reader);
}

/// An adapter's [`Io`] whose driver reads its stream connections itself: they are listed on
/// its [`Ready`] as their wakers report bytes.
pub trait ReadyIo: Io<Conn: ReadableConn> {
    /// The list of the connections with bytes to read.
    fn ready(&self) -> &Ready;
}

/// What a driver's round over the listed connections did ([`read_listed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// No connection was listed.
    None,
    /// The listed connections were read until they had nothing more (or closed): each is
    /// listed again, and the driver woken, when bytes arrive, so the driver need not ask
    /// again before then.
    Drained,
    /// Some connection may still hold bytes after its share of reads: it is listed again
    /// for the driver's next round.
    More,
}

/// Reads every connection listed on the io's [`Ready`], each given its turn ([`read_turn`])
/// and listed again when it may still hold bytes; `listed` is the driver's buffer for the
/// list, `waker` the driver's (woken by the next listing).
pub fn read_listed<P, I>(
    engine: &mut Engine<P, I>,
    io: &mut I,
    listed: &mut Vec<ConnId>,
    waker: &Waker,
    now: u64,
    buf: &mut [u8],
    reads: usize,
) -> Listed
where
    P: Policy,
    I: ReadyIo,
{
    io.ready().take(listed, waker);
    let mut turn = if listed.is_empty() {
        Listed::None
    } else {
        Listed::Drained
    };
    for &id in listed.iter() {
        if read_turn(engine, io, id, now, buf, reads) {
            io.ready().relist(id);
            turn = Listed::More;
        }
    }
    turn
}

/// Gives connection `id` its turn: up to `reads` reads into `buf`, each one's bytes handed
/// to the engine (which cuts them into frames), the end of the stream reported as
/// [`IoEvent::Closed`]. Returns true when the connection may still hold bytes after its
/// share of reads: the driver puts it back on the list
/// ([`Ready::relist`](crate::ready::Ready::relist)) so that its turn comes again in the next
/// round. After a [`Read::Pending`] its waker lists it when it has bytes.
pub fn read_turn<P, I>(
    engine: &mut Engine<P, I>,
    io: &mut I,
    id: ConnId,
    now: u64,
    buf: &mut [u8],
    reads: usize,
) -> bool
where
    P: Policy,
    I: Io,
    I::Conn: ReadableConn,
{
    // Out of its handle while the engine, which keeps the handle, takes the frames.
    let Some(mut reader) = engine
        .connection_mut(id)
        .and_then(ReadableConn::take_reader)
    else {
        return false; // closed meanwhile, or not connected yet (its task lists it then)
    };
    reader.listed();
    let mut pending = false;
    for _ in 0..reads {
        match reader.read(buf) {
            Read::Pending => {
                pending = true;
                break;
            }
            Read::Closed => {
                engine.handle_io(now, IoEvent::Closed { conn: id }, io);
                return false;
            }
            Read::Bytes(n) => {
                let bytes = buf.get(..n).unwrap_or_default();
                engine.handle_read(now, id, bytes, io);
            }
        }
    }
    match engine.connection_mut(id) {
        Some(conn) => {
            conn.put_reader(reader);
            !pending
        }
        None => false,
    }
}
