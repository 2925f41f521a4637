//! Secrets at rest: the certificate private keys, ACME account credentials and TLS-ALPN-01
//! challenge keys the hosting database keeps are sealed (AES-256-GCM) under a key the
//! operator configures, so a copied database file or a backup does not hand them out.
//!
//! A sealed value is text, so it fits the existing columns:
//! `mtasts-sealed:v1:<key id>:<base64 of nonce, ciphertext and tag>`. The key id (16 hex
//! digits of a SHA-256 over the key) says which key opens it, so a database can hold values of
//! the current and of previous keys during a rotation. The column and the row's key (domain,
//! directory URL, challenge token) are the associated data: a sealed value copied into another
//! row or column does not open. A stored value that does not start with `mtasts-sealed:` is
//! plaintext (written before a key was configured) and is returned as it is.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use thiserror::Error;

/// What every sealed value starts with, whatever its version: a stored value that does not is
/// plaintext.
pub const SEALED_MARK: &str = "mtasts-sealed:";

/// The prefix of the current format, before the key id.
pub const SEALED_V1: &str = "mtasts-sealed:v1:";

/// A 256-bit key that seals secrets at rest.
pub struct SecretKey {
    bytes: [u8; KEY_BYTES],
    id: String,
}

impl SecretKey {
    /// A fresh random key (the system's CSPRNG).
    pub fn generate() -> Result<SecretKey, SealError> {
        let mut bytes = [0u8; KEY_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| SealError::Random)?;
        Ok(SecretKey::from_bytes(bytes))
    }

    /// The key written as 64 hexadecimal digits (either case); surrounding whitespace, such as
    /// a key file's final newline, is ignored.
    pub fn from_hex(text: &str) -> Result<SecretKey, SealError> {
        let bytes = mtasts_proto::hex::decode(text.trim())
            .and_then(|bytes| <[u8; KEY_BYTES]>::try_from(bytes).ok())
            .ok_or(SealError::InvalidKey)?;
        Ok(SecretKey::from_bytes(bytes))
    }

    /// The key as 64 lowercase hexadecimal digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        hex(&self.bytes)
    }

    /// The key's id: 16 hex digits naming it in sealed values and messages, without revealing
    /// it.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn from_bytes(bytes: [u8; KEY_BYTES]) -> SecretKey {
        let mut input = Vec::with_capacity(KEY_ID_CONTEXT.len() + KEY_BYTES);
        input.extend_from_slice(KEY_ID_CONTEXT);
        input.extend_from_slice(&bytes);
        let id = hex(&digest(&SHA256, &input).as_ref()[..KEY_ID_BYTES]);
        SecretKey { bytes, id }
    }
}

impl fmt::Debug for SecretKey {
    /// The id only: the key itself never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Seals under the current key and opens under it or any previous one.
pub struct Sealer {
    current: KeyedCipher,
    previous: Vec<KeyedCipher>,
}

struct KeyedCipher {
    id: String,
    cipher: LessSafeKey,
}

impl KeyedCipher {
    fn new(key: &SecretKey) -> KeyedCipher {
        let unbound = UnboundKey::new(&AES_256_GCM, &key.bytes)
            .expect("AES-256-GCM takes a 32-byte key, which SecretKey always is");
        KeyedCipher {
            id: key.id.clone(),
            cipher: LessSafeKey::new(unbound),
        }
    }
}

impl Sealer {
    /// Seals with `current`; opens values sealed with `current` or any of `previous` (a
    /// previous key equal to the current one is ignored).
    pub fn new(current: &SecretKey, previous: &[SecretKey]) -> Sealer {
        Sealer {
            current: KeyedCipher::new(current),
            previous: previous
                .iter()
                .filter(|key| key.id != current.id)
                .map(KeyedCipher::new)
                .collect(),
        }
    }

    /// The id of the key new values are sealed with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// The ids of the previous keys, which only open.
    pub fn previous_key_ids(&self) -> impl Iterator<Item = &str> {
        self.previous.iter().map(|k| k.id.as_str())
    }

