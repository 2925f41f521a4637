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
//! assert_eq!(socketmap::classify_key(&request.key), NextHop::Domain("example.com".into()));
//! assert_eq!(Reply::NotFound.to_payload(), b"NOTFOUND ");
//! ```

use thiserror::Error;

mod key;
mod netstring;

pub use key::{NextHop, classify_key};
pub use netstring::{NetstringError, decode_netstring, encode_netstring};

/// The largest request payload to accept: Postfix's `socketmap_max_query_size` default
/// (10000, Postfix 3.12+; older versions send smaller queries).
pub const MAX_QUERY_BYTES: usize = 10_000;

/// The largest reply payload Postfix accepts: `socketmap_max_reply_size` (100000, Postfix
/// 3.10+), not counting the netstring framing. Larger answers make Postfix defer the message.
pub const MAX_REPLY_BYTES: usize = 100_000;

/// One socketmap request: `NAME KEY` (interop §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The map name from `socketmap:…:NAME`; we use it to pick a profile.
    pub name: String,
    /// The lookup key exactly as sent (not normalised; see [`classify_key`]).
    pub key: String,
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
pub fn parse_request(payload: &[u8]) -> Result<Request, RequestError> {
    let text = std::str::from_utf8(payload).map_err(|_| RequestError::NotUtf8)?;
    let (name, key) = text.split_once(' ').ok_or(RequestError::MissingSpace)?;
    if name.is_empty() {
        return Err(RequestError::EmptyName);
    }
    Ok(Request {
        name: name.to_owned(),
        key: key.to_owned(),
    })
}

/// A socketmap reply (interop §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `OK <data>`: the key was found; `data` is a TLS policy (see [`crate::postfix`]).
    Ok(String),
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
        let payload = match self {
            Reply::Ok(data) if data.is_empty() => temp(REPLY_EMPTY_OK),
            Reply::Ok(data) => format!("OK {data}"),
            Reply::NotFound => "NOTFOUND ".to_owned(),
            Reply::Temp(reason) => temp(reason),
            Reply::Perm(reason) => format!("PERM {}", sanitize(reason)),
        };
        if payload.len() > MAX_REPLY_BYTES {
            return temp(REPLY_TOO_LARGE).into_bytes();
        }
        payload.into_bytes()
    }

    /// The reply framed as a netstring, ready to write.
    pub fn to_netstring(&self) -> Vec<u8> {
        encode_netstring(&self.to_payload())
    }

    /// Parses a reply payload (the client side: tests, `postmap -q` look-alikes). The status
    /// word is case-sensitive; `TIMEOUT` is read as [`Reply::Temp`], as Postfix does.
    pub fn from_payload(payload: &[u8]) -> Result<Reply, ReplyError> {
        let text = std::str::from_utf8(payload).map_err(|_| ReplyError::NotUtf8)?;
        let (word, data) = text.split_once(' ').unwrap_or((text, ""));
        match word {
            "OK" => Ok(Reply::Ok(data.to_owned())),
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

fn temp(reason: &str) -> String {
    format!("TEMP {}", sanitize(reason))
}

/// Control characters (CR, LF, NUL…) replaced by spaces.
fn sanitize(reason: &str) -> String {
    reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[path = "socketmap/tests.rs"]
mod tests;
