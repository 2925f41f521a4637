//! [`mtasts_report::walk_path`] streams a bare XML file or a gzip of one through the DMARC reader: these
//! tests check that it answers exactly as the in-memory [`mtasts_report::walk`] does on the same bytes
//! (every sample, truncated and corrupt gzips, streams past the limits), and that a report of 200,000
//! records is read whole without holding its inflated document.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use mtasts_proto::dmarc::Mode;
use mtasts_report::{Code, Found, Limits, walk, walk_path};

/// A DMARC report with `records` records written to `out` as it is made (never whole in memory).
/// Record `i` comes from `10.(i / 65536 % 256).(i / 256 % 256).(i % 256)` with `i % 7 + 1` messages;
/// every third one fails DKIM and is quarantined.
fn write_report(out: &mut impl Write, records: usize) {
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\
         <report_metadata><org_name>generator.example</org_name><email>r@generator.example</email>\
         <report_id>big-{records}</report_id><date_range><begin>1700000000</begin>\
         <end>1700086399</end></date_range></report_metadata>\
         <policy_published><domain>example.com</domain><p>none</p><pct>100</pct></policy_published>\n"
    )
    .expect("write");
    for i in 0..records {
        let (dkim, disposition) = if i % 3 == 0 {
            ("fail", "quarantine")
        } else {
            ("pass", "none")
        };
        writeln!(
            out,
            "<record><row><source_ip>10.{}.{}.{}</source_ip><count>{}</count><policy_evaluated>\
             <disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>pass</spf>\
             </policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers>\
             <auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results>\
             </record>",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256,
            i % 7 + 1,
        )
        .expect("write");
    }
    out.write_all(b"</feedback>\n").expect("write");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn small_report() -> Vec<u8> {
    let mut xml = Vec::new();
    write_report(&mut xml, 40);
    xml
}

/// Writes `bytes` to `dir/name` and returns the path.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

/// `walk_path` on the file and `walk` on its bytes give the same items; returns them.
fn same_both_ways(path: &Path, limits: &Limits) -> Vec<Found> {
    let streamed = walk_path(path, limits).expect("walk_path");
    let bytes = std::fs::read(path).expect("read");
    let in_memory = walk(&bytes, &path.display().to_string(), limits);
    assert_eq!(streamed, in_memory, "{}", path.display());
    streamed
}

fn only_error(found: &[Found]) -> (Code, &str) {
    match found {
        [Found::Error(e)] => (e.code, e.message.as_str()),
        other => panic!("expected one error, got {other:?}"),
    }
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files_below(&entry, out);
        } else {
            out.push(entry);
        }
    }
}

#[test]
fn every_sample_reads_the_same_streamed_and_in_memory() {
    let Some(samples) = mtasts_testkit::services::samples_dir() else {
        return;
    };
    let mut files = Vec::new();
    files_below(&samples, &mut files);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dmarc = 0;
    for mode in [Mode::Summary, Mode::Full] {
        let mut limits = Limits::default();
        limits.dmarc_mode = mode;
        for path in &files {
            for found in same_both_ways(path, &limits) {
                dmarc += usize::from(matches!(found, Found::Dmarc { .. }));
            }
            // The XML samples once more as gzips, to go through the streamed decompressor.
            let bytes = std::fs::read(path).expect("read");
            if bytes.first() == Some(&b'<') {
                let name = path.file_name().expect("name").to_string_lossy();
                let gz = file(dir.path(), &format!("{name}.gz"), &gzip(&bytes));
                same_both_ways(&gz, &limits);
            }
        }
    }
    assert!(
        dmarc >= 2 * 40,
        "only {dmarc} DMARC reports among the samples"
    );
}

#[test]
fn a_gzip_inflating_past_max_report_bytes_is_the_same_too_large_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut xml = Vec::new();
    write_report(&mut xml, 2_000);
    let path = file(dir.path(), "big.xml.gz", &gzip(&xml));
    let mut limits = Limits::default();
    limits.max_report_bytes = 64 * 1024;
    let found = same_both_ways(&path, &limits);
    let (code, message) = only_error(&found);
    assert_eq!(code, Code::TooLarge);
    assert!(
        message.contains("65536 bytes limit (--max-report-bytes)"),
        "{message}"
    );

    // A smaller max_total_bytes is the one named.
    limits.max_total_bytes = 32 * 1024;
    let found = same_both_ways(&path, &limits);
    let (code, message) = only_error(&found);
    assert_eq!(code, Code::TooLarge);
    assert!(message.contains("(max_total_bytes)"), "{message}");

    // A limit larger than the document reads it.
    limits.max_total_bytes = xml.len() as u64;
    limits.max_report_bytes = xml.len() as u64;
    let found = same_both_ways(&path, &limits);
    assert!(matches!(&found[..], [Found::Dmarc { .. }]), "{found:?}");
}

