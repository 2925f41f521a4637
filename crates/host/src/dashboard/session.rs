//! Dashboard sessions: the cookie, its stored hash, the CSRF token, and who a session is.
//!
//! The cookie carries 32 random bytes (hex); the database stores only their SHA-256, so a
//! database leak gives no usable session. Each session has its own random CSRF token that
//! every form repeats and every POST must match.
//!
//! A session ends at its lifetime (`expires_at`), after [`Lifetimes::idle`] seconds unused
//! (its `last_seen`, refreshed at most every [`touch_interval`]), at logout, and when its user
//! logs out everywhere. Each request reads its session from the database, so a session
//! deleted by one node is over on every node at once.

use aws_lc_rs::rand;
use axum::http::HeaderMap;
use axum::http::header;
use mtasts_store::host::{HostDb, HostDbError, NewUser, Role, Session, User};

use crate::auth::{Principal, hash_token};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "mtasts_session";
/// The login form's double-submit cookie (there is no session yet to hold a CSRF token).
pub(crate) const LOGIN_COOKIE: &str = "mtasts_login";
/// How long a session lasts at most, in seconds (the default of `session_lifetime`).
pub const SESSION_SECONDS: i64 = 12 * 3600;
/// The default `session_lifetime`, in seconds.
pub(crate) const LIFETIME_SECONDS: u64 = SESSION_SECONDS.unsigned_abs();
/// The default `session_idle_timeout`, in seconds.
pub(crate) const IDLE_SECONDS: u64 = 3600;

/// How long sessions last, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Lifetimes {
    /// Unused this long, a session is over.
    pub idle: i64,
    /// A session's whole life.
    pub total: i64,
}

/// How stale a session's `last_seen` may get before a request refreshes it: every request
/// writing to the database would make browsing a stream of writes, while an idle timeout
/// must stay accurate. At most a minute, and a tenth of the idle timeout.
fn touch_interval(idle: i64) -> i64 {
    (idle / 10).clamp(0, 60)
}

/// The password hash of a token login's stand-in user: not a PHC string, so no password can
/// ever match it, and an account created through the API never has it.
const TOKEN_USER_HASH: &str = "!api-token-session";
/// The stand-in user's address for token `id`.
fn token_user_email(id: i64) -> String {
    format!("api-token-{id}@sessions.mtasts.invalid")
}

/// 32 random bytes as lowercase hex.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // Without entropy a session id would be guessable; refusing to serve is the only safe answer.
    rand::fill(&mut bytes).expect("the system random number generator failed");
    mtasts_proto::hex::encode(&bytes)
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value. `max_age` of 0 deletes the cookie.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// A logged-in session: who it is and its CSRF token.
#[derive(Clone, Debug)]
pub(crate) struct Viewer {
    /// What the session may do.
    pub principal: Principal,
    /// Shown in the header.
    pub name: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The stored hash of the cookie (for logout).
    pub id_hash: String,
}

/// Why a session could not be loaded.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// No cookie, an unknown or expired session, or a user that no longer qualifies.
    None,
    /// The database did not answer.
    Unavailable(HostDbError),
}

impl From<HostDbError> for SessionError {
    fn from(e: HostDbError) -> Self {
        SessionError::Unavailable(e)
    }
}

/// The session named by the request's cookie, if it is valid at `now` (neither past its
/// lifetime nor idle longer than `lifetimes.idle`); an idle one is deleted.
pub(crate) async fn load(
    db: &HostDb,
    headers: &HeaderMap,
    now: i64,
    lifetimes: Lifetimes,
) -> Result<Viewer, SessionError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Err(SessionError::None);
    };
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SessionError::None);
    }
    let id_hash = hash_token(id);
    let Some((session, times)) = db.session_with_times(&id_hash).await? else {
        return Err(SessionError::None);
    };
    if session.expires_at <= now {
        return Err(SessionError::None);
    }
    let unused = now.saturating_sub(times.last_seen);
    if unused > lifetimes.idle {
        // Over; gone from the database so no node can take it up again.
        db.delete_session(&id_hash).await?;
        return Err(SessionError::None);
    }
    let Some(user) = db.user(session.user_id).await? else {
        return Err(SessionError::None);
    };
    let principal = principal_of(&user).ok_or(SessionError::None)?;
    let name = match token_of(&user) {
        Some(token_id) => {
            // A token login lasts only as long as the token: a revoked (deleted) or expired
            // token ends its sessions.
            let alive = db.token(token_id).await?.is_some_and(|t| {
                t.role == user.role && t.tenant_id == user.tenant_id && t.is_live(now)
            });
            if !alive {
                return Err(SessionError::None);
            }
            format!("API token #{token_id}")
        }
        None => user.email.clone(),
    };
    if unused >= touch_interval(lifetimes.idle) && unused > 0 {
        db.touch_session(&id_hash, now).await?;
    }
    Ok(Viewer {
        principal,
        name,
        csrf: session.csrf_token,
        id_hash,
    })
}

