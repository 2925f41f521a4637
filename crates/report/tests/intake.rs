//! `mtasts_report::intake` on a real SQLite database (a temporary file): inputs stored once,
//! reports once, errors with their input, the whole samples folder, and reparse.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use mtasts_report::intake::{Intake, input_files, read_input};
use mtasts_report::{Found, Limits, walk_path};
use mtasts_store::reports::{Content, Filter, Inserted, NewError, NewInput, NewReport, ReportDb};

const TLS: &[u8] = br#"{"organization-name": "Example Org", "report-id": "r-1",
  "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
  "contact-info": "tls@example.net",
  "policies": [{"policy": {"policy-type": "sts", "policy-domain": "example.com",
                           "policy-string": ["version: STSv1", "mode: testing"]},
                "summary": {"total-successful-session-count": 5, "total-failure-session-count": 1},
                "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 1}]}]}"#;

async fn open(dir: &Path) -> ReportDb {
    let url = format!("sqlite:{}", dir.join("serve.db").display());
    ReportDb::open(&url).await.unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_stored_once_however_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let intake = Intake::new(db.clone(), Limits::default());

    let first = intake.input(TLS, "a.json", 1_000).await.unwrap();
    assert_eq!((first.new, first.duplicate), (1, 0));
    assert!(first.input_new && first.errors.is_empty());
    let [Inserted::New(id)] = first.reports[..] else {
        panic!("{first:?}")
    };
    // The same bytes again (a mailbox imported twice).
    let again = intake.input(TLS, "a.json", 2_000).await.unwrap();
    assert_eq!((again.new, again.duplicate, again.input_new), (0, 1, false));
    // The same report in another container (by mail as gzip).
    let packed = gzip(TLS);
    let other = intake.input(&packed, "b.json.gz", 3_000).await.unwrap();
    assert_eq!((other.new, other.duplicate, other.input_new), (0, 1, true));
    assert_eq!(other.reports, [Inserted::Duplicate(id)]);

    let stored = db.get(id).await.unwrap().unwrap();
    // The document is kept compressed, and reads back as found.
    assert_eq!(&stored.raw[..2], b"\x1f\x8b");
    let document =
        mtasts_report::intake::stored_document(&stored, &mtasts_report::Limits::default()).unwrap();
    assert_eq!(document, TLS);
    assert_eq!(stored.row.duplicates, 2);
    assert_eq!(stored.row.received_at, 1_000);
    let json: serde_json::Value = serde_json::from_str(&stored.normalized).unwrap();
    assert_eq!(json["kind"], "tlsrpt");
    assert_eq!(json["source"], "a.json");
    assert_eq!(json["report_id"], "r-1");
    assert_eq!(
        json["policies"][0]["failures"][0]["result"],
        "certificate-expired"
    );
    // The input is kept compressed and reads back as received.
    let ids = db.input_ids().await.unwrap();
    assert_eq!(ids.len(), 2);
    let input = db.input(ids[0]).await.unwrap().unwrap();
    let mut back = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&input.gzip[..]),
        &mut back,
    )
    .unwrap();
    assert_eq!(back, TLS);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_stored_with_their_input_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let intake = Intake::new(db.clone(), Limits::default());
    let out = intake
        .input(b"<html>no</html>", "junk.xml", 5)
        .await
        .unwrap();
    assert_eq!((out.new, out.duplicate), (0, 0));
    assert_eq!(out.errors.len(), 1);
    let again = intake
        .input(b"<html>no</html>", "junk.xml", 6)
        .await
        .unwrap();
    assert_eq!(again.errors, out.errors);
    let stored = db.errors(&Filter::default(), 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].source, "junk.xml");
    assert_eq!(stored[0].code, out.errors[0].code.as_str());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_is_stored_and_a_second_import_is_all_duplicates() {
    let Some(samples) = mtasts_testkit::services::samples_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let intake = Intake::new(db.clone(), Limits::default());
    let limits = intake.limits().clone();
    // What the walker finds, for comparison.
    let found = walk_path(&samples, &limits).unwrap();
    let reports = found
        .iter()
        .filter(|f| !matches!(f, Found::Error(_)))
        .count() as u64;
    let errors = found.len() as u64 - reports;
    assert!(reports > 50, "{reports}");

    let (files, listing_errors) = input_files(&samples, &limits).unwrap();
    assert!(listing_errors.is_empty());
    let import = |round: u8| {
        let intake = intake.clone();
        let files = files.clone();
        let limits = limits.clone();
        async move {
            let (mut new, mut duplicate, mut errors) = (0, 0, 0);
            for file in &files {
                let source = file.display().to_string();
                let f = std::fs::File::open(file).unwrap();
                let bytes = read_input(f, &source, &limits).unwrap().unwrap();
                let out = intake
                    .input(&bytes, &source, i64::from(round))
                    .await
                    .unwrap();
                new += out.new;
                duplicate += out.duplicate;
                errors += out.errors.len() as u64;
            }
            (new, duplicate, errors)
        }
    };
    let (new, duplicate, errs) = import(1).await;
    assert_eq!(new + duplicate, reports);
    assert_eq!(errs, errors);
    // Every report the walker found is stored once (some samples carry the same report).
    let listed = db.list(&Filter::default(), 100_000).await.unwrap();
    assert_eq!(listed.len() as u64, new);
    let ids: std::collections::BTreeSet<_> = found
        .iter()
        .filter_map(|f| match f {
            Found::TlsRpt { report, .. } => Some(("tlsrpt", report.report_id.clone())),
            Found::Dmarc { report, .. } => Some(("dmarc", report.report_id.clone())),
            _ => None,
        })
        .collect();
    assert!(new >= ids.len() as u64, "{new} < {}", ids.len());

    let (new2, duplicate2, errs2) = import(2).await;
    assert_eq!((new2, duplicate2, errs2), (0, reports, errors));
    // Errors were stored once.
    assert_eq!(
        db.errors(&Filter::default(), 100_000).await.unwrap().len() as u64,
        errors
    );

    // Reading everything again with the same version changes nothing.
    let r = intake.reparse().await.unwrap();
    // Inputs are stored once per content (two sample files hold the same bytes).
    let contents: std::collections::HashSet<Vec<u8>> =
        files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    // An empty input has nothing to read again: it is left as it is, with its one error.
    let empty = contents.iter().filter(|c| c.is_empty()).count() as u64;
    assert_eq!(r.inputs, contents.len() as u64 - empty);
    assert_eq!(r.reports, new);
    assert_eq!((r.new, r.updated), (0, 0));
    assert_eq!(
        (r.errors_before, r.errors_after),
        (errors - empty, errors - empty)
    );
    assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reparse_reads_what_an_older_version_could_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    // An older version stored this input with an error instead of its report.
    let packed = gzip(TLS);
    db.store(
        &NewInput {
            sha256: [7; 32],
            source: "old.json",
            received_at: 10,
            size: TLS.len() as u64,
            gzip: &packed,
        },
        &[],
        &[NewError {
            source: "old.json",
            code: "invalid",
            message: "an older reader refused it",
        }],
    )
    .await
    .unwrap();
    // And stored this report with a contract object that has changed since.
    let dmarc = minimal_dmarc();
    let report =
        mtasts_proto::dmarc::parse(dmarc.as_bytes(), mtasts_proto::dmarc::Mode::Full).unwrap();
    let stored = db
        .store(
            &NewInput {
                sha256: [8; 32],
                source: "d.xml",
                received_at: 11,
                size: 1,
                gzip: &gzip(dmarc.as_bytes()),
            },
            &[NewReport {
                source: "d.xml",
                content: Content::Dmarc(&report),
                normalized: "{\"old\":true}",
                raw: &gzip(dmarc.as_bytes()),
            }],
            &[],
        )
        .await
        .unwrap();
    let Inserted::New(dmarc_id) = stored.reports[0] else {
        panic!()
    };

    let intake = Intake::new(db.clone(), Limits::default());
    let r = intake.reparse().await.unwrap();
    assert_eq!((r.inputs, r.new), (2, 1));
    assert_eq!((r.errors_before, r.errors_after), (1, 0));
    assert_eq!((r.reports, r.updated), (2, 1));
    assert!(db.errors(&Filter::default(), 10).await.unwrap().is_empty());
    let listed = db.list(&Filter::default(), 10).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|r| r.report_id == "r-1" && r.source == "old.json")
    );
    let updated = db.get(dmarc_id).await.unwrap().unwrap();
    let json: serde_json::Value = serde_json::from_str(&updated.normalized).unwrap();
    assert_eq!(json["kind"], "dmarc");
    // Once more: nothing left to do.
    let r = intake.reparse().await.unwrap();
    assert_eq!((r.new, r.updated, r.errors_after), (0, 0, 0));
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_before_fetching_keeps_its_error_through_reparse() {
    use mtasts_report::imap::MessageSink;
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path()).await;
    let intake = Intake::new(db.clone(), Limits::default());
    let error = mtasts_report::FoundError::new(
        "imaps://u@h/INBOX#1.7",
        mtasts_report::Code::TooLarge,
        "the message is 90 MiB, above --max-message-bytes",
    );
    intake.refuse(&error, 5).await.unwrap();
    let r = intake.reparse().await.unwrap();
    // Nothing was kept to read again: the error is not replaced by `unrecognized`.
    assert_eq!((r.inputs, r.new), (0, 0));
    let errors = db.errors(&Filter::default(), 10).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (&*errors[0].source, &*errors[0].code),
        ("imaps://u@h/INBOX#1.7", "too-large")
    );
}

