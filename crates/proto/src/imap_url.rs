//! IMAP mailbox URLs (`imaps://USER@HOST[:PORT]/MAILBOX`, the RFC 5092 subset `mtasts report
//! fetch` takes), their canonical text, and the mailbox name as IMAP wants it on the wire
//! (modified UTF-7, RFC 3501 §5.1.3).
//!
//! Readings:
//!
//! * `imaps://` is TLS from the first byte (port 993); `imap://` is STARTTLS, required (port
//!   143) — there is no plaintext variant, so no URL can make a password travel in clear.
//! * The user is required (the password comes from elsewhere, never from the URL: a
//!   `user:password@` is refused rather than ignored, because ignoring it would hide a secret
//!   in shell history behind a successful run). A user containing `@` may be written with
//!   `%40` or as is: the *last* `@` of the authority ends the user, since a host never holds one.
//! * `;AUTH=*` after the user is accepted (any mechanism; we use LOGIN); any other `;AUTH=` is
//!   refused, as are mailbox parameters (`;UIDVALIDITY=`, `;UID=`), queries and fragments: a URL
//!   naming one message or a search is not a mailbox, and guessing would import the wrong thing.
//! * An empty path is `INBOX`. The mailbox is percent-decoded UTF-8 and sent as modified UTF-7.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

/// How the connection is protected. Both verify the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Security {
    /// `imap://`: a plain connection upgraded with STARTTLS before anything else is sent;
    /// a server that does not offer it is refused.
    StartTls,
    /// `imaps://`: TLS from the first byte (RFC 8314 implicit TLS).
    Tls,
}

impl Security {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Security::StartTls => "imap",
            Security::Tls => "imaps",
        }
    }

    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 143,
            Security::Tls => 993,
        }
    }
}

/// An IMAP mailbox to read reports from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImapUrl {
    /// Implicit TLS or STARTTLS.
    pub security: Security,
    /// The login name, decoded.
    pub user: String,
    /// The host: a lowercase A-label name, an IPv4 address, or an IPv6 address (no brackets).
    pub host: String,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// The mailbox name, decoded (UTF-8). See [`ImapUrl::mailbox_wire`].
    pub mailbox: String,
}

/// Why a text is not a usable IMAP mailbox URL.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImapUrlError {
    /// Not `imap://` or `imaps://`.
    #[error("the URL must start with imaps:// (TLS) or imap:// (STARTTLS)")]
    Scheme,
    /// No `USER@` before the host.
    #[error("the URL names no user: write imaps://USER@HOST/MAILBOX")]
    NoUser,
    /// `user:password@`.
    #[error(
        "the URL holds a password; give it with --password-file or MTASTS_IMAP_PASSWORD instead"
    )]
    Password,
    /// An `;AUTH=` other than `*`.
    #[error("unsupported ;AUTH={0} (only LOGIN is used; leave ;AUTH= out)")]
    Auth(String),
    /// No host, or a host that is not a name or an address.
    #[error("invalid host {0:?}")]
    Host(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port {0:?}")]
    Port(String),
    /// A `%` not followed by two hex digits, or decoded bytes that are not UTF-8.
    #[error("invalid percent-encoding in {0:?}")]
    Encoding(String),
    /// `;UID=`, `;UIDVALIDITY=`, `?query` or `#fragment`: not a mailbox.
    #[error("{0:?} is not a mailbox URL (no ;parameters, ?query or #fragment)")]
    NotAMailbox(String),
    /// A control character (CR, LF, NUL…) in the user or mailbox.
    #[error("control character in {0:?}")]
    Control(String),
}

