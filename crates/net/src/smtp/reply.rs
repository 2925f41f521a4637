//! SMTP replies (RFC 5321 §4.2): framing with size caps, and the EHLO keyword list; used by
//! the STARTTLS prober and by `mtasts serve`'s alert mail.
//!
//! The parser is sans-IO: [`parse_reply`] looks at the bytes received so far and says "need more
//! bytes", "here is a reply and how many bytes it used", or "this is not an SMTP reply".

/// One SMTP reply, possibly multi-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The text of each line after the code and separator, without the line ending.
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as received, lines joined with `\n` (for reports and error messages), cut to
    /// 512 characters.
    pub fn summary(&self) -> String {
        let joined = self
            .lines
            .iter()
            .map(|line| {
                if line.is_empty() {
                    self.code.to_string()
                } else {
                    format!("{} {line}", self.code)
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        truncate(&joined, SUMMARY_MAX)
    }

    /// EHLO keywords (RFC 5321 §4.1.1.1): the first word of every line after the first,
    /// upper-cased, without duplicates, in the server's order.
    pub fn ehlo_keywords(&self) -> Vec<String> {
        let mut keywords: Vec<String> = Vec::new();
        for line in self.lines.iter().skip(1) {
            let Some(word) = line.split_ascii_whitespace().next() else {
                continue;
            };
            let word = word.to_ascii_uppercase();
            if !keywords.contains(&word) {
                keywords.push(word);
            }
        }
        keywords
    }
}

/// Why bytes are not an acceptable SMTP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A line ran past [`LINE_MAX`] bytes without a line ending.
    LineTooLong,
    /// The reply ran past [`REPLY_MAX`] bytes.
    ReplyTooLong,
    /// A line that does not start with a reply code; holds the line, truncated.
    Malformed(String),
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::LineTooLong => write!(f, "reply line longer than {LINE_MAX} bytes"),
            ReplyError::ReplyTooLong => write!(f, "reply longer than {REPLY_MAX} bytes"),
            ReplyError::Malformed(line) => write!(f, "not an SMTP reply: {line:?}"),
        }
    }
}

