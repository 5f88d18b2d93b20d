//! Static storage for the driver's UDP socket.

use smoltcp::socket::udp::{PacketBuffer, PacketMetadata, Socket};

/// The storage of one UDP socket: in each direction a ring of at most `PACKETS` datagrams,
/// with `RX` bytes of payload for received datagrams and `TX` bytes for datagrams waiting to
/// leave.
///
/// [`UdpBuffers::new`] is `const`, so the buffers can live in a `static` (for example a
/// `static_cell::ConstStaticCell`) and never touch the stack.
///
/// Sizing: each buffer must hold the largest datagram it carries, plus room for the datagrams
/// that arrive (or are queued) between two polls. Without smoltcp's
/// `proto-ipv4-fragmentation` no datagram exceeds the MTU (1472 bytes of UDP payload on
/// Ethernet); a node heartbeats about 80–200 bytes, and `DATA = 512` keeps every frame the
/// driver sends under 1472 bytes, sealed or not. The defaults (8 datagrams, 2 KiB each way)
/// suit 32 peers polled every few milliseconds.
pub struct UdpBuffers<const PACKETS: usize = 8, const RX: usize = 2048, const TX: usize = 2048> {
    rx_meta: [PacketMetadata; PACKETS],
    rx: [u8; RX],
    tx_meta: [PacketMetadata; PACKETS],
    tx: [u8; TX],
}

impl<const PACKETS: usize, const RX: usize, const TX: usize> UdpBuffers<PACKETS, RX, TX> {
    /// Empty buffers.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            rx_meta: [PacketMetadata::EMPTY; PACKETS],
            rx: [0; RX],
            tx_meta: [PacketMetadata::EMPTY; PACKETS],
            tx: [0; TX],
        }
    }

    /// A UDP socket over these buffers, to add to the `SocketSet` and hand to
    /// [`Driver::new`](crate::Driver::new) by its handle.
    pub fn socket(&mut self) -> Socket<'_> {
        Socket::new(
            PacketBuffer::new(&mut self.rx_meta[..], &mut self.rx[..]),
            PacketBuffer::new(&mut self.tx_meta[..], &mut self.tx[..]),
        )
    }
}

impl<const PACKETS: usize, const RX: usize, const TX: usize> Default
    for UdpBuffers<PACKETS, RX, TX>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const PACKETS: usize, const RX: usize, const TX: usize> core::fmt::Debug
    for UdpBuffers<PACKETS, RX, TX>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("UdpBuffers")
            .field("packets", &PACKETS)
            .field("rx", &RX)
            .field("tx", &TX)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const PACKETS: usize, const RX: usize, const TX: usize> defmt::Format
    for UdpBuffers<PACKETS, RX, TX>
{
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "UdpBuffers {{ packets: {=usize}, rx: {=usize}, tx: {=usize} }}",
            PACKETS,
            RX,
            TX
        );
    }
}
