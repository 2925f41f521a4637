//! The benchmark's inputs, made at run time from the report samples (never copied into the repository):
//! a directory of mixed reports in every container real senders use, with the list of what each holds,
//! and one DMARC report with a great many records.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use mtasts_proto::dmarc::Mode;
use mtasts_report::{Found, Limits, walk};

/// What a generated report must read back as: its kind, organization, id and total count (DMARC:
/// messages; TLS-RPT: successful plus failed sessions over its policies).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Expected {
    pub kind: &'static str,
    pub organization: String,
    pub report_id: String,
    pub count: u64,
}

/// One report document found among the samples, usable as a template.
struct Template {
    kind: &'static str,
    document: Vec<u8>,
    organization: String,
    report_id: String,
    count: u64,
}

fn expected_of(found: &Found) -> Option<(&'static str, String, String, u64)> {
    match found {
        Found::TlsRpt { report, .. } => Some((
            "tlsrpt",
            report.organization.clone(),
            report.report_id.clone(),
            report.policies.iter().map(|p| p.success + p.failure).sum(),
        )),
        Found::Dmarc { report, .. } => Some((
            "dmarc",
            report.organization.clone().unwrap_or_default(),
            report.report_id.clone(),
            report.messages,
        )),
        _ => None,
    }
}

/// `document` with `suffix` written right after the first occurrence of `id`, if there is one.
fn with_id_suffix(document: &[u8], id: &str, suffix: &str) -> Option<Vec<u8>> {
    let at = document
        .windows(id.len())
        .position(|w| w == id.as_bytes())?
        + id.len();
    let mut out = document[..at].to_vec();
    out.extend_from_slice(suffix.as_bytes());
    out.extend_from_slice(&document[at..]);
    Some(out)
}

