//! Hostile and odd inputs built in the test: bombs, nesting past the limits, encrypted zips, garbage, and
//! the container quirks real senders produce (inline, small).

use std::io::Write;

use flate2::{Compress, Compression, FlushCompress};
use mtasts_report::{Code, Found, Limits, walk};
use proptest::prelude::*;
use zip::write::SimpleFileOptions;

const TLS_JSON: &str = r#"{"organization-name": "Example", "report-id": "r1",
  "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
  "contact-info": "tls@example.net",
  "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com"},
                "summary": {"total-successful-session-count": 5, "total-failure-session-count": 0}}]}"#;

const DMARC_XML: &str = "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Example</org_name>\
<email>d@example.net</email><report_id>r1</report_id><date_range><begin>1700000000</begin>\
<end>1700086399</end></date_range></report_metadata><policy_published><domain>example.com</domain>\
<p>none</p></policy_published><record><row><source_ip>192.0.2.1</source_ip><count>3</count>\
<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>\
<identifiers><header_from>example.com</header_from></identifiers><auth_results><spf>\
<domain>example.com</domain><result>pass</result></spf></auth_results></record></feedback>";

/// (source, kind or error code) of everything found.
fn summary(found: &[Found]) -> Vec<(String, String)> {
    found
        .iter()
        .map(|f| {
            let kind = match f {
                Found::TlsRpt { .. } => "tlsrpt".to_owned(),
                Found::Dmarc { .. } => "dmarc".to_owned(),
                Found::Error(e) => e.code.as_str().to_owned(),
                _ => "other".to_owned(),
            };
            (f.source().to_owned(), kind)
        })
        .collect()
}

/// What the walk of `bytes` with the default limits finds (see [`summary`]).
fn walks_to(bytes: &[u8], source: &str) -> Vec<(String, String)> {
    summary(&walk(bytes, source, &Limits::default()))
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect()
}

fn one(source: &str, kind: &str) -> Vec<(String, String)> {
    pairs(&[(source, kind)])
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

/// A zip holding `entries` (name, bytes), deflated.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        writer.start_file(*name, options).expect("zip entry");
        writer.write_all(bytes).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}

/// A gzip member that inflates to `mib` MiB of zeros, built from one compressed MiB repeated: each
/// chunk ends with a full flush, so it stands alone. The test never holds more than a MiB uncompressed.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    let zeros = vec![0u8; 1 << 20];
    let mut compress = Compress::new(Compression::best(), false);
    let mut chunk = Vec::with_capacity(64 * 1024);
    compress
        .compress_vec(&zeros, &mut chunk, FlushCompress::Full)
        .expect("deflate");
    assert_eq!(
        compress.total_in(),
        1 << 20,
        "the chunk buffer was too small"
    );
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..mib {
        out.extend_from_slice(&chunk);
    }
    out.extend_from_slice(&[0x03, 0x00]); // an empty final fixed-Huffman block
    out.extend_from_slice(&[0; 8]); // CRC and size: never reached
    out
}

