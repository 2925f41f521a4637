//! Pages of the hosting API and dashboard: the page size a request may ask for and the cursor
//! that says where the next page starts.
//!
//! Lists are paginated by key (keyset pagination), never by offset: a cursor names the last
//! key of the page before, so a page costs the same however deep it is, and a row added or
//! removed meanwhile moves no other row between pages.
//!
//! A cursor is opaque to clients: lowercase hex of `d1:<domain>` (the domain list continues
//! after that name), `v1:<number>` (a domain's versions continue below that version),
//! `r1:<begin>:<id>` (a report list, newest first, continues after that report) or
//! `m1:<received_at>:<id>` (the mail kept without reports, newest first, continues after that
//! arrival). It is
//! bounded ([`MAX_CURSOR_CHARS`]) and checked whole before use; a cursor of one list is not
//! accepted by the other. It carries no secret and grants nothing: every page is still
//! filtered by what the caller may see.

use super::policy_input::FieldError;
use crate::domain::{MAX_NAME_LEN, normalize_domain};

/// Rows per page when a request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The most rows a request may ask for in one page.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The longest cursor accepted, in characters: the hex of the longest domain cursor.
pub const MAX_CURSOR_CHARS: usize = 2 * (DOMAIN_TAG.len() + MAX_NAME_LEN);

const LIMIT_RULE: &str = "mtasts API: limit is a whole number from 1 to 500 (default 100)";
const CURSOR_RULE: &str =
    "mtasts API: cursor is the next_cursor of the page before, unchanged, of the same list";

const DOMAIN_TAG: &str = "d1:";
const VERSION_TAG: &str = "v1:";
const REPORT_TAG: &str = "r1:";
const MAIL_TAG: &str = "m1:";

/// Where a page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// The domain list continues after this (normalised) name, in byte order.
    DomainsAfter(String),
    /// A domain's versions continue with the versions below this number, newest first.
    VersionsBefore(i64),
    /// A report list (newest begin first, then highest id) continues after the report that
    /// began at `begin` (Unix seconds) with id `id`.
    ReportsAfter {
        /// The report's begin, Unix seconds.
        begin: i64,
        /// The report's id.
        id: i64,
    },
    /// The list of mail that held no report (newest arrival first, then highest id)
    /// continues after the arrival received at `received_at` (Unix seconds) with id `id`.
    MailAfter {
        /// When the arrival was received, Unix seconds.
        received_at: i64,
        /// The arrival's id.
        id: i64,
    },
}

/// Which list a cursor belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorKind {
    /// The list of domains.
    Domains,
    /// A domain's versions.
    Versions,
    /// A list of received reports.
    Reports,
    /// The mail kept without reports.
    Mail,
}

impl Cursor {
    /// The list this cursor belongs to.
    pub fn kind(&self) -> CursorKind {
        match self {
            Cursor::DomainsAfter(_) => CursorKind::Domains,
            Cursor::VersionsBefore(_) => CursorKind::Versions,
            Cursor::ReportsAfter { .. } => CursorKind::Reports,
            Cursor::MailAfter { .. } => CursorKind::Mail,
        }
    }

    /// The cursor as clients see it (lowercase hex, at most [`MAX_CURSOR_CHARS`]).
    pub fn encode(&self) -> String {
        let payload = match self {
            Cursor::DomainsAfter(name) => format!("{DOMAIN_TAG}{name}"),
            Cursor::VersionsBefore(number) => format!("{VERSION_TAG}{number}"),
            Cursor::ReportsAfter { begin, id } => format!("{REPORT_TAG}{begin}:{id}"),
            Cursor::MailAfter { received_at, id } => format!("{MAIL_TAG}{received_at}:{id}"),
        };
        crate::hex::encode(payload.as_bytes())
    }

