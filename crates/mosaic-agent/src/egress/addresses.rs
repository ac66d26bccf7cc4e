//! Which network addresses outbound requests may reach: the kinds of internal address,
//! CIDR blocks, the [`AddressPolicy`] over them, and [`PolicyResolver`], which applies the
//! policy to the addresses a host name resolves to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// What kind of internal address this is (`"loopback"`, `"private"`, `"link-local"`, …),
/// or `None` for an ordinary public address. IPv6 forms that carry an IPv4 address
/// (IPv4-mapped, IPv4-compatible, NAT64, 6to4) are judged by that IPv4 address.
pub fn internal_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => internal_kind_v4(v4),
        IpAddr::V6(v6) => internal_kind_v6(v6),
    }
}

/// Whether an address is one outbound requests must not reach by default: loopback,
/// private, link-local, unspecified, broadcast, CGNAT, multicast, reserved and
/// documentation ranges, in IPv4, IPv6 and the IPv6 forms of IPv4 addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    internal_kind(ip).is_some()
}

fn internal_kind_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = if a == 127 {
        "loopback"
    } else if a == 0 {
        // 0.0.0.0 reaches the local host on Linux; the rest of 0/8 is "this network".
        "unspecified"
    } else if a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168) {
        "private"
    } else if a == 100 && (b & 0xc0) == 64 {
        "shared (CGNAT)"
    } else if a == 169 && b == 254 {
        "link-local"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol"
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        "documentation"
    } else if a == 198 && (b & 0xfe) == 18 {
        "benchmarking"
    } else if (a & 0xf0) == 224 {
        "multicast"
    } else if ip == Ipv4Addr::BROADCAST {
        "broadcast"
    } else if (a & 0xf0) == 240 {
        "reserved"
    } else {
        return None;
    };
    Some(kind)
}

fn internal_kind_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_ipv4(ip) {
        return internal_kind_v4(v4);
    }
    let s = ip.segments();
    let kind = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[0] == 0x2002 {
        // 6to4: the IPv4 address of the tunnel end sits in bits 16..48.
        let o = ip.octets();
        return internal_kind_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        "local-use NAT64"
    } else if s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
        "discard-only"
    } else if s[0] == 0x2001 && s[1] == 0xdb8 {
        "documentation"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique-local (private)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local"
    } else if (s[0] & 0xff00) == 0xff00 {
        "multicast"
    } else {
        return None;
    };
    Some(kind)
}

/// The IPv4 address a packet to this IPv6 address is delivered to, where the address
/// is only an IPv6 spelling of one: IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d` (deprecated, but still routed by some stacks) and NAT64 `64:ff9b::a.b.c.d`.
/// `::` and `::1` are IPv6's own unspecified and loopback addresses, not IPv4 ones.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        _ => None,
    }
}

/// An address, with the IPv4 address it stands for when it is an IPv6 spelling of one.
pub struct Shown(pub IpAddr);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V6(v6) => match embedded_ipv4(v6) {
                Some(v4) => write!(f, "{v6} (that is {v4})"),
                None => write!(f, "{v6}"),
            },
            IpAddr::V4(v4) => write!(f, "{v4}"),
        }
    }
}

/// A CIDR block, `10.0.0.0/8` or `fd00::/8`; a bare address means just that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("'{0}' is not an IP address (expected a CIDR block like 10.0.0.0/8 or fd00::/8)")]
    Address(String),
    #[error("'{0}' is not a prefix length for this address family (0..={1})")]
    Prefix(String, u8),
}

impl Network {
    /// The block of `prefix` leading bits of `addr`; bits after the prefix are ignored.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Network, NetworkError> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(NetworkError::Prefix(prefix.to_string(), max));
        }
        Ok(Network {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this block. An IPv6 spelling of an IPv4 address (see
    /// [`embedded_ipv4`]) lies in an IPv4 block when its IPv4 address does.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match embedded_ipv4(v6) {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(s: &str) -> Result<Network, NetworkError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| NetworkError::Address(addr.to_string()))?;
        let max = max_prefix(addr);
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| NetworkError::Prefix(p.to_string(), max))?,
        };
        Network::new(addr, prefix)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which addresses outbound requests may reach: public ones always; internal ones
/// (see [`is_internal`]) only when private addresses are allowed outright or the address
/// lies in one of the `allow` blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub allow: Vec<Network>,
}

