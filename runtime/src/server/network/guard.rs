//! Who may use the listener, checked on every HTTP request and before every WebSocket upgrade:
//! the bearer token, and the `Host` and `Origin` headers that keep web pages out (a cross-site
//! request carries the page's `Origin`; a DNS-rebinding attack carries the attacker's domain in
//! `Host`).

use std::net::IpAddr;

use hyper::header::{HeaderMap, AUTHORIZATION, HOST, ORIGIN};
use hyper::StatusCode;

/// The listener's admission rules.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// `Bearer <token>` as sent, when a token is required.
    expected: Option<Vec<u8>>,
    /// Host names accepted besides IP literals and `localhost` (`*`: any).
    hosts: Vec<String>,
    /// Origins accepted (`*`: any); a request without `Origin` (not from a browser) passes.
    origins: Vec<String>,
}

/// Why a request was turned away, as its HTTP status and a message saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Guard {
    pub fn new(token: Option<&str>, hosts: Vec<String>, origins: Vec<String>) -> Self {
        Guard { expected: token.map(|t| format!("Bearer {t}").into_bytes()), hosts, origins }
    }

    pub fn requires_token(&self) -> bool {
        self.expected.is_some()
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let refuse = |status, message: String| Err(Refusal { status, message });
        let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !self.host_allowed(host) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("Host {host:?} is not allowed: connect by IP address or localhost, or start the server with --allow-host"),
            );
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin)) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!("Origin {origin:?} is not allowed: start the server with --allow-origin {origin}"),
                );
            }
        }
        if let Some(expected) = &self.expected {
            let given = headers.get(AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
            if !constant_time_eq(given, expected) {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong bearer token: send `Authorization: Bearer <token>`".into(),
                );
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = strip_port(host);
        // A rebinding attack needs a domain name; an IP literal names the machine itself.
        name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self.hosts.iter().any(|h| h == "*" || h.eq_ignore_ascii_case(name))
    }
}

/// `example.com:7420` → `example.com`, `[::1]:7420` → `::1`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Compares in time that does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn hosts_by_ip_and_localhost_pass_and_domains_need_allowing() {
        let g = Guard::default();
        for ok in ["127.0.0.1:7420", "[::1]:7420", "localhost:80", "10.0.0.5", "LOCALHOST"] {
            assert!(g.check(&headers(&[("host", ok)])).is_ok(), "{ok}");
        }
        let rebinding = g.check(&headers(&[("host", "attacker.example:7420")])).unwrap_err();
        assert_eq!(rebinding.status, StatusCode::FORBIDDEN);
        let g = Guard::new(None, vec!["agent.lan".into()], vec![]);
        assert!(g.check(&headers(&[("host", "agent.lan:7420")])).is_ok());
    }

    #[test]
    fn browser_origins_need_allowing() {
        let g = Guard::default();
        let page = g.check(&headers(&[("host", "127.0.0.1"), ("origin", "https://evil.example")])).unwrap_err();
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        let g = Guard::new(None, vec![], vec!["http://localhost:3000".into()]);
        assert!(g.check(&headers(&[("host", "127.0.0.1"), ("origin", "http://localhost:3000")])).is_ok());
        assert!(g.check(&headers(&[("host", "127.0.0.1"), ("origin", "null")])).is_err());
    }

    #[test]
    fn the_token_is_compared_whole() {
        let g = Guard::new(Some("s3cret"), vec![], vec![]);
        assert!(g.check(&headers(&[("host", "127.0.0.1"), ("authorization", "Bearer s3cret")])).is_ok());
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "s3cret", ""] {
            let e = g.check(&headers(&[("host", "127.0.0.1"), ("authorization", wrong)])).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{wrong}");
        }
    }
}