    /// `plain` sealed under the current key for `column` of the row whose key is `row`.
    pub fn seal(&self, column: &str, row: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = plain.as_bytes().to_vec();
        self.current
            .cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(column, row)),
                &mut sealed,
            )
            .map_err(|_| SealError::Random)?;
        let mut payload = Vec::with_capacity(NONCE_LEN + sealed.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_V1}{}:{}",
            self.current.id,
            BASE64.encode(payload)
        ))
    }

    /// The plaintext of `stored` (of `column` in row `row`): opened when sealed, as it is when
    /// plaintext.
    pub fn open(&self, column: &str, row: &str, stored: &str) -> Result<String, SealError> {
        open(Some(self), column, row, stored)
    }

    /// Whether `stored` is sealed under the current key (nothing to reseal).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_V1)
            .and_then(|rest| rest.strip_prefix(self.current.id.as_str()))
            .is_some_and(|rest| rest.starts_with(':'))
    }

    /// The `LIKE` pattern of values sealed under the current key.
    pub(crate) fn current_pattern(&self) -> String {
        format!("{SEALED_V1}{}:%", self.current.id)
    }

    fn cipher(&self, id: &str) -> Option<&LessSafeKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .map(|k| &k.cipher)
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.current.id)
            .field(
                "previous_key_ids",
                &self.previous_key_ids().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a secret could not be sealed or opened.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// A configured key is not 64 hexadecimal digits.
    #[error(
        "a secret key is 64 hexadecimal digits (32 bytes), as `mtasts admin secret-key new` prints"
    )]
    InvalidKey,
    /// A stored value is sealed under a key that is not configured.
    #[error(
        "a secret in the database is sealed under secret key {key_id}, which is not configured"
    )]
    UnknownKey {
        /// The id of the key it needs.
        key_id: String,
    },
    /// A sealed value does not open under the key its id names: altered, or moved from
    /// another row or column.
    #[error("{what} does not open under secret key {key_id}: altered, or copied from another row")]
    Undecryptable {
        /// The column and row.
        what: String,
        /// The key id it names.
        key_id: String,
    },
    /// A value starts like a sealed one but is not in a format this version reads.
    #[error("{what} is not a sealed value this version of mtasts reads")]
    Malformed {
        /// The column and row.
        what: String,
    },
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
}

/// The plaintext of `stored` (of `column` in row `row`): as it is when it is plaintext,
/// opened by `sealer` when sealed; a sealed value without a sealer is
/// [`SealError::UnknownKey`].
pub(super) fn open(
    sealer: Option<&Sealer>,
    column: &str,
    row: &str,
    stored: &str,
) -> Result<String, SealError> {
    let Some(rest) = stored.strip_prefix(SEALED_MARK) else {
        return Ok(stored.to_owned());
    };
    let what = || format!("{column} of {row:?}");
    let (key_id, payload) = rest
        .strip_prefix("v1:")
        .and_then(|rest| rest.split_once(':'))
        .filter(|(id, _)| id.len() == 2 * KEY_ID_BYTES && mtasts_proto::hex::is_lower(id))
        .ok_or_else(|| SealError::Malformed { what: what() })?;
    let cipher = sealer
        .and_then(|s| s.cipher(key_id))
        .ok_or_else(|| SealError::UnknownKey {
            key_id: key_id.to_owned(),
        })?;
    let undecryptable = || SealError::Undecryptable {
        what: what(),
        key_id: key_id.to_owned(),
    };
    let mut payload = BASE64
        .decode(payload)
        .map_err(|_| SealError::Malformed { what: what() })?;
    if payload.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(SealError::Malformed { what: what() });
    }
    let mut sealed = payload.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&payload).map_err(|_| undecryptable())?;
    let plain = cipher
        .open_in_place(nonce, Aad::from(associated_data(column, row)), &mut sealed)
        .map_err(|_| undecryptable())?;
    String::from_utf8(plain.to_vec()).map_err(|_| undecryptable())
}

/// The associated data of a value: the format, the column and the row's key. Column names
/// hold no newline, so the text is unambiguous.
fn associated_data(column: &str, row: &str) -> Vec<u8> {
    format!("mtasts-sealed:v1\n{column}\n{row}").into_bytes()
}

fn hex(bytes: &[u8]) -> String {
    mtasts_proto::hex::encode(bytes)
}

/// AES-256 keys are 32 bytes.
const KEY_BYTES: usize = 32;

