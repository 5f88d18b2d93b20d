//! On which interface a multicast datagram arrived: `IP_PKTINFO` and `IPV6_RECVPKTINFO`
//! (Linux, Android and Apple systems, through `nix`'s safe `recvmsg`). Elsewhere
//! [`enable`] says it is unsupported and [`recv_from`] reports no interface; the engine then
//! finds the interface from the sender's address ([`crate::interfaces::heard_on`]).
//!
//! The adapters read the multicast sockets of followed interfaces with [`recv_from`], so
//! that the engine knows each datagram's path (sender address and arriving interface): two
//! copies of one datagram from the same sender that came in on two of our interfaces (Wi-Fi
//! and Ethernet on one LAN) are told apart ([`crate::copies`]), and `discovered` says where a
//! peer was heard.

use std::io;
use std::net::SocketAddr;

use socket2::Socket;

/// Room for one `in6_pktinfo` (or `in_pktinfo`) control message.
pub const CONTROL_BUFFER: usize = 64;

/// Asks the kernel to report the arriving interface of each datagram on `socket` (an IPv4
/// socket, or an IPv6 one when `v6`).
///
/// # Errors
///
/// The option could not be set, or ([`io::ErrorKind::Unsupported`]) this system has no
/// such option here.
pub fn enable(socket: &Socket, v6: bool) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        if v6 {
            setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        } else {
            setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?;
        }
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
    {
        let _ = (socket, v6);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Receives one datagram into `buf` without waiting: its length, its sender, and the index
/// of the interface it arrived on when the kernel reported it ([`enable`]). `control` is
/// scratch space of [`CONTROL_BUFFER`] bytes.
///
/// # Errors
///
/// Those of `recvmsg` (`WouldBlock` when nothing is waiting).
#[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
pub fn recv_from(
    socket: &Socket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u32>)> {
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage, recvmsg};

    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(control),
        MsgFlags::empty(),
    )?;
    let mut index = None;
    if let Ok(messages) = message.cmsgs() {
        for cmsg in messages {
            match cmsg {
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    index = u32::try_from(info.ipi_ifindex).ok();
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => index = Some(info.ipi6_ifindex),
                _ => {}
            }
        }
    }
    let from = message
        .address
        .as_ref()
        .and_then(|a| match a.family() {
            Some(nix::sys::socket::AddressFamily::Inet) => {
                a.as_sockaddr_in().map(|v4| SocketAddr::V4((*v4).into()))
            }
            Some(nix::sys::socket::AddressFamily::Inet6) => {
                a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
            }
            _ => None,
        })
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    Ok((message.bytes, from, index))
}

/// Not on this system: [`enable`] fails here, and the adapters then read with their
/// runtime's `recv_from`.
///
/// # Errors
///
/// Always [`io::ErrorKind::Unsupported`].
#[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
pub fn recv_from(
    socket: &Socket,
    buf: &mut [u8],
    control: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u32>)> {
    let _ = (socket, buf, control);
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, UdpSocket};

    #[test]
    fn a_datagram_on_loopback_reports_loopbacks_index() {
        let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        enable(&socket2::SockRef::from(&receiver), false).expect("IP_PKTINFO");
        let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        sender
            .send_to(b"hello", receiver.local_addr().unwrap())
            .expect("send");
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        let mut control = [0u8; CONTROL_BUFFER];
        let (n, from, index) =
            recv_from(&socket2::SockRef::from(&receiver), &mut buf, &mut control).expect("receive");
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from, sender.local_addr().unwrap());
        let lo = crate::interfaces::list()
            .unwrap()
            .into_iter()
            .find(|i| i.loopback)
            .and_then(|i| i.index);
        assert_eq!(index, lo);
    }
}
