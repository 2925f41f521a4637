//! The request side of Postfix's SMTP access policy delegation protocol (SMTPD_POLICY_README):
//! framing (`name=value` lines ended by an empty line), its bounds, and the attributes the
//! inbound TLS rules read.
//!
//! Decisions on input Postfix never sends (each tested):
//!
//! * A request larger than [`MAX_REQUEST_BYTES`], a line longer than [`MAX_LINE_BYTES`] or more
//!   than [`MAX_ATTRIBUTES`] lines is refused before it is read further: the server closes the
//!   connection without an answer, which the protocol prescribes "in case of trouble" (Postfix
//!   retries, then applies `smtpd_policy_service_default_action`, by default a 451 deferral).
//! * An attribute this module reads that is repeated, not UTF-8 or holds a control character
//!   is an error: the protocol lets a server keep either value of a repeated attribute, and
//!   guessing which one the smtpd meant could let a request pass a rule. Attributes it does
//!   not read are skipped unchecked (the protocol says to ignore them).
//! * A line without `=`, or with an empty name, is an error.
//! * An empty value is the same as an absent attribute (Postfix sends either when a value is
//!   unavailable); `encryption_keysize=0` likewise.
//! * `request` must be `smtpd_access_policy`; `client_address`, when given, must be an IP
//!   address; `encryption_keysize`, when given, a number.
//! * A line may end in `\r\n` (a person typing at the socket); the `\r` is dropped.

use std::net::IpAddr;

use thiserror::Error;

/// Largest request read, all lines included. A Postfix request is well under 2 KB; a long
/// HELO name, SASL name and certificate subject stay far below this.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Longest line (attribute) read.
pub const MAX_LINE_BYTES: usize = 4096;
/// Most lines in one request (Postfix 3.x sends about 30).
pub const MAX_ATTRIBUTES: usize = 100;

/// Why a request was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyRequestError {
    /// No empty line within [`MAX_REQUEST_BYTES`].
    #[error("request larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("line {line} longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// More than [`MAX_ATTRIBUTES`] lines.
    #[error("more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    /// A line without `=` or with an empty name.
    #[error("line {line} is not name=value")]
    NotAttribute {
        /// 1-based line number.
        line: usize,
    },
    /// An attribute this server reads is not UTF-8 or holds a control character.
    #[error("attribute {name} is not printable UTF-8")]
    BadText {
        /// The attribute.
        name: &'static str,
    },
    /// An attribute this server reads is given twice.
    #[error("attribute {name} is given more than once")]
    Duplicate {
        /// The attribute.
        name: &'static str,
    },
    /// No `request` attribute.
    #[error("no request attribute")]
    MissingRequest,
    /// `request` is not `smtpd_access_policy`.
    #[error("request type {0:?} is not smtpd_access_policy")]
    UnknownRequest(String),
    /// `client_address` is not an IP address.
    #[error("client_address {0:?} is not an IP address")]
    BadClientAddress(String),
    /// `encryption_keysize` is not a number.
    #[error("encryption_keysize {0:?} is not a number")]
    BadKeysize(String),
}

/// The attributes of one request that the inbound TLS rules read, borrowed from the input.
/// `None`: absent or empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRequest<'a> {
    /// `protocol_state`: `CONNECT`, `EHLO`, `HELO`, `MAIL`, `RCPT`, `DATA`,
    /// `END-OF-MESSAGE`, `VRFY`, `ETRN`.
    pub protocol_state: Option<&'a str>,
    /// `sender`: the envelope sender (MAIL FROM), absent for the null sender `<>`.
    pub sender: Option<&'a str>,
    /// `recipient` (for logs).
    pub recipient: Option<&'a str>,
    /// `client_address`.
    pub client_address: Option<IpAddr>,
    /// `client_name`: the verified (forward-confirmed) client hostname, or `unknown`.
    pub client_name: Option<&'a str>,
    /// `reverse_client_name`: the unverified PTR name (shown, never matched).
    pub reverse_client_name: Option<&'a str>,
    /// `helo_name` (for logs).
    pub helo_name: Option<&'a str>,
    /// `queue_id` (for logs).
    pub queue_id: Option<&'a str>,
    /// `encryption_protocol`: `TLSv1.3`… ; absent on a plaintext session.
    pub encryption_protocol: Option<&'a str>,
    /// `encryption_cipher`.
    pub encryption_cipher: Option<&'a str>,
    /// `encryption_keysize` (0 means absent).
    pub encryption_keysize: Option<u32>,
    /// `ccert_subject`: the client certificate's CN, sent only when the certificate was
    /// verified against `smtpd_tls_CAfile` (xtext-encoded).
    pub ccert_subject: Option<&'a str>,
    /// `ccert_issuer`: the issuer CN, sent only when verified.
    pub ccert_issuer: Option<&'a str>,
    /// `ccert_fingerprint`: the certificate digest (`smtpd_tls_fingerprint_digest`), sent
    /// whenever a certificate was presented, trusted or not.
    pub ccert_fingerprint: Option<&'a str>,
    /// `ccert_pubkey_fingerprint`: the public key digest, sent like `ccert_fingerprint`.
    pub ccert_pubkey_fingerprint: Option<&'a str>,
}

