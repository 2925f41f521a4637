//! The Postfix socketmap protocol (`socketmap_table(5)`, interop §1.1–§1.4): netstring framing,
//! `NAME KEY` requests, the keys Postfix sends for `smtp_tls_policy_maps`, and replies.
//!
//! ```
//! use mtasts_proto::socketmap::{self, NextHop, Reply};
//! let wire = b"25:mta-sts [Example.COM.]:25,";
//! let (payload, used) = socketmap::decode_netstring(wire, socketmap::MAX_QUERY_BYTES).unwrap().unwrap();
//! assert_eq!(used, wire.len());
//! let request = socketmap::parse_request(&payload).unwrap();
//! assert_eq!(request.name, "mta-sts");
//! assert_eq!(socketmap::classify_key(request.key), NextHop::Domain("example.com".into()));
//! assert_eq!(Reply::NotFound.to_payload(), b"NOTFOUND ");
//! ```

use std::sync::Arc;

use thiserror::Error;

mod key;
mod netstring;

pub use key::{NextHop, classify_key};
pub use netstring::{
    NetstringError, append_netstring, decode_netstring, decode_netstring_span, encode_netstring,
};

/// The largest request payload to accept: Postfix's `socketmap_max_query_size` default
/// (10000, Postfix 3.12+; older versions send smaller queries).
pub const MAX_QUERY_BYTES: usize = 10_000;

/// The largest reply payload Postfix accepts: `socketmap_max_reply_size` (100000, Postfix
/// 3.10+), not counting the netstring framing. Larger answers make Postfix defer the message.
pub const MAX_REPLY_BYTES: usize = 100_000;

/// One socketmap request: `NAME KEY` (interop §1.2), borrowed from the request payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The map name from `socketmap:…:NAME`; we use it to pick a profile.
    pub name: &'a str,
    /// The lookup key exactly as sent (not normalised; see [`classify_key`]).
    pub key: &'a str,
}

/// Why a request payload is not `NAME KEY`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The payload is not UTF-8 (Postfix sends UTF-8 keys with `smtputf8_enable`, ASCII
    /// otherwise).
    #[error("the request is not UTF-8")]
    NotUtf8,
    /// There is no space between the map name and the key.
    #[error("the request has no space between the map name and the key")]
    MissingSpace,
    /// The map name before the first space is empty.
    #[error("the request has an empty map name")]
    EmptyName,
}

/// Parses a request payload: the map name, one space, the key. Splits on the first space, so a
/// key containing spaces (which Postfix never sends) is kept whole and later classified
/// [`NextHop::Invalid`]. An empty key is accepted here and is likewise invalid.
pub fn parse_request(payload: &[u8]) -> Result<Request<'_>, RequestError> {
    let text = std::str::from_utf8(payload).map_err(|_| RequestError::NotUtf8)?;
    let (name, key) = text.split_once(' ').ok_or(RequestError::MissingSpace)?;
    if name.is_empty() {
        return Err(RequestError::EmptyName);
    }
    Ok(Request { name, key })
}

/// A socketmap reply (interop §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `OK <data>`: the key was found; `data` is a TLS policy (see [`crate::postfix`]).
    /// Shared, so that an answer rendered once (a cached policy's) is sent without a copy.
    Ok(Arc<str>),
    /// `NOTFOUND `: Postfix tries the next map, then its default level.
    NotFound,
    /// `TEMP <reason>`: a lookup error; Postfix defers the message (4.7.5).
    Temp(String),
    /// `PERM <reason>`: a configuration error; in `smtp_tls_policy_maps` Postfix also defers.
    Perm(String),
}

/// The reason sent when an answer would exceed [`MAX_REPLY_BYTES`].
pub const REPLY_TOO_LARGE: &str = "policy answer exceeds the socketmap reply size limit";
/// The reason sent instead of an `OK` with empty data (Postfix reads that as a configuration
/// error).
pub const REPLY_EMPTY_OK: &str = "empty policy answer";

