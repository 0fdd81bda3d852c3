//! Absolute web addresses that o2o keeps or sends people to (webhook endpoints, a WiFi
//! router's login and the page a client first asked for), checked one way everywhere.

/// `raw` as an absolute `http` or `https` URL with a host, in the parser's normal form; `None`
/// for anything else: no such URL, a user or password in it, port 0 (which reaches nothing),
/// or a control character or space anywhere (the parser would drop those at the ends and tabs
/// and line breaks inside, so what is kept would not be what was sent).
pub fn absolute_http(raw: &str) -> Option<String> {
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    let url = reqwest::Url::parse(raw).ok()?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.port() != Some(0);
    usable.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_with_a_host_pass_and_in_normal_form() {
        assert_eq!(
            absolute_http("HTTPS://Example.com/hooks").as_deref(),
            Some("https://example.com/hooks")
        );
        assert!(absolute_http("http://127.0.0.1:9000/").is_some());
        for bad in [
            "",
            "example.com/hooks",
            "/hooks",
            "ftp://example.com/",
            "javascript:alert(1)",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "http://example.com/\u{0}",
            " https://example.com/",
            "https://example.com/a\tb",
            "https://example.com/a b",
            "https://example.com/\n",
            "http://127.0.0.1:0/",
            "https://example.com:0/hooks",
        ] {
            assert_eq!(absolute_http(bad), None, "{bad:?}");
        }
    }
}