/// Finds the end of the first request in `buf`: `Ok(Some(n))` when the first `n` bytes are
/// a whole request including its empty line, `Ok(None)` when more bytes are needed, an error
/// as soon as the bytes so far break a bound (the connection cannot be resynchronised then).
pub fn find_request_end(buf: &[u8]) -> Result<Option<usize>, PolicyRequestError> {
    let mut start = 0;
    let mut line = 0;
    while start < buf.len() {
        line += 1;
        let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') else {
            if buf.len() - start > MAX_LINE_BYTES {
                return Err(PolicyRequestError::LineTooLong { line });
            }
            break;
        };
        let text = trim_cr(&buf[start..start + nl]);
        if text.len() > MAX_LINE_BYTES {
            return Err(PolicyRequestError::LineTooLong { line });
        }
        let end = start + nl + 1;
        if text.is_empty() {
            return Ok(Some(end));
        }
        if end > MAX_REQUEST_BYTES {
            return Err(PolicyRequestError::TooLarge);
        }
        if line > MAX_ATTRIBUTES {
            return Err(PolicyRequestError::TooManyAttributes);
        }
        start = end;
    }
    if buf.len() > MAX_REQUEST_BYTES {
        return Err(PolicyRequestError::TooLarge);
    }
    Ok(None)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The attributes read, in one place so that reading and duplicate detection agree.
const NAMES: [&str; 16] = [
    "request",
    "protocol_state",
    "sender",
    "recipient",
    "client_address",
    "client_name",
    "reverse_client_name",
    "helo_name",
    "queue_id",
    "encryption_protocol",
    "encryption_cipher",
    "encryption_keysize",
    "ccert_subject",
    "ccert_issuer",
    "ccert_fingerprint",
    "ccert_pubkey_fingerprint",
];

/// Parses one request: the bytes [`find_request_end`] delimited (the empty line may be
/// included or not). See the module docs for what is refused.
pub fn parse_request(bytes: &[u8]) -> Result<PolicyRequest<'_>, PolicyRequestError> {
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(PolicyRequestError::TooLarge);
    }
    let mut values: [Option<&str>; NAMES.len()] = [None; NAMES.len()];
    let mut seen = [false; NAMES.len()];
    let mut count = 0;
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = trim_cr(raw);
        if raw.is_empty() {
            // The terminating empty line (and the empty tail after it).
            break;
        }
        count += 1;
        if count > MAX_ATTRIBUTES {
            return Err(PolicyRequestError::TooManyAttributes);
        }
        if raw.len() > MAX_LINE_BYTES {
            return Err(PolicyRequestError::LineTooLong { line });
        }
        let Some(eq) = raw.iter().position(|&b| b == b'=') else {
            return Err(PolicyRequestError::NotAttribute { line });
        };
        let (name, value) = (&raw[..eq], &raw[eq + 1..]);
        if name.is_empty() {
            return Err(PolicyRequestError::NotAttribute { line });
        }
        let Some(slot) = NAMES.iter().position(|n| n.as_bytes() == name) else {
            continue;
        };
        let name = NAMES[slot];
        if std::mem::replace(&mut seen[slot], true) {
            return Err(PolicyRequestError::Duplicate { name });
        }
        let text = std::str::from_utf8(value).map_err(|_| PolicyRequestError::BadText { name })?;
        if text.chars().any(char::is_control) {
            return Err(PolicyRequestError::BadText { name });
        }
        values[slot] = (!text.is_empty()).then_some(text);
    }
    let get = |name: &str| {
        NAMES
            .iter()
            .position(|n| *n == name)
            .and_then(|slot| values[slot])
    };
    match get("request") {
        None => return Err(PolicyRequestError::MissingRequest),
        Some("smtpd_access_policy") => {}
        Some(other) => return Err(PolicyRequestError::UnknownRequest(other.to_owned())),
    }
    let client_address = get("client_address")
        .map(|text| {
            text.parse::<IpAddr>()
                .map(|ip| ip.to_canonical())
                .map_err(|_| PolicyRequestError::BadClientAddress(text.to_owned()))
        })
        .transpose()?;
    let encryption_keysize = get("encryption_keysize")
        .map(|text| {
            text.parse::<u32>()
                .map_err(|_| PolicyRequestError::BadKeysize(text.to_owned()))
        })
        .transpose()?
        .filter(|&bits| bits != 0);
    Ok(PolicyRequest {
        protocol_state: get("protocol_state"),
        sender: get("sender"),
        recipient: get("recipient"),
        client_address,
        client_name: get("client_name"),
        reverse_client_name: get("reverse_client_name"),
        helo_name: get("helo_name"),
        queue_id: get("queue_id"),
        encryption_protocol: get("encryption_protocol"),
        encryption_cipher: get("encryption_cipher"),
        encryption_keysize,
        ccert_subject: get("ccert_subject"),
        ccert_issuer: get("ccert_issuer"),
        ccert_fingerprint: get("ccert_fingerprint"),
        ccert_pubkey_fingerprint: get("ccert_pubkey_fingerprint"),
    })
}

/// The answer on the wire: `action=ACTION` and the empty line. `action` comes from
/// [`crate::postfix::policy::Verdict::action`], which never holds a line break.
pub fn encode_answer(action: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"action=");
    out.extend(
        action
            .bytes()
            .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\n\n");
}
