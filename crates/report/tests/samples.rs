//! Every sample under `shared/samples` walked through the container layer: each file gives exactly the
//! reports and errors listed here (kind, source label, error code).

use mtasts_report::{Found, Limits, walk};

/// (source label, what was found there): `tlsrpt`, `dmarc`, or `error CODE`.
const EXPECTED: &[(&str, &str)] = &[
    ("dmarc/dmarc-report-viewer/acme.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/aol.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/gmxnet.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/google.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/hardfail.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/mailru.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/outlook.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/solamora.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/webde.xml", "dmarc"),
    ("dmarc/dmarc-report-viewer/yahoo.xml", "dmarc"),
    ("dmarc/ietf-aggregate-draft/dmarc-xml-0.2.xml", "dmarc"),
    (
        "dmarc/ietf-aggregate-draft/dmarc-xml-0.2.xsd",
        "error invalid",
    ),
    ("dmarc/ietf-aggregate-draft/dmarc-xmlalt-0.2.xml", "dmarc"),
    ("dmarc/mail-auth/001.json", "error invalid"),
    ("dmarc/mail-auth/001.xml", "dmarc"),
    ("dmarc/mail-auth/002.json", "error invalid"),
    ("dmarc/mail-auth/002.xml", "dmarc"),
    ("dmarc/mail-auth/003.json", "error invalid"),
    ("dmarc/mail-auth/003.xml", "dmarc"),
    ("dmarc/mail-auth/004.json", "error invalid"),
    ("dmarc/mail-auth/004.xml", "dmarc"),
    ("dmarc/mail-auth/005.json", "error invalid"),
    ("dmarc/mail-auth/005.xml", "dmarc"),
    ("dmarc/mail-auth/100.eml#0", "dmarc"),
    ("dmarc/mail-auth/100.json", "error invalid"),
    ("dmarc/mail-auth/101.eml#2", "dmarc"),
    ("dmarc/mail-auth/101.json", "error invalid"),
    ("dmarc/mail-auth/102.eml#2", "dmarc"),
    ("dmarc/mail-auth/102.json", "error invalid"),
    ("dmarc/mail-auth/103.eml#5", "dmarc"),
    ("dmarc/mail-auth/103.json", "error invalid"),
    ("dmarc/mail-auth/104.eml#2", "dmarc"),
    ("dmarc/mail-auth/104.json", "error invalid"),
    ("dmarc/mox/google.eml#0", "dmarc"),
    ("dmarc/mox/mailru.eml#2", "dmarc"),
    ("dmarc/mox/outlook.eml#5", "dmarc"),
    ("dmarc/mox/xs4all.eml#2", "dmarc"),
    ("dmarc/mox/yahoo.eml#2", "dmarc"),
    (
        "dmarc/parsedmarc/!example.com!1538204542!1538463818.xml",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/!large-example.com!1711897200!1711983600.xml",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml#2#0",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/addisonfoods.com!example.com!1536105600!1536191999.xml",
        "dmarc",
    ),
    ("dmarc/parsedmarc/changed-input.xml", "dmarc"),
    ("dmarc/parsedmarc/empty.xml", "error unrecognized"),
    ("dmarc/parsedmarc/empty_reason.xml", "dmarc"),
    (
        "dmarc/parsedmarc/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip#0",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/example.net!example.com!1529366400!1529452799.xml",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/ikea.com!example.de!1538690400!1538776800.xml",
        "error invalid",
    ),
    ("dmarc/parsedmarc/invalid_utf_8.xml", "error malformed"),
    ("dmarc/parsedmarc/invalid_xml.xml", "error malformed"),
    ("dmarc/parsedmarc/mimecast-weird-gzip.eml", "dmarc"),
    ("dmarc/parsedmarc/nice-input.xml", "dmarc"),
    ("dmarc/parsedmarc/nice-input.xml.gz", "dmarc"),
    ("dmarc/parsedmarc/nice-input.xml.zip#0", "dmarc"),
    ("dmarc/parsedmarc/old_draft_from_wiki.xml", "dmarc"),
    (
        "dmarc/parsedmarc/protection.outlook.com!example.com!1711756800!1711843200.xml",
        "dmarc",
    ),
    ("dmarc/parsedmarc/report_with_upper_cased_pass.xml", "dmarc"),
    (
        "dmarc/parsedmarc/rfc9990-example.net!example.com!1700000000!1700086399.xml",
        "dmarc",
    ),
    ("dmarc/parsedmarc/rfc9990-sample.xml", "dmarc"),
    ("dmarc/parsedmarc/twilight.eml#1#0", "dmarc"),
    (
        "dmarc/parsedmarc/usssa.com!example.com!1538784000!1538870399.xml",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc/veeam.com!example.com!1530133200!1530219600.xml",
        "dmarc",
    ),
    (
        "dmarc/parsedmarc-failure/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml",
        "error unrecognized",
    ),
    (
        "dmarc/parsedmarc-failure/[Netease DMARC Failure Report] Rent Reminder.eml",
        "error unrecognized",
    ),
    (
        "dmarc/parsedmarc-failure/dmarc_ruf_report_linkedin.crlf.eml#0",
        "error unrecognized",
    ),
    (
        "dmarc/parsedmarc-failure/dmarc_ruf_report_linkedin.eml#0",
        "error unrecognized",
    ),
    (
        "dmarc/parsedmarc-failure/exim_plain_text_only_no_arf_part.eml",
        "error unrecognized",
    ),
    ("tlsrpt/dmarc-report-viewer/google.json", "tlsrpt"),
    ("tlsrpt/dmarc-report-viewer/microsoft.json", "tlsrpt"),
    ("tlsrpt/dmarc-report-viewer/no-contact.json", "tlsrpt"),
    ("tlsrpt/dmarc-report-viewer/no-policy.json", "tlsrpt"),
    ("tlsrpt/dmarc-report-viewer/no_ip_and_mx.json", "tlsrpt"),
    ("tlsrpt/dmarc-report-viewer/rfc-example.json", "tlsrpt"),
    ("tlsrpt/mail-auth/rpt01.eml#2", "tlsrpt"),
    ("tlsrpt/mail-auth/rpt01.json", "tlsrpt"),
    ("tlsrpt/mail-auth/rpt02.eml#2", "tlsrpt"),
    ("tlsrpt/mail-auth/rpt02.json", "tlsrpt"),
    ("tlsrpt/mail-auth/rpt03.json", "tlsrpt"),
    ("tlsrpt/mox/example.eml#2", "tlsrpt"),
    ("tlsrpt/mox/microsoft.eml#2", "tlsrpt"),
    ("tlsrpt/mta-sts-exporter/google.json", "tlsrpt"),
    ("tlsrpt/mta-sts-exporter/microsoft-2.json", "tlsrpt"),
    ("tlsrpt/mta-sts-exporter/microsoft.json", "tlsrpt"),
    ("tlsrpt/mta-sts-exporter/rfc-errata-6241.json", "tlsrpt"),
    ("tlsrpt/mta-sts-exporter/rfc.json", "tlsrpt"),
    (
        "tlsrpt/parsedmarc/google.com_smtp_tls_report.eml#2",
        "tlsrpt",
    ),
    ("tlsrpt/parsedmarc/mail.ru.json", "tlsrpt"),
    ("tlsrpt/parsedmarc/rfc8460.json", "tlsrpt"),
    ("tlsrpt/parsedmarc/smtp_tls.json", "tlsrpt"),
];

