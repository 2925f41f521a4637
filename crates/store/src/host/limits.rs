//! What the hosting database accepts: every text is bounded on write, so a careless or hostile
//! caller cannot grow a row (and every node's snapshot) without limit.

use super::HostDbError;
use super::types::{NewVersion, Role};

/// Longest tenant name, token label, node id or host name (RFC 1035 §2.3.4: 253 octets).
pub const MAX_NAME_BYTES: usize = 253;

/// Longest e-mail address (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its `<>`).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Longest password hash, token hash, session id hash or CSRF token.
pub const MAX_SECRET_BYTES: usize = 512;

/// Largest policy body: the sender's cap ([`mtasts_proto::sts::POLICY_MAX_BYTES`],
/// RFC 8461 §3.3), so nothing is served that senders would refuse.
pub const MAX_POLICY_BYTES: usize = mtasts_proto::sts::POLICY_MAX_BYTES;

/// Longest policy id (RFC 8461 §3.1: 1–32 alphanumeric characters).
pub const MAX_POLICY_ID_BYTES: usize = 32;

/// Most `mx:` patterns in one policy version.
pub const MAX_MX: usize = 64;

/// Largest `max_age` (RFC 8461 §3.2: at most 31557600 seconds, one year).
pub const MAX_MAX_AGE: i64 = 31_557_600;

/// Longest TLS-RPT `rua=` value.
pub const MAX_RUA_BYTES: usize = 1024;

/// Largest verification result (JSON).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// Largest PEM text: a certificate chain, a private key, an `acme-tls/1` certificate.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// Longest URL (ACME directory, issuer).
pub const MAX_URL_BYTES: usize = 2048;

/// Longest ACME token or key authorization.
pub const MAX_TOKEN_BYTES: usize = 512;

/// Longest stored ACME error; a longer one is cut (at a character boundary), not refused, so
/// a failure is always recorded.
pub const MAX_ERROR_BYTES: usize = 4096;

/// Longest advisory lock name.
pub const MAX_LOCK_NAME_BYTES: usize = 512;

/// `value` if it is at most `max` bytes and free of control characters.
pub(super) fn text<'a>(what: &str, value: &'a str, max: usize) -> Result<&'a str, HostDbError> {
    if value.len() > max {
        return Err(HostDbError::Invalid(format!(
            "{what} longer than {max} bytes"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(HostDbError::Invalid(format!(
            "{what} contains control characters"
        )));
    }
    Ok(value)
}

/// Like [`text`], and not empty.
pub(super) fn required<'a>(what: &str, value: &'a str, max: usize) -> Result<&'a str, HostDbError> {
    if value.is_empty() {
        return Err(HostDbError::Invalid(format!("{what} is empty")));
    }
    text(what, value, max)
}

/// Multi-line text (policy bodies, PEM, JSON): bounded only.
pub(super) fn blob<'a>(what: &str, value: &'a str, max: usize) -> Result<&'a str, HostDbError> {
    if value.len() > max {
        return Err(HostDbError::Invalid(format!(
            "{what} longer than {max} bytes"
        )));
    }
    Ok(value)
}

/// A hosted domain's stored form: lowercase A-labels, no trailing dot.
pub(super) fn domain(name: &str) -> Result<String, HostDbError> {
    crate::domain::normalize(name).map_err(|e| HostDbError::Invalid(e.to_string()))
}

/// An e-mail address's stored form: ASCII letters lowercased, so lookups and the uniqueness
/// rule ignore their case.
pub(super) fn email(email: &str) -> Result<String, HostDbError> {
    let email = required("e-mail address", email, MAX_EMAIL_BYTES)?;
    if !email.contains('@') || email.contains(char::is_whitespace) {
        return Err(HostDbError::Invalid(format!(
            "{:?} is not an e-mail address",
            email.escape_debug().to_string()
        )));
    }
    Ok(email.to_ascii_lowercase())
}