fn minimal_dmarc() -> String {
    "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>o.example</org_name>\
     <email>d@o.example</email><report_id>m-1</report_id><date_range><begin>1700000000</begin>\
     <end>1700086399</end></date_range></report_metadata><policy_published><domain>example.com\
     </domain><p>none</p></policy_published><record><row><source_ip>192.0.2.1</source_ip>\
     <count>3</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim>\
     <spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from>\
     </identifiers><auth_results><spf><domain>example.com</domain><result>fail</result></spf>\
     </auth_results></record></feedback>"
        .to_owned()
}

#[test]
fn directories_are_listed_in_order_within_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["b", "a", "sub/c"] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }
    let (files, errors) = input_files(dir.path(), &Limits::default()).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(names, ["a", "b", "sub/c"]);
    assert!(errors.is_empty());
    let mut limits = Limits::default();
    limits.max_files = 2;
    let (files, errors) = input_files(dir.path(), &limits).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(errors[0].code.as_str(), "too-large");
    let mut limits = Limits::default();
    limits.max_input_bytes = 3;
    let too_big = read_input(&b"four"[..], "x", &limits).unwrap().unwrap_err();
    assert_eq!(too_big.code.as_str(), "too-large");
    assert_eq!(
        read_input(&b"abc"[..], "x", &limits).unwrap().unwrap(),
        b"abc"
    );
    assert!(input_files(&dir.path().join("missing"), &limits).is_err());
}