/// Bytes of the SHA-256 that make a key id (16 hex digits).
const KEY_ID_BYTES: usize = 8;

/// Domain separation: the key id is a hash of this and the key, not of the key alone.
const KEY_ID_CONTEXT: &[u8] = b"mtasts secret key id\0";

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n";

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_hex(&format!("{byte:02x}").repeat(32)).unwrap()
    }

    #[test]
    fn keys_read_64_hex_digits_and_nothing_else() {
        let text = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789";
        let parsed = SecretKey::from_hex(&format!("  {text}\n")).unwrap();
        assert_eq!(parsed.to_hex(), text.to_ascii_lowercase());
        assert_eq!(parsed.id().len(), 16);
        for bad in [
            "",
            &text[1..],
            &format!("{text}0"),
            &format!("+{}", &text[1..]),
            &format!("g{}", &text[1..]),
            &format!("é{}", &text[2..]),
        ] {
            assert_eq!(
                SecretKey::from_hex(bad).unwrap_err(),
                SealError::InvalidKey,
                "{bad:?}"
            );
        }
        let fresh = SecretKey::generate().unwrap();
        assert_eq!(
            SecretKey::from_hex(&fresh.to_hex()).unwrap().id(),
            fresh.id()
        );
        assert_ne!(fresh.id(), SecretKey::generate().unwrap().id());
        assert!(!format!("{fresh:?}").contains(&fresh.to_hex()));
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_row_and_column() {
        let sealer = Sealer::new(&key(1), &[]);
        let sealed = sealer.seal("certs.key_pem", "example.com", PEM).unwrap();
        assert!(sealed.starts_with(&format!("{SEALED_V1}{}:", key(1).id())));
        assert!(!sealed.contains("PRIVATE KEY"));
        assert!(sealer.is_current(&sealed));
        assert_eq!(
            sealer
                .open("certs.key_pem", "example.com", &sealed)
                .unwrap(),
            PEM
        );
        // Fresh nonce each time.
        assert_ne!(
            sealed,
            sealer.seal("certs.key_pem", "example.com", PEM).unwrap()
        );
        for (column, row) in [("certs.key_pem", "example.org"), ("other", "example.com")] {
            assert!(matches!(
                sealer.open(column, row, &sealed),
                Err(SealError::Undecryptable { .. })
            ));
        }
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(
            sealer.open("certs.key_pem", "example.com", &altered),
            Err(SealError::Undecryptable { .. })
        ));
    }

    #[test]
    fn plaintext_passes_and_unknown_keys_are_named() {
        let old = Sealer::new(&key(1), &[]);
        let sealed = old.seal("c", "r", PEM).unwrap();
        assert_eq!(open(None, "c", "r", PEM).unwrap(), PEM);
        assert!(!old.is_current(PEM));
        let missing = SealError::UnknownKey {
            key_id: key(1).id().to_owned(),
        };
        assert_eq!(open(None, "c", "r", &sealed).unwrap_err(), missing);
        let other = Sealer::new(&key(2), &[]);
        assert_eq!(other.open("c", "r", &sealed).unwrap_err(), missing);
        assert!(missing.to_string().contains(key(1).id()));
        // Rotation: the new key with the old one as previous opens it, and is not current.
        let rotated = Sealer::new(&key(2), &[key(1), key(2)]);
        assert_eq!(rotated.previous_key_ids().count(), 1);
        assert_eq!(rotated.open("c", "r", &sealed).unwrap(), PEM);
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("c", "r", PEM).unwrap()));
    }

    #[test]
    fn malformed_sealed_values_are_refused() {
        let sealer = Sealer::new(&key(1), &[]);
        let id = key(1).id().to_owned();
        for bad in [
            "mtasts-sealed:v2:abc".to_owned(),
            "mtasts-sealed:v1:".to_owned(),
            format!("mtasts-sealed:v1:{}", id.to_uppercase()),
            format!("mtasts-sealed:v1:{id}:not base64!"),
            format!("mtasts-sealed:v1:{id}:AAAA"),
        ] {
            assert!(
                matches!(
                    sealer.open("c", "r", &bad),
                    Err(SealError::Malformed { .. })
                ),
                "{bad}"
            );
        }
    }
}
