//! Where webhooks may go: public internet addresses only, unless the node allows private
//! targets (`webhooks_allow_private`, on in dev mode).
//!
//! An endpoint URL is a request the platform makes on a merchant's behalf; without this guard a
//! merchant could make the platform post into its own network (a database's HTTP port, a cloud
//! metadata service at 169.254.169.254). The host is checked when an endpoint is registered or
//! enabled, and again at every delivery: DNS can change after registration. At delivery the
//! check lives in the HTTP client's resolver ([`GuardedResolver`]), so the addresses checked are
//! the addresses connected to; IP literals, which skip the resolver, are checked before sending.

use crate::error::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a host's name may take to resolve when an endpoint is registered.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a host may not be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// True for an address on the public internet; false for loopback, private, shared (CGNAT),
/// link-local, multicast, broadcast, unspecified, documentation, benchmarking and reserved
/// ranges, and for IPv6 forms that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

/// Refuses if any of `addresses` is not public (a name resolving to both is refused: the
/// connection may take either).
pub fn check_addresses(
    host: &str,
    addresses: impl IntoIterator<Item = IpAddr>,
) -> Result<(), Refused> {
    let mut any = false;
    for ip in addresses {
        any = true;
        if !is_public(ip) {
            return Err(Refused(format!(
                "{host} resolves to {ip}, a private, loopback, link-local or multicast address"
            )));
        }
    }
    if !any {
        return Err(Refused(format!("{host} resolves to no address")));
    }
    Ok(())
}

/// The host of a URL as an IP address, when it is one.
fn literal(url: &reqwest::Url) -> Option<IpAddr> {
    // The URL parser writes every IPv4 form (`0x7f000001`, `127.1`) as dotted decimal and
    // IPv6 in brackets.
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks an IP-literal host without resolving anything; a name is left to the resolver.
pub fn check_literal(url: &reqwest::Url) -> Result<(), Refused> {
    match literal(url) {
        Some(ip) if !is_public(ip) => Err(Refused(format!(
            "{ip} is a private, loopback, link-local or multicast address"
        ))),
        _ => Ok(()),
    }
}

/// The registration check: an endpoint whose host is, or resolves to, a non-public address is
/// refused with `400 webhook_url_not_allowed`; a name that does not resolve with
/// `400 webhook_url_unresolvable`.
pub async fn check_endpoint(url: &str, allow_private: bool) -> crate::error::Result<()> {
    if allow_private {
        return Ok(());
    }
    let not_allowed = |why: Refused| {
        Error::invalid(
            "webhook_url_not_allowed",
            format!("url may not point into a private network: {why}."),
        )
        .param("url")
    };
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(Error::invalid("url_invalid", "url is not a valid URL.").param("url"));
    };
    if literal(&parsed).is_some() {
        return check_literal(&parsed).map_err(not_allowed);
    }
    let host = parsed.host_str().unwrap_or_default().to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let resolved = tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await;
    match resolved {
        Ok(Ok(addresses)) => {
            check_addresses(&host, addresses.map(|a: SocketAddr| a.ip())).map_err(not_allowed)
        }
        _ => Err(Error::invalid(
            "webhook_url_unresolvable",
            format!("url's host {host} does not resolve to an address."),
        )
        .param("url")),
    }
}

/// The webhook client's resolver: resolves with the system's resolver and refuses names that
/// lead to non-public addresses (unless private targets are allowed).
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                check_addresses(&host, addresses.iter().map(SocketAddr::ip))?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                Box::new(addresses.into_iter()) as reqwest::dns::Addrs
            )
        })
    }
}

/// The guard's reason, if it is what made a request fail.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn a_name_with_one_private_address_is_refused() {
        let public: IpAddr = "8.8.8.8".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(check_addresses("a.example", [public]).is_ok());
        assert!(check_addresses("a.example", [public, private]).is_err());
        assert!(check_addresses("a.example", []).is_err());
    }

    #[test]
    fn literal_hosts_are_checked_without_resolving() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_literal(&url("http://127.0.0.1:9000/hook")).is_err());
        assert!(check_literal(&url("http://[::1]/hook")).is_err());
        assert!(check_literal(&url("http://0x7f000001/hook")).is_err());
        assert!(check_literal(&url("https://8.8.8.8/hook")).is_ok());
        assert!(check_literal(&url("https://example.com/hook")).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_private_addresses() {
        use reqwest::dns::Resolve;
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let strict = GuardedResolver {
            allow_private: false,
        };
        let err = match strict.resolve(name).await {
            Ok(_) => panic!("localhost passed the guard"),
            Err(e) => e,
        };
        assert!(refusal_in(err.as_ref()).is_some(), "{err}");
        let open = GuardedResolver {
            allow_private: true,
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
