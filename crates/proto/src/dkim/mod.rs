//! DKIM key records (RFC 6376 §3.6.1, §3.6.2): the tag list at `<selector>._domainkey.<domain>`,
//! the public key inside it (RSA SubjectPublicKeyInfo → modulus size, Ed25519 per RFC 8463),
//! and what verifiers make of it (RFC 8301: RSA below 1024 bits is not valid, SHA-1 is not
//! used).
//!
//! Readings taken:
//!
//! * Every TXT record at the key name is a key record (v= is optional, §3.6.1); with several,
//!   verifiers may pick any (§3.6.2.2), so the first is evaluated and the others noted.
//! * An RSA key given as a bare PKCS#1 `RSAPublicKey` instead of a SubjectPublicKeyInfo is
//!   accepted (several verifiers do) with a warning.

mod der;
pub mod key;

pub use key::{
    DkimKey, KeyError, KeyOutcome, KeyStatus, KeyType, evaluate, key_name, valid_selector,
};

#[cfg(test)]
mod tests;
