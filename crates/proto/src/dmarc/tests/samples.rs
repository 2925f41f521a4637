//! Every DMARC aggregate XML sample under `shared/samples/dmarc/` (never copied into the repository) reads,
//! or fails with the error its README says it is broken for.

use std::path::{Path, PathBuf};

use super::super::*;

/// The DMARC samples, or `None` (after the testkit's one skip rule) when absent.
fn samples_dir() -> Option<PathBuf> {
    mtasts_testkit::services::samples_dir().map(|dir| dir.join("dmarc"))
}

/// Samples broken on purpose (samples/README.md), with the error class expected.
const BROKEN: &[(&str, &str)] = &[
    // 0-byte file.
    ("parsedmarc/empty.xml", "malformed"),
    // cp1252 byte 0x91 in a UTF-8 document.
    ("parsedmarc/invalid_utf_8.xml", "malformed"),
    // Unescaped `<` in element text.
    ("parsedmarc/invalid_xml.xml", "malformed"),
    // An unclosed <xs:schema> start tag wraps <feedback>: not well-formed, and its root is not <feedback>;
    // recovering it would be a guess.
    (
        "parsedmarc/ikea.com!example.de!1538690400!1538776800.xml",
        "invalid",
    ),
];

fn read(dir: &Path, rel: &str) -> Vec<u8> {
    std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

#[test]
fn every_dmarc_xml_sample_parses_or_is_the_expected_error() {
    let Some(dir) = samples_dir() else { return };
    let mut seen = 0;
    for source in [
        "parsedmarc",
        "mox",
        "dmarc-report-viewer",
        "mail-auth",
        "ietf-aggregate-draft",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(source))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".xml") {
                continue;
            }
            let rel = format!("{source}/{name}");
            let bytes = read(&dir, &rel);
            let expected = BROKEN.iter().find(|(f, _)| *f == rel).map(|(_, c)| *c);
            if let (Ok(summary), Ok(mut all)) =
                (parse(&bytes, Mode::Summary), parse(&bytes, Mode::Full))
            {
                all.records.clear();
                assert_eq!(summary, all, "{rel}: summary and full mode disagree");
            }
            for mode in [Mode::Summary, Mode::Full] {
                match (parse(&bytes, mode), expected) {
                    (Ok(r), None) => {
                        assert!(r.rows > 0, "{rel}: no records");
                        if mode == Mode::Full {
                            assert_eq!(r.records.len() as u64, r.rows, "{rel}");
                        }
                    }
                    (Err(e), Some(code)) => assert_eq!(e.code(), code, "{rel}: {e}"),
                    (Ok(_), Some(code)) => panic!("{rel}: parsed, expected {code}"),
                    (Err(e), None) => panic!("{rel}: {e}"),
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 30, "only {seen} XML samples found");
}

#[test]
fn large_sample_counts_its_records() {
    let Some(dir) = samples_dir() else { return };
    let r = parse(
        &read(
            &dir,
            "parsedmarc/!large-example.com!1711897200!1711983600.xml",
        ),
        Mode::Summary,
    )
    .unwrap();
    assert_eq!(r.rows, 2286);
    assert_eq!(r.organization, None);
    assert!(
        r.notes
            .iter()
            .any(|n| n.code == NoteCode::MissingOrganization)
    );
}

#[test]
fn upper_cased_pass_sample_is_lowercased() {
    let Some(dir) = samples_dir() else { return };
    let r = parse(
        &read(&dir, "parsedmarc/report_with_upper_cased_pass.xml"),
        Mode::Full,
    )
    .unwrap();
    assert_eq!(r.organization.as_deref(), Some("example.com"));
    assert!(r.records.iter().all(|rec| {
        rec.dkim
            .as_deref()
            .is_none_or(|w| w == w.to_ascii_lowercase())
    }));
    assert!(r.notes.iter().any(|n| n.code == NoteCode::UppercaseWord));
}

#[test]
fn mixed_content_sample_notes_stray_text() {
    let Some(dir) = samples_dir() else { return };
    let r = parse(
        &read(
            &dir,
            "parsedmarc/example.net!example.com!1529366400!1529452799.xml",
        ),
        Mode::Full,
    )
    .unwrap();
    assert!(
        r.notes.iter().any(|n| n.code == NoteCode::StrayText),
        "{:?}",
        r.notes
    );
}

#[test]
fn rfc9990_sample_reads_namespaced_fields() {
    let Some(dir) = samples_dir() else { return };
    let r = parse(
        &read(&dir, "ietf-aggregate-draft/dmarc-xml-0.2.xml"),
        Mode::Full,
    )
    .unwrap();
    assert!(r.policy.testing.is_some());
    assert!(r.policy.np.is_some());
}

#[test]
fn trailing_space_in_end_sample_reads() {
    let Some(dir) = samples_dir() else { return };
    let r = parse(&read(&dir, "dmarc-report-viewer/yahoo.xml"), Mode::Full).unwrap();
    assert!(r.end >= r.begin);
}

/// A string field of mail-auth's expected JSON, `None` for null, absent or empty (as we read empty text).
fn json_str<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
}

