//! [`RecvBatch`]: the datagrams waiting on a socket, read with one system call
//! (`recvmmsg`; Linux and Android, the systems that have it through `nix`) and handed out
//! one at a time. A batch that came back with fewer datagrams than it has room for emptied
//! the socket's queue: the adapters then wait for the socket without the read that would
//! only find it empty. Elsewhere the adapters read one datagram at a time.
//!
//! Used for the multicast socket while the engine does not need each datagram's arriving
//! interface (one followed path); [`crate::arrival::recv_from`] reads it otherwise.

use std::io;
use std::net::SocketAddr;

use nix::sys::socket::{MultiHeaders, SockaddrStorage};
use socket2::Socket;

use crate::socket::DATAGRAM_BUFFER;

/// Datagrams one read takes at most.
pub const BATCH: usize = 8;

/// Room for [`BATCH`] datagrams of any size, the ones of the last read, and which of them
/// were handed out.
pub struct RecvBatch {
    /// [`BATCH`] slots of [`DATAGRAM_BUFFER`] bytes (allocated zeroed: the pages a datagram
    /// never reached are not touched).
    buf: Vec<u8>,
    /// Each read datagram's slot, length and sender, in arrival order.
    read: Vec<(usize, usize, SocketAddr)>,
    /// The next datagram of `read` to hand out.
    next: usize,
    /// The last read emptied the socket's queue.
    drained: bool,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("read", &self.read)
            .field("next", &self.next)
            .field("drained", &self.drained)
            .finish_non_exhaustive()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// An empty batch.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: vec![0; BATCH * DATAGRAM_BUFFER],
            read: Vec::with_capacity(BATCH),
            next: 0,
            drained: false,
        }
    }

    /// The next datagram of the last read not handed out yet: its bytes and sender.
    pub fn next_datagram(&mut self) -> Option<(&[u8], SocketAddr)> {
        let &(slot, len, from) = self.read.get(self.next)?;
        let start = slot * DATAGRAM_BUFFER;
        self.next += 1;
        Some((self.buf.get(start..start + len)?, from))
    }

    /// Whether every datagram of the last read was handed out.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.next >= self.read.len()
    }

    /// Whether the last read emptied the socket's queue (it took fewer datagrams than it had
    /// room for): until the socket is readable again, a read would find nothing. Cleared
    /// by the next read.
    #[must_use]
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// Reads the datagrams waiting on `socket` (at most [`BATCH`]) without waiting, in
    /// place of those of the last read; returns how many. Call it once every datagram was
    /// handed out.
    ///
    /// # Errors
    ///
    /// Those of `recvmmsg`: `WouldBlock` when nothing is waiting.
    pub fn read_from(&mut self, socket: &Socket) -> io::Result<usize> {
        self.read.clear();
        self.next = 0;
        self.drained = false;
        let received = self.fill(socket)?;
        self.drained = received < BATCH;
        Ok(self.read.len())
    }

    /// One `recvmmsg` into the slots; returns how many datagrams it took.
    fn fill(&mut self, socket: &Socket) -> io::Result<usize> {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::sys::socket::{MsgFlags, recvmmsg};

        let (buf, read) = (&mut self.buf, &mut self.read);
        HEADERS.with(|headers| {
            // The thread's headers (no read runs inside another), else new ones.
            let mut kept = headers.try_borrow_mut().ok();
            let mut made = None;
            let headers = match kept.as_deref_mut() {
                Some(headers) => headers,
                None => made.insert(MultiHeaders::preallocate(BATCH, None)),
            };
            let mut slots = buf.chunks_exact_mut(DATAGRAM_BUFFER);
            let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or_default())]);
            let received = recvmmsg(
                socket.as_raw_fd(),
                headers,
                slices.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )?;
            let mut count = 0;
            for (slot, message) in received.enumerate() {
                count += 1;
                // A datagram without an IP sender cannot be on these sockets: skipped.
                if let Some(from) = message.address.as_ref().and_then(socket_addr) {
                    read.push((slot, message.bytes, from));
                }
            }
            Ok(count)
        })
    }
}

