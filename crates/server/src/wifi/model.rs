//! WiFi's API shapes and checked inputs: a client's MAC address, what the router sends along
//! when it redirects a client to the login (captive-portal forwarding), a router auth URL.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

/// A device's MAC address, kept as `aa:bb:cc:dd:ee:ff`. Accepted with `:` or `-` between the
/// six bytes, `.` between three groups of four digits, or as twelve bare hex digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacAddress(String);

impl MacAddress {
    pub fn parse(raw: &str) -> Result<MacAddress> {
        let invalid = || {
            Error::invalid(
                "invalid_mac",
                "mac must be a MAC address such as aa:bb:cc:dd:ee:ff.",
            )
            .param("mac")
        };
        let raw = raw.trim();
        if raw.len() > 17 {
            return Err(invalid());
        }
        let digits: String = match raw.len() {
            17 => {
                let sep = raw.as_bytes()[2];
                if !(sep == b':' || sep == b'-')
                    || !raw.split(sep as char).all(|part| part.len() == 2)
                {
                    return Err(invalid());
                }
                raw.split(sep as char).collect()
            }
            14 => {
                if !raw.split('.').all(|part| part.len() == 4) || raw.split('.').count() != 3 {
                    return Err(invalid());
                }
                raw.split('.').collect()
            }
            12 => raw.to_owned(),
            _ => return Err(invalid()),
        };
        if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let lower = digits.to_ascii_lowercase();
        let pairs: Vec<&str> = (0..6).map(|i| &lower[2 * i..2 * i + 2]).collect();
        Ok(MacAddress(pairs.join(":")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text a router passes through (a gateway name, its token): 1 to `max` visible ASCII
/// characters without spaces.
fn router_text(raw: &str, max: usize, param: &'static str) -> Result<String> {
    if raw.is_empty() || raw.len() > max || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "invalid_router_parameter",
            format!("{param} must be 1 to {max} visible ASCII characters."),
        )
        .param(param));
    }
    Ok(raw.to_owned())
}

/// An absolute `http(s)` URL of at most `max` characters (see [`crate::http::url::absolute_http`]).
pub fn http_url(raw: &str, max: usize, param: &'static str) -> Result<String> {
    let invalid = || {
        Error::invalid(
            "invalid_url",
            format!(
                "{param} must be an absolute http:// or https:// URL of at most {max} characters."
            ),
        )
        .param(param)
    };
    if raw.len() > max {
        return Err(invalid());
    }
    crate::http::url::absolute_http(raw).ok_or_else(invalid)
}

/// What a router sends with a client it redirects to the login, after openNDS's forwarding
/// authentication (FAS): the gateway's name, the client's MAC and IP, the router's token for
/// this client, and the page the client first asked for. Each has the openNDS name as an alias.
/// All are absent when the code was scanned outside a captive portal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouterParams {
    pub gateway: Option<String>,
    pub mac: Option<MacAddress>,
    pub ip: Option<IpAddr>,
    pub tok: Option<String>,
    pub redir: Option<String>,
}

/// The raw query parameters a router may send.
#[derive(Debug, Default, Deserialize)]
pub struct RawRouterParams {
    #[serde(alias = "gatewayname", alias = "gw_id")]
    pub gw: Option<String>,
    #[serde(alias = "clientmac")]
    pub mac: Option<String>,
    #[serde(alias = "clientip")]
    pub ip: Option<String>,
    #[serde(alias = "token")]
    pub tok: Option<String>,
    #[serde(alias = "originurl", alias = "url")]
    pub redir: Option<String>,
}

impl RouterParams {
    /// Checks the router's parameters; empty values count as absent. With any of them present
    /// the client's MAC is required: it is what the router's grant check asks about.
    pub fn parse(raw: RawRouterParams) -> Result<RouterParams> {
        let present = |v: Option<String>| v.filter(|s| !s.is_empty());
        let params = RouterParams {
            gateway: present(raw.gw)
                .map(|g| router_text(&g, 64, "gw"))
                .transpose()?,
            mac: present(raw.mac)
                .map(|m| MacAddress::parse(&m))
                .transpose()?,
            ip: present(raw.ip)
                .map(|ip| {
                    ip.parse::<IpAddr>().map_err(|_| {
                        Error::invalid("invalid_ip", "ip must be an IPv4 or IPv6 address.")
                            .param("ip")
                    })
                })
                .transpose()?,
            tok: present(raw.tok)
                .map(|t| router_text(&t, 256, "tok"))
                .transpose()?,
            redir: present(raw.redir)
                .map(|r| http_url(&r, 2048, "redir"))
                .transpose()?,
        };
        if params.mac.is_none() && params.from_router() {
            return Err(Error::invalid(
                "mac_required",
                "A router that sends a client here must send the client's mac.",
            )
            .param("mac"));
        }
        Ok(params)
    }

