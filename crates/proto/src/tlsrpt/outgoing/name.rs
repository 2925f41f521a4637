//! The names of a report: its `report-id`, its submitter (the domain of `contact-info`,
//! RFC 8460 §5.3) and its file name (§5.1).

use crate::calendar::{DAY, civil_from_days};

/// A `report-id` that is the same for the same (day, domain, record, submitter) — so a report
/// rebuilt after a crash keeps its id and receivers can drop the duplicate (§5.3) — and differs
/// otherwise: `<YYYY-MM-DD>.<domain>.<16 hex digits>`, the hash (FNV-1a 64, stable across
/// releases) covering all four. Only letters, digits, `-` and `.` so it fits the Subject's
/// `<id@submitter>` (an RFC 5322 msg-id).
pub fn report_id(day: i64, domain: &str, record: &str, submitter: &str) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for part in [
        day.to_string().as_bytes(),
        domain.as_bytes(),
        record.as_bytes(),
        submitter.as_bytes(),
    ] {
        // A separator no part contains keeps ("ab", "c") and ("a", "bc") apart.
        for &b in part.iter().chain(&[0xff]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    let (y, m, d) = civil_from_days(day.div_euclid(DAY));
    let safe: String = domain
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(200)
        .collect();
    let safe = safe.trim_matches('.');
    if safe.is_empty() {
        format!("{y:04}-{m:02}-{d:02}.{hash:016x}")
    } else {
        format!("{y:04}-{m:02}-{d:02}.{safe}.{hash:016x}")
    }
}

/// The domain of `contact-info` (after its last `@`), which RFC 8460 §5.3 makes the
/// `TLS-Report-Submitter`; `None` when there is none.
pub fn submitter(contact: &str) -> Option<&str> {
    let (_, domain) = contact.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('>').trim_end_matches('.');
    (!domain.is_empty() && !domain.contains(|c: char| c.is_whitespace() || c == '@'))
        .then_some(domain)
}

/// The §5.1 file name `submitter!domain!begin!end!unique.json[.gz]`: `begin` and `end` are the
/// day's first and last second (Unix time, as `date-range` says), `unique` keeps only its
/// letters and digits (the RFC allows nothing else) and is left out when none remain. The
/// names are A-labels; any other character (a `/`, a `!`, from a domain an MTA made up)
/// becomes `_`, so the name is always one path component that splits back at `!`.
pub fn file_name(submitter: &str, domain: &str, day: i64, unique: &str, gzip: bool) -> String {
    let unique: String = unique.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut name = format!(
        "{}!{}!{day}!{}",
        host_part(submitter),
        host_part(domain),
        day.saturating_add(DAY - 1)
    );
    if !unique.is_empty() {
        name.push('!');
        name.push_str(&unique);
    }
    name.push_str(if gzip { ".json.gz" } else { ".json" });
    name
}

/// `name` with every character but letters, digits, `-`, `.` and `_` replaced by `_`, and a
/// name of dots only (`.`, `..`) replaced whole.
fn host_part(name: &str) -> String {
    let part: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if part.bytes().all(|b| b == b'.') {
        "_".repeat(part.len().max(1))
    } else {
        part
    }
}