impl AddressPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.refuses(ip).is_none()
    }

    /// What kind of internal address `ip` is when the policy refuses it.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_private || self.allow.iter().any(|n| n.contains(ip)) {
            return None;
        }
        internal_kind(ip)
    }
}

/// A host name whose addresses the policy refuses, every one of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} resolves only to internal addresses ({})", list(.addresses))]
pub struct InternalHost {
    pub host: String,
    pub addresses: Vec<IpAddr>,
}

fn list(addresses: &[IpAddr]) -> String {
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A reqwest DNS resolver that resolves with the system resolver and keeps only the
/// addresses the policy permits, failing with [`InternalHost`] when none are left.
#[derive(Debug, Clone, Default)]
pub struct PolicyResolver(pub Arc<AddressPolicy>);

impl PolicyResolver {
    pub fn new(policy: AddressPolicy) -> Self {
        PolicyResolver(Arc::new(policy))
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.0
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if all.is_empty() {
                return Err(format!("{host} does not resolve to any address").into());
            }
            let (permitted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                all.into_iter().partition(|a| policy.permits(a.ip()));
            if permitted.is_empty() {
                let mut addresses: Vec<IpAddr> = refused.iter().map(SocketAddr::ip).collect();
                addresses.sort();
                addresses.dedup();
                return Err(Box::new(InternalHost { host, addresses }) as _);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_named_by_kind() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("127.255.0.2", Some("loopback")),
            ("0.0.0.0", Some("unspecified")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared (CGNAT)")),
            ("100.127.255.255", Some("shared (CGNAT)")),
            ("169.254.169.254", Some("link-local")),
            ("192.0.0.170", Some("IETF protocol")),
            ("192.0.2.1", Some("documentation")),
            ("198.18.0.1", Some("benchmarking")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
            ("240.0.0.1", Some("reserved")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::127.0.0.1", Some("loopback")),
            ("64:ff9b::10.0.0.1", Some("private")),
            ("64:ff9b:1::1", Some("local-use NAT64")),
            ("2002:7f00:1::", Some("loopback")),
            ("2001:db8::1", Some("documentation")),
            ("fd12:3456::1", Some("unique-local (private)")),
            ("fe80::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("ff02::1", Some("multicast")),
            ("100::1", Some("discard-only")),
            ("8.8.8.8", None),
            ("100.128.0.1", None),
            ("172.32.0.1", None),
            ("1.1.1.1", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::8.8.8.8", None),
            ("2606:4700:4700::1111", None),
        ];
        let got: Vec<_> = cases
            .iter()
            .map(|(a, _)| (*a, internal_kind(ip(a))))
            .collect();
        assert_eq!(got, cases.to_vec());
    }

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.200.1.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.0.0.5")));
        let one: Network = "127.0.0.2".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.2/32");
        assert!(one.contains(ip("127.0.0.2")) && !one.contains(ip("127.0.0.1")));
        let v6: Network = "fd00::1/8".parse().unwrap();
        assert_eq!(v6.to_string(), "fd00::/8");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("10.0.0.1")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert_eq!(
            "10.0.0.0/33".parse::<Network>(),
            Err(NetworkError::Prefix("33".into(), 32))
        );
        assert!("example.com/8".parse::<Network>().is_err());
    }

    #[test]
    fn policy_permits_public_allowed_or_everything_when_private_is_allowed() {
        let strict = AddressPolicy::default();
        assert!(strict.permits(ip("93.184.216.34")));
        assert_eq!(strict.refuses(ip("127.0.0.1")), Some("loopback"));
        let listed = AddressPolicy {
            allow_private: false,
            allow: vec!["127.0.0.2/32".parse().unwrap()],
        };
        assert!(listed.permits(ip("127.0.0.2")));
        assert!(!listed.permits(ip("127.0.0.1")));
        let open = AddressPolicy {
            allow_private: true,
            allow: vec![],
        };
        assert!(open.permits(ip("169.254.169.254")));
    }
}
