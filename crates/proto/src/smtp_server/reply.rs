//! [`Reply`]: an SMTP reply (RFC 5321 §4.2) with its enhanced status code (RFC 3463), written
//! as the wire wants it (`250-…` continuation lines, `250 …` last).

use std::borrow::Cow;

/// One reply: a code, an enhanced status code (none for the greeting, EHLO and `354`) and
/// one or more lines of text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code (`5.1.1`), written before the text of every line.
    pub status: Option<&'static str>,
    /// The lines (at least one).
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(
        code: u16,
        status: Option<&'static str>,
        text: impl Into<Cow<'static, str>>,
    ) -> Reply {
        Reply {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// Whether the reply refuses the command (4xx or 5xx).
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let text = match self.status {
                Some(status) => format!("{}{sep}{status} {line}\r\n", self.code),
                None => format!("{}{sep}{line}\r\n", self.code),
            };
            out.extend_from_slice(text.as_bytes());
        }
        out
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(String::from_utf8_lossy(&self.to_bytes()).trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_multi_line_replies() {
        assert_eq!(
            Reply::new(250, Some("2.0.0"), "OK").to_bytes(),
            b"250 2.0.0 OK\r\n"
        );
        let reply = Reply {
            code: 250,
            status: None,
            lines: vec!["a.example".into(), "PIPELINING".into(), "SIZE 10".into()],
        };
        assert_eq!(
            reply.to_bytes(),
            b"250-a.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
        assert!(!reply.is_error());
        assert!(Reply::new(421, Some("4.4.2"), "x").is_error());
        assert_eq!(Reply::new(354, None, "go").to_string(), "354 go");
    }
}
