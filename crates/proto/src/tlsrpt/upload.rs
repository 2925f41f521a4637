//! What an HTTPS report upload (RFC 8460 §5.3) holds: the decision, from the request's
//! `Content-Type` and `Content-Encoding` and the body's first bytes, whether the body is a
//! gzip-compressed or a plain JSON report, or why it is refused.
//!
//! The RFC names two media types, `application/tlsrpt+gzip` and `application/tlsrpt+json`. Real
//! senders also send the bare `application/tlsrpt`, `application/json`, `application/gzip`,
//! `application/octet-stream`, curl's default `application/x-www-form-urlencoded`, no type at
//! all, and `+gzip` on plain JSON (see the reference's corner case 138). So the declared type
//! only rules out what is plainly something else (an HTML form upload, an image, a mail
//! message); the bytes decide: gzip's magic `1f 8b` means gzip, a `{` (after optional
//! whitespace and a UTF-8 byte order mark) means JSON, anything else is refused.

/// The gzip magic number (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The UTF-8 byte order mark, which some generators write before JSON.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// What the body is, by its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// gzip-compressed (the report, or a declared `Content-Encoding: gzip` around it).
    Gzip,
    /// A JSON document as is.
    Json,
}

/// Why an upload is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The declared media type names something that is not a report (HTTP 415).
    MediaType(String),
    /// A `Content-Encoding` other than `gzip` or `identity` (HTTP 415).
    ContentEncoding(String),
    /// The body is empty (HTTP 400).
    Empty,
    /// The body is neither gzip nor JSON (HTTP 400).
    NotAReport,
}

