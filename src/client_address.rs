//! Who a request comes from, for the throttles: the socket's address, or behind trusted
//! reverse proxies the address they forwarded. IPv6 clients are counted by their /64, the
//! block one subscriber gets.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
};

use axum::{
    extract::{ConnectInfo, Request},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use serde::{Deserialize, Serialize};

/// A list of address blocks (`10.0.0.0/8`, `fd00::/8`, or single addresses), written
/// comma-separated in the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidrs(Vec<(IpAddr, u8)>);

impl Cidrs {
    pub fn parse(list: &str) -> Result<Cidrs, String> {
        let blocks = list.split(',').map(str::trim).filter(|b| !b.is_empty());
        blocks.map(block).collect::<Result<_, _>>().map(Cidrs)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|&(net, len)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix(u32::from(net).into(), len, 32) == prefix(u32::from(ip).into(), len, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix(net.into(), len, 128) == prefix(ip.into(), len, 128)
            }
            _ => false,
        })
    }
}

fn block(text: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("`{text}` is not an address block like 10.0.0.0/8 or fd00::/8");
    let (address, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return Err(bad());
    }
    Ok((canonical(address), len))
}

/// The top `len` of `bits` bits of `value`.
fn prefix(value: u128, len: u8, bits: u8) -> u128 {
    if len == 0 {
        0
    } else {
        value >> (bits - len)
    }
}

/// IPv4 addresses mapped into IPv6 (`::ffff:a.b.c.d`, as dual-stack sockets report them)
/// count as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl TryFrom<String> for Cidrs {
    type Error = String;

    fn try_from(list: String) -> Result<Self, String> {
        Cidrs::parse(&list)
    }
}

impl From<Cidrs> for String {
    fn from(c: Cidrs) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cidrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let blocks: Vec<String> = self
            .0
            .iter()
            .map(|(ip, len)| format!("{ip}/{len}"))
            .collect();
        f.write_str(&blocks.join(","))
    }
}

/// The client a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// From the socket's `peer`: when it is a trusted proxy, the rightmost `X-Forwarded-For`
    /// address that is not one (addresses left of it could be anything the client wrote).
    pub fn of(peer: IpAddr, headers: &HeaderMap, trusted: &Cidrs) -> ClientAddress {
        let mut client = canonical(peer);
        if trusted.contains(client) {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .collect::<Vec<_>>();
            for hop in forwarded.iter().rev() {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                    break;
                };
                client = canonical(ip);
                if !trusted.contains(client) {
                    break;
                }
            }
        }
        ClientAddress(client)
    }

    /// The throttle bucket name: the address, or an IPv6 address's /64.
    pub fn bucket(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

/// Middleware: records the request's [`ClientAddress`] for the throttles. `trusted` are the
/// configured proxies.
pub async fn identify(trusted: &Cidrs, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let Some(peer) = peer {
        let client = ClientAddress::of(peer, req.headers(), trusted);
        req.extensions_mut().insert(client);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(list: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in list {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_match() {
        let c = Cidrs::parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8").unwrap();
        assert!(c.contains(ip("10.255.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(c.contains(ip("192.168.1.7")));
        assert!(!c.contains(ip("192.168.1.8")));
        assert!(c.contains(ip("fd12::1")));
        assert!(!c.contains(ip("fe80::1")));
        assert!(Cidrs::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert_eq!(c.to_string(), "10.0.0.0/8,192.168.1.7/32,fd00::/8");
        for bad in ["10.0.0.0/33", "10.0.0/8", "proxy", "::/129"] {
            assert!(Cidrs::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cidrs::parse(" ").unwrap(), Cidrs::default());
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let proxies = Cidrs::parse("10.0.0.0/8").unwrap();
        let spoofed = forwarded(&["6.6.6.6, 203.0.113.9", "10.0.0.2"]);
        // From a proxy: the rightmost address it did not add itself.
        let client = ClientAddress::of(ip("10.0.0.1"), &spoofed, &proxies);
        assert_eq!(client, ClientAddress(ip("203.0.113.9")));
        // From anyone else the header is ignored.
        let direct = ClientAddress::of(ip("198.51.100.4"), &spoofed, &proxies);
        assert_eq!(direct, ClientAddress(ip("198.51.100.4")));
        let untrusted = ClientAddress::of(ip("10.0.0.1"), &spoofed, &Cidrs::default());
        assert_eq!(untrusted, ClientAddress(ip("10.0.0.1")));
        // Garbage stops the walk at the last address a proxy vouched for.
        let garbage = forwarded(&["not-an-ip, 10.0.0.3"]);
        let client = ClientAddress::of(ip("10.0.0.1"), &garbage, &proxies);
        assert_eq!(client, ClientAddress(ip("10.0.0.3")));
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        let a = ClientAddress(ip("2001:db8:1:2:aaaa::1")).bucket();
        let b = ClientAddress(ip("2001:db8:1:2:ffff::9")).bucket();
        let c = ClientAddress(ip("2001:db8:1:3::1")).bucket();
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(ClientAddress(ip("192.0.2.1")).bucket(), "192.0.2.1");
    }
}
