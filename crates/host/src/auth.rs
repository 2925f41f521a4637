//! Credentials: API tokens and user passwords, and who a request acts as.
//!
//! * API tokens are `mtasts_` followed by 43 base64url characters (32 random bytes). Only
//!   their SHA-256 (hex) is stored, so a database leak does not leak usable tokens; a token
//!   has 256 bits of entropy, so a fast hash is enough.
//! * Passwords are stored as PBKDF2-HMAC-SHA256 in a PHC-like string
//!   `pbkdf2-sha256$<iterations>$<salt>$<hash>` (standard base64 without padding), so the
//!   iteration count can be raised later without invalidating existing hashes.
//!
//! Nothing here logs, and no type here holds a plain token or password, so none can reach a
//! `Debug` or tracing field by accident.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, pbkdf2, rand};
use mtasts_store::host::{HostDb, HostDbError, Role, User};

use crate::ratelimit::RetryAfter;
use thiserror::Error;
use tokio::sync::Semaphore;

/// Every API token starts with this, so secret scanners and humans recognise it.
pub const TOKEN_PREFIX: &str = "mtasts_";
/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Length of the base64url (unpadded) encoding of [`TOKEN_BYTES`].
const TOKEN_B64_LEN: usize = 43;

/// The PBKDF2 iteration count for new password hashes (OWASP 2023 for PBKDF2-HMAC-SHA256).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
/// The PHC identifier of the password scheme.
const PASSWORD_SCHEME: &str = "pbkdf2-sha256";
const SALT_BYTES: usize = 16;
const HASH_BYTES: usize = 32;
/// Stored hashes above this are refused rather than verified: a corrupted or hostile row
/// must not make one login burn minutes of CPU.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// At most this many PBKDF2 computations (hashing, verifying, or the time-wasting stand-in
/// for an unknown user) run at once in this process, whatever the number of clients: each
/// takes hundreds of milliseconds of a blocking thread, and many logins at once must not
/// occupy the blocking pool that the rest of the service (database, files) also needs.
pub const PBKDF2_CONCURRENCY: usize = 2;

static PBKDF2_PERMITS: Semaphore = Semaphore::const_new(PBKDF2_CONCURRENCY);

/// Runs CPU-heavy password work `work` (PBKDF2) on a blocking thread once one of the
/// [`PBKDF2_CONCURRENCY`] permits is free. The permit goes with the work, so a caller that
/// gives up waiting for the result (a request timeout) does not free it before the work
/// ends. `Err` when the work panicked.
pub async fn password_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let permit = PBKDF2_PERMITS
        .acquire()
        .await
        .expect("the PBKDF2 semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
}

/// Who a request acts as, once its credentials are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    /// What it may do.
    pub role: Role,
    /// The tenant it belongs to; `None` for administrators, who see every tenant.
    pub tenant_id: Option<i64>,
    /// The API token it authenticated with, when it did (not for dashboard sessions).
    pub token_id: Option<i64>,
    /// The user it logged in as, when it did (dashboard sessions).
    pub user_id: Option<i64>,
}

impl Principal {
    /// The operator at the console (`mtasts admin`): an administrator acting without a
    /// token or a user, since whoever can run it can read the database anyway.
    pub fn operator() -> Self {
        Principal {
            role: Role::Admin,
            tenant_id: None,
            token_id: None,
            user_id: None,
        }
    }

    /// Whether this principal is an administrator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether it may see objects of `tenant_id`: administrators see all, others only their
    /// own tenant.
    pub fn can_see(&self, tenant_id: i64) -> bool {
        self.is_admin() || self.tenant_id == Some(tenant_id)
    }

    /// Whether it may change what it can see (read-only principals may not).
    pub fn can_write(&self) -> bool {
        self.role != Role::ReadOnly
    }

    /// Administrators have no tenant; everyone else has exactly one.
    fn is_consistent(&self) -> bool {
        self.is_admin() == self.tenant_id.is_none()
    }
}

/// Why credentials were not accepted. Deliberately coarse: the client learns only that it
/// failed, never whether a token exists.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credentials at all.
    #[error("authentication required: send Authorization: Bearer <token>")]
    Missing,
    /// A token or password that is malformed, unknown or wrong.
    #[error("invalid credentials")]
    Invalid,
    /// The database could not answer; the credentials may well be fine.
    #[error("cannot check credentials now: {0}")]
    Unavailable(String),
    /// Too many attempts from this client; try again later.
    #[error("too many attempts; retry in {} s", .0.seconds())]
    RateLimited(RetryAfter),
}

/// `last_used` is refreshed at most this often per token. [`HostDb::touch_token`] does not
/// bump the generation (no node reloads for it), but it is still a database write, which an
/// API client must not cause on every call; a minute is precise enough for "last used".
const TOUCH_INTERVAL: i64 = 60;

