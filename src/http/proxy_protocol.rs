//! The PROXY protocol header, versions 1 and 2, that a load balancer working at the TCP
//! level (an AWS Network Load Balancer, HAProxy in `mode tcp`, a Kubernetes ingress that
//! passes connections through) sends ahead of the client's first byte, naming the client:
//! without it, every connection seems to come from the balancer.
//!
//! `--proxy-protocol` turns it on for every listener, and then every connection must
//! begin with one, as on nginx's `listen ... proxy_protocol`: a listener that also took
//! connections without it would let any client that reaches it name its own address.
//!
//! The format is HAProxy's `doc/proxy-protocol.txt`: §2.1 for the text version 1
//! (`PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n`), §2.2 for the binary version 2.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::{HttpError, bad_request};

/// What the first bytes of a connection hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ProxyHeader {
    /// The beginning of a header: more bytes must come.
    Partial,
    /// A whole header of `len` bytes. `ends` are the client's address and the one it
    /// connected to, or `None` where the header says to keep the connection's own: a
    /// version 2 `LOCAL` (the balancer's own health check), a version 1 `UNKNOWN`, or an
    /// address family other than TCP over IPv4 or IPv6 (§2.2: the receiver uses the real
    /// connection's addresses).
    Complete { len: usize, ends: Option<Ends> },
}

/// The two addresses a PROXY header names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ends {
    /// The client's.
    pub(crate) source: SocketAddr,
    /// The one the client connected to (on the balancer).
    pub(crate) destination: SocketAddr,
}

/// How a version 1 header begins.
const V1_PREFIX: &[u8] = b"PROXY ";
/// §2.1: the longest version 1 header, CRLF included, is 107 bytes.
const V1_MAX: usize = 107;
/// §2.2: how a version 2 header begins (no HTTP request can).
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The 16 bytes before a version 2 header's addresses: the signature, the version and
/// command, the family and the length of the rest.
const V2_FIXED: usize = 16;
/// The most a version 2 header may take, addresses and TLVs included. The format allows
/// 64 KiB; balancers send tens of bytes of TLVs (AWS its endpoint id), and a connection
/// may not make the worker hold more than this before it has sent a request.
const V2_MAX: usize = 4096;

/// Reads the PROXY header at the start of `input`, version 1 or 2.
pub(crate) fn parse_proxy_header(input: &[u8]) -> Result<ProxyHeader, HttpError> {
    if input.starts_with(V2_SIGNATURE) {
        parse_v2(input)
    } else if input.starts_with(V1_PREFIX) {
        parse_v1(input)
    } else if V2_SIGNATURE.starts_with(input) || V1_PREFIX.starts_with(input) {
        Ok(ProxyHeader::Partial)
    } else {
        Err(bad_request("no PROXY protocol header"))
    }
}

const BAD_V1: HttpError = bad_request("malformed PROXY protocol v1 header");

/// `PROXY TCP4|TCP6 SOURCE DESTINATION SPORT DPORT\r\n`, or `PROXY UNKNOWN ...\r\n`.
fn parse_v1(input: &[u8]) -> Result<ProxyHeader, HttpError> {
    let window = &input[..input.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return match input.len() < V1_MAX {
            true => Ok(ProxyHeader::Partial),
            false => Err(bad_request("PROXY protocol v1 header over 107 bytes")),
        };
    };
    // The line ends in CRLF: a bare LF is no end, and waiting on for one is waiting for
    // a header that was sent wrong.
    let Some(end) = lf.checked_sub(1).filter(|&cr| window[cr] == b'\r') else {
        return Err(BAD_V1);
    };
    let len = end + 2;
    let line = &input[V1_PREFIX.len()..end];
    // §2.1: after UNKNOWN, the receiver ignores whatever comes before the CRLF.
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok(ProxyHeader::Complete { len, ends: None });
    }
    let line = std::str::from_utf8(line).map_err(|_| BAD_V1)?;
    let ends = v1_ends(line).ok_or(BAD_V1)?;
    Ok(ProxyHeader::Complete {
        len,
        ends: Some(ends),
    })
}

/// The addresses in a version 1 line after `PROXY ` (`TCP4` or `TCP6` and the four
/// fields), or `None` when it is not one.
fn v1_ends(line: &str) -> Option<Ends> {
    let mut fields = line.split(' ');
    let ip: fn(&str) -> Option<IpAddr> = match fields.next()? {
        "TCP4" => |text| text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        "TCP6" => |text| text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => return None,
    };
    let [source, destination, source_port, destination_port] = [
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    ];
    if fields.next().is_some() {
        return None;
    }
    Some(Ends {
        source: SocketAddr::new(ip(source)?, port(source_port)?),
        destination: SocketAddr::new(ip(destination)?, port(destination_port)?),
    })
}

