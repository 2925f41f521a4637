//! The DKIM key record's tag list (RFC 6376 §3.2, §3.6.1) and the verdicts on its key.

use base64::Engine;
use serde::Serialize;
use thiserror::Error;

use super::der::{self, PublicKey};
use crate::txt::TxtRr;
use crate::{Diagnostic, Severity};

/// RSA keys shorter than this are not valid signatures to verifiers (RFC 8301 §3.2).
pub const RSA_MIN_BITS: usize = 1024;
/// RSA keys shorter than this are weak: signers SHOULD use at least 2048 bits (RFC 8301 §3.2).
pub const RSA_GOOD_BITS: usize = 2048;

const RULE: &str = "RFC 6376 §3.6.1";
const RULE_SIZE: &str = "RFC 8301 §3.2";

/// The name of the key record for `selector` at `domain`.
pub fn key_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

/// Whether `selector` is a valid selector: dot-separated labels of letters, digits, `-` and
/// `_`, each 1 to 63 characters (RFC 6376 §3.1 `sub-domain`), 200 characters at most.
pub fn valid_selector(selector: &str) -> bool {
    selector.len() <= 200
        && selector.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The key algorithm (`k=`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// `rsa` (the default).
    Rsa,
    /// `ed25519` (RFC 8463).
    Ed25519,
}

/// A parsed key record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkimKey {
    /// `k=`.
    pub key_type: KeyType,
    /// The key size in bits (RSA modulus; 256 for Ed25519); `None` when revoked.
    pub bits: Option<usize>,
    /// `p=` is empty: the key is revoked (§3.6.1).
    pub revoked: bool,
    /// `t=y`: the domain is testing DKIM.
    pub testing: bool,
    /// `h=`: the hash algorithms allowed; `None` for all.
    pub hashes: Option<Vec<String>>,
    /// An RSA key as a bare PKCS#1 RSAPublicKey rather than a SubjectPublicKeyInfo.
    pub pkcs1: bool,
}

/// Why a key record is not usable: verifiers ignore it and signatures with it fail.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// A character outside printable US-ASCII or whitespace.
    #[error("the record contains a character outside US-ASCII at offset {0}")]
    NotAscii(usize),
    /// A tag-spec that is not `name=value`.
    #[error("{0:?} is not a tag=value pair")]
    BadTag(String),
    /// A tag appears twice: the whole tag list is invalid (§3.2).
    #[error("the tag {0}= appears more than once")]
    DuplicateTag(String),
    /// `v=` is present but not `DKIM1`, or not the first tag.
    #[error("v= must be the first tag and exactly DKIM1, found {0:?}")]
    Version(String),
    /// No `p=` tag.
    #[error("the required p= tag is missing")]
    MissingKey,
    /// `p=` is not base64.
    #[error("p= is not valid base64")]
    Base64,
    /// `k=` names an algorithm verifiers do not know.
    #[error("unknown key type k={0}")]
    UnknownKeyType(String),
    /// The key data does not parse for its type.
    #[error("the key data is not a valid {0} public key")]
    BadKey(&'static str),
    /// `s=` excludes email.
    #[error("s={0} does not include email or *: the key is not for email")]
    Service(String),
}