#[test]
fn a_gzip_past_the_limit_is_too_large_even_when_its_xml_fails_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Broken XML at the start, then far more than the limit: the in-memory walker inflates first, and
    // so must the stream.
    let mut xml = b"<feedback><oops></feedback>".to_vec();
    xml.extend(std::iter::repeat_n(b' ', 1 << 20));
    let path = file(dir.path(), "broken.xml.gz", &gzip(&xml));
    let mut limits = Limits::default();
    limits.max_report_bytes = 256 * 1024;
    let found = same_both_ways(&path, &limits);
    assert_eq!(only_error(&found).0, Code::TooLarge);
    limits.max_report_bytes = 2 << 20;
    let found = same_both_ways(&path, &limits);
    assert_eq!(only_error(&found).0, Code::Malformed);
}

#[test]
fn a_truncated_gzip_is_the_same_malformed_error_wherever_it_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gz = gzip(&small_report());
    for cut in [
        12,
        30,
        gz.len() / 2,
        gz.len() - 9,
        gz.len() - 4,
        gz.len() - 1,
    ] {
        let path = file(dir.path(), &format!("cut-{cut}.xml.gz"), &gz[..cut]);
        let found = same_both_ways(&path, &Limits::default());
        let (code, message) = only_error(&found);
        assert_eq!(code, Code::Malformed, "cut at {cut}");
        assert!(
            message.starts_with("the gzip stream"),
            "cut at {cut}: {message}"
        );
    }
    // A wrong checksum in the trailer.
    let mut bad = gz.clone();
    let at = bad.len() - 6;
    bad[at] ^= 0xff;
    let path = file(dir.path(), "crc.xml.gz", &bad);
    assert_eq!(
        only_error(&same_both_ways(&path, &Limits::default())).0,
        Code::Malformed
    );
    // Bytes after the member are ignored, as the in-memory walker does (a stray CRLF).
    let mut trailing = gz;
    trailing.extend_from_slice(b"\r\n");
    let path = file(dir.path(), "crlf.xml.gz", &trailing);
    let found = same_both_ways(&path, &Limits::default());
    assert!(matches!(&found[..], [Found::Dmarc { .. }]), "{found:?}");
}

#[test]
fn broken_and_other_documents_read_the_same_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = small_report();
    let cut = &report[..report.len() / 2];
    let mut bom = b"\xef\xbb\xbf \n".to_vec();
    bom.extend_from_slice(&report);
    let doctype = b"<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY a \"b\">]><feedback/>";
    let whitespace = vec![b' '; 20_000];
    let mut late = whitespace.clone();
    late.extend_from_slice(&report);
    let cases: &[(&str, &[u8])] = &[
        ("report.xml", &report),
        ("bom.xml", &bom),
        ("cut.xml", cut),
        ("doctype.xml", doctype),
        ("not-dmarc.xml", b"<html><body>hello</body></html>"),
        ("empty.xml", b""),
        ("spaces.xml", &whitespace),
        ("late.xml", &late),
        ("tls.json", br#"{"organization-name": "x"}"#),
        ("junk.bin", b"\x00\x01\x02"),
    ];
    for (name, bytes) in cases {
        same_both_ways(&file(dir.path(), name, bytes), &Limits::default());
        let gz_name = format!("{name}.gz");
        same_both_ways(
            &file(dir.path(), &gz_name, &gzip(bytes)),
            &Limits::default(),
        );
        same_both_ways(
            &file(dir.path(), &format!("{name}.gz.gz"), &gzip(&gzip(bytes))),
            &Limits::default(),
        );
    }
    // The file limit (walk_path's own) and the nesting limits still apply first.
    let path = file(dir.path(), "r.xml.gz", &gzip(&report));
    let mut limits = Limits::default();
    limits.max_input_bytes = 100;
    let found = walk_path(&path, &limits).expect("walk_path");
    let (code, message) = only_error(&found);
    assert_eq!(code, Code::TooLarge);
    assert!(message.contains("(max_input_bytes)"), "{message}");
    let mut limits = Limits::default();
    limits.max_depth = 0;
    assert_eq!(
        only_error(&same_both_ways(&path, &limits)).0,
        Code::TooLarge
    );
    let mut limits = Limits::default();
    limits.max_parts = 1;
    same_both_ways(&path, &limits);
    // With keep_raw the document is kept, so it is read whole: still the same answer.
    let mut limits = Limits::default();
    limits.keep_raw = true;
    let found = same_both_ways(&path, &limits);
    assert!(matches!(&found[..], [Found::Dmarc { raw: Some(raw), .. }] if *raw == report));
}