fn mail(content_type: &str, encoding: &str, body: &str) -> Vec<u8> {
    format!(
        "From: r@example.net\r\nTo: t@example.com\r\nSubject: report\r\nMIME-Version: 1.0\r\n\
         Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn bare_json_is_a_tls_report() {
    assert_eq!(
        walks_to(TLS_JSON.as_bytes(), "r.json"),
        one("r.json", "tlsrpt")
    );
}

#[test]
fn bare_xml_is_a_dmarc_report() {
    assert_eq!(
        walks_to(DMARC_XML.as_bytes(), "r.xml"),
        one("r.xml", "dmarc")
    );
}

#[test]
fn the_kind_comes_from_the_content_not_the_name() {
    let found = walk(DMARC_XML.as_bytes(), "report.json.gz", &Limits::default());
    assert_eq!(summary(&found), one("report.json.gz", "dmarc"));
}

#[test]
fn gzip_is_opened_and_keeps_the_source() {
    let found = walk(&gzip(TLS_JSON.as_bytes()), "r.json.gz", &Limits::default());
    assert_eq!(summary(&found), one("r.json.gz", "tlsrpt"));
}

#[test]
fn gzip_with_trailing_bytes_is_read() {
    let mut bytes = gzip(DMARC_XML.as_bytes());
    bytes.extend_from_slice(b"\r\n");
    assert_eq!(walks_to(&bytes, "m.gz"), one("m.gz", "dmarc"));
}

#[test]
fn truncated_gzip_is_malformed() {
    let bytes = gzip(DMARC_XML.as_bytes());
    let found = walk(&bytes[..bytes.len() / 2], "t.gz", &Limits::default());
    assert_eq!(summary(&found), one("t.gz", "malformed"));
}

#[test]
fn gzip_bomb_stops_at_the_default_64_mib_limit() {
    let bomb = gzip_bomb(1024); // 1 GiB of zeros
    assert!(
        bomb.len() < 4 << 20,
        "the bomb itself stays small: {}",
        bomb.len()
    );
    let found = walk(&bomb, "bomb.gz", &Limits::default());
    assert_eq!(summary(&found), one("bomb.gz", "too-large"));
    let Found::Error(e) = &found[0] else {
        panic!("{found:?}")
    };
    assert!(e.message.contains("64 MiB"), "{}", e.message);
}

#[test]
fn gzip_bomb_stops_at_a_lower_limit() {
    let mut limits = Limits::default();
    limits.max_report_bytes = 1 << 20;
    let found = walk(&gzip_bomb(8), "bomb.gz", &limits);
    assert_eq!(summary(&found), one("bomb.gz", "too-large"));
}

#[test]
fn zip_entries_are_numbered() {
    let bytes = zip(&[
        ("a.xml", DMARC_XML.as_bytes()),
        ("b.json", TLS_JSON.as_bytes()),
    ]);
    let found = walk(&bytes, "r.zip", &Limits::default());
    assert_eq!(
        summary(&found),
        pairs(&[("r.zip#0", "dmarc"), ("r.zip#1", "tlsrpt")])
    );
}

#[test]
fn zip_bomb_entry_is_too_large() {
    let zeros = vec![0u8; 8 << 20];
    let bytes = zip(&[("bomb.xml", &zeros)]);
    let mut limits = Limits::default();
    limits.max_report_bytes = 1 << 20;
    assert_eq!(
        summary(&walk(&bytes, "b.zip", &limits)),
        one("b.zip#0", "too-large")
    );
}

#[test]
fn zip_entries_past_the_total_budget_are_too_large() {
    let zeros = vec![0u8; 1 << 20];
    let bytes = zip(&[("a", &zeros), ("b", &zeros), ("c", &zeros)]);
    let mut limits = Limits::default();
    limits.max_total_bytes = (2 << 20) + 10;
    let found = walk(&bytes, "z.zip", &limits);
    let kinds = summary(&found);
    // The first two MiB fit (and are not reports); the third passes the budget.
    assert_eq!(
        kinds[..2],
        pairs(&[("z.zip#0", "unrecognized"), ("z.zip#1", "unrecognized")])
    );
    assert_eq!(kinds[2..], one("z.zip#2", "too-large"));
    let Found::Error(e) = &found[2] else {
        panic!("{found:?}")
    };
    assert!(e.message.contains("max_total_bytes"), "{}", e.message);
}

#[test]
fn zip_with_too_many_entries_is_too_large() {
    let entries: Vec<(String, &[u8])> = (0..5)
        .map(|i| (format!("{i}.xml"), DMARC_XML.as_bytes()))
        .collect();
    let entries: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let mut limits = Limits::default();
    limits.max_zip_entries = 3;
    assert_eq!(
        summary(&walk(&zip(&entries), "many.zip", &limits)),
        one("many.zip", "too-large")
    );
}

#[test]
fn zips_nested_past_the_depth_are_too_large() {
    let mut bytes = zip(&[("r.xml", DMARC_XML.as_bytes())]);
    for _ in 0..12 {
        bytes = zip(&[("inner.zip", &bytes)]);
    }
    let found = walk(&bytes, "deep.zip", &Limits::default());
    assert_eq!(found.len(), 1, "{found:?}");
    let Found::Error(e) = &found[0] else {
        panic!("{found:?}")
    };
    assert_eq!(e.code, Code::TooLarge);
    assert!(e.source.starts_with("deep.zip#0#0"), "{}", e.source);
}

#[test]
fn encrypted_zip_entry_is_unsupported() {
    let mut bytes = zip(&[("r.xml", DMARC_XML.as_bytes())]);
    // Set bit 0 (encrypted) of the general-purpose flags in the local and the central header.
    let local = bytes
        .windows(4)
        .position(|w| w == b"PK\x03\x04")
        .expect("local header");
    bytes[local + 6] |= 1;
    let central = bytes
        .windows(4)
        .position(|w| w == b"PK\x01\x02")
        .expect("central header");
    bytes[central + 8] |= 1;
    assert_eq!(walks_to(&bytes, "e.zip"), one("e.zip#0", "unsupported"));
}

#[test]
fn broken_zip_is_malformed() {
    let found = walk(b"PK\x03\x04 not really a zip", "x.zip", &Limits::default());
    assert_eq!(summary(&found), one("x.zip", "malformed"));
}

#[test]
fn garbage_is_unrecognized() {
    let found = walk(b"\x00\x01\x02 binary junk", "junk", &Limits::default());
    assert_eq!(summary(&found), one("junk", "unrecognized"));
}

#[test]
fn empty_input_is_unrecognized() {
    assert_eq!(walks_to(b"", "empty"), one("empty", "unrecognized"));
}

#[test]
fn html_is_not_a_dmarc_report() {
    let found = walk(
        b"<html><body>hi</body></html>",
        "x.html",
        &Limits::default(),
    );
    assert_eq!(summary(&found), one("x.html", "invalid"));
}

#[test]
fn single_part_mail_with_base64_gzip_tls_report() {
    let body = base64(&gzip(TLS_JSON.as_bytes()));
    let bytes = mail("application/tlsrpt+gzip", "base64", &body);
    assert_eq!(walks_to(&bytes, "m.eml"), one("m.eml", "tlsrpt"));
}

#[test]
fn misspelled_media_types_are_read_by_content() {
    for ctype in [
        "application/tlsrpt",
        "application/x-gzip",
        "application/octet-stream",
        "application/gzip-compressed",
        "text/plain",
        "text/json",
    ] {
        let bytes = mail(ctype, "base64", &base64(&gzip(TLS_JSON.as_bytes())));
        assert_eq!(walks_to(&bytes, "m.eml"), one("m.eml", "tlsrpt"), "{ctype}");
    }
}

#[test]
fn quoted_printable_xml_part_is_read() {
    let body = DMARC_XML.replace('=', "=3D");
    let bytes = mail("text/xml", "quoted-printable", &body);
    assert_eq!(walks_to(&bytes, "m.eml"), one("m.eml", "dmarc"));
}

#[test]
fn text_only_mail_is_unrecognized() {
    let bytes = mail("text/plain", "7bit", "Hello, no report here.");
    assert_eq!(walks_to(&bytes, "m.eml"), one("m.eml", "unrecognized"));
}

/// A multipart/report with a text part and an attached gzip, as Google sends.
fn multipart(boundary: &str, inner: &str) -> String {
    format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n\
         Content-Type: text/plain\r\n\r\nsee attached\r\n--{boundary}\r\n{inner}\r\n--{boundary}--\r\n"
    )
}