/// Who `token` (the plain text, already shaped like a token) is. `now` is Unix seconds, for
/// the token's expiry and `last_used`. The token is read from the database on every call, so
/// a revoked token (its row deleted) is refused by every node from the next request on; an
/// expired one is refused exactly like an unknown one.
pub async fn authenticate_token(
    db: &HostDb,
    token: &str,
    now: i64,
) -> Result<Principal, AuthError> {
    let row = db
        .token_by_hash(&hash_token(token))
        .await
        .map_err(unavailable)?
        .filter(|row| row.is_live(now))
        .ok_or(AuthError::Invalid)?;
    let principal = Principal {
        role: row.role,
        tenant_id: row.tenant_id,
        token_id: Some(row.id),
        user_id: None,
    };
    if !principal.is_consistent() {
        // An admin bound to a tenant or a tenant role without one: refuse rather than guess
        // which of the two was meant.
        tracing::warn!(
            token_id = row.id,
            "API token with an inconsistent role and tenant refused"
        );
        return Err(AuthError::Invalid);
    }
    if row
        .last_used
        .is_none_or(|last| now - last >= TOUCH_INTERVAL)
        && let Err(e) = db.touch_token(row.id, now).await
    {
        tracing::warn!(token_id = row.id, error = %e, "cannot record the token's last use");
    }
    Ok(principal)
}

/// The user `email` if `password` is theirs. Takes as long for an unknown address as for a
/// wrong password (one PBKDF2 at `iterations`), and runs the hashing on a blocking thread
/// ([`password_work`]).
pub async fn authenticate_password(
    db: &HostDb,
    email: &str,
    password: &str,
    iterations: NonZeroU32,
) -> Result<(User, Principal), AuthError> {
    let user = match db.user_by_email(&email.trim().to_lowercase()).await {
        Ok(user) => user,
        // An address the database refuses to look up (control characters, too long) has no
        // account: a wrong login like any other (and as slow), not an outage.
        Err(HostDbError::Invalid(_)) => None,
        Err(e) => return Err(unavailable(e)),
    };
    let password = password.to_owned();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = password_work(move || match stored {
        Some(stored) => verify_password(&password, &stored),
        None => {
            waste_password_time(&password, iterations);
            false
        }
    })
    .await
    .map_err(|e| AuthError::Unavailable(format!("password check failed: {e}")))?;
    let user = user.filter(|_| matches).ok_or(AuthError::Invalid)?;
    let principal = Principal {
        role: user.role,
        tenant_id: user.tenant_id,
        token_id: None,
        user_id: Some(user.id),
    };
    if !principal.is_consistent() {
        return Err(AuthError::Invalid);
    }
    Ok((user, principal))
}

fn unavailable(e: HostDbError) -> AuthError {
    AuthError::Unavailable(e.to_string())
}

/// A new API token: the plain text to show the user once, and the hash to store.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    fill_random(&mut bytes);
    let plain = format!("{TOKEN_PREFIX}{}", encode(&bytes, URL_SAFE));
    let hash = hash_token(&plain);
    (plain, hash)
}

/// The stored form of a token: lowercase hex SHA-256 of its full text.
pub fn hash_token(plain: &str) -> String {
    mtasts_proto::hex::encode(digest::digest(&digest::SHA256, plain.as_bytes()).as_ref())
}

/// Whether `text` has the shape of a token, so obviously wrong credentials are refused
/// without a database query.
pub fn is_token_shaped(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == TOKEN_B64_LEN
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The token of an `Authorization` header value (`Bearer <token>`, scheme case-insensitive,
/// RFC 9110 §11.1).
pub fn bearer_token(header: &str) -> Result<&str, AuthError> {
    let (scheme, rest) = header.split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid);
    }
    let token = rest.trim();
    if is_token_shaped(token) {
        Ok(token)
    } else {
        Err(AuthError::Invalid)
    }
}

/// Hashes a password for storage with a fresh random salt. CPU-heavy by design (hundreds of
/// milliseconds at the default count): call it through [`password_work`].
pub fn hash_password(password: &str, iterations: NonZeroU32) -> String {
    let mut salt = [0u8; SALT_BYTES];
    fill_random(&mut salt);
    let mut hash = [0u8; HASH_BYTES];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    format!(
        "{PASSWORD_SCHEME}${iterations}${}${}",
        encode(&salt, STANDARD),
        encode(&hash, STANDARD)
    )
}

/// Whether `password` matches a hash made by [`hash_password`] (compared in constant time).
/// A malformed stored hash never matches. CPU-heavy: call it through [`password_work`].
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Some((iterations, salt, hash)) = parse_password_hash(stored) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// Spends the time of one verification at `iterations` without a stored hash: a login for an
/// unknown user must take as long as one with a wrong password, or timing reveals which
/// e-mail addresses have accounts.
pub fn waste_password_time(password: &str, iterations: NonZeroU32) {
    let mut out = [0u8; HASH_BYTES];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &[0u8; SALT_BYTES],
        password.as_bytes(),
        &mut out,
    );
}

