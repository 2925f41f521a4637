//! The RFC 8460 §5.3 report mail, unsigned: the caller DKIM-signs it over [`SIGNED_HEADERS`]
//! and prepends the signature. CRLF line ends, 7-bit only (the report is base64), lines well
//! under 998 octets, so no relay needs to re-encode it and the signature survives.

use std::fmt::Write as _;

use crate::calendar::{DAY, civil_from_days};

/// The headers a report mail's DKIM signature must cover: the §5.3 ones (the two
/// `TLS-Report-*` headers SHOULD be signed) and those that make the message what it is.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "TLS-Report-Domain",
    "TLS-Report-Submitter",
    "TLS-Required",
    "MIME-Version",
    "Content-Type",
];

/// What the report mail says.
#[derive(Clone, Copy, Debug)]
pub struct ReportMail<'a> {
    /// Header `From` address (bare `local@domain`).
    pub from: &'a str,
    /// Header `To` address (bare, the `mailto:` rua's address).
    pub to: &'a str,
    /// The recipient (policy) domain: `TLS-Report-Domain`.
    pub domain: &'a str,
    /// The submitter (domain of `contact-info`): `TLS-Report-Submitter`.
    pub submitter: &'a str,
    /// The report's `report-id` (the Subject's `Report-ID: <id@submitter>`).
    pub report_id: &'a str,
    /// `organization-name`, for the human-readable part.
    pub organization: &'a str,
    /// When the mail is composed (Unix seconds): the `Date` header.
    pub date: i64,
    /// `Message-ID` without angle brackets (they are added; given ones are kept).
    pub message_id: &'a str,
    /// The attachment's file name ([`super::file_name`] with `gzip`).
    pub file_name: &'a str,
    /// The gzip-compressed report.
    pub gz: &'a [u8],
}

/// Header values come from configuration and DNS: a CR or LF in one would start a header of
/// its own, so control characters become spaces.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The RFC 5322 date of `t` in UTC: `Mon, 07 Dec 2026 22:05:20 +0000`.
pub(crate) fn rfc5322_date(t: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(DAY);
    let secs = t.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Base64 (RFC 2045 §6.8) in lines of 76 characters, each ended by CRLF.
fn base64_lines(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // 57 input bytes are 76 output characters.
    for line in bytes.chunks(57) {
        for chunk in line.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    let index = usize::try_from(n >> (18 - 6 * i) & 63).unwrap_or(0);
                    out.push(char::from(ALPHABET[index]));
                } else {
                    out.push('=');
                }
            }
        }
        out.push_str("\r\n");
    }
}

/// The RFC 8460 §5.3 message, unsigned, with CRLF line ends: `multipart/report;
/// report-type="tlsrpt"` with a text part and the `application/tlsrpt+gzip` part (base64, the
/// file name); `TLS-Report-Domain`, `TLS-Report-Submitter`, the Subject `Report Domain: d
/// Submitter: s Report-ID: <id@s>`, `TLS-Required: No` (RFC 8689: a report is delivered even
/// to a domain whose TLS is broken, and Postfix then skips the policy lookup — no report
/// loop), `Message-ID`, `Date`, `MIME-Version`.
pub fn compose_mail(mail: &ReportMail<'_>) -> Vec<u8> {
    let domain = clean(mail.domain);
    let submitter = clean(mail.submitter);
    let report_id = clean(mail.report_id);
    let message_id = clean(mail.message_id);
    let message_id = message_id.trim_start_matches('<').trim_end_matches('>');
    let file_name = clean(mail.file_name).replace(['"', '\\'], "_");
    // The boundary is derived from the report id; base64 never contains "=_", and the text
    // part is checked.
    let mut boundary = format!("=_tlsrpt_{}", boundary_token(&report_id));
    let organization = clean(mail.organization);
    let text = format!(
        "This is an aggregate TLS report (RFC 8460) from {organization}\r\nfor {domain}, submitted by {submitter}.\r\nReport-ID: {report_id}\r\n"
    );
    while text.contains(&boundary) {
        boundary.push('_');
    }

    let mut out = String::with_capacity(mail.gz.len() * 4 / 3 + 2048);
    let _ = write!(out, "From: {}\r\n", clean(mail.from));
    let _ = write!(out, "To: {}\r\n", clean(mail.to));
    let subject = format!(
        "Report Domain: {domain} Submitter: {submitter} Report-ID: <{report_id}@{submitter}>"
    );
    if subject.len() + "Subject: ".len() <= 78 {
        let _ = write!(out, "Subject: {subject}\r\n");
    } else {
        // Folding before each field keeps lines short; the words stay as the RFC writes them.
        let _ = write!(
            out,
            "Subject: Report Domain: {domain}\r\n Submitter: {submitter}\r\n Report-ID: <{report_id}@{submitter}>\r\n"
        );
    }
    let _ = write!(out, "Date: {}\r\n", rfc5322_date(mail.date));
    let _ = write!(out, "Message-ID: <{message_id}>\r\n");
    let _ = write!(out, "TLS-Report-Domain: {domain}\r\n");
    let _ = write!(out, "TLS-Report-Submitter: {submitter}\r\n");
    out.push_str("TLS-Required: No\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    let _ = write!(
        out,
        "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n boundary=\"{boundary}\"\r\n"
    );
    out.push_str("\r\nThis is a multipart message in MIME format.\r\n\r\n");

    let _ = write!(out, "--{boundary}\r\n");
    if text.is_ascii() {
        out.push_str("Content-Type: text/plain; charset=us-ascii\r\n");
        out.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.push_str(&text);
    } else {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        base64_lines(text.as_bytes(), &mut out);
    }
    out.push_str("\r\n");

    let _ = write!(out, "--{boundary}\r\n");
    let _ = write!(
        out,
        "Content-Type: application/tlsrpt+gzip;\r\n name=\"{file_name}\"\r\n"
    );
    out.push_str("Content-Transfer-Encoding: base64\r\n");
    let _ = write!(
        out,
        "Content-Disposition: attachment;\r\n filename=\"{file_name}\"\r\n\r\n"
    );
    base64_lines(mail.gz, &mut out);
    let _ = write!(out, "\r\n--{boundary}--\r\n");
    out.into_bytes()
}

/// Letters and digits of the report id (at most 40), so the boundary is a valid token.
fn boundary_token(report_id: &str) -> String {
    let token: String = report_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .rev()
        .take(40)
        .collect();
    token.chars().rev().collect()
}