#[test]
fn multipart_report_attachment_is_labelled_with_its_part() {
    let attachment = format!(
        "Content-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"r.json.gz\"\r\n\r\n{}",
        base64(&gzip(TLS_JSON.as_bytes()))
    );
    let bytes = format!(
        "From: r@example.net\r\nMIME-Version: 1.0\r\n{}",
        multipart("b1", &attachment)
    );
    assert_eq!(
        walks_to(bytes.as_bytes(), "m.eml"),
        one("m.eml#2", "tlsrpt")
    );
}

/// A MIME part holding the TLS report as JSON.
fn json_part() -> String {
    format!("Content-Type: application/tlsrpt+json\r\n\r\n{TLS_JSON}")
}

/// A top-level message around `inner` (its content headers and body).
fn top_message(inner: &str) -> String {
    format!("From: r@example.net\r\nMIME-Version: 1.0\r\n{inner}")
}

fn has_too_large(found: &[Found]) -> bool {
    found
        .iter()
        .any(|f| matches!(f, Found::Error(e) if e.code == Code::TooLarge))
}

#[test]
fn gzip_labelled_text_plain_in_a_multipart_is_read() {
    let attachment = format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
        base64(&gzip(TLS_JSON.as_bytes()))
    );
    let bytes = top_message(&multipart("b1", &attachment));
    assert_eq!(
        walks_to(bytes.as_bytes(), "m.eml"),
        one("m.eml#2", "tlsrpt")
    );
}

#[test]
fn multiparts_nested_past_the_depth_are_too_large() {
    let mut inner = json_part();
    for level in 0..20 {
        inner = multipart(&format!("b{level}"), &inner);
    }
    let bytes = top_message(&inner);
    let found = walk(bytes.as_bytes(), "deep.eml", &Limits::default());
    assert!(
        found.iter().all(|f| matches!(f, Found::Error(_))),
        "{found:?}"
    );
    assert!(has_too_large(&found), "{found:?}");
}

#[test]
fn attached_messages_nested_past_the_depth_are_too_large() {
    let mut inner = json_part();
    for _ in 0..20 {
        inner = format!("Content-Type: message/rfc822\r\n\r\nFrom: a@example.net\r\n{inner}");
    }
    let bytes = top_message(&inner);
    let found = walk(bytes.as_bytes(), "deep.eml", &Limits::default());
    assert!(
        !found.iter().any(|f| matches!(f, Found::TlsRpt { .. })),
        "{found:?}"
    );
}

