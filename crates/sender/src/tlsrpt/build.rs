//! Building one UTC day's reports: every (recipient domain, TLSRPT record) with results that
//! day, read from the store in pages, becomes one RFC 8460 report
//! (`mtasts_proto::tlsrpt::outgoing::build_report`), gzip-compressed, and — when storing —
//! is claimed in the store together with one outbox entry per `rua` URI, in one transaction
//! (so a crash between building and delivering loses nothing, and a fleet sharing one
//! database builds each report once).
//!
//! The `rua` is parsed with the checker's rules ([`TlsRptRecord::parse`]); a record that does
//! not parse gets no report (logged, counted in the returned summary) and never stops the day
//! (sys4 tlsrpt-reporter crashed on one, #54).

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;
use mtasts_proto::tlsrpt::outgoing::{
    AggregatedPolicy, ReportMeta, build_report, file_name, report_id,
};
use mtasts_proto::tlsrpt::record::TlsRptRecord;
use mtasts_proto::tlsrpt::session::{FailureKey, PolicyKey};
use mtasts_store::tlsrpt::{
    DayGroup, Inserted, MAX_DESTINATION_BYTES, MAX_DESTINATIONS, NewReport, TlsrptDb, TlsrptDbError,
};

use super::TlsrptError;

/// (domain, record) groups read per page.
pub const PAGE: usize = 1000;

/// One report of a day, as built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltDayReport {
    /// The recipient (policy) domain.
    pub domain: String,
    /// The TLSRPT record whose `rua` it goes to.
    pub record: String,
    /// Its destinations (every `rua` URI, in the record's order, without repeats).
    pub rua: Vec<String>,
    /// Its `report-id`.
    pub report_id: String,
    /// The RFC 8460 §5.1 name of the compressed report (`….json.gz`).
    pub file_name: String,
    /// The same name for the uncompressed JSON (`….json`).
    pub json_file_name: String,
    /// The report JSON.
    pub json: String,
    /// The gzip-compressed JSON.
    pub gz: Vec<u8>,
    /// Failure details left out to keep the JSON under the size limit (summaries stay exact).
    pub details_dropped: usize,
    /// When stored: whether this call stored it or it was built before.
    pub stored: Option<Inserted>,
}

/// What the reports say about their sender.
#[derive(Clone, Debug)]
pub struct Sender {
    /// `organization-name`.
    pub organization: String,
    /// `contact-info`.
    pub contact: String,
    /// The domain of `contact-info`.
    pub submitter: String,
    /// Uncompressed JSON cap.
    pub max_report_bytes: usize,
}

/// When stored reports are to be delivered.
#[derive(Clone, Copy, Debug)]
pub struct StoreAs {
    /// When the first attempt is due.
    pub first_try: i64,
    /// When a destination still failing is given up.
    pub give_up_at: i64,
}

/// Builds every report of `day`; with `store`, claims each in the store with its outbox
/// entries. Groups whose record has no usable `rua` are skipped (logged); a policy or
/// failure key that does not parse is skipped (logged) while the rest of the report is built.
pub async fn build_day(
    db: &TlsrptDb,
    sender: &Sender,
    day: i64,
    store: Option<StoreAs>,
) -> Result<Vec<BuiltDayReport>, TlsrptError> {
    let mut out = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = db
            .day_groups(
                day,
                after.as_ref().map(|(d, r)| (d.as_str(), r.as_str())),
                PAGE,
            )
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some((last.domain.clone(), last.record.clone()));
        let full = page.len() == PAGE;
        for group in page {
            let Some(mut built) = build_group(sender, day, &group)? else {
                continue;
            };
            if let Some(when) = store {
                let inserted = match db
                    .insert_report(&NewReport {
                        day,
                        domain: built.domain.clone(),
                        record: built.record.clone(),
                        report_id: built.report_id.clone(),
                        file_name: built.file_name.clone(),
                        json_bytes: built.json.len() as u64,
                        gz: built.gz.clone(),
                        destinations: built.rua.clone(),
                        first_try: when.first_try,
                        give_up_at: when.give_up_at,
                    })
                    .await
                {
                    Ok(inserted) => inserted,
                    // One report the store refuses (a value over its caps) must not keep the
                    // rest of the day from being reported.
                    Err(TlsrptDbError::Invalid(why)) => {
                        tracing::warn!(domain = %built.domain, "TLS report not stored: {why}");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                built.stored = Some(inserted);
            }
            out.push(built);
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

/// The report of one group, or `None` when its record gives it nowhere to go.
pub fn build_group(
    sender: &Sender,
    day: i64,
    group: &DayGroup,
) -> Result<Option<BuiltDayReport>, TlsrptError> {
    let record = match TlsRptRecord::parse(&group.record) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                domain = %group.domain,
                record = %group.record,
                "no TLS report for a TLSRPT record that does not parse: {e}"
            );
            return Ok(None);
        }
    };
    let mut rua: Vec<String> = Vec::new();
    for uri in &record.rua {
        let uri = uri.as_str();
        if uri.len() > MAX_DESTINATION_BYTES || rua.iter().any(|u| u == uri) {
            continue;
        }
        if rua.len() == MAX_DESTINATIONS {
            tracing::warn!(
                domain = %group.domain,
                "a TLSRPT record with more than {MAX_DESTINATIONS} rua URIs: the rest get no report"
            );
            break;
        }
        rua.push(uri.to_owned());
    }
    if rua.is_empty() {
        return Ok(None);
    }
    let mut policies = Vec::with_capacity(group.policies.len());
    for row in &group.policies {
        let policy = match PolicyKey::from_key(&row.policy) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(domain = %group.domain, "skipping a stored policy key that does not parse: {e}");
                continue;
            }
        };
        let mut details = Vec::with_capacity(row.details.len());
        for (key, count) in &row.details {
            match FailureKey::from_key(key) {
                Ok(k) => details.push((k, *count)),
                Err(e) => {
                    tracing::warn!(domain = %group.domain, "skipping a stored failure key that does not parse: {e}");
                }
            }
        }
        policies.push(AggregatedPolicy {
            policy,
            successes: row.successes,
            failures: row.failures,
            details,
        });
    }
    let id = report_id(day, &group.domain, &group.record, &sender.submitter);
    let meta = ReportMeta {
        organization: sender.organization.clone(),
        contact: sender.contact.clone(),
        day,
        domain: group.domain.clone(),
        report_id: id.clone(),
    };
    let built = build_report(&meta, &policies, sender.max_report_bytes)
        .map_err(|e| TlsrptError::Build(format!("{}: {e}", group.domain)))?;
    if built.details_dropped > 0 {
        tracing::warn!(
            domain = %group.domain,
            dropped = built.details_dropped,
            "TLS report over the size limit: the rarest failure details were left out"
        );
    }
    let gz = gzip(built.json.as_bytes()).map_err(|e| TlsrptError::Build(format!("gzip: {e}")))?;
    Ok(Some(BuiltDayReport {
        domain: group.domain.clone(),
        record: group.record.clone(),
        rua,
        file_name: file_name(&sender.submitter, &group.domain, day, &id, true),
        json_file_name: file_name(&sender.submitter, &group.domain, day, &id, false),
        report_id: id,
        json: built.json,
        gz,
        details_dropped: built.details_dropped,
        stored: None,
    }))
}