impl Refusal {
    /// Whether the refusal is about the declared types (415) rather than the body (400).
    pub fn is_media_type(&self) -> bool {
        matches!(self, Refusal::MediaType(_) | Refusal::ContentEncoding(_))
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::MediaType(t) => write!(
                f,
                "the media type {t:?} is not a TLS report; send application/tlsrpt+gzip or application/tlsrpt+json"
            ),
            Refusal::ContentEncoding(e) => write!(
                f,
                "the content encoding {e:?} is not supported; send gzip or none"
            ),
            Refusal::Empty => f.write_str("the body is empty; POST the report"),
            Refusal::NotAReport => f.write_str(
                "the body is neither gzip nor JSON; POST the report as application/tlsrpt+gzip or application/tlsrpt+json",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Whether a declared media type (`type/subtype` with optional parameters, any case) may hold a
/// report. `None` (no header) may.
pub fn media_type_allowed(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.is_empty() {
        return true;
    }
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.eq_ignore_ascii_case("text") {
        return subtype.eq_ignore_ascii_case("plain") || subtype.eq_ignore_ascii_case("json");
    }
    if !kind.eq_ignore_ascii_case("application") {
        return false;
    }
    let subtype = subtype.to_ascii_lowercase();
    matches!(
        subtype.as_str(),
        "tlsrpt"
            | "json"
            | "gzip"
            | "x-gzip"
            | "octet-stream"
            // curl's default for --data-binary: a sender script that forgot -H.
            | "x-www-form-urlencoded"
    ) || subtype.ends_with("+json")
        || subtype.ends_with("+gzip")
}

/// Whether a declared `Content-Encoding` is one we read: none, `identity` or `gzip`
/// (`x-gzip`). The walker opens gzip wherever it meets it, so a gzip-encoded gzip report is
/// simply two layers.
pub fn content_encoding_allowed(content_encoding: Option<&str>) -> bool {
    content_encoding.is_none_or(|value| {
        value
            .split(',')
            .map(str::trim)
            .filter(|coding| !coding.is_empty())
            .all(|coding| {
                ["identity", "gzip", "x-gzip"]
                    .iter()
                    .any(|known| coding.eq_ignore_ascii_case(known))
            })
    })
}

/// What a body is, from its first bytes: gzip's magic, or JSON's `{` after optional
/// whitespace and a byte order mark.
pub fn sniff(body: &[u8]) -> Result<Encoding, Refusal> {
    if body.is_empty() {
        return Err(Refusal::Empty);
    }
    if body.starts_with(&GZIP_MAGIC) {
        return Ok(Encoding::Gzip);
    }
    let text = body.strip_prefix(BOM).unwrap_or(body);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(Encoding::Json),
        Some(_) => Err(Refusal::NotAReport),
        None => Err(Refusal::Empty),
    }
}

/// The whole decision: the declared types first (they can be refused before the body is read),
/// then the body's bytes.
pub fn classify(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<Encoding, Refusal> {
    check_headers(content_type, content_encoding)?;
    sniff(body)
}

/// The header half of [`classify`]: refuses a body before it is read.
pub fn check_headers(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<(), Refusal> {
    if !media_type_allowed(content_type) {
        return Err(Refusal::MediaType(content_type.unwrap_or_default().into()));
    }
    if !content_encoding_allowed(content_encoding) {
        return Err(Refusal::ContentEncoding(
            content_encoding.unwrap_or_default().into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &[u8] = br#"{"organization-name":"x"}"#;
    const GZIP: &[u8] = &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0];

    #[test]
    fn the_rfc_types_and_what_real_senders_send() {
        for t in [
            "application/tlsrpt+gzip",
            "application/tlsrpt+json",
            "Application/TLSRPT+GZIP",
            "application/tlsrpt+json; charset=utf-8",
            "application/tlsrpt+json;charset=\"UTF-8\"",
            "application/tlsrpt",
            "application/json",
            "application/json; charset=us-ascii",
            "application/gzip",
            "application/x-gzip",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "application/vnd.example+json",
            " application/tlsrpt+gzip ",
            "text/plain",
            "text/json",
            "",
            "; charset=utf-8",
        ] {
            assert!(media_type_allowed(Some(t)), "{t:?}");
        }
        assert!(media_type_allowed(None));
    }

    #[test]
    fn other_types_are_refused() {
        for t in [
            "text/html",
            "multipart/form-data; boundary=x",
            "multipart/report; report-type=tlsrpt",
            "message/rfc822",
            "image/png",
            "application/xml",
            "application/zip",
            "application/pdf",
            "tlsrpt+json",
            "application",
        ] {
            assert!(!media_type_allowed(Some(t)), "{t:?}");
            let refusal = classify(Some(t), None, JSON).unwrap_err();
            assert_eq!(refusal, Refusal::MediaType(t.to_string()));
            assert!(refusal.is_media_type());
            assert!(refusal.to_string().contains("application/tlsrpt+gzip"));
        }
    }

    #[test]
    fn content_encodings() {
        for e in [
            None,
            Some("gzip"),
            Some("x-gzip"),
            Some("identity"),
            Some("GZIP"),
            Some("gzip, identity"),
            Some(""),
        ] {
            assert!(content_encoding_allowed(e), "{e:?}");
        }
        for e in ["br", "deflate", "zstd", "gzip, br", "compress"] {
            assert!(!content_encoding_allowed(Some(e)), "{e:?}");
            let refusal = classify(None, Some(e), GZIP).unwrap_err();
            assert_eq!(refusal, Refusal::ContentEncoding(e.to_string()));
            assert!(refusal.is_media_type());
        }
    }

    #[test]
    fn the_bytes_decide() {
        // +gzip on plain JSON and JSON types on gzip both happen; the bytes win.
        assert_eq!(
            classify(Some("application/tlsrpt+gzip"), None, JSON),
            Ok(Encoding::Json)
        );
        assert_eq!(
            classify(Some("application/tlsrpt+json"), None, GZIP),
            Ok(Encoding::Gzip)
        );
        assert_eq!(classify(None, None, GZIP), Ok(Encoding::Gzip));
        assert_eq!(classify(None, None, JSON), Ok(Encoding::Json));
        assert_eq!(sniff(b"  \r\n\t{}"), Ok(Encoding::Json));
        assert_eq!(sniff(b"\xef\xbb\xbf{}"), Ok(Encoding::Json));
        assert_eq!(sniff(b"\xef\xbb\xbf \n{}"), Ok(Encoding::Json));
    }

    #[test]
    fn bodies_that_are_not_reports() {
        assert_eq!(sniff(b""), Err(Refusal::Empty));
        assert_eq!(sniff(b"   \r\n"), Err(Refusal::Empty));
        assert_eq!(sniff(b"\xef\xbb\xbf"), Err(Refusal::Empty));
        for body in [
            &b"[1, 2]"[..],
            b"<?xml version=\"1.0\"?><feedback/>",
            b"PK\x03\x04",
            b"From: a@example\r\n\r\nhi",
            b"\x1f",
            b"\x8b\x1f",
            b"organization-name=x",
            b"\xef\xbb{",
        ] {
            let refusal = sniff(body).unwrap_err();
            assert_eq!(refusal, Refusal::NotAReport, "{body:?}");
            assert!(!refusal.is_media_type());
        }
        assert!(Refusal::Empty.to_string().contains("empty"));
        assert!(
            Refusal::NotAReport
                .to_string()
                .contains("neither gzip nor JSON")
        );
    }
}