impl Reply {
    /// The reply payload (to be framed with [`encode_netstring`]).
    ///
    /// * `NOTFOUND ` keeps its trailing space, as every socketmap daemon sends it.
    /// * Control characters in `TEMP`/`PERM` reasons become spaces (Postfix logs them).
    /// * `Ok("")` becomes `TEMP` ([`REPLY_EMPTY_OK`]): Postfix treats an empty `OK` as a
    ///   configuration error, and a `TEMP` says why.
    /// * A payload longer than [`MAX_REPLY_BYTES`] becomes `TEMP` ([`REPLY_TOO_LARGE`]), as
    ///   postfix-tlspol does: Postfix would fail the lookup anyway, and a clear reason helps.
    pub fn to_payload(&self) -> Vec<u8> {
        let parts = self.parts();
        let mut out = Vec::with_capacity(parts.len());
        parts.append(&mut out);
        out
    }

    /// The reply framed as a netstring, ready to write.
    pub fn to_netstring(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.append_netstring(&mut out);
        out
    }

    /// Appends the reply framed as a netstring to `out`: the bytes of
    /// [`Reply::to_netstring`], without a copy of the payload on the way (a server keeps one
    /// output buffer per connection).
    pub fn append_netstring(&self, out: &mut Vec<u8>) {
        let parts = self.parts();
        out.reserve(parts.len() + 8);
        netstring::append_length(parts.len(), out);
        parts.append(out);
        out.push(b',');
    }

    /// The payload as it goes out: its status word and its text, after the substitutions
    /// listed at [`Reply::to_payload`].
    fn parts(&self) -> Parts<'_> {
        let parts = match self {
            Reply::Ok(data) if data.is_empty() => Parts::new("TEMP ", REPLY_EMPTY_OK, false),
            Reply::Ok(data) => Parts::new("OK ", data, false),
            Reply::NotFound => Parts::new("NOTFOUND ", "", false),
            Reply::Temp(reason) => Parts::new("TEMP ", reason, true),
            Reply::Perm(reason) => Parts::new("PERM ", reason, true),
        };
        if parts.len() > MAX_REPLY_BYTES {
            return Parts::new("TEMP ", REPLY_TOO_LARGE, false);
        }
        parts
    }

    /// Parses a reply payload (the client side: tests, `postmap -q` look-alikes). The status
    /// word is case-sensitive; `TIMEOUT` is read as [`Reply::Temp`], as Postfix does.
    pub fn from_payload(payload: &[u8]) -> Result<Reply, ReplyError> {
        let text = std::str::from_utf8(payload).map_err(|_| ReplyError::NotUtf8)?;
        let (word, data) = text.split_once(' ').unwrap_or((text, ""));
        match word {
            "OK" => Ok(Reply::Ok(data.into())),
            "NOTFOUND" => Ok(Reply::NotFound),
            "TEMP" | "TIMEOUT" => Ok(Reply::Temp(data.to_owned())),
            "PERM" => Ok(Reply::Perm(data.to_owned())),
            other => Err(ReplyError::UnknownStatus(other.to_owned())),
        }
    }
}

/// Why a reply payload is not a socketmap reply.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The payload is not UTF-8.
    #[error("the reply is not UTF-8")]
    NotUtf8,
    /// The status word is not `OK`, `NOTFOUND`, `TEMP`, `TIMEOUT` or `PERM`.
    #[error("unknown reply status {0:?}")]
    UnknownStatus(String),
}

/// A reply payload in pieces: a status word with its space, then text, sanitised or not.
struct Parts<'a> {
    word: &'static str,
    text: &'a str,
    /// Control characters in `text` go out as spaces (Postfix logs `TEMP`/`PERM` reasons).
    sanitize: bool,
    /// The length of the text as it goes out.
    text_len: usize,
}

impl<'a> Parts<'a> {
    fn new(word: &'static str, text: &'a str, sanitize: bool) -> Self {
        let text_len = if sanitize {
            text.chars()
                .map(|c| if c.is_control() { 1 } else { c.len_utf8() })
                .sum()
        } else {
            text.len()
        };
        Parts {
            word,
            text,
            sanitize,
            text_len,
        }
    }

    /// The payload length.
    fn len(&self) -> usize {
        self.word.len() + self.text_len
    }

    fn append(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.word.as_bytes());
        if !self.sanitize {
            out.extend_from_slice(self.text.as_bytes());
            return;
        }
        let mut utf8 = [0u8; 4];
        for c in self.text.chars() {
            let c = if c.is_control() { ' ' } else { c };
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

#[cfg(test)]
#[path = "socketmap/tests.rs"]
mod tests;
