//! Lists of trusted peers, given as addresses and networks: `--forwarded-allow-ips`, whose
//! forwarded headers are believed (gunicorn's `forwarded_allow_ips`, CIDR included), and
//! `--proxy-allow-from`, who may send a PROXY header (gunicorn's `proxy_allow_ips`).

use std::net::{IpAddr, SocketAddr};

/// The machine itself, the default of both lists, as in gunicorn.
pub(super) const LOOPBACK: &str = "127.0.0.1,::1";

/// Peers trusted to speak for the clients behind them: a proxy on the machine by default
/// (`127.0.0.1,::1`), as in gunicorn. Two lists are of this kind:
///
/// - `--forwarded-allow-ips`, the peers a request's `X-Forwarded-Proto` (and its kin) is
///   believed from. [`Request::scheme`](crate::Request::scheme) reads the header only
///   from them, since anyone else could claim `https` for a plain connection;
/// - `--proxy-allow-from`, the peers that may begin a connection with a PROXY protocol
///   header, since anyone else could name any client.
///
/// The peer judged is the connection's own, the proxy or balancer that sends the bytes,
/// never a client a PROXY protocol header names. A Unix socket's peer is always
/// admitted: only processes that may open the socket's path can connect, the proxy in
/// front (gunicorn trusts them so too). An IPv4 client of a `[::]` listener
/// (`::ffff:10.0.0.5`) is matched as the IPv4 address it is, and IPv4-mapped networks
/// match IPv4 peers.
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
/// assert!(AllowedPeers::parse("192.168.1.1/24").is_err()); // 192.168.1.0/24?
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedPeers {
    /// `*`: every peer.
    any: bool,
    /// Networks as (address, prefix length in bits), as given.
    networks: Vec<(IpAddr, u8)>,
    /// The list as given, for `--print-config`.
    text: String,
}

impl AllowedPeers {
    /// Reads a comma-separated list of `*`, addresses (`10.0.0.1`, `::1`) and networks
    /// (`10.0.0.0/8`, `fd00::/8`, `::ffff:10.0.0.0/104`); spaces around entries are
    /// ignored, and an empty list admits no peer but a Unix socket's.
    ///
    /// # Errors
    ///
    /// An entry that is none of these, or a network with bits set past its prefix
    /// (`192.168.1.1/24`: a typo for an address or for `192.168.1.0/24`, which gunicorn
    /// refuses too), named in the message.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::config::AllowedPeers;
    ///
    /// let peers = AllowedPeers::parse(" 10.0.0.0/8, ::1 ")?;
    /// assert!(peers.admits(Some("10.1.2.3:443".parse().unwrap())));
    /// let err = AllowedPeers::parse("10.0.0.0/8,localhost").unwrap_err();
    /// assert!(err.contains("localhost"), "{err}");
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(list: &str) -> Result<AllowedPeers, String> {
        let mut peers = AllowedPeers {
            any: false,
            networks: Vec::new(),
            text: list.to_string(),
        };
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry {
                "*" => peers.any = true,
                _ => peers.networks.push(network(entry)?),
            }
        }
        Ok(peers)
    }

    /// Whether the two lists admit the same peers, however they are written
    /// (`127.0.0.1,::1`, `::1, 127.0.0.1/32`).
    pub(super) fn same_peers(&self, other: &AllowedPeers) -> bool {
        let sorted = |peers: &AllowedPeers| {
            // An IPv4-mapped network is its IPv4 one, as `admits` matches it.
            let canonical = |&(net, bits): &(IpAddr, u8)| match net {
                IpAddr::V6(v6) if bits >= 96 => match v6.to_ipv4_mapped() {
                    Some(v4) => (IpAddr::V4(v4), bits - 96),
                    None => (net, bits),
                },
                _ => (net, bits),
            };
            let mut networks: Vec<_> = peers.networks.iter().map(canonical).collect();
            networks.sort_unstable();
            networks.dedup();
            networks
        };
        match (self.any, other.any) {
            (true, true) => true,
            (false, false) => sorted(self) == sorted(other),
            _ => false,
        }
    }

    /// Whether only a Unix socket's peer is admitted: an empty list.
    pub(super) fn admits_no_address(&self) -> bool {
        !self.any && self.networks.is_empty()
    }

    /// Whether `peer` (`None` for a Unix socket's) is on the list. An IPv4 address and
    /// its IPv4-mapped IPv6 form are one peer.
    ///
    /// # Examples
    ///
    /// ```
    /// use br_serve::config::AllowedPeers;
    ///
    /// let peers = AllowedPeers::parse("192.168.0.0/16")?;
    /// let peer = |addr: &str| Some(addr.parse().unwrap());
    /// assert!(peers.admits(peer("192.168.7.1:5000")));
    /// assert!(peers.admits(peer("[::ffff:192.168.7.1]:5000"))); // the same peer, mapped
    /// assert!(!peers.admits(peer("10.0.0.1:5000")));
    /// assert!(peers.admits(None)); // a Unix socket's peer
    /// # Ok::<(), String>(())
    /// ```
    pub fn admits(&self, peer: Option<SocketAddr>) -> bool {
        let Some(peer) = peer else {
            return true;
        };
        let (v4, v6) = match peer.ip() {
            IpAddr::V4(v4) => (Some(v4), v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => (v6.to_ipv4_mapped(), v6),
        };
        let within = |&(net, bits): &(IpAddr, u8)| match net {
            IpAddr::V4(net) => v4.is_some_and(|ip| {
                same_prefix(u32::from(ip).into(), u32::from(net).into(), 32, bits)
            }),
            IpAddr::V6(net) => same_prefix(v6.into(), net.into(), 128, bits),
        };
        self.any || self.networks.iter().any(within)
    }
}

