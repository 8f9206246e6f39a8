//! A Unix listening socket's accept queue, asked of the kernel's `sock_diag` netlink
//! interface (`unix_diag`, sock_diag(7)), where `ss -xl` finds it too.
//!
//! A TCP listener reports its queue in `TCP_INFO` ([`super::sockopt`]); a Unix socket has
//! no such option, and `SIOCINQ` refuses a listener. Without this, a server that nginx
//! reaches over a Unix socket (the usual deployment) could neither scale on its queue nor
//! show it. A query is a few system calls (a netlink socket, a request naming our socket
//! by inode, the answer), made once a second at most by the master, and per scrape.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

/// `nlmsg_type` of a sock_diag request and of its answer (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `nlmsg_type` of an error answer, and the request flag (linux/netlink.h).
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
/// Ask for the queue lengths, and the attribute that carries them (linux/unix_diag.h).
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_RQLEN: u16 = 4;
/// The state unix_diag gives a listening socket (TCP_LISTEN).
const LISTEN: u32 = 10;
/// The bits of an attribute's type that are flags, not the type (linux/netlink.h).
const NLA_FLAGS: u16 = 0xc000;
/// `INET_DIAG_NOCOOKIE`: find the socket by inode alone.
const NO_COOKIE: u32 = u32::MAX;
/// `struct nlmsghdr` and `struct unix_diag_msg`, which the attributes follow.
const HEADER_LEN: usize = 16;
const DIAG_MSG_LEN: usize = 16;

/// A listening Unix socket's accept queue: connections waiting for a worker, and the most
/// it holds (the backlog as the kernel applied it).
pub fn unix_accept_queue(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    // unix_diag names sockets by a 32-bit inode, as socket inodes are numbered.
    let inode = u32::try_from(nix::sys::stat::fstat(fd)?.st_ino)
        .map_err(|_| io::Error::other("socket inode beyond 32 bits"))?;
    let netlink = socket::socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        SockProtocol::NetlinkSockDiag,
    )?;
    let kernel = NetlinkAddr::new(0, 0);
    socket::sendto(
        netlink.as_raw_fd(),
        &request(inode),
        &kernel,
        MsgFlags::empty(),
    )?;
    // The kernel answers within the send, so the answer is there to read (the socket is
    // non-blocking all the same: the master must never wait here).
    let mut answer = [0u8; 256];
    let len = socket::recv(netlink.as_raw_fd(), &mut answer, MsgFlags::empty())?;
    parse_answer(answer.get(..len).unwrap_or_default(), inode)
}

/// A `SOCK_DIAG_BY_FAMILY` request for the listening Unix socket `inode`'s queue lengths.
fn request(inode: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + 24);
    // struct nlmsghdr: length, type, flags, sequence number, port (0: the kernel's).
    msg.extend_from_slice(&((HEADER_LEN + 24) as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct unix_diag_req: family, protocol, padding, states, inode, show, cookie.
    msg.extend_from_slice(&[libc::AF_UNIX as u8, 0, 0, 0]);
    for word in [1 << LISTEN, inode, UDIAG_SHOW_RQLEN, NO_COOKIE, NO_COOKIE] {
        msg.extend_from_slice(&word.to_ne_bytes());
    }
    msg
}

/// The queue lengths in the kernel's answer about `inode`: for a listener, the
/// `UNIX_DIAG_RQLEN` attribute holds the connections waiting, then the backlog.
fn parse_answer(answer: &[u8], inode: u32) -> io::Result<(u32, u32)> {
    let malformed = || io::Error::other("malformed sock_diag answer");
    let kind = u16_at(answer, 4).ok_or_else(malformed)?;
    if kind == NLMSG_ERROR {
        let errno = u32_at(answer, HEADER_LEN).ok_or_else(malformed)? as i32;
        return Err(io::Error::from_raw_os_error(errno.wrapping_neg()));
    }
    let len = u32_at(answer, 0).ok_or_else(malformed)? as usize;
    let message = answer.get(..len).ok_or_else(malformed)?;
    if kind != SOCK_DIAG_BY_FAMILY || u32_at(message, HEADER_LEN + 4) != Some(inode) {
        return Err(malformed());
    }
    // struct rtattr: length (header included), type, payload, padded to 4 bytes.
    let mut at = HEADER_LEN + DIAG_MSG_LEN;
    while let (Some(attr_len), Some(attr)) = (u16_at(message, at), u16_at(message, at + 2)) {
        let attr_len = usize::from(attr_len);
        if attr_len < 4 || at + attr_len > len {
            break;
        }
        if attr & !NLA_FLAGS == UNIX_DIAG_RQLEN && attr_len >= 12 {
            let queued = u32_at(message, at + 4).ok_or_else(malformed)?;
            let backlog = u32_at(message, at + 8).ok_or_else(malformed)?;
            return Ok((queued, backlog));
        }
        at += (attr_len + 3) & !3;
    }
    Err(io::Error::other("no queue lengths in the sock_diag answer"))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let raw = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(raw.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let raw = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(raw.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_with_care() {
        let header = |len: u32, kind: u16| {
            let mut bytes = len.to_ne_bytes().to_vec();
            bytes.extend_from_slice(&kind.to_ne_bytes());
            bytes.extend_from_slice(&[0; 10]);
            bytes
        };
        // An error answer carries a negative errno.
        let mut error = header(36, NLMSG_ERROR);
        error.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        let err = parse_answer(&error, 7).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        // A good answer: the message, an unrelated attribute, then the queue lengths.
        let mut good = header(52, SOCK_DIAG_BY_FAMILY);
        good.extend_from_slice(&[libc::AF_UNIX as u8, 1, 10, 0]);
        good.extend_from_slice(&7u32.to_ne_bytes());
        good.extend_from_slice(&[0; 8]);
        good.extend_from_slice(&[5, 0, 6, 0, 0, 0, 0, 0]);
        good.extend_from_slice(&[12, 0, 4, 0]);
        good.extend_from_slice(&2u32.to_ne_bytes());
        good.extend_from_slice(&128u32.to_ne_bytes());
        assert_eq!(parse_answer(&good, 7).unwrap(), (2, 128));
        // The lengths in an attribute too short to hold them are not read.
        let mut short = good.clone();
        short[40..42].copy_from_slice(&8u16.to_ne_bytes());
        assert!(parse_answer(&short, 7).is_err());
        // About another socket, or cut short anywhere: an error, never a panic.
        assert!(parse_answer(&good, 8).is_err());
        for len in 0..good.len() {
            assert!(parse_answer(&good[..len], 7).is_err(), "{len}");
        }
    }
}