thread_local! {
    /// The kernel's view of a batch's slots (their pointers are set at each read), one per
    /// thread: it holds raw pointers, so a batch that kept it could not move between
    /// threads, and one made at each read costs two allocations.
    static HEADERS: std::cell::RefCell<MultiHeaders<SockaddrStorage>> =
        std::cell::RefCell::new(MultiHeaders::preallocate(BATCH, None));
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    use nix::sys::socket::{AddressFamily, SockaddrLike};
    match address.family() {
        Some(AddressFamily::Inet) => address
            .as_sockaddr_in()
            .map(|v4| SocketAddr::V4((*v4).into())),
        Some(AddressFamily::Inet6) => address
            .as_sockaddr_in6()
            .map(|v6| SocketAddr::V6((*v6).into())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};

    /// A receiver, a sender, and `count` datagrams `[i; i + 1]` (i from 0) queued on the
    /// receiver (loopback delivers during `send_to`).
    fn queued(count: u8) -> (UdpSocket, UdpSocket) {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let to = receiver.local_addr().expect("addr");
        for i in 0..count {
            let datagram = vec![i; usize::from(i) + 1];
            sender.send_to(&datagram, to).expect("send");
        }
        (receiver, sender)
    }

    fn handed_out(batch: &mut RecvBatch, sender: &UdpSocket) -> Vec<Vec<u8>> {
        let mut datagrams = Vec::new();
        while let Some((bytes, from)) = batch.next_datagram() {
            assert_eq!(from, sender.local_addr().unwrap());
            datagrams.push(bytes.to_vec());
        }
        assert!(batch.is_empty());
        datagrams
    }

    #[test]
    fn one_read_takes_every_waiting_datagram_and_says_the_queue_is_empty() {
        let (receiver, sender) = queued(3);
        let mut batch = RecvBatch::new();
        assert!(batch.is_empty());
        let read = batch.read_from(&socket2::SockRef::from(&receiver));
        assert_eq!(read.expect("read"), 3);
        assert!(batch.drained());
        let expected: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; usize::from(i) + 1]).collect();
        assert_eq!(handed_out(&mut batch, &sender), expected);
        let empty = batch.read_from(&socket2::SockRef::from(&receiver));
        assert_eq!(empty.map_err(|e| e.kind()), Err(io::ErrorKind::WouldBlock));
        assert!(batch.is_empty());
    }

    #[test]
    fn a_full_batch_does_not_say_the_queue_is_empty_and_the_rest_comes_next() {
        let extra = 2;
        let count = u8::try_from(BATCH).unwrap() + extra;
        let (receiver, sender) = queued(count);
        let mut batch = RecvBatch::new();
        let socket = socket2::SockRef::from(&receiver);
        assert_eq!(batch.read_from(&socket).expect("read"), BATCH);
        assert!(!batch.drained());
        let first = handed_out(&mut batch, &sender);
        assert_eq!(batch.read_from(&socket).expect("read"), usize::from(extra));
        assert!(batch.drained());
        let rest = handed_out(&mut batch, &sender);
        let all: Vec<Vec<u8>> = first.into_iter().chain(rest).collect();
        let expected: Vec<Vec<u8>> = (0..count).map(|i| vec![i; usize::from(i) + 1]).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn a_datagram_of_the_largest_size_arrives_whole() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let largest = vec![0xA5; 65_507];
        let to = receiver.local_addr().unwrap();
        sender.send_to(&largest, to).expect("send");
        sender.send_to(b"small", to).expect("send");
        let mut batch = RecvBatch::new();
        let read = batch.read_from(&socket2::SockRef::from(&receiver));
        assert_eq!(read.expect("read"), 2);
        assert_eq!(
            handed_out(&mut batch, &sender),
            [largest, b"small".to_vec()]
        );
    }
}