impl ImapUrl {
    /// Reads `imaps://USER@HOST[:PORT]/MAILBOX` or `imap://…` (see the module docs).
    pub fn parse(text: &str) -> Result<ImapUrl, ImapUrlError> {
        let (security, rest) = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("imaps") => (Security::Tls, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("imap") => {
                (Security::StartTls, rest)
            }
            _ => return Err(ImapUrlError::Scheme),
        };
        if let Some(at) = rest.find(['?', '#']) {
            return Err(ImapUrlError::NotAMailbox(rest[at..].to_owned()));
        }
        // The authority ends at the first `/`; in it, the last `@` ends the user.
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let at = authority.rfind('@').ok_or(ImapUrlError::NoUser)?;
        let (userinfo, hostport) = (&authority[..at], &authority[at + 1..]);
        let user = parse_user(userinfo)?;
        let (host, port) = parse_hostport(hostport, security)?;
        let mailbox = parse_mailbox(path)?;
        Ok(ImapUrl {
            security,
            user,
            host,
            port,
            mailbox,
        })
    }

    /// The mailbox name as sent in IMAP commands: modified UTF-7 (RFC 3501 §5.1.3).
    pub fn mailbox_wire(&self) -> String {
        encode_modified_utf7(&self.mailbox)
    }

    /// The label of one message in the output and the database:
    /// `imaps://USER@HOST[:PORT]/MAILBOX#UIDVALIDITY.UID` (never a password).
    pub fn message_source(&self, uid_validity: u32, uid: u32) -> String {
        format!("{self}#{uid_validity}.{uid}")
    }

    /// The host as written in a URL (IPv6 in brackets).
    pub fn host_for_url(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// The canonical URL: lowercase scheme, encoded user and mailbox, the port only when it is not
/// the scheme's default.
impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}",
            self.security.scheme(),
            percent_encode(&self.user, false),
            self.host_for_url()
        )?;
        if self.port != self.security.default_port() {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "/{}", percent_encode(&self.mailbox, true))
    }
}

/// `name` in modified UTF-7 (RFC 3501 §5.1.3): printable ASCII but `&` as is, `&` as `&-`,
/// everything else as `&` + base64 (`,` for `/`, no padding) of its UTF-16BE + `-`.
pub fn encode_modified_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_utf16(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_utf16(&mut out, &mut pending);
    out
}

fn flush_utf16(out: &mut String, pending: &mut Vec<u16>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        // A chunk of k bytes carries k + 1 sextets; the rest would be padding, left out.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out.push('-');
    pending.clear();
}

fn parse_user(userinfo: &str) -> Result<String, ImapUrlError> {
    let (user, auth) = match userinfo.split_once(';') {
        Some((user, params)) => (user, Some(params)),
        None => (userinfo, None),
    };
    if let Some(params) = auth {
        match params.split_once('=') {
            Some((key, "*")) if key.eq_ignore_ascii_case("auth") => {}
            Some((key, value)) if key.eq_ignore_ascii_case("auth") => {
                return Err(ImapUrlError::Auth(value.to_owned()));
            }
            _ => return Err(ImapUrlError::NotAMailbox(format!(";{params}"))),
        }
    }
    if user.contains(':') {
        return Err(ImapUrlError::Password);
    }
    let user = percent_decode(user)?;
    if user.is_empty() {
        return Err(ImapUrlError::NoUser);
    }
    if user.chars().any(char::is_control) {
        return Err(ImapUrlError::Control(user));
    }
    Ok(user)
}

fn parse_hostport(hostport: &str, security: Security) -> Result<(String, u16), ImapUrlError> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| ImapUrlError::Host(hostport.to_owned()))?;
        let v6: Ipv6Addr = v6
            .parse()
            .map_err(|_| ImapUrlError::Host(hostport.to_owned()))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| ImapUrlError::Host(hostport.to_owned()))?,
            ),
        };
        (v6.to_string(), port)
    } else {
        let (host, port) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        let host = if let Ok(v4) = host.parse::<Ipv4Addr>() {
            v4.to_string()
        } else {
            let decoded = percent_decode(host)?;
            crate::domain::normalize_domain(&decoded)
                .map_err(|_| ImapUrlError::Host(host.to_owned()))?
        };
        (host, port)
    };
    let port = match port {
        None => security.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(ImapUrlError::Port(p.to_owned())),
        },
    };
    Ok((host, port))
}

