//! Webhook URLs: `https://host[:port]/path?query` (or `http://` where plain HTTP is allowed),
//! parsed once so the sender knows exactly which host, port and path it talks to. User
//! information, fragments, spaces and control characters are refused: a URL that could be
//! read two ways is not used.

use std::fmt;
use std::net::IpAddr;

/// Longest webhook URL.
pub const MAX_URL_BYTES: usize = 2048;

/// Where a webhook is POSTed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `https` (true) or `http`.
    pub https: bool,
    /// The host: a lowercase DNS name, or an address ([`WebhookTarget::ip`]).
    pub host: String,
    /// The port (default 443 or 80).
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

/// Why a webhook URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not `https://` (nor `http://`).
    #[error("a webhook URL starts with https://")]
    Scheme,
    /// Longer than [`MAX_URL_BYTES`], or with spaces or control characters.
    #[error("a webhook URL is at most {MAX_URL_BYTES} characters without spaces")]
    Text,
    /// `user@` or a `#fragment`.
    #[error("a webhook URL has no user name, password or #fragment")]
    Parts,
    /// The host or port is missing or malformed.
    #[error("the webhook URL's host or port is not valid")]
    Host,
}

impl WebhookTarget {
    /// Parses `url`.
    pub fn parse(url: &str) -> Result<WebhookTarget, TargetError> {
        if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(TargetError::Text);
        }
        let lower = url
            .get(..8)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let (https, rest) = if lower.starts_with("https://") {
            (true, &url[8..])
        } else if lower.starts_with("http://") {
            (false, &url[7..])
        } else {
            return Err(TargetError::Scheme);
        };
        if rest.contains('#') {
            return Err(TargetError::Parts);
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(TargetError::Parts);
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (inside, after) = v6.split_once(']').ok_or(TargetError::Host)?;
            let ip: std::net::Ipv6Addr = inside.parse().map_err(|_| TargetError::Host)?;
            (ip.to_string(), port_of(after, default_port)?)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, port_of(&format!(":{p}"), default_port)?),
                None => (authority, default_port),
            };
            (host.trim_end_matches('.').to_ascii_lowercase(), port)
        };
        let valid_name = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        if host.parse::<IpAddr>().is_err() && !valid_name(&host) {
            return Err(TargetError::Host);
        }
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(WebhookTarget {
            https,
            host,
            port,
            path,
        })
    }

    /// The host as an address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The `Host` header's value.
    pub fn authority(&self) -> String {
        let host = match self.ip() {
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        };
        let default_port = if self.https { 443 } else { 80 };
        if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

fn port_of(after: &str, default: u16) -> Result<u16, TargetError> {
    match after.strip_prefix(':') {
        None if after.is_empty() => Ok(default),
        None => Err(TargetError::Host),
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(TargetError::Host);
            }
            match digits.parse::<u16>() {
                Ok(0) | Err(_) => Err(TargetError::Host),
                Ok(port) => Ok(port),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> WebhookTarget {
        WebhookTarget::parse(url).unwrap()
    }

    #[test]
    fn https_urls_parse_with_default_port_and_path() {
        let t = parse("https://Hooks.Example.com/alerts?x=1");
        assert_eq!(
            t,
            WebhookTarget {
                https: true,
                host: "hooks.example.com".into(),
                port: 443,
                path: "/alerts?x=1".into(),
            }
        );
        assert_eq!(t.to_string(), "https://hooks.example.com/alerts?x=1");
        assert_eq!(parse("https://hooks.example.com").path, "/");
        assert_eq!(parse("https://hooks.example.com?a").path, "/?a");
    }

    #[test]
    fn ports_and_addresses() {
        let t = parse("http://127.0.0.1:8080/hook");
        assert_eq!((t.https, t.port), (false, 8080));
        assert_eq!(t.ip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(t.authority(), "127.0.0.1:8080");
        let t = parse("https://[::1]:8443/");
        assert_eq!(t.host, "::1");
        assert_eq!(t.authority(), "[::1]:8443");
        assert_eq!(parse("https://h.example:443/").authority(), "h.example");
    }

    #[test]
    fn ambiguous_or_foreign_urls_are_refused() {
        for (url, err) in [
            ("ftp://h.example/", TargetError::Scheme),
            ("h.example/hook", TargetError::Scheme),
            ("https://user:pw@h.example/", TargetError::Parts),
            ("https://h.example/#frag", TargetError::Parts),
            ("https://h.example/a b", TargetError::Text),
            ("https://h.example/\n", TargetError::Text),
            ("https:///path", TargetError::Host),
            ("https://h.example:0/", TargetError::Host),
            ("https://h.example:65536/", TargetError::Host),
            ("https://h.example:/", TargetError::Host),
            ("https://h_x.example/", TargetError::Host),
            ("https://[::1/", TargetError::Host),
            ("https://[::1]x/", TargetError::Host),
            ("https://a..example/", TargetError::Host),
        ] {
            assert_eq!(WebhookTarget::parse(url), Err(err), "{url}");
        }
        let long = format!("https://h.example/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(WebhookTarget::parse(&long), Err(TargetError::Text));
    }
}