/// The peak resident memory of this process so far (Linux `VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_gzip_of_200k_records_is_read_whole_without_holding_it() {
    const RECORDS: usize = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("200k.xml.gz");
    let mut gz = GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create")),
        Compression::fast(),
    );
    let mut counted = CountingWriter(&mut gz, 0);
    write_report(&mut counted, RECORDS);
    let inflated = counted.1;
    gz.finish().expect("gzip").flush().expect("flush");
    // Past 60 MB inflated: holding it would show in the peak below.
    assert!(inflated > 60_000_000, "{inflated}");

    let mut limits = Limits::default();
    limits.dmarc_mode = Mode::Summary;
    let before = peak_rss();
    let found = walk_path(&path, &limits).expect("walk_path");
    let after = peak_rss();
    let [Found::Dmarc { report, .. }] = &found[..] else {
        panic!("{found:?}");
    };
    assert_eq!(report.rows, RECORDS as u64);
    let messages: u64 = (0..RECORDS).map(|i| (i % 7 + 1) as u64).sum();
    assert_eq!(report.messages, messages);
    let quarantined: u64 = (0..RECORDS)
        .filter(|i| i % 3 == 0)
        .map(|i| (i % 7 + 1) as u64)
        .sum();
    assert_eq!(report.dispositions.quarantine, quarantined);
    assert_eq!(report.dispositions.none, messages - quarantined);
    assert_eq!(report.dkim_pass, messages - quarantined);
    assert_eq!(report.spf_pass, messages);
    if let (Some(before), Some(after)) = (before, after) {
        // The inflated document is over 60 MB; the stream holds a few buffers.
        assert!(
            after.saturating_sub(before) < 24 << 20,
            "peak memory grew by {} bytes while streaming",
            after - before
        );
    }
}

#[test]
fn a_document_past_64_mib_is_read_when_max_report_bytes_allows_it() {
    const RECORDS: usize = 230_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("230k.xml.gz");
    let mut gz = GzEncoder::new(
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create")),
        Compression::fast(),
    );
    let mut counted = CountingWriter(&mut gz, 0);
    write_report(&mut counted, RECORDS);
    let inflated = counted.1;
    gz.finish().expect("gzip").flush().expect("flush");
    assert!(inflated > 64 << 20, "{inflated}");

    let mut limits = Limits::default();
    limits.dmarc_mode = Mode::Summary;
    let found = walk_path(&path, &limits).expect("walk_path");
    let (code, message) = only_error(&found);
    assert_eq!(code, Code::TooLarge);
    assert!(message.contains("(--max-report-bytes)"), "{message}");

    let mut limits = Limits::with_max_report_bytes(128 << 20);
    limits.dmarc_mode = Mode::Summary;
    let found = walk_path(&path, &limits).expect("walk_path");
    let [Found::Dmarc { report, .. }] = &found[..] else {
        panic!("{found:?}");
    };
    assert_eq!(report.rows, RECORDS as u64);
}

struct CountingWriter<'a, W>(&'a mut W, u64);

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[test]
fn invalid_utf8_reads_the_same_both_ways_wherever_it_falls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = small_report();
    // Inside the org_name text, pushed across the 8 KiB first look and the 64 KiB read buffers.
    let at = report
        .windows(10)
        .position(|w| w == b"<org_name>")
        .expect("org_name")
        + 10;
    for pad in [0, 8_000, 8_180, 8_190, 65_500, 65_530] {
        let mut xml = report[..at].to_vec();
        xml.extend(std::iter::repeat_n(b'a', pad));
        xml.extend_from_slice(b"\xff\xfe");
        xml.extend_from_slice(&report[at..]);
        for (name, bytes) in [("bad.xml", xml.clone()), ("bad.xml.gz", gzip(&xml))] {
            let path = file(dir.path(), &format!("{pad}-{name}"), &bytes);
            let found = same_both_ways(&path, &Limits::default());
            assert_eq!(only_error(&found).0, Code::Malformed, "{pad} {name}");
        }
    }
}
