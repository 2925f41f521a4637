//! The SMTP dialogue of a test MX host, before and inside TLS: commands, replies, the mail
//! transaction and the DATA reader, each bounded.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::*;

/// What the dialogue ended with.
pub(super) enum Next {
    Close,
    StartTls,
}

/// The state of one SMTP session (plaintext, or inside TLS).
pub(super) struct Session<'a> {
    host: &'a Host,
    peer: SocketAddr,
    tls: Option<ReceivedTls>,
    /// The `EHLO`/`HELO` argument, once greeted.
    helo: Option<String>,
    /// The open transaction's `MAIL FROM` path.
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl<'a> Session<'a> {
    pub(super) fn new(host: &'a Host, peer: SocketAddr, tls: Option<ReceivedTls>) -> Self {
        Session {
            host,
            peer,
            tls,
            helo: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    fn mail(&mut self, args: &str) -> String {
        if self.helo.is_none() {
            return "503 5.5.1 send EHLO or HELO first\r\n".to_owned();
        }
        if self.mail_from.is_some() {
            return "503 5.5.1 nested MAIL command\r\n".to_owned();
        }
        let Some((path, params)) = parse_path(args, "FROM:") else {
            return "501 5.5.4 syntax: MAIL FROM:<address>\r\n".to_owned();
        };
        let declared_size = params.split_ascii_whitespace().find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.eq_ignore_ascii_case("SIZE")
                .then(|| value.parse::<u64>().ok())
                .flatten()
        });
        if declared_size.is_some_and(|size| size > MAX_MESSAGE_BYTES as u64) {
            return "552 5.3.4 message size exceeds fixed limit\r\n".to_owned();
        }
        self.mail_from = Some(path.to_owned());
        "250 2.1.0 OK\r\n".to_owned()
    }

    fn rcpt(&mut self, args: &str) -> String {
        if self.mail_from.is_none() {
            return "503 5.5.1 need MAIL command\r\n".to_owned();
        }
        let Some((path, _)) = parse_path(args, "TO:").filter(|(path, _)| !path.is_empty()) else {
            return "501 5.5.4 syntax: RCPT TO:<address>\r\n".to_owned();
        };
        if self.rcpt_to.len() >= MAX_RECIPIENTS {
            return "452 4.5.3 too many recipients\r\n".to_owned();
        }
        self.rcpt_to.push(path.to_owned());
        "250 2.1.5 OK\r\n".to_owned()
    }

    /// Answers `DATA`; reads and stores the message when the transaction is complete.
    async fn data<S>(&mut self, stream: &mut BufReader<S>) -> std::io::Result<String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if self.mail_from.is_none() {
            return Ok("503 5.5.1 need MAIL command\r\n".to_owned());
        }
        if self.rcpt_to.is_empty() {
            return Ok("554 5.5.1 no valid recipients\r\n".to_owned());
        }
        if !self.host.mailbox.has_room() {
            self.reset();
            return Ok("452 4.3.1 insufficient system storage\r\n".to_owned());
        }
        write(stream, "354 End data with <CR><LF>.<CR><LF>\r\n").await?;
        let body = tokio::time::timeout(DATA_TIMEOUT, read_data(stream))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DATA"))??;
        let mail_from = self.mail_from.take().unwrap_or_default();
        let rcpt_to = std::mem::take(&mut self.rcpt_to);
        let Some(data) = body else {
            return Ok("552 5.3.4 message too big\r\n".to_owned());
        };
        let number = self.host.mailbox.store(ReceivedMail {
            mx_host: self.host.name.clone(),
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            mail_from,
            rcpt_to,
            data,
            tls: self.tls.clone(),
        });
        Ok(format!("250 2.0.0 OK: queued as {number}\r\n"))
    }
}

/// Splits `FROM:<path> params` (keyword case-insensitive, spaces allowed after the colon) into
/// the path without brackets and the parameters.
fn parse_path<'a>(args: &'a str, keyword: &str) -> Option<(&'a str, &'a str)> {
    let args = args.trim_start();
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    Some((&rest[..end], rest[end + 1..].trim()))
}