/// mail-auth ships its own parse of `001–005.xml` as JSON: ours must agree on every value both keep
/// (theirs capitalises enum words, so words are compared ignoring case).
#[test]
fn mail_auth_samples_agree_with_their_expected_json() {
    let Some(dir) = samples_dir() else { return };
    for n in ["001", "002", "003", "004", "005"] {
        let r = parse(&read(&dir, &format!("mail-auth/{n}.xml")), Mode::Full).unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&read(&dir, &format!("mail-auth/{n}.json"))).unwrap();
        let meta = &json["report_metadata"];
        assert_eq!(r.organization.as_deref(), json_str(meta, "org_name"), "{n}");
        assert_eq!(
            Some(r.report_id.as_str()),
            json_str(meta, "report_id"),
            "{n}"
        );
        assert_eq!(Some(r.begin), meta["date_range"]["begin"].as_u64(), "{n}");
        assert_eq!(Some(r.end), meta["date_range"]["end"].as_u64(), "{n}");
        assert_eq!(
            r.policy.domain.as_deref(),
            json_str(&json["policy_published"], "domain"),
            "{n}"
        );
        let records = json["record"].as_array().unwrap();
        assert_eq!(r.records.len(), records.len(), "{n}");
        for (ours, theirs) in r.records.iter().zip(records) {
            let row = &theirs["row"];
            assert_eq!(
                Some(ours.source_ip.as_str()),
                json_str(row, "source_ip"),
                "{n}"
            );
            assert_eq!(Some(ours.count), row["count"].as_u64(), "{n}");
            let evaluated = &row["policy_evaluated"];
            let disposition = json_str(evaluated, "disposition").unwrap();
            assert!(
                ours.disposition.as_str().eq_ignore_ascii_case(disposition),
                "{n}"
            );
            let ids = &theirs["identifiers"];
            assert_eq!(
                ours.header_from.as_deref(),
                json_str(ids, "header_from"),
                "{n}"
            );
            assert_eq!(
                ours.envelope_from.as_deref(),
                json_str(ids, "envelope_from"),
                "{n}"
            );
            assert_eq!(
                ours.envelope_to.as_deref(),
                json_str(ids, "envelope_to"),
                "{n}"
            );
            let dkim = theirs["auth_results"]["dkim"].as_array().unwrap();
            assert_eq!(ours.auth_dkim.len(), dkim.len(), "{n}");
            for (a, b) in ours.auth_dkim.iter().zip(dkim) {
                assert_eq!(a.domain.as_deref(), json_str(b, "domain"), "{n}");
                assert_eq!(a.selector.as_deref(), json_str(b, "selector"), "{n}");
            }
            let spf = theirs["auth_results"]["spf"].as_array().unwrap();
            assert_eq!(ours.auth_spf.len(), spf.len(), "{n}");
            for (a, b) in ours.auth_spf.iter().zip(spf) {
                assert_eq!(a.domain.as_deref(), json_str(b, "domain"), "{n}");
                let result = json_str(b, "result").unwrap();
                assert!(
                    a.result
                        .as_deref()
                        .is_some_and(|w| w.eq_ignore_ascii_case(result)),
                    "{n}"
                );
            }
        }
    }
}