impl DkimKey {
    /// Parses a key record.
    pub fn parse(text: &str) -> Result<DkimKey, KeyError> {
        if let Some(offset) = text
            .bytes()
            .position(|b| !(0x20..0x7f).contains(&b) && !b"\t\r\n".contains(&b))
        {
            return Err(KeyError::NotAscii(offset));
        }
        let mut tags: Vec<(String, String)> = Vec::new();
        for spec in text.split(';') {
            if spec.trim().is_empty() {
                continue;
            }
            let Some((name, value)) = spec.split_once('=') else {
                return Err(KeyError::BadTag(spec.trim().to_owned()));
            };
            let name = name.trim();
            let ok = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(KeyError::BadTag(spec.trim().to_owned()));
            }
            if tags.iter().any(|(n, _)| n == name) {
                return Err(KeyError::DuplicateTag(name.to_owned()));
            }
            tags.push((name.to_owned(), value.trim().to_owned()));
        }
        let get = |n: &str| tags.iter().find(|(t, _)| t == n).map(|(_, v)| v.as_str());
        if let Some(pos) = tags.iter().position(|(n, _)| n == "v")
            && (pos != 0 || tags[pos].1 != "DKIM1")
        {
            return Err(KeyError::Version(tags[pos].1.clone()));
        }
        let key_type = match get("k").unwrap_or("rsa") {
            "rsa" => KeyType::Rsa,
            "ed25519" => KeyType::Ed25519,
            other => return Err(KeyError::UnknownKeyType(other.to_owned())),
        };
        if let Some(s) = get("s") {
            let services: Vec<&str> = s.split(':').map(str::trim).collect();
            if !services.iter().any(|v| *v == "*" || *v == "email") {
                return Err(KeyError::Service(s.to_owned()));
            }
        }
        let hashes = get("h").map(|h| {
            h.split(':')
                .map(|v| v.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        });
        let testing = get("t").is_some_and(|t| t.split(':').any(|f| f.trim() == "y"));
        let p: String = get("p")
            .ok_or(KeyError::MissingKey)?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let mut key = DkimKey {
            key_type,
            bits: None,
            revoked: p.is_empty(),
            testing,
            hashes,
            pkcs1: false,
        };
        if key.revoked {
            return Ok(key);
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(&p)
            .map_err(|_| KeyError::Base64)?;
        match key.key_type {
            KeyType::Rsa => match der::public_key(&data) {
                Some(PublicKey::Rsa { bits, spki }) => {
                    key.bits = Some(bits);
                    key.pkcs1 = !spki;
                }
                _ => return Err(KeyError::BadKey("RSA")),
            },
            // RFC 8463 §4.2: the raw 32-octet key, not a SubjectPublicKeyInfo.
            KeyType::Ed25519 if data.len() == 32 => key.bits = Some(256),
            KeyType::Ed25519 => return Err(KeyError::BadKey("Ed25519 (32 octets)")),
        }
        Ok(key)
    }
}

/// The state of one selector's key, for the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    /// A usable key.
    Valid,
    /// No TXT record at the key name.
    Missing,
    /// `p=` empty.
    Revoked,
    /// The record does not parse or the key is unusable.
    Invalid,
    /// The lookup failed temporarily.
    TempError,
}

/// What one selector's key record amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOutcome {
    /// The state.
    pub status: KeyStatus,
    /// The record evaluated (the first when several).
    pub raw: Option<String>,
    /// The parsed key, when it parses.
    pub key: Option<DkimKey>,
    /// Problems and notes.
    pub diagnostics: Vec<Diagnostic>,
}

fn diag(
    severity: Severity,
    code: &'static str,
    message: String,
    fix: String,
    rule: &'static str,
) -> Diagnostic {
    Diagnostic {
        severity,
        code,
        line: None,
        message,
        rule,
        fix,
    }
}

