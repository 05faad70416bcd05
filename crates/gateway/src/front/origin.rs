//! DNS-rebinding guard (T6): the `Host` header must name an allowed host and a
//! present `Origin` must be an allowed origin; anything else is refused with 403
//! before the request is read.

/// Why a request was refused by the guard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("missing Host header")]
    MissingHost,
    #[error("Host `{0}` is not allowed; add it to `listen.allowed_hosts` if it is really this gateway")]
    Host(String),
    #[error("Origin `{0}` is not allowed; add it to `listen.allowed_origins` to let that web page call the gateway")]
    Origin(String),
}

/// The allowed hosts and origins of one front.
#[derive(Debug, Clone)]
pub struct OriginGuard {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl OriginGuard {
    pub fn new(hosts: &[String], origins: &[String]) -> Self {
        Self {
            hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            origins: origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
        }
    }

    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), OriginError> {
        let host = host.ok_or(OriginError::MissingHost)?;
        // Compared without a lowercased copy: the allowed names are lowercase already.
        let name = strip_port(host);
        if !self.hosts.iter().any(|h| h == "*" || h.eq_ignore_ascii_case(name)) {
            return Err(OriginError::Host(host.to_owned()));
        }
        if let Some(origin) = origin
            && !self.origin_allowed(&origin.to_ascii_lowercase())
        {
            return Err(OriginError::Origin(origin.to_owned()));
        }
        Ok(())
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.origins.iter().any(|allowed| {
            if allowed == "*" || allowed == origin {
                return true;
            }
            match allowed.strip_suffix(":*") {
                Some(base) => origin == base || origin.strip_prefix(base).is_some_and(is_port_suffix),
                None => false,
            }
        })
    }
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_port_suffix(rest: &str) -> bool {
    rest.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ListenConfig;

    #[test]
    fn loopback_defaults() {
        let g = OriginGuard::new(
            &ListenConfig::default_allowed_hosts(),
            &ListenConfig::default_allowed_origins(),
        );
        let cases = [
            (Some("127.0.0.1:8080"), None, true),
            (Some("localhost"), None, true),
            (Some("LOCALHOST:1"), None, true),
            (Some("[::1]:8080"), None, true),
            (Some("evil.example:8080"), None, false),
            (Some("127.0.0.1.nip.io:8080"), None, false),
            (None, None, false),
            (Some("localhost:8080"), Some("http://localhost:3000"), true),
            (Some("localhost:8080"), Some("http://127.0.0.1"), true),
            (Some("localhost:8080"), Some("https://evil.example"), false),
            (Some("localhost:8080"), Some("http://localhost.evil.example"), false),
            (Some("localhost:8080"), Some("http://localhost:80x"), false),
            (Some("localhost:8080"), Some("null"), false),
        ];
        for (host, origin, ok) in cases {
            assert_eq!(g.check(host, origin).is_ok(), ok, "{host:?} {origin:?}");
        }
    }
}