/// The list as it was given.
impl std::fmt::Display for AllowedPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `ADDR` (all its bits) or `ADDR/BITS`, with no bit set past the prefix.
fn network(entry: &str) -> Result<(IpAddr, u8), String> {
    let not_one = || format!("'{entry}' is not an address or a network (ADDR or ADDR/BITS)");
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (entry, None),
    };
    let ip = addr.parse::<IpAddr>().map_err(|_| not_one())?;
    let width = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        // Digits only: `u8::from_str` would take `+8`.
        Some(bits) if bits.bytes().all(|b| b.is_ascii_digit()) => {
            bits.parse().map_err(|_| not_one())?
        }
        Some(_) => return Err(not_one()),
        None => width,
    };
    if bits > width {
        return Err(not_one());
    }
    match prefix_of(ip, bits) {
        net if net == ip => Ok((ip, bits)),
        net => Err(format!(
            "'{entry}' has bits set past its prefix: the network is {net}/{bits}"
        )),
    }
}

/// `ip` with every bit past its first `bits` cleared.
fn prefix_of(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let net = u128::from(u32::from(v4)) & mask(32, bits);
            IpAddr::from((net as u32).to_be_bytes())
        }
        IpAddr::V6(v6) => IpAddr::from((u128::from(v6) & mask(128, bits)).to_be_bytes()),
    }
}

/// The first `bits` of a `width`-bit address, in place.
fn mask(width: u32, bits: u8) -> u128 {
    let full = if width == 128 {
        u128::MAX
    } else {
        (1 << width) - 1
    };
    match bits {
        0 => 0,
        _ => full & (full << (width - u32::from(bits))),
    }
}

/// Whether `ip` and `net`, `width`-bit addresses, share their first `bits`.
fn same_prefix(ip: u128, net: u128, width: u32, bits: u8) -> bool {
    let m = mask(width, bits);
    ip & m == net & m
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
            ("::ffff:10.0.0.0/104", "10.1.2.3:1", true),
            ("::ffff:10.0.0.0/104", "[::ffff:10.1.2.3]:1", true),
            ("::ffff:10.0.0.0/104", "11.0.0.1:1", false),
            ("::/0", "10.0.0.1:1", true),
            ("10.0.0.0/8", "10.255.255.255:1", true),
            ("10.0.0.0/8", "[::ffff:10.0.0.9]:1", true),
            ("10.0.0.0/8", "11.0.0.0:1", false),
            ("0.0.0.0/0", "203.0.113.1:1", true),
            ("0.0.0.0/0", "[2001:db8::1]:1", false),
            ("0.0.0.0/0, ::/0", "[2001:db8::1]:1", true),
            ("192.168.1.128/25", "192.168.1.127:1", false),
            ("192.168.1.128/25", "192.168.1.200:1", true),
            ("2001:db8::/32", "[2001:db8:ffff::1]:1", true),
            ("2001:db8::/32", "[2001:db9::1]:1", false),
            (" 10.0.0.1 , , 10.0.0.2 ", "10.0.0.2:1", true),
            ("*", "198.51.100.1:1", true),
            ("", "127.0.0.1:1", false),
        ];
        for (a, b, same) in [
            ("127.0.0.1,::1", "::1, 127.0.0.1/32, ::1", true),
            ("*", "*, 10.0.0.1", true),
            ("127.0.0.1", "127.0.0.1,::1", false),
            ("127.0.0.1,::1", "::ffff:127.0.0.1, ::1", true),
            ("10.0.0.0/8", "::ffff:10.0.0.0/104", true),
            ("*", "0.0.0.0/0, ::/0", false), // as written: the same peers, another list
            ("", " , ", true),
        ] {
            let (a, b) = (
                AllowedPeers::parse(a).unwrap(),
                AllowedPeers::parse(b).unwrap(),
            );
            assert_eq!(a.same_peers(&b), same, "{a} and {b}");
        }
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
