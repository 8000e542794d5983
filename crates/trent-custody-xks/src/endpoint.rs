//! Which proxy endpoints Trent may call (server-side request forgery guard).
//!
//! `XksProxyUriEndpoint` is chosen by any caller allowed `kms:CreateCustomKeyStore`, and
//! Trent then sends requests there from inside the operator's network. AWS only calls public
//! endpoints (or a VPC endpoint service); Trent likewise refuses an endpoint that is, or
//! resolves to, a loopback, private, link-local (which includes the cloud metadata address
//! 169.254.169.254), shared (100.64/10), benchmarking (198.18/15), documentation, reserved
//! (240/4), unspecified, multicast or broadcast address, or an IPv6 address that embeds an
//! IPv4 one (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo; an IPv4-mapped address is
//! judged by its IPv4 address),
//! unless the operator lists its host in `[xks_client] allowed_proxy_hosts`. The check is
//! made twice: on the endpoint's text when a client is made (CreateCustomKeyStore,
//! UpdateCustomKeyStore), and on every resolved address before each connection, so a name
//! that later resolves to an internal address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr};

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let [first, second, third, ..] = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local (AWS's IPv6 metadata address fd00:ec2::254 is one).
                || (first & 0xfe00) == 0xfc00
                // fe80::/10 link-local.
                || (first & 0xffc0) == 0xfe80
                // fec0::/10 site-local (deprecated, still routed internally by some).
                || (first & 0xffc0) == 0xfec0
                // 2002::/16 6to4 and 2001::/32 Teredo embed an IPv4 address.
                || first == 0x2002
                || (first == 0x2001 && second == 0)
                // 2001:db8::/32 documentation.
                || (first == 0x2001 && second == 0x0db8)
                // 64:ff9b:1::/48, local-use NAT64.
                || (first == 0x64 && second == 0xff9b && third == 1)
                // ::/96 (IPv4-compatible, deprecated) and 64:ff9b::/96 (NAT64) hide IPv4.
                || v6.segments().get(..6) == Some(&[0, 0, 0, 0, 0, 0])
                || v6.segments().get(..6) == Some(&[0x64, 0xff9b, 0, 0, 0, 0]))
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        // 100.64.0.0/10, carrier-grade NAT (shared address space).
        || (a == 100 && (64..128).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b & 0xfe) == 18)
        // 240.0.0.0/4, reserved (and 255.255.255.255).
        || a >= 240
        // 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24: documentation (TEST-NET-1..3).
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113))
}

/// The operator's allowlist, lower-cased host names or IP literals as written in
/// `XksProxyUriEndpoint`.
#[derive(Debug, Clone, Default)]
pub struct EndpointPolicy {
    allowed: Vec<String>,
}

impl EndpointPolicy {
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Self {
        Self {
            allowed: allowed
                .into_iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Whether the operator listed `host`: then any address it resolves to is accepted.
    pub fn listed(&self, host: &str) -> bool {
        self.allowed.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The check on the endpoint's text: an IP literal must be public, and `localhost`
    /// (or `*.localhost`, which resolvers map to loopback) is refused, unless listed.
    pub fn check_host(&self, host: &str) -> Result<(), String> {
        if self.listed(host) {
            return Ok(());
        }
        let lower = host.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        if lower == "localhost" || lower.ends_with(".localhost") {
            return Err(format!("{host} is a loopback name"));
        }
        if let Ok(ip) = lower.parse::<IpAddr>()
            && !is_public(ip)
        {
            return Err(format!("{host} is not a public address"));
        }
        Ok(())
    }

    /// The check on each resolved address of an unlisted host.
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        if self.listed(host) || is_public(ip) {
            Ok(())
        } else {
            Err(format!(
                "{host} resolves to {ip}, which is not a public address"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn internal_addresses_are_refused_unless_listed() {
        let policy = EndpointPolicy::new(["xks.example.internal".to_string(), "127.0.0.1".into()]);
        for host in [
            "localhost",
            "LOCALHOST",
            "proxy.localhost",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "127.0.0.2",
        ] {
            assert!(policy.check_host(host).is_err(), "{host}");
        }
        for host in [
            "127.0.0.1",
            "xks.example.internal",
            "xks.example.com",
            "8.8.8.8",
        ] {
            assert!(policy.check_host(host).is_ok(), "{host}");
        }
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        };
        for addr in [
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::",
            "64:ff9b::a00:1",
        ] {
            assert!(
                policy.check_address("xks.example.com", ip(addr)).is_err(),
                "{addr}"
            );
        }
        assert!(
            policy
                .check_address("xks.example.com", ip("2600:1f18::1"))
                .is_ok()
        );
        // A listed host may resolve anywhere (an operator's internal proxy).
        assert!(
            policy
                .check_address("xks.example.internal", ip("10.1.2.3"))
                .is_ok()
        );
    }

    #[test]
    fn special_purpose_ranges_are_refused() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        for addr in [
            "198.18.0.1",
            "198.19.255.254",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.255",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
            "2002:a00:1::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:db8::1",
            "64:ff9b:1::a00:1",
            "fec0::1",
            "feff::1",
            // IPv4-mapped: judged by the IPv4 address.
            "::ffff:198.18.0.1",
            "::ffff:240.0.0.1",
            "::ffff:203.0.113.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            let parsed = ip(addr);
            assert!(parsed.is_some(), "{addr}");
            assert!(!parsed.is_some_and(is_public), "{addr}");
        }
        for addr in [
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.1",
            "192.0.3.1",
            "198.51.101.1",
            "203.0.114.1",
            "8.8.8.8",
            "::ffff:8.8.8.8",
            "2001:4860:4860::8888",
            "2003::1",
            "64:ff9b:2::1",
        ] {
            assert!(ip(addr).is_some_and(is_public), "{addr}");
        }
    }
}