/// The sample folder, or `None` (after the testkit's one skip rule) when it is absent.
fn samples() -> Option<std::path::PathBuf> {
    mtasts_testkit::services::samples_dir()
}

fn files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for kind in ["tlsrpt", "dmarc"] {
        for dir in std::fs::read_dir(root.join(kind)).expect("sample folder") {
            for file in std::fs::read_dir(dir.expect("entry").path()).expect("sample folder") {
                out.push(file.expect("entry").path());
            }
        }
    }
    out.sort();
    out
}

/// Every sample walked with `limits`: (its name below the folder, what was found).
fn walk_all(root: &std::path::Path, limits: &Limits) -> Vec<(String, Vec<Found>)> {
    files(root)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read sample");
            let name = path
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            let found = walk(&bytes, &name, limits);
            (name, found)
        })
        .collect()
}

fn describe(found: &Found) -> String {
    match found {
        Found::TlsRpt { .. } => "tlsrpt".to_owned(),
        Found::Dmarc { .. } => "dmarc".to_owned(),
        Found::Error(e) => format!("error {}", e.code.as_str()),
        _ => "other".to_owned(),
    }
}

#[test]
fn every_sample_gives_the_expected_reports_and_errors() {
    let Some(root) = samples() else { return };
    let got: Vec<(String, String)> = walk_all(&root, &Limits::default())
        .iter()
        .flat_map(|(_, found)| found.iter().map(|f| (f.source().to_owned(), describe(f))))
        .collect();
    let expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn summary_mode_reads_the_same_samples() {
    let Some(root) = samples() else { return };
    let mut limits = Limits::default();
    limits.dmarc_mode = mtasts_proto::dmarc::Mode::Summary;
    let full = walk_all(&root, &Limits::default());
    let summary = walk_all(&root, &limits);
    let kinds = |v: &[Found]| v.iter().map(describe).collect::<Vec<_>>();
    for ((name, full), (_, summary)) in full.iter().zip(&summary) {
        assert_eq!(kinds(full), kinds(summary), "{name}");
    }
}

#[test]
fn the_google_tls_report_mail_reads_its_gzip_attachment() {
    let Some(root) = samples() else { return };
    let bytes =
        std::fs::read(root.join("tlsrpt/parsedmarc/google.com_smtp_tls_report.eml")).expect("read");
    let found = walk(&bytes, "google.eml", &Limits::default());
    let [Found::TlsRpt { source, report, .. }] = found.as_slice() else {
        panic!("{found:?}")
    };
    assert_eq!(source, "google.eml#2");
    assert_eq!(report.organization, "Google Inc.");
}

#[test]
fn walk_path_reads_the_whole_sample_folder() {
    let Some(root) = samples() else { return };
    let found = mtasts_report::walk_path(&root, &Limits::default()).expect("walk the samples");
    let prefix = format!("{}/", root.display());
    let mut got: Vec<(String, String)> = found
        .iter()
        .map(|f| {
            (
                f.source()
                    .strip_prefix(&prefix)
                    .unwrap_or(f.source())
                    .to_owned(),
                describe(f),
            )
        })
        .collect();
    // README.md and SHA256SUMS sit at the top of the folder and hold no report.
    got.retain(|(source, _)| source.contains('/'));
    got.sort();
    let mut expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(s, k)| ((*s).to_owned(), (*k).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}
