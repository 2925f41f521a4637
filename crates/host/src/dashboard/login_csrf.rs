//! The login form's CSRF token: issued by the server, so a value an attacker made up (and
//! planted as both the `mtasts_login` cookie and the form field, e.g. from a sibling
//! subdomain that can set cookies) is refused.
//!
//! A token is `<nonce>.<expires>.<tag>`: 16 random bytes (hex), the Unix second it expires,
//! and HMAC-SHA256 over both under a key made once and stored in the database
//! (`host_settings`), so every node issues and accepts the same tokens. The double-submit
//! cookie stays: the token must also equal the cookie, which a cross-site form cannot send.

use aws_lc_rs::{hmac, rand};

use mtasts_store::host::{HostDb, HostDbError};

/// How long a login form stays usable, in seconds (also its cookie's `Max-Age`).
pub(crate) const LOGIN_FORM_SECONDS: i64 = 3600;

/// The `host_settings` row holding the key (64 hex characters).
const KEY_SETTING: &str = "login_csrf_key";
/// Separates this use of the key from any other.
const CONTEXT: &[u8] = b"mtasts login csrf v1\n";
/// The longest token accepted (nonce, expiry, tag and dots, with room to spare).
const MAX_TOKEN_BYTES: usize = 128;

/// The key, read (or first made) once per process.
#[derive(Debug, Default)]
pub(crate) struct LoginKey(tokio::sync::OnceCell<Vec<u8>>);

impl LoginKey {
    async fn key(&self, db: &HostDb) -> Result<hmac::Key, HostDbError> {
        let bytes = self
            .0
            .get_or_try_init(|| async {
                let stored = db
                    .setting_or_insert(KEY_SETTING, &hex(&random::<32>()))
                    .await?;
                unhex(&stored).filter(|k| k.len() >= 32).ok_or_else(|| {
                    HostDbError::Corrupt(format!("setting {KEY_SETTING} is not a hex key"))
                })
            })
            .await?;
        Ok(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A fresh token valid until `now` + [`LOGIN_FORM_SECONDS`].
    pub(crate) async fn issue(&self, db: &HostDb, now: i64) -> Result<String, HostDbError> {
        let key = self.key(db).await?;
        let body = format!("{}.{}", hex(&random::<16>()), now + LOGIN_FORM_SECONDS);
        let tag = hmac::sign(&key, &[CONTEXT, body.as_bytes()].concat());
        Ok(format!("{body}.{}", hex(tag.as_ref())))
    }

    /// Whether `token` was issued by a node of this service and has not expired at `now`.
    pub(crate) async fn verify(
        &self,
        db: &HostDb,
        token: &str,
        now: i64,
    ) -> Result<bool, HostDbError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Ok(false);
        }
        let Some((body, tag)) = token.rsplit_once('.') else {
            return Ok(false);
        };
        let Some((nonce, expires)) = body.split_once('.') else {
            return Ok(false);
        };
        let Ok(expires) = expires.parse::<i64>() else {
            return Ok(false);
        };
        let (Some(_), Some(tag)) = (unhex(nonce), unhex(tag)) else {
            return Ok(false);
        };
        if expires <= now || expires > now.saturating_add(LOGIN_FORM_SECONDS) {
            return Ok(false);
        }
        let key = self.key(db).await?;
        Ok(hmac::verify(&key, &[CONTEXT, body.as_bytes()].concat(), &tag).is_ok())
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Without entropy the tokens would be guessable; refusing to serve is the only safe answer.
    rand::fill(&mut bytes).expect("the system random number generator failed");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    mtasts_proto::hex::encode(bytes)
}

/// Hex (either case) to bytes; `None` for anything else, or an empty text.
fn unhex(text: &str) -> Option<Vec<u8>> {
    mtasts_proto::hex::decode(text).filter(|bytes| !bytes.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> HostDb {
        HostDb::open("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn issued_tokens_verify_and_others_do_not() {
        let db = db().await;
        let key = LoginKey::default();
        let token = key.issue(&db, 1000).await.unwrap();
        assert!(key.verify(&db, &token, 1000).await.unwrap());
        assert!(
            key.verify(&db, &token, 1000 + LOGIN_FORM_SECONDS - 1)
                .await
                .unwrap()
        );
        assert!(
            !key.verify(&db, &token, 1000 + LOGIN_FORM_SECONDS)
                .await
                .unwrap(),
            "expired"
        );
        // A second node (its own cache) on the same database accepts it.
        let other = LoginKey::default();
        assert!(other.verify(&db, &token, 1000).await.unwrap());
        // Tampering with any part fails.
        let (body, tag) = token.rsplit_once('.').unwrap();
        let (nonce, _) = body.split_once('.').unwrap();
        let later = format!("{nonce}.{}.{tag}", 1000 + LOGIN_FORM_SECONDS + 5);
        assert!(!key.verify(&db, &later, 1000).await.unwrap());
        let flipped = format!(
            "{}.{}",
            body,
            tag.replace(&tag[..1], if &tag[..1] == "0" { "1" } else { "0" })
        );
        assert!(!key.verify(&db, &flipped, 1000).await.unwrap());
        for bad in [
            "",
            "a",
            "a.b.c",
            &"0".repeat(64),
            &"x".repeat(500),
            "00.99999.00",
        ] {
            assert!(!key.verify(&db, bad, 1000).await.unwrap(), "{bad}");
        }
        // Another database (another key) refuses it.
        assert!(
            !LoginKey::default()
                .verify(&self::db().await, &token, 1000)
                .await
                .unwrap()
        );
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex(""), None);
    }
}