/// Every report document among the samples (the documents themselves, out of their containers) whose id
/// can be varied: appending to the first occurrence of the id must give a report with that longer id.
fn templates(samples: &Path) -> Vec<Template> {
    let mut files = Vec::new();
    files_below(samples, &mut files);
    let mut limits = Limits::default();
    limits.keep_raw = true;
    limits.dmarc_mode = Mode::Summary;
    let mut out: Vec<Template> = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("read a sample");
        for found in walk(&bytes, "sample", &limits) {
            let raw = match &found {
                Found::TlsRpt { raw: Some(raw), .. } | Found::Dmarc { raw: Some(raw), .. } => raw,
                _ => continue,
            };
            let Some((kind, organization, report_id, count)) = expected_of(&found) else {
                continue;
            };
            if report_id.is_empty() || out.iter().any(|t| t.document == *raw) {
                continue;
            }
            let Some(varied) = with_id_suffix(raw, &report_id, "-bench0") else {
                continue;
            };
            let again = walk(&varied, "check", &limits);
            let ok = matches!(&again[..], [one] if expected_of(one)
                == Some((kind, organization.clone(), format!("{report_id}-bench0"), count)));
            if ok {
                out.push(Template {
                    kind,
                    document: raw.clone(),
                    organization,
                    report_id,
                    count,
                });
            }
        }
    }
    out
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the samples")
        .map(|e| e.expect("a sample entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            files_below(&entry, out);
        } else if entry.is_file() {
            out.push(entry);
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file(name, options).expect("zip entry");
    zip.write_all(bytes).expect("zip");
    zip.finish().expect("zip").into_inner()
}

/// A report mail as senders send it: a text part and the report gzipped and base64-encoded.
fn mail_of(kind: &str, name: &str, index: usize, document: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(gzip(document));
    let (content_type, report_type, media) = if kind == "tlsrpt" {
        (
            "multipart/report; report-type=tlsrpt",
            "TLS",
            "application/tlsrpt+gzip",
        )
    } else {
        ("multipart/mixed", "DMARC aggregate", "application/gzip")
    };
    let mut mail = format!(
        "From: reports@sender.example\r\nTo: reports@example.com\r\nSubject: Report {index}\r\n\
         Date: Mon, 01 Dec 2025 00:00:00 +0000\r\nMessage-ID: <bench-{index}@sender.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: {content_type}; boundary=\"=-bench-{index}\"\r\n\r\n\
         --=-bench-{index}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         This is a {report_type} report.\r\n\r\n--=-bench-{index}\r\n\
         Content-Type: {media}; name=\"{name}.gz\"\r\n\
         Content-Disposition: attachment; filename=\"{name}.gz\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in body.as_bytes().chunks(76) {
        mail.extend_from_slice(line);
        mail.extend_from_slice(b"\r\n");
    }
    mail.extend_from_slice(format!("--=-bench-{index}--\r\n").as_bytes());
    mail
}

/// Writes `count` reports into `dir` (bare, gzip, zip and mail in turn, each with an id of its own) and
/// returns what each must read back as, sorted.
pub(crate) fn mixed(samples: &Path, dir: &Path, count: usize) -> Vec<Expected> {
    let templates = templates(samples);
    assert!(
        templates.len() >= 10,
        "only {} usable report documents in {}",
        templates.len(),
        samples.display()
    );
    std::fs::create_dir_all(dir).expect("create the corpus directory");
    let mut expected = Vec::with_capacity(count);
    for index in 0..count {
        let template = &templates[index % templates.len()];
        let suffix = format!("-bench{index}");
        let document = with_id_suffix(&template.document, &template.report_id, &suffix)
            .expect("the template's id is there");
        let ext = if template.kind == "tlsrpt" {
            "json"
        } else {
            "xml"
        };
        let name = format!("{index:05}-{}.{ext}", template.kind);
        let (file, bytes) = match index % 4 {
            0 => (name.clone(), document),
            1 => (format!("{name}.gz"), gzip(&document)),
            2 => (format!("{name}.zip"), zip_of(&name, &document)),
            _ => (
                format!("{index:05}-{}.eml", template.kind),
                mail_of(template.kind, &name, index, &document),
            ),
        };
        std::fs::write(dir.join(file), bytes).expect("write a corpus file");
        expected.push(Expected {
            kind: template.kind,
            organization: template.organization.clone(),
            report_id: format!("{}{suffix}", template.report_id),
            count: template.count,
        });
    }
    expected.sort();
    expected
}

/// Writes a DMARC report of `records` records to `path` (and, when `gz` is given, the same gzipped), as
/// it is made; returns its expected reading. Records vary their source address, count and results.
pub(crate) fn big_dmarc(path: &Path, gz: Option<&Path>, records: usize) -> Expected {
    let file = BufWriter::new(std::fs::File::create(path).expect("create the big report"));
    let mut plain = Tee {
        first: file,
        second: gz.map(|gz| {
            GzEncoder::new(
                BufWriter::new(std::fs::File::create(gz).expect("create the big gzip")),
                Compression::default(),
            )
        }),
    };
    let report_id = format!("bench-{records}-records");
    write!(
        plain,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>\n\
         <report_metadata>\n    <org_name>bulk-sender.example</org_name>\n\
         <email>dmarc-reports@bulk-sender.example</email>\n    <report_id>{report_id}</report_id>\n\
         <date_range><begin>1764547200</begin><end>1764633599</end></date_range>\n\
         </report_metadata>\n  <policy_published>\n    <domain>example.com</domain><adkim>r</adkim>\
         <aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>\n  </policy_published>\n"
    )
    .expect("write");
    let mut messages = 0u64;
    for i in 0..records {
        let count = (i % 13 + 1) as u64;
        messages += count;
        let (dkim, spf, disposition) = match i % 5 {
            0 => ("fail", "fail", "reject"),
            1 => ("pass", "fail", "none"),
            _ => ("pass", "pass", "none"),
        };
        write!(
            plain,
            "  <record>\n    <row>\n      <source_ip>10.{}.{}.{}</source_ip>\n      <count>{count}</count>\n\
             <policy_evaluated><disposition>{disposition}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated>\n\
             </row>\n    <identifiers><header_from>example.com</header_from></identifiers>\n    <auth_results>\n\
             <dkim><domain>example.com</domain><selector>s{}</selector><result>{dkim}</result></dkim>\n\
             <spf><domain>mail{}.example.net</domain><result>{spf}</result></spf>\n    </auth_results>\n  </record>\n",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255,
            i % 4,
            i % 97,
        )
        .expect("write");
    }
    plain.write_all(b"</feedback>\n").expect("write");
    plain.finish();
    Expected {
        kind: "dmarc",
        organization: "bulk-sender.example".into(),
        report_id,
        count: messages,
    }
}

/// Writes to a file and, optionally, a gzip of the same bytes.
struct Tee {
    first: BufWriter<std::fs::File>,
    second: Option<GzEncoder<BufWriter<std::fs::File>>>,
}

impl Tee {
    fn finish(self) {
        self.first
            .into_inner()
            .expect("flush")
            .sync_all()
            .expect("sync");
        if let Some(gz) = self.second {
            gz.finish()
                .expect("gzip")
                .into_inner()
                .expect("flush")
                .sync_all()
                .expect("sync");
        }
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.first.write_all(buf)?;
        if let Some(gz) = &mut self.second {
            gz.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.first.flush()?;
        if let Some(gz) = &mut self.second {
            gz.flush()?;
        }
        Ok(())
    }
}
