//! What an adapter's stream-connection tasks (`t` and `u`) and its driver tell each other,
//! whatever the runtime: frames to write ([`Outbound`]), where to connect ([`Target`]), and
//! what happened on a connection ([`IoEvent`]).
//!
//! An adapter runs one task per connection: it connects (outgoing connections), writes the
//! frames the driver queues, reports each write's outcome and forwards what it reads, all as
//! [`IoEvent`]s, which the driver hands to [`Engine::handle_io`](crate::engine::Engine::handle_io).

use std::net::SocketAddr;
#[cfg(unix)]
use std::path::PathBuf;

use cluster_core::{ConnId, SendId};

/// Frames queued on one connection before a send counts as failed (backpressure).
pub const WRITE_QUEUE: usize = 64;
/// Read chunk size of a connection task.
pub const READ_CHUNK: usize = 64 * 1024;
/// Events from connection tasks queued towards the driver before they wait (backpressure on
/// readers).
pub const IO_QUEUE: usize = 256;

/// What a connection task tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IoEvent {
    /// Bytes were read.
    Read {
        /// The connection.
        conn: ConnId,
        /// The bytes (part of a frame, one frame or several).
        bytes: Vec<u8>,
    },
    /// The connection ended (end of file, error, or a failed connect).
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// A queued frame was written (or not).
    Written {
        /// The connection.
        conn: ConnId,
        /// The direct send it belonged to, whose outcome the node awaits.
        send: Option<SendId>,
        /// True when the whole frame was written.
        ok: bool,
    },
}

impl IoEvent {
    /// The outcome of the frame `out` queued on `conn`: `ok` when it was written whole,
    /// else it was not (the write failed, or the connection failed or closed first).
    #[must_use]
    pub fn written(conn: ConnId, out: &Outbound, ok: bool) -> Self {
        Self::Written {
            conn,
            send: out.send,
            ok,
        }
    }
}

/// A frame to write on a connection, and the send it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The frame.
    pub bytes: Vec<u8>,
    /// The direct send whose outcome is reported once written.
    pub send: Option<SendId>,
}

/// Where an outgoing connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A TCP peer (`t`), at the address and port it advertised.
    Tcp(SocketAddr),
    /// A unix socket (`u`), at the path it advertised.
    #[cfg(unix)]
    Unix(PathBuf),
}