/// Parses one reply from the start of `buf`: `Ok(None)` when more bytes are needed,
/// `Ok(Some((reply, used)))` when a complete reply ends `used` bytes in.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let rest = &buf[pos..];
        let window = &rest[..rest.len().min(LINE_MAX)];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            // Still incomplete: check the line and the reply caps before asking for more.
            if rest.len() >= LINE_MAX {
                return Err(ReplyError::LineTooLong);
            }
            if buf.len() > REPLY_MAX {
                return Err(ReplyError::ReplyTooLong);
            }
            // A partial first line that cannot become a reply is rejected early, so garbage
            // banners are reported without waiting for a line ending.
            if !could_start_reply(rest) {
                return Err(ReplyError::Malformed(lossy(rest)));
            }
            return Ok(None);
        };
        let raw = &rest[..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += end + 1;
        if pos > REPLY_MAX {
            return Err(ReplyError::ReplyTooLong);
        }
        let (line_code, last, text) = parse_line(raw)?;
        match code {
            None => code = Some(line_code),
            Some(code) if code != line_code => return Err(ReplyError::Malformed(lossy(raw))),
            Some(_) => {}
        }
        lines.push(text);
        if last {
            return Ok(Some((
                Reply {
                    code: line_code,
                    lines,
                },
                pos,
            )));
        }
    }
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// `(code, is_last_line, text)` of one reply line.
fn parse_line(raw: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || ReplyError::Malformed(lossy(raw));
    let [a, b, c, rest @ ..] = raw else {
        return Err(malformed());
    };
    if !(b'2'..=b'5').contains(a) || !b.is_ascii_digit() || !c.is_ascii_digit() {
        return Err(malformed());
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    let (last, text) = match rest {
        [] => (true, &[][..]),
        [b' ', text @ ..] => (true, text),
        [b'-', text @ ..] => (false, text),
        _ => return Err(malformed()),
    };
    Ok((code, last, lossy(text)))
}

/// Whether a partial line can still turn into a reply line (`[2-5][0-9][0-9][ -]`).
fn could_start_reply(partial: &[u8]) -> bool {
    partial.iter().take(4).enumerate().all(|(i, b)| match i {
        0 => (b'2'..=b'5').contains(b),
        1 | 2 => b.is_ascii_digit(),
        _ => *b == b' ' || *b == b'-' || *b == b'\r',
    })
}

/// Printable text for a report: invalid UTF-8 and control characters replaced, truncated.
fn lossy(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    truncate(&text, SUMMARY_MAX)
}

/// The longest reply line accepted, line ending included (RFC 5321 §4.5.3.1.5 says 512; real
/// servers exceed it a little).
pub const LINE_MAX: usize = 1000;
/// The longest reply accepted, all lines together.
pub const REPLY_MAX: usize = 64 * 1024;
/// How many characters of a reply or a bad line are kept for reports.
const SUMMARY_MAX: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(Reply, usize)>, ReplyError> {
        parse_reply(bytes)
    }

    #[test]
    fn single_line_reply() {
        let (reply, used) = parse(b"220 mx.example.com ESMTP\r\nrest").unwrap().unwrap();
        assert_eq!(reply.code, 220);
        assert_eq!(reply.lines, ["mx.example.com ESMTP"]);
        assert_eq!(used, 26);
        assert_eq!(reply.summary(), "220 mx.example.com ESMTP");
    }

    #[test]
    fn multi_line_reply_and_bare_code() {
        let bytes = b"220-first\r\n220-second\n220\r\n";
        let (reply, used) = parse(bytes).unwrap().unwrap();
        assert_eq!(reply.code, 220);
        assert_eq!(reply.lines, ["first", "second", ""]);
        assert_eq!(used, bytes.len());
    }

    /// `name: bytes => pattern,`: one named test per reply, asserting what [`parse_reply`]
    /// makes of it.
    macro_rules! reply_cases {
        ($($name:ident: $bytes:expr => $pat:pat $(if $guard:expr)?,)*) => {$(
            #[test]
            fn $name() {
                let parsed = parse($bytes);
                assert!(
                    matches!(&parsed, $pat $(if $guard)?),
                    "{:?} parsed as {parsed:?}",
                    String::from_utf8_lossy($bytes)
                );
            }
        )*};
    }

    // Incomplete replies need more bytes; garbage is malformed even without a line ending.
    reply_cases! {
        incomplete_empty: b"" => Ok(None),
        incomplete_one_digit: b"2" => Ok(None),
        incomplete_code_only: b"220" => Ok(None),
        incomplete_after_a_continuation_line: b"220-first\r\n" => Ok(None),
        incomplete_last_line_unterminated: b"220-first\r\n220 sec" => Ok(None),
        malformed_ssh_banner: b"SSH-2.0-OpenSSH_9.6\r\n" =>
            Err(ReplyError::Malformed(l)) if l == "SSH-2.0-OpenSSH_9.6",
        malformed_http_without_line_ending: b"HTTP/1.1 400" => Err(ReplyError::Malformed(_)),
        malformed_four_digit_code: b"2200 x\r\n" => Err(ReplyError::Malformed(_)),
        malformed_1xx_code: b"120 x\r\n" => Err(ReplyError::Malformed(_)),
        malformed_tls_record: b"\x16\x03\x01" => Err(ReplyError::Malformed(_)),
        malformed_mixed_codes: b"250-a\r\n251 b\r\n" => Err(ReplyError::Malformed(_)),
    }

    #[test]
    fn line_and_reply_caps() {
        let mut long = b"220 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', LINE_MAX));
        assert_eq!(parse(&long), Err(ReplyError::LineTooLong));
        // Exactly at the cap, with its line ending, is fine.
        let mut fits = b"220 ".to_vec();
        fits.extend(std::iter::repeat_n(b'x', LINE_MAX - 6));
        fits.extend(b"\r\n");
        assert!(parse(&fits).unwrap().is_some());
        let many: Vec<u8> = std::iter::repeat_n(&b"250-PIPELINING\r\n"[..], REPLY_MAX / 16 + 1)
            .flatten()
            .copied()
            .collect();
        assert_eq!(parse(&many), Err(ReplyError::ReplyTooLong));
    }

    #[test]
    fn ehlo_keywords_skip_the_greeting_line_and_upper_case() {
        let bytes = b"250-mx.example.com Hello\r\n250-pipelining\r\n250-SIZE 1000\r\n250-STARTTLS\r\n250-starttls\r\n250 8BITMIME\r\n";
        let (reply, _) = parse(bytes).unwrap().unwrap();
        assert_eq!(
            reply.ehlo_keywords(),
            ["PIPELINING", "SIZE", "STARTTLS", "8BITMIME"]
        );
        let (single, _) = parse(b"250 mx.example.com\r\n").unwrap().unwrap();
        assert!(single.ehlo_keywords().is_empty());
    }

    #[test]
    fn control_characters_are_not_passed_on() {
        let (reply, _) = parse(b"220 a\x1b[31mb\xff\r\n").unwrap().unwrap();
        assert_eq!(reply.lines, ["a\u{fffd}[31mb\u{fffd}"]);
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("ééé", 2), "éé…");
    }

    #[test]
    fn never_panics_on_arbitrary_prefixes() {
        let bytes = b"250-a\r\n250-\xff\xfe\r\n250 \r\n\x00\x01";
        for end in 0..=bytes.len() {
            let _ = parse(&bytes[..end]);
        }
    }
}