    /// Reads a cursor of the list `kind` from a request; anything else (too long, not hex, a
    /// cursor of the other list, a name that is not normalised, a version below 1) is a 400
    /// naming `cursor`.
    pub fn decode(text: &str, kind: CursorKind) -> Result<Cursor, FieldError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(bad_cursor(format!(
                "longer than {MAX_CURSOR_CHARS} characters"
            )));
        }
        let payload = unhex(text).ok_or_else(|| bad_cursor("not a cursor of this service"))?;
        let cursor = match kind {
            CursorKind::Domains => payload
                .strip_prefix(DOMAIN_TAG)
                .filter(|name| normalize_domain(name).is_ok_and(|n| n == *name))
                .map(|name| Cursor::DomainsAfter(name.to_owned())),
            CursorKind::Versions => payload
                .strip_prefix(VERSION_TAG)
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| *n >= 1)
                .map(Cursor::VersionsBefore),
            CursorKind::Reports => payload.strip_prefix(REPORT_TAG).and_then(|rest| {
                let (begin, id) = rest.split_once(':')?;
                Some(Cursor::ReportsAfter {
                    begin: canonical_integer(begin)?,
                    id: canonical_integer(id).filter(|id| *id >= 1)?,
                })
            }),
            CursorKind::Mail => payload.strip_prefix(MAIL_TAG).and_then(|rest| {
                let (received_at, id) = rest.split_once(':')?;
                Some(Cursor::MailAfter {
                    received_at: canonical_integer(received_at)?,
                    id: canonical_integer(id).filter(|id| *id >= 1)?,
                })
            }),
        };
        cursor.ok_or_else(|| bad_cursor("not a cursor of this list"))
    }
}

/// The name a domain-list cursor continues after ([`Cursor::decode`] for that list).
pub fn domains_after(text: &str) -> Result<String, FieldError> {
    match Cursor::decode(text, CursorKind::Domains)? {
        Cursor::DomainsAfter(name) => Ok(name),
        _ => Err(bad_cursor("not a cursor of this list")),
    }
}

/// The version number a version-list cursor continues below ([`Cursor::decode`] for that
/// list).
pub fn versions_before(text: &str) -> Result<i64, FieldError> {
    match Cursor::decode(text, CursorKind::Versions)? {
        Cursor::VersionsBefore(number) => Ok(number),
        _ => Err(bad_cursor("not a cursor of this list")),
    }
}

/// The (begin, id) a report-list cursor continues after ([`Cursor::decode`] for that list).
pub fn reports_after(text: &str) -> Result<(i64, i64), FieldError> {
    match Cursor::decode(text, CursorKind::Reports)? {
        Cursor::ReportsAfter { begin, id } => Ok((begin, id)),
        _ => Err(bad_cursor("not a cursor of this list")),
    }
}

/// The (received_at, id) a mail-list cursor continues after ([`Cursor::decode`] for that
/// list).
pub fn mail_after(text: &str) -> Result<(i64, i64), FieldError> {
    match Cursor::decode(text, CursorKind::Mail)? {
        Cursor::MailAfter { received_at, id } => Ok((received_at, id)),
        _ => Err(bad_cursor("not a cursor of this list")),
    }
}

/// The page size a request asks for: [`DEFAULT_PAGE_SIZE`] when absent, else a whole number
/// from 1 to [`MAX_PAGE_SIZE`] (a 400 naming `limit` otherwise).
pub fn page_limit(text: Option<&str>) -> Result<u32, FieldError> {
    let Some(text) = text else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    // Digits only: no sign, no spaces, and a bounded length before parsing.
    let number = (!text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u32>().ok())
        .flatten();
    match number {
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        _ => Err(FieldError {
            field: "limit",
            rule: LIMIT_RULE,
            message: format!("{:?} is not from 1 to {MAX_PAGE_SIZE}", shorten(text)),
        }),
    }
}

fn bad_cursor(message: impl Into<String>) -> FieldError {
    FieldError {
        field: "cursor",
        rule: CURSOR_RULE,
        message: message.into(),
    }
}

/// A decimal integer in its one spelling (optional `-`, no leading zeros, no `+`).
fn canonical_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.len() <= 19
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    canonical.then(|| text.parse().ok()).flatten()
}

/// The text whose lowercase hex is `hex`, if it is that (one spelling per cursor).
fn unhex(hex: &str) -> Option<String> {
    if !crate::hex::is_lower(hex) {
        return None;
    }
    String::from_utf8(crate::hex::decode(hex)?).ok()
}