    /// True when a router sent the client (any of its parameters is present).
    pub fn from_router(&self) -> bool {
        self.gateway.is_some()
            || self.mac.is_some()
            || self.ip.is_some()
            || self.tok.is_some()
            || self.redir.is_some()
    }

    /// The parameters as a query string, to carry them through the login forms.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(g) = &self.gateway {
            q.append_pair("gw", g);
        }
        if let Some(m) = &self.mac {
            q.append_pair("mac", m.as_str());
        }
        if let Some(ip) = &self.ip {
            q.append_pair("ip", &ip.to_string());
        }
        if let Some(t) = &self.tok {
            q.append_pair("tok", t);
        }
        if let Some(r) = &self.redir {
            q.append_pair("redir", r);
        }
        q.finish()
    }
}

/// `POST /v1/stores/{id}/wifi-key`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWifiKey {
    /// The router's address for authenticating a client after login, e.g.
    /// `http://192.168.8.1:2050/opennds_auth/`: the login page sends the client there with
    /// `?tok=<the router's token>&redir=<the page first asked for>`. Without it the page says
    /// "you're online" and the router asks `POST /v1/wifi/grants/verify`.
    pub auth_url: Option<String>,
}

/// A store's WiFi key. `secret` (`wk_…`) is present only in the answer that created it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WifiKey {
    pub store_id: String,
    /// `wk_…` and its last four characters.
    pub redacted: String,
    pub auth_url: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `POST /v1/wifi/grants/verify`: may this device use the store's internet?
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyGrant {
    /// The client's MAC address.
    pub mac: String,
    /// The router's token for the client, when the router issued one: it must match the one the
    /// client brought to the login.
    pub tok: Option<String>,
}

/// The answer to a router's grant check.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantVerdict {
    pub allowed: bool,
    pub store_id: String,
    /// When the grant ends (RFC 3339); `null` when not allowed.
    pub expires_at: Option<String>,
    /// `wfg_…`
    pub grant_id: Option<String>,
    /// The consumer who logged in (`usr_…`).
    pub consumer_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_normalised() {
        for raw in [
            "AA:BB:CC:DD:EE:0F",
            "aa-bb-cc-dd-ee-0f",
            "aabb.ccdd.ee0f",
            "AABBCCDDEE0F",
        ] {
            assert_eq!(
                MacAddress::parse(raw).unwrap().as_str(),
                "aa:bb:cc:dd:ee:0f"
            );
        }
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:gg",
            "aa:bb-cc:dd:ee:ff",
            "aabbccddeeff00",
            "a:bb:cc:dd:ee:fff",
        ] {
            assert_eq!(
                MacAddress::parse(bad).unwrap_err().code,
                "invalid_mac",
                "{bad}"
            );
        }
    }

    #[test]
    fn router_parameters_need_the_mac_and_round_trip() {
        assert!(
            !RouterParams::parse(RawRouterParams::default())
                .unwrap()
                .from_router()
        );
        let e = RouterParams::parse(RawRouterParams {
            tok: Some("abc".into()),
            ..RawRouterParams::default()
        })
        .unwrap_err();
        assert_eq!(e.code, "mac_required");
        let p = RouterParams::parse(RawRouterParams {
            gw: Some("Lotus-Jingan".into()),
            mac: Some("AA-BB-CC-DD-EE-FF".into()),
            ip: Some("192.168.8.23".into()),
            tok: Some("5c1f0a".into()),
            redir: Some("http://example.com/a?b=c".into()),
        })
        .unwrap();
        let again: RawRouterParams = serde_urlencoded::from_str(&p.to_query()).unwrap();
        assert_eq!(RouterParams::parse(again).unwrap(), p);
        let bad_redir = RouterParams::parse(RawRouterParams {
            mac: Some("aabbccddeeff".into()),
            redir: Some("javascript:alert(1)".into()),
            ..RawRouterParams::default()
        });
        assert_eq!(bad_redir.unwrap_err().code, "invalid_url");
    }
}