#[test]
fn a_message_nested_thousands_deep_is_refused_before_parsing() {
    // Attached messages have no closing delimiter: the headers repeated, then the innermost part.
    let inner =
        "Content-Type: message/rfc822\r\n\r\nFrom: a@example.net\r\n".repeat(50_000) + &json_part();
    let found = walk(
        top_message(&inner).as_bytes(),
        "deep.eml",
        &Limits::default(),
    );
    assert_eq!(summary(&found), one("deep.eml", "too-large"));
}

#[test]
fn too_many_parts_is_too_large() {
    let mut inner = json_part();
    inner = multipart("b0", &inner);
    let bytes = top_message(&inner);
    let mut limits = Limits::default();
    limits.max_parts = 2;
    let found = walk(bytes.as_bytes(), "m.eml", &limits);
    assert!(has_too_large(&found), "{found:?}");
}

#[test]
fn mbox_messages_are_numbered() {
    let one_message =
        String::from_utf8(mail("application/tlsrpt+json", "7bit", TLS_JSON)).expect("utf-8");
    let bytes = format!(
        "From r@example.net Mon Mar 25 00:00:00 2024\n{one_message}\nFrom r@example.net Tue Mar 26 00:00:00 2024\n{one_message}"
    );
    let found = walk(bytes.as_bytes(), "box", &Limits::default());
    assert_eq!(
        summary(&found),
        pairs(&[("box#0", "tlsrpt"), ("box#1", "tlsrpt")])
    );
}

#[test]
fn one_bad_entry_does_not_stop_the_others() {
    let bytes = zip(&[
        ("a.xml", b"<feedback><broken"),
        ("b.xml", DMARC_XML.as_bytes()),
    ]);
    let found = walk(&bytes, "r.zip", &Limits::default());
    assert_eq!(
        summary(&found),
        pairs(&[("r.zip#0", "malformed"), ("r.zip#1", "dmarc")])
    );
}

proptest! {
    #[test]
    fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let found = walk(&bytes, "p", &Limits::default());
        prop_assert!(!found.is_empty());
    }

    #[test]
    fn never_panics_behind_a_magic(
        magic in prop::sample::select(vec![&b"\x1f\x8b"[..], b"PK\x03\x04", b"From ", b"Subject: x\r\n", b"{", b"<"]),
        rest in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = magic.to_vec();
        bytes.extend_from_slice(&rest);
        let found = walk(&bytes, "p", &Limits::default());
        prop_assert!(!found.is_empty());
    }

    #[test]
    fn never_panics_on_damaged_containers(flip in 0usize..4096, byte in any::<u8>()) {
        let mut bytes = zip(&[("r.xml.gz", &gzip(DMARC_XML.as_bytes()))]);
        let at = flip % bytes.len();
        bytes[at] = byte;
        let found = walk(&bytes, "p", &Limits::default());
        prop_assert!(!found.is_empty());
    }
}

#[test]
fn finder_metadata_in_a_zip_is_skipped_not_an_error() {
    let bytes = zip(&[
        ("report.xml", DMARC_XML.as_bytes()),
        ("__MACOSX/._report.xml", b"\x00\x05\x16\x07 AppleDouble"),
        ("._report.xml", b"\x00\x05\x16\x07 AppleDouble"),
        (".DS_Store", b"Bud1 finder"),
        ("notes.txt", b"not a report"),
    ]);
    // The Finder's files are metadata; any other entry without a report is still an error.
    assert_eq!(
        walks_to(&bytes, "r.zip"),
        pairs(&[("r.zip#0", "dmarc"), ("r.zip#4", "unrecognized")])
    );
}

/// A broken `multipart/report` (found by the `report_walk` fuzz target) that reaches a
/// `debug_assert!` of mail-parser 0.11.9: tests run with debug assertions, so without the walk's
/// guard this test panics.
#[test]
fn a_mail_that_trips_the_mail_parser_is_an_error_not_a_panic() {
    let hex = "4d494d452d566572243a3b206ebf450a436f6e74656e742d547970653a206d756c7469706172742f7265706f72743b207265706f747970650a20202020626f756e646172793d225f2d0a0a46722d2d5f2d34382f45372d33303933443645314242350a436f6e74656e742d547970653a206d6573736167652f7266633832320a00000020696e6c696e650a0a3d4242352d2d2d42443645314242350a436f6e74656e742d547970653a206d6573736167652f7266633832320a436e6c696e650a0a5269657220434f4e68616e676568746d6c3e0a0a2d2d5f2d2d2d2d6a7142315979725872753d3d3d4242352d2d";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let found = walk(&bytes, "broken.eml", &Limits::default());
    assert!(
        found
            .iter()
            .all(|f| matches!(f, Found::Error(e) if matches!(e.code, Code::Malformed | Code::Unrecognized))),
        "{found:?}"
    );
    assert!(!found.is_empty());
}