fn parse_password_hash(stored: &str) -> Option<(NonZeroU32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    if parts.next()? != PASSWORD_SCHEME {
        return None;
    }
    let iterations: u32 = parts.next()?.parse().ok()?;
    if iterations > MAX_PBKDF2_ITERATIONS {
        return None;
    }
    let iterations = NonZeroU32::new(iterations)?;
    let salt = decode(parts.next()?, STANDARD)?;
    let hash = decode(parts.next()?, STANDARD)?;
    if parts.next().is_some() || salt.is_empty() || hash.len() != HASH_BYTES {
        return None;
    }
    Some((iterations, salt, hash))
}

fn fill_random(buf: &mut [u8]) {
    // The system RNG failing means the OS cannot provide entropy; issuing a predictable
    // credential instead would be worse than stopping.
    rand::fill(buf).expect("the system random number generator failed");
}

// Unpadded base64 (RFC 4648 §4 for password hashes, §5 for tokens). Decoding refuses
// non-zero trailing bits, so every stored hash has one spelling.
const STANDARD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;
const URL_SAFE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn encode(bytes: &[u8], engine: base64::engine::GeneralPurpose) -> String {
    base64::Engine::encode(&engine, bytes)
}

fn decode(text: &str, engine: base64::engine::GeneralPurpose) -> Option<Vec<u8>> {
    base64::Engine::decode(&engine, text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iterations(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, b64) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes(), STANDARD), b64);
            assert_eq!(decode(b64, STANDARD).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode(&[0xfb, 0xff], URL_SAFE), "-_8");
        assert_eq!(encode(&[0xfb, 0xff], STANDARD), "+/8");
        assert!(decode("Z", STANDARD).is_none());
        assert!(decode("Zh", STANDARD).is_none(), "non-zero padding bits");
        assert!(decode("Zm9v!", STANDARD).is_none());
    }

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, hash_a) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + TOKEN_B64_LEN);
        assert!(is_token_shaped(&a));
        assert_eq!(hash_a, hash_token(&a));
        assert_eq!(hash_a.len(), 64);
        assert!(!hash_a.contains(&a[TOKEN_PREFIX.len()..]));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bearer_header_parsing() {
        let (token, _) = new_token();
        assert_eq!(bearer_token(&format!("Bearer {token}")), Ok(token.as_str()));
        assert_eq!(
            bearer_token(&format!("bearer  {token}")),
            Ok(token.as_str())
        );
        assert_eq!(
            bearer_token(&format!("Basic {token}")),
            Err(AuthError::Invalid)
        );
        assert_eq!(bearer_token("Bearer mtasts_short"), Err(AuthError::Invalid));
        assert_eq!(bearer_token(&token), Err(AuthError::Invalid));
        assert!(!is_token_shaped(&format!("{token}x")));
        assert!(!is_token_shaped(&token.replace('_', "/")));
    }

    #[test]
    fn passwords_verify_and_carry_their_parameters() {
        let stored = hash_password("correct horse battery staple", iterations(1000));
        assert!(stored.starts_with("pbkdf2-sha256$1000$"));
        assert!(verify_password("correct horse battery staple", &stored));
        assert!(!verify_password("correct horse battery stapl", &stored));
        assert!(!verify_password("", &stored));
        let again = hash_password("correct horse battery staple", iterations(1000));
        assert_ne!(stored, again, "a fresh salt every time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn password_work_runs_at_most_pbkdf2_concurrency_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(password_work(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                    hash_password("pw", iterations(10))
                }))
            })
            .collect();
        for task in tasks {
            assert!(
                task.await
                    .unwrap()
                    .unwrap()
                    .starts_with("pbkdf2-sha256$10$")
            );
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=PBKDF2_CONCURRENCY).contains(&most),
            "{most} ran at once"
        );
    }

    #[test]
    fn malformed_hashes_never_match() {
        let stored = hash_password("pw", iterations(10));
        let parts: Vec<&str> = stored.split('$').collect();
        for bad in [
            String::new(),
            format!("bcrypt${}${}${}", parts[1], parts[2], parts[3]),
            format!("{}$0${}${}", parts[0], parts[2], parts[3]),
            format!("{}$99999999999${}${}", parts[0], parts[2], parts[3]),
            format!("{}${}${}${}", parts[0], parts[1], parts[2], &parts[3][1..]),
            format!("{}${}${}", parts[0], parts[1], parts[2]),
            format!("{stored}$extra"),
        ] {
            assert!(!verify_password("pw", &bad), "{bad}");
        }
    }
}