/// A port as §2.1 writes it: decimal digits without a leading zero (`0` alone aside),
/// up to 65535.
fn port(text: &str) -> Option<u16> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    (digits && canonical).then(|| text.parse().ok()).flatten()
}

/// The signature, `0x2_` (version 2) with the command in the low bits, the family, the
/// length of the rest (big-endian), then the addresses and any TLVs, which are skipped.
fn parse_v2(input: &[u8]) -> Result<ProxyHeader, HttpError> {
    let Some(fixed) = input.get(..V2_FIXED) else {
        return Ok(ProxyHeader::Partial);
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if fixed[12] >> 4 != 2 {
        return Err(bad_request("PROXY protocol v2 header of another version"));
    }
    if len > V2_MAX {
        return Err(bad_request("PROXY protocol v2 header over 4096 bytes"));
    }
    let Some(header) = input.get(..len) else {
        return Ok(ProxyHeader::Partial);
    };
    let ends = v2_ends(fixed[12] & 0x0f, fixed[13], &header[V2_FIXED..])?;
    Ok(ProxyHeader::Complete { len, ends })
}

/// The addresses from a version 2 header's command, family and the bytes after the
/// fixed part (addresses, then TLVs).
fn v2_ends(command: u8, family: u8, rest: &[u8]) -> Result<Option<Ends>, HttpError> {
    let short = || bad_request("PROXY protocol v2 header shorter than its addresses");
    match (command, family) {
        // LOCAL: the balancer speaks for itself.
        (0, _) => Ok(None),
        // PROXY over TCP/IPv4: source, destination (4 bytes each), then their ports.
        (1, 0x11) => {
            let a = rest.get(..12).ok_or_else(short)?;
            let ip =
                |at: usize| IpAddr::from(Ipv4Addr::new(a[at], a[at + 1], a[at + 2], a[at + 3]));
            Ok(Some(ends_at(a, [ip(0), ip(4)], 8)))
        }
        // PROXY over TCP/IPv6: 16 bytes each.
        (1, 0x21) => {
            let a = rest.get(..36).ok_or_else(short)?;
            let ip = |at: usize| -> Result<IpAddr, HttpError> {
                let octets: [u8; 16] = a[at..at + 16].try_into().map_err(|_| short())?;
                Ok(Ipv6Addr::from(octets).into())
            };
            Ok(Some(ends_at(a, [ip(0)?, ip(16)?], 32)))
        }
        // UNSPEC, UDP, Unix sockets: nothing to take.
        (1, 0x00 | 0x12 | 0x22 | 0x31 | 0x32) => Ok(None),
        // §2.2: any other family and transport "must be rejected as invalid".
        (1, _) => Err(bad_request(
            "PROXY protocol v2 header with an unknown family",
        )),
        _ => Err(bad_request(
            "PROXY protocol v2 header with an unknown command",
        )),
    }
}

/// The two addresses of a version 2 header, their ports (big-endian, source first)
/// at `ports` in `a`.
fn ends_at(a: &[u8], [source, destination]: [IpAddr; 2], ports: usize) -> Ends {
    let port = |at: usize| u16::from_be_bytes([a[at], a[at + 1]]);
    Ends {
        source: SocketAddr::new(source, port(ports)),
        destination: SocketAddr::new(destination, port(ports + 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole header naming `ends`, "SOURCE DESTINATION", or none for "".
    fn complete(len: usize, ends: &str) -> Result<ProxyHeader, u16> {
        let ends = ends.split_once(' ').map(|(source, destination)| Ends {
            source: source.parse().expect("address"),
            destination: destination.parse().expect("address"),
        });
        Ok(ProxyHeader::Complete { len, ends })
    }

    fn v2(command: u8, family: u8, rest: &[u8]) -> Vec<u8> {
        let len = u16::try_from(rest.len()).expect("short").to_be_bytes();
        [&V2_SIGNATURE[..], &[0x20 | command, family], &len, rest].concat()
    }

    #[test]
    fn version_1_table() {
        let v4 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
        let v6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 80\r\n";
        let longest = format!(
            "PROXY UNKNOWN {0} {0} 65535 65535\r\n",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert_eq!(longest.len(), V1_MAX);
        let cases: &[(&[u8], Result<ProxyHeader, u16>)] = &[
            (v4, complete(45, "192.0.2.1:56324 198.51.100.2:443")),
            (v6, complete(45, "[2001:db8::1]:65535 [2001:db8::2]:80")),
            (longest.as_bytes(), complete(107, "")),
            (b"PROXY UNKNOWN\r\n", complete(15, "")),
            (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", complete(35, "")),
            (
                b"PROXY TCP4 10.0.0.1 10.0.0.2 0 80\r\n",
                complete(35, "10.0.0.1:0 10.0.0.2:80"),
            ),
            // Not all there yet.
            (b"", Ok(ProxyHeader::Partial)),
            (b"PRO", Ok(ProxyHeader::Partial)),
            (
                b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r",
                Ok(ProxyHeader::Partial),
            ),
            // Refused.
            (b"GET / HTTP/1.1\r\n\r\n", Err(400)),
            (b"proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", Err(400)),
            (b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n", Err(400)),
            (b"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.x 1 2\r\n", Err(400)),
            (b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n", Err(400)),
            (b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", Err(400)),
            (b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", Err(400)),
            (b"PROXY TCP4 \xff\r\n", Err(400)),
            (b"PROXY UNKNOWN \xff\xfe\r\n", complete(18, "")),
            (b"PROXY UNKNOWNX\r\n", Err(400)),
            (b"PROXY \r\n", Err(400)),
        ];
        for (input, want) in cases {
            let got = parse_proxy_header(input).map_err(|e| e.status());
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(input));
        }
        // No CRLF within 107 bytes.
        let endless = [&b"PROXY UNKNOWN "[..], &[b'x'; 200]].concat();
        assert_eq!(
            parse_proxy_header(&endless).map_err(|e| e.status()),
            Err(400)
        );
        assert_eq!(
            parse_proxy_header(&endless[..106]),
            Ok(ProxyHeader::Partial)
        );
    }

    #[test]
    fn version_2_table() {
        let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb];
        let mut ipv6 = [0u8; 36];
        ipv6[..16].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        ipv6[16..32].copy_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        ipv6[32..].copy_from_slice(&[0x00, 0x50, 0x01, 0xbb]);
        let with_tlv = [&ipv4[..], &[0x04, 0x00, 0x03, b'v', b'p', b'c']].concat();
        let cases: Vec<(Vec<u8>, Result<ProxyHeader, u16>)> = vec![
            (
                v2(1, 0x11, &ipv4),
                complete(28, "192.0.2.1:56324 198.51.100.2:443"),
            ),
            (
                v2(1, 0x21, &ipv6),
                complete(52, "[2001:db8::1]:80 [2001:db8::2]:443"),
            ),
            (
                v2(1, 0x11, &with_tlv),
                complete(34, "192.0.2.1:56324 198.51.100.2:443"),
            ),
            (v2(0, 0x11, &ipv4), complete(28, "")),
            (v2(0, 0x00, &[]), complete(16, "")),
            (v2(1, 0x00, &[]), complete(16, "")),
            (v2(1, 0x31, &[0; 216]), complete(232, "")),
            (v2(1, 0x12, &ipv4), complete(28, "")),
            (v2(0, 0xff, &[]), complete(16, "")),
            (v2(1, 0x41, &ipv4), Err(400)),
            (v2(1, 0x13, &ipv4), Err(400)),
            (v2(1, 0x01, &ipv4), Err(400)),
            (V2_SIGNATURE[..5].to_vec(), Ok(ProxyHeader::Partial)),
            (v2(1, 0x11, &ipv4)[..20].to_vec(), Ok(ProxyHeader::Partial)),
            (v2(1, 0x11, &ipv4[..8]), Err(400)),
            (v2(1, 0x21, &ipv4), Err(400)),
            (v2(2, 0x11, &ipv4), Err(400)),
            (v2(1, 0x11, &[0; V2_MAX]), Err(400)),
        ];
        for (input, want) in &cases {
            let got = parse_proxy_header(input).map_err(|e| e.status());
            assert_eq!(&got, want, "{input:?}");
        }
        // Version 1 inside the version 2 signature is neither.
        let mut other_version = v2(1, 0x11, &ipv4);
        other_version[12] = 0x11;
        assert_eq!(
            parse_proxy_header(&other_version).map_err(|e| e.status()),
            Err(400)
        );
        let mut wrong = v2(1, 0x11, &ipv4);
        wrong[11] = b'X';
        assert_eq!(parse_proxy_header(&wrong).map_err(|e| e.status()), Err(400));
    }
}
