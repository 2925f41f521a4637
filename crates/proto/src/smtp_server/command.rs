//! One SMTP command line parsed into a [`Command`] (RFC 5321 §4.1, with the `MAIL FROM`
//! parameters of RFC 1870 `SIZE`, RFC 6152 `BODY=8BITMIME` and RFC 6531 `SMTPUTF8`).
//!
//! Tolerant where real clients differ (verbs in any case, a space after `FROM:` / `TO:`, a
//! bare LF line end); strict where it matters: a path must be in angle brackets, and an
//! unknown parameter is refused rather than ignored (RFC 5321 §4.1.1.11).

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `EHLO <domain or address literal>`.
    Ehlo(String),
    /// `HELO <domain>`.
    Helo(String),
    /// `MAIL FROM:<path> [params]`; the path without brackets (empty for the null path).
    Mail(String, MailParams),
    /// `RCPT TO:<path>`; the path without brackets (and without a source route).
    Rcpt(String),
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP [text]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS`.
    StartTls,
    /// `VRFY …`: never answered with a mailbox (RFC 5321 §3.5.3 allows 252).
    Vrfy,
    /// `HELP [topic]`.
    Help,
    /// A verb this server does not know (`AUTH`, `BDAT`, `ETRN`, …).
    Unknown(String),
    /// A known verb with arguments that do not parse; the text says what is wrong.
    Syntax(&'static str),
    /// A known `MAIL` parameter this server refuses (`555`).
    BadParameter(String),
}

/// The parameters of `MAIL FROM`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n`: the size the client declares.
    pub size: Option<u64>,
    /// `BODY=8BITMIME`.
    pub eight_bit: bool,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
}

/// Parses one command line (its CRLF or LF may be included).
pub fn parse_command(line: &[u8]) -> Command {
    let line = line
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Command::Syntax("the command is not UTF-8");
    };
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let rest_trimmed = rest.trim();
    match verb.to_ascii_uppercase().as_str() {
        "EHLO" | "HELO" if rest_trimmed.is_empty() || rest_trimmed.contains(' ') => {
            Command::Syntax("EHLO and HELO take one domain")
        }
        "EHLO" => Command::Ehlo(rest_trimmed.to_owned()),
        "HELO" => Command::Helo(rest_trimmed.to_owned()),
        "MAIL" => mail(rest),
        "RCPT" => rcpt(rest),
        "DATA" | "RSET" | "QUIT" | "STARTTLS" if !rest_trimmed.is_empty() => {
            Command::Syntax("this command takes no arguments")
        }
        "DATA" => Command::Data,
        "RSET" => Command::Rset,
        "QUIT" => Command::Quit,
        "STARTTLS" => Command::StartTls,
        "NOOP" => Command::Noop,
        "VRFY" => Command::Vrfy,
        "HELP" => Command::Help,
        "" => Command::Syntax("empty command"),
        _ => Command::Unknown(cut_verb(verb)),
    }
}

/// At most 16 bytes of an unknown verb (it is echoed in logs, never in replies).
fn cut_verb(verb: &str) -> String {
    verb.chars().take(16).collect()
}

/// `FROM:<path> params` (after `MAIL `).
fn mail(rest: &str) -> Command {
    let Some(after) = strip_prefix_ci(rest, "FROM:") else {
        return Command::Syntax("use MAIL FROM:<address>");
    };
    let Some((path, params)) = path(after) else {
        return Command::Syntax("the address must be in angle brackets");
    };
    let mut out = MailParams::default();
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                // A number too large for u64 is certainly over the cap.
                out.size = Some(v.parse().unwrap_or(u64::MAX));
            }
            ("SIZE", _) => return Command::Syntax("SIZE takes a number of octets"),
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => out.eight_bit = true,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => out.eight_bit = false,
            ("SMTPUTF8", None) => out.smtputf8 = true,
            _ => return Command::BadParameter(cut_verb(key)),
        }
    }
    Command::Mail(path, out)
}

/// `TO:<path>` (after `RCPT `); no parameters are supported.
fn rcpt(rest: &str) -> Command {
    let Some(after) = strip_prefix_ci(rest, "TO:") else {
        return Command::Syntax("use RCPT TO:<address>");
    };
    let Some((path, params)) = path(after) else {
        return Command::Syntax("the address must be in angle brackets");
    };
    if path.is_empty() {
        return Command::Syntax("the recipient cannot be empty");
    }
    match params.split(' ').find(|p| !p.is_empty()) {
        Some(param) => Command::BadParameter(cut_verb(param.split('=').next().unwrap_or(""))),
        None => Command::Rcpt(path),
    }
}