fn principal_of(user: &User) -> Option<Principal> {
    // Administrators have no tenant and everyone else has one; anything else is refused
    // rather than guessed at, as the API does.
    if (user.role == Role::Admin) != user.tenant_id.is_none() {
        return None;
    }
    Some(Principal {
        role: user.role,
        tenant_id: user.tenant_id,
        token_id: token_of(user),
        user_id: Some(user.id),
    })
}

/// The token a stand-in user was made for.
fn token_of(user: &User) -> Option<i64> {
    if user.password_hash != TOKEN_USER_HASH {
        return None;
    }
    user.email
        .strip_prefix("api-token-")?
        .strip_suffix("@sessions.mtasts.invalid")?
        .parse()
        .ok()
}

/// The stand-in user row a token login's session belongs to (sessions reference users).
/// Created on first use; refused when the address is held by a user that is not exactly the
/// stand-in for this token.
pub(crate) async fn token_user(db: &HostDb, who: &Principal) -> Result<Option<User>, HostDbError> {
    let Some(token_id) = who.token_id else {
        return Ok(None);
    };
    let email = token_user_email(token_id);
    let matches = |u: &User| {
        token_of(u) == Some(token_id) && u.role == who.role && u.tenant_id == who.tenant_id
    };
    if let Some(user) = db.user_by_email(&email).await? {
        return Ok(matches(&user).then_some(user));
    }
    let created = db
        .create_user(NewUser {
            tenant_id: who.tenant_id,
            email: email.clone(),
            password_hash: TOKEN_USER_HASH.to_owned(),
            role: who.role,
        })
        .await;
    match created {
        Ok(user) => Ok(Some(user)),
        // Two logins with one token at once: the other one created it.
        Err(HostDbError::Conflict(_)) => Ok(db.user_by_email(&email).await?.filter(matches)),
        Err(e) => Err(e),
    }
}

/// Starts a session for `user_id` lasting `lifetimes.total`; returns the cookie value (the
/// plain session id).
pub(crate) async fn create(
    db: &HostDb,
    user_id: i64,
    now: i64,
    lifetimes: Lifetimes,
) -> Result<String, HostDbError> {
    let id = random_hex();
    db.start_session(
        &Session {
            id_hash: hash_token(&id),
            user_id,
            csrf_token: random_hex(),
            expires_at: now.saturating_add(lifetimes.total),
        },
        now,
    )
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; mtasts_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("mtasts_login=xyz"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "mtasts"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        let a = random_hex();
        assert_eq!(a.len(), 64);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &random_hex()));
        assert!(!same_secret(&a, &a[..63]));
        assert!(!same_secret("", "x"));
    }

    #[test]
    fn last_seen_is_refreshed_often_enough_for_the_idle_timeout() {
        assert_eq!(touch_interval(3600), 60);
        assert_eq!(touch_interval(300), 30);
        assert_eq!(touch_interval(5), 0);
        assert_eq!(LIFETIME_SECONDS, 43_200);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set_cookie(SESSION_COOKIE, "v", "/", 60, true),
            "mtasts_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!set_cookie(SESSION_COOKIE, "v", "/", 60, false).contains("Secure"));
    }

    #[test]
    fn token_users_are_recognised_only_with_the_marker_hash() {
        let mut user = User {
            id: 1,
            tenant_id: Some(2),
            email: token_user_email(7),
            password_hash: TOKEN_USER_HASH.to_owned(),
            role: Role::Owner,
        };
        assert_eq!(token_of(&user), Some(7));
        user.password_hash = "pbkdf2-sha256$1$AA$AA".to_owned();
        assert_eq!(token_of(&user), None);
    }
}