/// gzip at the default level (RFC 8460 §5.2).
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4 + 64),
        Compression::default(),
    );
    encoder.write_all(bytes)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use mtasts_proto::tlsrpt::report::{PolicyType, TlsReport};
    use mtasts_store::tlsrpt::PolicyRow;

    use super::*;

    const DAY: i64 = 86_400;

    fn sender() -> Sender {
        Sender {
            organization: "Org".into(),
            contact: "tlsrpt@sender.example".into(),
            submitter: "sender.example".into(),
            max_report_bytes: 1 << 20,
        }
    }

    fn group(record: &str, policy: String) -> DayGroup {
        DayGroup {
            domain: "example.com".into(),
            record: record.into(),
            policies: vec![PolicyRow {
                policy,
                successes: 3,
                failures: 0,
                details: Vec::new(),
            }],
        }
    }

    fn sts() -> String {
        PolicyKey {
            policy_type: PolicyType::Sts,
            domain: Some("example.com".into()),
            strings: vec!["version: STSv1".into()],
            mx: vec!["mx.example.com".into()],
        }
        .to_key()
    }

    #[test]
    fn a_record_that_does_not_parse_gets_no_report() {
        // sys4 tlsrpt-reporter #54: a rua without mailto: crashed the whole run.
        let g = group("v=TLSRPTv1; rua=postmaster@example.com", sts());
        assert_eq!(build_group(&sender(), 100 * DAY, &g).unwrap(), None);
    }

    #[test]
    fn every_rua_once_and_a_report_that_parses() {
        let g = group(
            "v=TLSRPTv1; rua=mailto:a@example.com,https://r.example/x,mailto:a@example.com",
            sts(),
        );
        let built = build_group(&sender(), 100 * DAY, &g).unwrap().unwrap();
        assert_eq!(
            built.rua,
            vec!["mailto:a@example.com", "https://r.example/x"]
        );
        assert!(
            built
                .file_name
                .starts_with("sender.example!example.com!8640000!8726399!")
        );
        assert!(built.file_name.ends_with(".json.gz"));
        assert_eq!(
            built.json_file_name,
            built.file_name.trim_end_matches(".gz")
        );
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&built.gz[..]), &mut json)
            .unwrap();
        assert_eq!(json, built.json.as_bytes());
        let report = TlsReport::parse(&json).unwrap();
        assert_eq!(report.report_id, built.report_id);
        assert_eq!(report.policies[0].success, 3);
    }

    #[test]
    fn a_corrupt_policy_key_is_skipped_not_fatal() {
        let mut g = group("v=TLSRPTv1; rua=mailto:a@example.com", sts());
        g.policies.push(PolicyRow {
            policy: "not a key".into(),
            successes: 1,
            failures: 0,
            details: Vec::new(),
        });
        let built = build_group(&sender(), 100 * DAY, &g).unwrap().unwrap();
        let report = TlsReport::parse(built.json.as_bytes()).unwrap();
        assert_eq!(report.policies.len(), 1);
    }
}