/// Reads a `DATA` body up to the line holding a single dot, undoing dot-stuffing. `Ok(None)`:
/// the body exceeded `MAX_MESSAGE_BYTES` (it is still read to its end, then dropped).
async fn read_data<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut too_big = false;
    let mut at_line_start = true;
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        let mut limited = (&mut *stream).take(DATA_CHUNK as u64);
        let n = tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DATA idle"))??;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "end of input inside DATA",
            ));
        }
        let mut piece = &chunk[..];
        if at_line_start {
            if piece == b".\r\n" || piece == b".\n" {
                return Ok((!too_big).then_some(body));
            }
            if piece.first() == Some(&b'.') {
                piece = &piece[1..];
            }
        }
        at_line_start = chunk.last() == Some(&b'\n');
        if too_big || body.len() + piece.len() > MAX_MESSAGE_BYTES {
            too_big = true;
            body = Vec::new();
        } else {
            body.extend_from_slice(piece);
        }
    }
}

/// Answers commands until `QUIT`, end of input, or (before TLS) an accepted `STARTTLS`.
pub(super) async fn dialogue<S>(
    stream: &mut BufReader<S>,
    session: &mut Session<'_>,
) -> std::io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = session.host.name.clone();
    let starttls = session.host.spec.starttls;
    let tls = session.tls.is_some();
    while let Some(line) = read_command(stream).await? {
        let (verb, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let verb = verb.to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => {
                session.reset();
                session.helo = Some(args.trim().to_owned());
                if verb == "EHLO" {
                    ehlo_reply(&name, starttls != Starttls::NotOffered && !tls)
                } else {
                    format!("250 {name}\r\n")
                }
            }
            "STARTTLS" if tls => "503 5.5.1 TLS already active\r\n".to_owned(),
            "STARTTLS" => match starttls {
                Starttls::Offered => {
                    write(stream, "220 2.0.0 Ready to start TLS\r\n").await?;
                    return Ok(Next::StartTls);
                }
                Starttls::NotOffered => "502 5.5.1 STARTTLS not implemented\r\n".to_owned(),
                Starttls::Refused => {
                    "454 4.7.0 TLS not available due to temporary reason\r\n".to_owned()
                }
            },
            "MAIL" => session.mail(args),
            "RCPT" => session.rcpt(args),
            "DATA" => session.data(stream).await?,
            "RSET" => {
                session.reset();
                "250 2.0.0 OK\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
            "QUIT" => {
                write(stream, &format!("221 2.0.0 {name} closing connection\r\n")).await?;
                return Ok(Next::Close);
            }
            "VRFY" | "EXPN" => "502 5.5.1 not implemented\r\n".to_owned(),
            _ => "500 5.5.2 command not recognized\r\n".to_owned(),
        };
        write(stream, &reply).await?;
    }
    Ok(Next::Close)
}

pub(super) fn ehlo_reply(name: &str, starttls: bool) -> String {
    let size = format!("SIZE {MAX_MESSAGE_BYTES}");
    let mut keywords = vec!["PIPELINING", &size, "8BITMIME", "ENHANCEDSTATUSCODES"];
    if starttls {
        keywords.insert(2, "STARTTLS");
    }
    let mut reply = format!("250-{name} greets you\r\n");
    for (i, keyword) in keywords.iter().enumerate() {
        let sep = if i + 1 == keywords.len() { ' ' } else { '-' };
        reply.push_str(&format!("250{sep}{keyword}\r\n"));
    }
    reply
}

/// After a 554 greeting: `QUIT` gets 221, everything else 503 (RFC 5321 §3.1).
pub(super) async fn rejecting(mut stream: BufReader<TcpStream>) -> std::io::Result<()> {
    while let Some(line) = read_command(&mut stream).await? {
        if line.trim().eq_ignore_ascii_case("QUIT") {
            return write(&mut stream, "221 2.0.0 bye\r\n").await;
        }
        write(&mut stream, "503 5.5.1 no SMTP service here\r\n").await?;
    }
    Ok(())
}

/// Reads and discards input until the client closes (or goes idle for too long).
pub(super) async fn drain<S: AsyncRead + Unpin>(mut stream: S) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(IDLE_TIMEOUT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(error),
        }
    }
}

/// One command line, without its line ending; `None` at end of input or after an idle timeout.
/// Over-long lines are an error.
async fn read_command<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut limited = (&mut *stream).take(MAX_COMMAND_LINE as u64);
    let n = match tokio::time::timeout(IDLE_TIMEOUT, limited.read_until(b'\n', &mut line)).await {
        Ok(result) => result?,
        Err(_) => return Ok(None),
    };
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        let error = if n >= MAX_COMMAND_LINE {
            "command line too long"
        } else {
            "unterminated line"
        };
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error));
    }
    Ok(Some(String::from_utf8_lossy(&line).trim_end().to_owned()))
}

pub(super) async fn write<S: AsyncWrite + Unpin>(
    stream: &mut S,
    text: &str,
) -> std::io::Result<()> {
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}