/// A policy version's values.
pub(super) fn version(v: &NewVersion) -> Result<(), HostDbError> {
    if v.policy_id.is_empty()
        || v.policy_id.len() > MAX_POLICY_ID_BYTES
        || !v.policy_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(HostDbError::Invalid(format!(
            "policy id {:?}: expected 1–{MAX_POLICY_ID_BYTES} ASCII letters and digits",
            v.policy_id.escape_debug().to_string()
        )));
    }
    if !matches!(v.mode.as_str(), "enforce" | "testing" | "none") {
        return Err(HostDbError::Invalid(format!(
            "mode {:?}: expected enforce, testing or none",
            v.mode.escape_debug().to_string()
        )));
    }
    if v.mx.len() > MAX_MX {
        return Err(HostDbError::Invalid(format!(
            "more than {MAX_MX} mx patterns"
        )));
    }
    for mx in &v.mx {
        required("mx pattern", mx, MAX_NAME_BYTES)?;
    }
    if !(0..=MAX_MAX_AGE).contains(&v.max_age) {
        return Err(HostDbError::Invalid(format!(
            "max_age {} outside 0..={MAX_MAX_AGE}",
            v.max_age
        )));
    }
    blob("policy body", &v.body, MAX_POLICY_BYTES)?;
    Ok(())
}

/// A role's stored name, or `Corrupt` when the stored name is unknown.
pub(super) fn role(name: &str) -> Result<Role, HostDbError> {
    Role::parse(name).ok_or_else(|| HostDbError::Corrupt(format!("unknown role {name:?}")))
}

/// `value` cut to at most `max` bytes at a character boundary.
pub(super) fn truncated(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A time or count read back as `i64` that must not be negative.
pub(super) fn unsigned(what: &str, value: i64) -> Result<u64, HostDbError> {
    u64::try_from(value).map_err(|_| HostDbError::Corrupt(format!("negative {what} {value}")))
}

/// A generation or count to store: beyond `i64::MAX` is refused.
pub(super) fn signed(what: &str, value: u64) -> Result<i64, HostDbError> {
    i64::try_from(value)
        .map_err(|_| HostDbError::Invalid(format!("{what} {value} beyond i64::MAX")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version_with(f: impl FnOnce(&mut NewVersion)) -> Result<(), HostDbError> {
        let mut v = NewVersion {
            policy_id: "20250101a".into(),
            mode: "enforce".into(),
            mx: vec!["mx.example.com".into()],
            max_age: 86400,
            body: "version: STSv1\r\n".into(),
            now: 0,
        };
        f(&mut v);
        version(&v)
    }

    #[test]
    fn versions_are_checked() {
        assert!(version_with(|_| ()).is_ok());
        assert!(version_with(|v| v.policy_id = String::new()).is_err());
        assert!(version_with(|v| v.policy_id = "a".repeat(33)).is_err());
        assert!(version_with(|v| v.policy_id = "a-b".into()).is_err());
        assert!(version_with(|v| v.mode = "off".into()).is_err());
        assert!(version_with(|v| v.mx = vec!["m".into(); MAX_MX + 1]).is_err());
        assert!(version_with(|v| v.mx = vec![String::new()]).is_err());
        assert!(version_with(|v| v.max_age = -1).is_err());
        assert!(version_with(|v| v.max_age = MAX_MAX_AGE + 1).is_err());
        assert!(version_with(|v| v.body = "x".repeat(MAX_POLICY_BYTES + 1)).is_err());
        assert!(version_with(|v| v.body = "x".repeat(MAX_POLICY_BYTES)).is_ok());
    }

    #[test]
    fn texts_are_checked() {
        assert!(text("x", "fine", 4).is_ok());
        assert!(text("x", "toolong", 4).is_err());
        assert!(text("x", "a\nb", 4).is_err());
        assert!(required("x", "", 4).is_err());
        assert_eq!(email("Alice@Example.COM").unwrap(), "alice@example.com");
        assert!(email("nobody").is_err());
        assert!(email("a b@c").is_err());
        assert_eq!(domain("Example.COM.").unwrap(), "example.com");
        assert!(domain("bücher.example").is_err());
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncated("abc", 5), "abc");
        assert_eq!(truncated("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it drops it whole.
        assert_eq!(truncated("aé", 2), "a");
    }
}