/// At most 20 characters of a request value, for an error message.
fn shorten(text: &str) -> String {
    text.chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_within_their_list() {
        for cursor in [
            Cursor::DomainsAfter("example.com".to_owned()),
            Cursor::DomainsAfter("xn--bcher-kva.example".to_owned()),
            Cursor::VersionsBefore(1),
            Cursor::VersionsBefore(i64::MAX),
            Cursor::ReportsAfter { begin: 0, id: 1 },
            Cursor::ReportsAfter {
                begin: -86_400,
                id: i64::MAX,
            },
            Cursor::ReportsAfter {
                begin: i64::MAX,
                id: 7,
            },
            Cursor::MailAfter {
                received_at: 1_800_000_000,
                id: 1,
            },
        ] {
            let text = cursor.encode();
            assert!(text.len() <= MAX_CURSOR_CHARS);
            assert!(crate::hex::is_lower(&text), "{text}");
            assert_eq!(Cursor::decode(&text, cursor.kind()), Ok(cursor.clone()));
            for other in [
                CursorKind::Domains,
                CursorKind::Versions,
                CursorKind::Reports,
                CursorKind::Mail,
            ] {
                if other != cursor.kind() {
                    assert_eq!(Cursor::decode(&text, other).unwrap_err().field, "cursor");
                }
            }
        }
    }

    #[test]
    fn each_list_reads_its_own_position() {
        let domains = Cursor::DomainsAfter("example.com".to_owned()).encode();
        let versions = Cursor::VersionsBefore(42).encode();
        assert_eq!(domains_after(&domains).as_deref(), Ok("example.com"));
        assert_eq!(versions_before(&versions), Ok(42));
        assert_eq!(domains_after(&versions).unwrap_err().field, "cursor");
        assert_eq!(versions_before(&domains).unwrap_err().field, "cursor");
        let reports = Cursor::ReportsAfter {
            begin: 1_800_000_000,
            id: 9,
        }
        .encode();
        assert_eq!(reports_after(&reports), Ok((1_800_000_000, 9)));
        assert_eq!(reports_after(&versions).unwrap_err().field, "cursor");
        assert_eq!(versions_before(&reports).unwrap_err().field, "cursor");
        let mail = Cursor::MailAfter {
            received_at: 1_800_000_000,
            id: 9,
        }
        .encode();
        assert_eq!(mail_after(&mail), Ok((1_800_000_000, 9)));
        // Same shape as a report cursor, another list: neither reads the other.
        assert_eq!(mail_after(&reports).unwrap_err().field, "cursor");
        assert_eq!(reports_after(&mail).unwrap_err().field, "cursor");
    }

    #[test]
    fn the_longest_name_fits() {
        let label = "a".repeat(63);
        let name = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(name.len(), MAX_NAME_LEN);
        let text = Cursor::DomainsAfter(name.clone()).encode();
        assert_eq!(text.len(), MAX_CURSOR_CHARS);
        assert_eq!(
            Cursor::decode(&text, CursorKind::Domains),
            Ok(Cursor::DomainsAfter(name))
        );
        let longer = format!("{text}00");
        assert_eq!(
            Cursor::decode(&longer, CursorKind::Domains)
                .unwrap_err()
                .field,
            "cursor"
        );
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        for bad in [
            String::new(),
            "zz".to_owned(),
            "abc".to_owned(),
            "ABCD".to_owned(),
            hex("d1:Example.COM"),
            hex("d1:example.com."),
            hex("d1:"),
            hex("d1:exa mple.com"),
            hex("d2:example.com"),
            hex("example.com"),
            hex("v1:0"),
            hex("v1:-3"),
            hex("v1:+3"),
            hex("v1:007"),
            hex("v1:99999999999999999999"),
            hex("v1:"),
            hex("r1:"),
            hex("r1:5"),
            hex("r1:5:0"),
            hex("r1:5:-1"),
            hex("r1:05:1"),
            hex("r1:-0:1"),
            hex("r1:+5:1"),
            hex("r1:5:1:2"),
            hex("r1:99999999999999999999:1"),
            hex("m1:"),
            hex("m1:5"),
            hex("m1:5:0"),
            hex("m1:05:1"),
            hex("m1:5:1:2"),
            "ff".repeat(4),
            "x".repeat(10_000),
        ] {
            for kind in [
                CursorKind::Domains,
                CursorKind::Versions,
                CursorKind::Reports,
                CursorKind::Mail,
            ] {
                let err = Cursor::decode(&bad, kind).unwrap_err();
                assert_eq!(err.field, "cursor", "{bad}");
                assert!(err.message.len() < 100, "{}", err.message);
            }
        }
    }

    #[test]
    fn limits_are_whole_numbers_up_to_the_maximum() {
        assert_eq!(page_limit(None), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_limit(Some("1")), Ok(1));
        assert_eq!(page_limit(Some("500")), Ok(MAX_PAGE_SIZE));
        assert_eq!(page_limit(Some("0042")), Ok(42));
        for bad in [
            "",
            "0",
            "501",
            "-1",
            "+5",
            " 5",
            "5 ",
            "1e2",
            "abc",
            "4294967296",
            "99999999999",
        ] {
            let err = page_limit(Some(bad)).unwrap_err();
            assert_eq!(err.field, "limit", "{bad:?}");
            assert!(err.message.len() < 100);
        }
        let long = "9".repeat(10_000);
        assert!(page_limit(Some(&long)).unwrap_err().message.len() < 100);
    }
}