/// Evaluates the TXT RRset at `<selector>._domainkey.<domain>` (an empty set: no record).
pub fn evaluate(selector: &str, domain: &str, rrset: &[TxtRr]) -> KeyOutcome {
    let name = key_name(selector, domain);
    let texts: Vec<String> = rrset
        .iter()
        .map(|rr| String::from_utf8_lossy(&rr.concat()).into_owned())
        .collect();
    let mut diagnostics = Vec::new();
    let Some(raw) = texts.first().cloned() else {
        return KeyOutcome {
            status: KeyStatus::Missing,
            raw: None,
            key: None,
            diagnostics: vec![diag(
                Severity::Error,
                "dkim-key-missing",
                format!(
                    "No DKIM key record at {name}: verifiers cannot check signatures made with selector {selector:?}, so they fail (RFC 6376 §6.1.2)."
                ),
                format!(
                    "Publish the public key of selector {selector} as {name} TXT \"v=DKIM1; k=rsa; p=<base64 key>\" (your mail provider shows the record), or stop signing with this selector."
                ),
                "RFC 6376 §3.6.2",
            )],
        };
    };
    if texts.len() > 1 {
        diagnostics.push(diag(
            Severity::Warning,
            "dkim-key-multiple",
            format!("{} TXT records at {name}; verifiers may use any one of them (RFC 6376 §3.6.2.2), so signatures verify only sometimes. The first is evaluated here.", texts.len()),
            format!("Keep one key record at {name}; rotate keys with a new selector."),
            "RFC 6376 §3.6.2.2",
        ));
    }
    let key = match DkimKey::parse(&raw) {
        Ok(key) => key,
        Err(e) => {
            diagnostics.push(diag(
                Severity::Error,
                "dkim-key-invalid",
                format!("The DKIM key record {raw:?} at {name} is invalid: {e}. Verifiers ignore it and signatures with selector {selector:?} fail (RFC 6376 §3.6.1)."),
                "Publish \"v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>\" (or k=ed25519 with the 32-octet key), each tag once, as your signer's configuration shows.".to_owned(),
                RULE,
            ));
            return KeyOutcome {
                status: KeyStatus::Invalid,
                raw: Some(raw),
                key: None,
                diagnostics,
            };
        }
    };
    let mut status = KeyStatus::Valid;
    if key.revoked {
        status = KeyStatus::Revoked;
        diagnostics.push(diag(
            Severity::Warning,
            "dkim-key-revoked",
            format!("The DKIM key at {name} is revoked (p= is empty): signatures with selector {selector:?} fail (RFC 6376 §3.6.1)."),
            format!("Make sure nothing signs with selector {selector} any more; remove the record once old mail no longer matters."),
            RULE,
        ));
    }
    if let (KeyType::Rsa, Some(bits)) = (&key.key_type, key.bits) {
        if bits < RSA_MIN_BITS {
            status = KeyStatus::Invalid;
            diagnostics.push(diag(
                Severity::Error,
                "dkim-key-too-short",
                format!("The RSA key at {name} has {bits} bits; verifiers do not accept signatures with keys below {RSA_MIN_BITS} bits (RFC 8301 §3.2)."),
                format!("Generate a {RSA_GOOD_BITS}-bit key under a new selector, publish it, switch the signer to it, then revoke {selector}."),
                RULE_SIZE,
            ));
        } else if bits < RSA_GOOD_BITS {
            diagnostics.push(diag(
                Severity::Warning,
                "dkim-key-short",
                format!("The RSA key at {name} has {bits} bits; signers SHOULD use at least {RSA_GOOD_BITS} (RFC 8301 §3.2), and 1024-bit keys can be factored by a well-funded attacker."),
                format!("Generate a {RSA_GOOD_BITS}-bit key under a new selector, publish it, switch the signer to it, then revoke {selector}."),
                RULE_SIZE,
            ));
        }
    }
    if key.pkcs1 {
        diagnostics.push(diag(
            Severity::Warning,
            "dkim-key-pkcs1",
            format!("The RSA key at {name} is a bare PKCS#1 RSAPublicKey, not the SubjectPublicKeyInfo RFC 6376 §3.6.1 calls for; some verifiers reject it."),
            "Publish the key as output by `openssl rsa -pubout -outform DER` (SubjectPublicKeyInfo), base64-encoded.".to_owned(),
            RULE,
        ));
    }
    if let Some(hashes) = &key.hashes
        && !hashes.iter().any(|h| h == "sha256")
    {
        status = KeyStatus::Invalid;
        diagnostics.push(diag(
            Severity::Error,
            "dkim-key-sha1",
            format!("The DKIM key at {name} allows only h={}; verifiers no longer accept SHA-1 signatures (RFC 8301 §3.1), so no signature with it verifies.", hashes.join(":")),
            "Remove h= (or write h=sha256) and sign with rsa-sha256.".to_owned(),
            "RFC 8301 §3.1",
        ));
    }
    if key.testing {
        diagnostics.push(diag(
            Severity::Info,
            "dkim-key-testing",
            format!("The DKIM key at {name} has t=y: the domain says it is testing DKIM, and verifiers may treat its signatures as if absent (RFC 6376 §3.6.1)."),
            "Remove t=y once signatures verify.".to_owned(),
            RULE,
        ));
    }
    if key.key_type == KeyType::Ed25519 && !key.revoked {
        diagnostics.push(diag(
            Severity::Info,
            "dkim-key-ed25519",
            format!("The key at {name} is Ed25519 (RFC 8463); verifiers without Ed25519 support ignore its signatures."),
            "Sign with an RSA key as well, under another selector (RFC 8463 §4).".to_owned(),
            "RFC 8463 §4",
        ));
    }
    KeyOutcome {
        status,
        raw: Some(raw),
        key: Some(key),
        diagnostics,
    }
}