fn parse_mailbox(path: &str) -> Result<String, ImapUrlError> {
    if path.contains(';') {
        return Err(ImapUrlError::NotAMailbox(path.to_owned()));
    }
    let mailbox = percent_decode(path.trim_end_matches('/'))?;
    if mailbox.chars().any(char::is_control) {
        return Err(ImapUrlError::Control(mailbox));
    }
    Ok(if mailbox.is_empty() {
        "INBOX".to_owned()
    } else {
        mailbox
    })
}

fn percent_decode(text: &str) -> Result<String, ImapUrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ImapUrlError::Encoding(text.to_owned()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ImapUrlError::Encoding(text.to_owned()))
}

fn percent_encode(text: &str, path: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,=".contains(&b)
            || (path && (b == b'/' || b == b':' || b == b'@'));
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> ImapUrl {
        ImapUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn implicit_tls_with_defaults() {
        let u = url("imaps://reports@mail.example.com/INBOX");
        assert_eq!(u.security, Security::Tls);
        assert_eq!(u.user, "reports");
        assert_eq!(u.host, "mail.example.com");
        assert_eq!(u.port, 993);
        assert_eq!(u.mailbox, "INBOX");
        assert_eq!(u.to_string(), "imaps://reports@mail.example.com/INBOX");
    }

    #[test]
    fn starttls_port_and_nested_mailbox() {
        let u = url("IMAP://r@Mail.Example.COM:10143/Reports/TLS");
        assert_eq!(u.security, Security::StartTls);
        assert_eq!(u.host, "mail.example.com");
        assert_eq!(u.port, 10143);
        assert_eq!(u.mailbox, "Reports/TLS");
        assert_eq!(u.to_string(), "imap://r@mail.example.com:10143/Reports/TLS");
        assert_eq!(
            url("imap://r@h.example:143/").to_string(),
            "imap://r@h.example/INBOX"
        );
    }

    #[test]
    fn empty_path_is_inbox() {
        assert_eq!(url("imaps://r@h.example").mailbox, "INBOX");
        assert_eq!(url("imaps://r@h.example/").mailbox, "INBOX");
    }

    #[test]
    fn user_with_at_sign_encoded_or_not() {
        let a = url("imaps://reports%40example.com@mail.example.com/INBOX");
        let b = url("imaps://reports@example.com@mail.example.com/INBOX");
        assert_eq!(a, b);
        assert_eq!(a.user, "reports@example.com");
        assert_eq!(
            a.to_string(),
            "imaps://reports%40example.com@mail.example.com/INBOX"
        );
    }

    #[test]
    fn addresses() {
        let v4 = url("imaps://r@127.0.0.1:9993/INBOX");
        assert_eq!((v4.host.as_str(), v4.port), ("127.0.0.1", 9993));
        let v6 = url("imaps://r@[::1]:9993/INBOX");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.to_string(), "imaps://r@[::1]:9993/INBOX");
        assert_eq!(url("imaps://r@[::1]/INBOX").port, 993);
    }

    #[test]
    fn auth_star_is_accepted_others_refused() {
        assert_eq!(url("imaps://r;AUTH=*@h.example/INBOX").user, "r");
        assert_eq!(
            ImapUrl::parse("imaps://r;AUTH=GSSAPI@h.example/INBOX"),
            Err(ImapUrlError::Auth("GSSAPI".into()))
        );
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, ImapUrlError)] = &[
            ("https://r@h.example/INBOX", ImapUrlError::Scheme),
            ("h.example/INBOX", ImapUrlError::Scheme),
            ("imaps://h.example/INBOX", ImapUrlError::NoUser),
            ("imaps://@h.example/INBOX", ImapUrlError::NoUser),
            ("imaps://r:secret@h.example/INBOX", ImapUrlError::Password),
            ("imaps://r@/INBOX", ImapUrlError::Host(String::new())),
            (
                "imaps://r@bad_host!/INBOX",
                ImapUrlError::Host("bad_host!".into()),
            ),
            ("imaps://r@[::1/INBOX", ImapUrlError::Host("[::1".into())),
            (
                "imaps://r@h.example:0/INBOX",
                ImapUrlError::Port("0".into()),
            ),
            (
                "imaps://r@h.example:99999/I",
                ImapUrlError::Port("99999".into()),
            ),
            ("imaps://r@h.example:+1/I", ImapUrlError::Port("+1".into())),
            ("imaps://r@h.example:/I", ImapUrlError::Port(String::new())),
            (
                "imaps://r@h.example/%zz",
                ImapUrlError::Encoding("%zz".into()),
            ),
            (
                "imaps://r@h.example/%ff",
                ImapUrlError::Encoding("%ff".into()),
            ),
            (
                "imaps://r@h.example/INBOX;UIDVALIDITY=5",
                ImapUrlError::NotAMailbox("INBOX;UIDVALIDITY=5".into()),
            ),
            (
                "imaps://r@h.example/INBOX?SUBJECT%20x",
                ImapUrlError::NotAMailbox("?SUBJECT%20x".into()),
            ),
            (
                "imaps://r@h.example/INBOX#x",
                ImapUrlError::NotAMailbox("#x".into()),
            ),
            (
                "imaps://r@h.example/IN%0D%0ABOX",
                ImapUrlError::Control("IN\r\nBOX".into()),
            ),
            (
                "imaps://r%0A@h.example/INBOX",
                ImapUrlError::Control("r\n".into()),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ImapUrl::parse(text).as_ref(), Err(expected), "{text}");
        }
    }

    #[test]
    fn mailbox_round_trips_through_display() {
        for text in [
            "imaps://r@h.example/Rapports%20%C3%A9t%C3%A9",
            "imaps://r@h.example/a%25b",
            "imap://r@h.example/Archive/2026",
        ] {
            let u = url(text);
            assert_eq!(url(&u.to_string()), u, "{text}");
        }
        assert_eq!(
            url("imaps://r@h.example/Rapports%20%C3%A9t%C3%A9").mailbox,
            "Rapports été"
        );
    }

    #[test]
    fn modified_utf7_matches_rfc_3501_examples() {
        // RFC 3501 §5.1.3's example and RFC 2152-style cases.
        assert_eq!(
            encode_modified_utf7("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(encode_modified_utf7("A&B"), "A&-B");
        assert_eq!(encode_modified_utf7("INBOX"), "INBOX");
        assert_eq!(encode_modified_utf7("été"), "&AOk-t&AOk-");
        // A character outside the BMP is a surrogate pair.
        assert_eq!(encode_modified_utf7("😀"), "&2D3eAA-");
    }

    #[test]
    fn message_source_names_uidvalidity_and_uid() {
        let u = url("imaps://reports@mail.example.com:9993/INBOX");
        assert_eq!(
            u.message_source(1_700_000_000, 42),
            "imaps://reports@mail.example.com:9993/INBOX#1700000000.42"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_and_display_round_trips(text in "\\PC{0,80}") {
            if let Ok(u) = ImapUrl::parse(&text) {
                proptest::prop_assert_eq!(ImapUrl::parse(&u.to_string()), Ok(u));
            }
        }

        #[test]
        fn any_user_and_mailbox_round_trip(
            user in "\\PC{1,20}",
            mailbox in "\\PC{1,20}",
        ) {
            let u = ImapUrl {
                security: Security::Tls,
                user,
                host: "h.example".into(),
                port: 993,
                mailbox: mailbox.trim_end_matches('/').to_owned(),
            };
            proptest::prop_assume!(!u.mailbox.is_empty());
            proptest::prop_assert_eq!(ImapUrl::parse(&u.to_string()), Ok(u));
        }

        #[test]
        fn modified_utf7_is_printable_ascii(name in "\\PC{0,40}") {
            let wire = encode_modified_utf7(&name);
            proptest::prop_assert!(wire.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }
    }
}
