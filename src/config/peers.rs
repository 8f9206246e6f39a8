//! `--forwarded-allow-ips`: the peers whose forwarded headers are believed, given as
//! addresses and networks (gunicorn's `forwarded_allow_ips`, CIDR included).

use std::net::{IpAddr, SocketAddr};

/// The peers a request's `X-Forwarded-Proto` (and its kin) is believed from: a proxy on
/// the machine by default (`127.0.0.1,::1`), as gunicorn's `forwarded_allow_ips`.
/// [`Request::scheme`](crate::Request::scheme) reads the header only from them, since
/// anyone else could claim `https` for a plain connection.
///
/// A Unix socket's peer is always admitted: only processes that may open the socket's
/// path can connect, the proxy in front (gunicorn trusts them so too). An IPv4 client of a
/// `[::]` listener (`::ffff:10.0.0.5`) is matched as the IPv4 address it is.
///
/// # Examples
///
/// ```
/// use br_serve::config::AllowedPeers;
///
/// let peers = AllowedPeers::parse("10.0.0.0/8, 192.168.1.7, fd00::/8")?;
/// let admits = |addr: &str| peers.admits(Some(addr.parse().unwrap()));
/// assert!(admits("10.20.30.40:5000"));
/// assert!(admits("[::ffff:10.1.2.3]:5000")); // IPv4 through an IPv6 listener
/// assert!(admits("[fd12::1]:443"));
/// assert!(!admits("192.168.1.8:5000"));
/// assert!(peers.admits(None)); // a Unix socket's peer
/// assert!(AllowedPeers::parse("*")?.admits(Some("203.0.113.9:1".parse().unwrap())));
/// assert!(!AllowedPeers::parse("")?.admits(Some("127.0.0.1:1".parse().unwrap())));
/// assert!(AllowedPeers::parse("10.0.0.0/33").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPeers {
    /// `*`: every peer.
    any: bool,
    /// Networks as (address, prefix length in bits).
    networks: Vec<(IpAddr, u8)>,
}

impl AllowedPeers {
    /// Reads a comma-separated list of `*`, addresses (`10.0.0.1`, `::1`) and networks
    /// (`10.0.0.0/8`, `fd00::/8`); spaces around entries are ignored, and an empty list
    /// admits no peer but a Unix socket's.
    ///
    /// # Errors
    ///
    /// An entry that is none of these, or a prefix longer than its address, named in the
    /// message.
    pub fn parse(list: &str) -> Result<AllowedPeers, String> {
        let mut peers = AllowedPeers {
            any: false,
            networks: Vec::new(),
        };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry {
                "*" => peers.any = true,
                _ => peers.networks.push(network(entry).ok_or_else(|| {
                    format!("'{entry}' is not an address or a network (ADDR or ADDR/BITS)")
                })?),
            }
        }
        Ok(peers)
    }

    /// Whether `peer` (`None` for a Unix socket's) may say how a request reached the
    /// proxy.
    pub fn admits(&self, peer: Option<SocketAddr>) -> bool {
        let Some(peer) = peer else {
            return true;
        };
        let ip = unmapped(peer.ip());
        self.any
            || self
                .networks
                .iter()
                .any(|&(net, bits)| within(ip, net, bits))
    }
}

/// `ADDR` (all its bits) or `ADDR/BITS`.
fn network(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (entry, None),
    };
    let ip = unmapped(addr.parse::<IpAddr>().ok()?);
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        // Digits only: `u8::from_str` would take `+8`.
        Some(bits) if bits.bytes().all(|b| b.is_ascii_digit()) => bits.parse().ok()?,
        Some(_) => return None,
        None => width,
    };
    (bits <= width).then_some((ip, bits))
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it stands for.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is in the network of `net`'s first `bits` bits.
fn within(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let mask = |width: u32| match bits {
        0 => 0,
        _ => u128::MAX << (width - u32::from(bits)),
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let m = mask(32) as u32;
            u32::from(ip) & m == u32::from(net) & m
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let m = mask(128);
            u128::from(ip) & m == u128::from(net) & m
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_matches_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("127.0.0.1,::1", "127.0.0.1:80", true),
            ("127.0.0.1,::1", "[::1]:80", true),
            ("127.0.0.1,::1", "127.0.0.2:80", false),
            ("127.0.0.1,::1", "[::ffff:127.0.0.1]:80", true),
            ("::ffff:10.0.0.1", "10.0.0.1:80", true),
            ("10.0.0.0/8", "10.255.255.255:1", true),
            ("10.0.0.0/8", "11.0.0.0:1", false),
            ("10.1.2.3/0", "203.0.113.1:1", true),
            ("10.1.2.3/0", "[2001:db8::1]:1", false),
            ("0.0.0.0/0, ::/0", "[2001:db8::1]:1", true),
            ("192.168.1.128/25", "192.168.1.127:1", false),
            ("192.168.1.128/25", "192.168.1.200:1", true),
            ("2001:db8::/32", "[2001:db8:ffff::1]:1", true),
            ("2001:db8::/32", "[2001:db9::1]:1", false),
            (" 10.0.0.1 , , 10.0.0.2 ", "10.0.0.2:1", true),
            ("*", "198.51.100.1:1", true),
            ("", "127.0.0.1:1", false),
        ];
        for &(list, peer, admitted) in cases {
            let peers = AllowedPeers::parse(list).expect(list);
            let peer: SocketAddr = peer.parse().expect(peer);
            assert_eq!(peers.admits(Some(peer)), admitted, "{list:?} {peer}");
        }
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.300",
            "10.0.0.0/+8",
            "10.0.0.0/",
            "lo",
            "*/8",
        ] {
            let err = AllowedPeers::parse(bad).expect_err(bad);
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
    }
}