/// `<path> rest` with an optional space before `<`: the path without brackets and without a
/// source route (`<@a,@b:user@d>` → `user@d`), and what follows it.
fn path(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start_matches(' ');
    let inner = text.strip_prefix('<')?;
    let end = inner.find('>')?;
    let (path, rest) = (&inner[..end], &inner[end + 1..]);
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let path = match path.strip_prefix('@') {
        Some(route) => route.split_once(':')?.1,
        None => path,
    };
    if path.contains(['<', ' ']) {
        return None;
    }
    Some((path.to_owned(), rest))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_in_any_case_with_crlf_or_lf() {
        assert_eq!(
            parse_command(b"ehlo mx.example\r\n"),
            Command::Ehlo("mx.example".into())
        );
        assert_eq!(
            parse_command(b"HELO [192.0.2.1]\n"),
            Command::Helo("[192.0.2.1]".into())
        );
        assert_eq!(parse_command(b"DATA\r\n"), Command::Data);
        assert_eq!(parse_command(b"rset"), Command::Rset);
        assert_eq!(parse_command(b"NOOP anything\r\n"), Command::Noop);
        assert_eq!(parse_command(b"QUIT\r\n"), Command::Quit);
        assert_eq!(parse_command(b"StartTLS\r\n"), Command::StartTls);
        assert_eq!(parse_command(b"VRFY postmaster\r\n"), Command::Vrfy);
        assert_eq!(parse_command(b"HELP\r\n"), Command::Help);
    }

    #[test]
    fn unknown_and_malformed_commands() {
        assert_eq!(
            parse_command(b"AUTH PLAIN xyz\r\n"),
            Command::Unknown("AUTH".into())
        );
        assert_eq!(
            parse_command(b"BDAT 100 LAST\r\n"),
            Command::Unknown("BDAT".into())
        );
        assert!(matches!(parse_command(b"\r\n"), Command::Syntax(_)));
        assert!(matches!(parse_command(b"EHLO\r\n"), Command::Syntax(_)));
        assert!(matches!(parse_command(b"EHLO a b\r\n"), Command::Syntax(_)));
        assert!(matches!(parse_command(b"DATA now\r\n"), Command::Syntax(_)));
        assert!(matches!(
            parse_command(b"STARTTLS x\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"EHLO \xff\r\n"),
            Command::Syntax(_)
        ));
        let long = "X".repeat(100);
        assert_eq!(
            parse_command(long.as_bytes()),
            Command::Unknown("X".repeat(16))
        );
    }

    #[test]
    fn mail_from_paths_and_parameters() {
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b.example>\r\n"),
            Command::Mail("a@b.example".into(), MailParams::default())
        );
        assert_eq!(
            parse_command(b"mail from: <a@b.example>\r\n"),
            Command::Mail("a@b.example".into(), MailParams::default())
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<>\r\n"),
            Command::Mail(String::new(), MailParams::default())
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b> SIZE=1234 BODY=8BITMIME SMTPUTF8\r\n"),
            Command::Mail(
                "a@b".into(),
                MailParams {
                    size: Some(1234),
                    eight_bit: true,
                    smtputf8: true
                }
            )
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b> size=99999999999999999999999\r\n"),
            Command::Mail(
                "a@b".into(),
                MailParams {
                    size: Some(u64::MAX),
                    ..MailParams::default()
                }
            )
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b> BODY=7BIT\r\n"),
            Command::Mail("a@b".into(), MailParams::default())
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<@relay.example:a@b>\r\n"),
            Command::Mail("a@b".into(), MailParams::default())
        );
        assert!(matches!(
            parse_command(b"MAIL FROM:<a@b> SIZE=12x\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"MAIL FROM:<a@b> SIZE\r\n"),
            Command::Syntax(_)
        ));
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b> AUTH=<>\r\n"),
            Command::BadParameter("AUTH".into())
        );
        assert!(matches!(
            parse_command(b"MAIL FROM:a@b\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"MAIL TO:<a@b>\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"MAIL FROM:<a@b>x\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"MAIL FROM:<a@b\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(parse_command(b"MAIL\r\n"), Command::Syntax(_)));
    }

    #[test]
    fn rcpt_to_paths() {
        assert_eq!(
            parse_command(b"RCPT TO:<tlsrpt@reports.z.example>\r\n"),
            Command::Rcpt("tlsrpt@reports.z.example".into())
        );
        assert_eq!(
            parse_command(b"rcpt to: <x@y>\r\n"),
            Command::Rcpt("x@y".into())
        );
        assert!(matches!(
            parse_command(b"RCPT TO:<>\r\n"),
            Command::Syntax(_)
        ));
        assert!(matches!(
            parse_command(b"RCPT FROM:<x@y>\r\n"),
            Command::Syntax(_)
        ));
        assert_eq!(
            parse_command(b"RCPT TO:<x@y> NOTIFY=NEVER\r\n"),
            Command::BadParameter("NOTIFY".into())
        );
    }
}
