//! A report turned into the rows the database stores: its identity and totals, its counts per
//! domain, its policies, failure details and records. Pure: no database here.

use std::collections::BTreeMap;

use mtasts_proto::dmarc;
use mtasts_proto::tlsrpt::report::{PolicyType, TlsReport};

use super::types::{Content, Kind, NewReport};
use super::{MAX_KEY_BYTES, MAX_TEXT_BYTES, ReportDbError, cut, signed};
use crate::MAX_DOMAIN_BYTES;

/// A report's row and child rows, every count already an `i64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Prepared {
    pub(super) kind: Kind,
    pub(super) organization: String,
    pub(super) report_id: String,
    pub(super) begin: i64,
    pub(super) end: i64,
    /// Sorted, space-separated.
    pub(super) domains: String,
    pub(super) source: String,
    pub(super) success: i64,
    pub(super) failure: i64,
    pub(super) per_domain: Vec<DomainCounts>,
    pub(super) policies: Vec<PolicyRow>,
    pub(super) failures: Vec<FailureRow>,
    pub(super) records: Vec<RecordRow>,
    /// DMARC: the DKIM (signing domain, selector) pairs of the records, with their messages.
    pub(super) selectors: Vec<SelectorRow>,
}

/// A DKIM signing domain and selector a DMARC report names, and the messages signed so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SelectorRow {
    pub(super) domain: String,
    pub(super) selector: String,
    pub(super) messages: i64,
}

/// Pairs kept per report: a report naming more is from a large sender whose first pairs (by
/// messages) are the ones worth checking.
const MAX_SELECTORS_PER_REPORT: usize = 64;

/// A report's counts for one domain (a `report_domains` row, and what its rollups add).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct DomainCounts {
    pub(super) domain: String,
    /// success, failure, messages, dmarc_pass, dkim_pass, spf_pass, none, quarantine, reject.
    pub(super) counts: [i64; 9],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PolicyRow {
    pub(super) domain: String,
    pub(super) policy: String,
    pub(super) p: Option<String>,
    pub(super) pct: Option<i64>,
    /// JSON arrays.
    pub(super) strings: String,
    pub(super) mx: String,
    pub(super) success: i64,
    pub(super) failure: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FailureRow {
    pub(super) policy_idx: i64,
    pub(super) domain: String,
    pub(super) result: String,
    pub(super) count: i64,
    pub(super) sending_ip: Option<String>,
    pub(super) receiving_mx: Option<String>,
    pub(super) receiving_helo: Option<String>,
    pub(super) receiving_ip: Option<String>,
    pub(super) additional_info: Option<String>,
    pub(super) reason_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RecordRow {
    pub(super) source_ip: String,
    pub(super) count: i64,
    pub(super) disposition: &'static str,
    pub(super) dkim: Option<String>,
    pub(super) spf: Option<String>,
    pub(super) header_from: Option<String>,
    pub(super) envelope_from: Option<String>,
    pub(super) envelope_to: Option<String>,
}

/// The stored form of a domain: the crate's domain key (lowercase, no trailing dot); reports
/// are remote data, so a domain that is not a host name (or is empty) is still stored, as sent,
/// lowercased and cut to [`MAX_DOMAIN_BYTES`].
pub fn domain_key(domain: &str) -> String {
    let trimmed = domain.trim();
    match crate::domain::normalize(trimmed) {
        Ok(key) => key,
        Err(_) => {
            let lower = trimmed.trim_end_matches('.').to_ascii_lowercase();
            cut(&lower, MAX_DOMAIN_BYTES).to_owned()
        }
    }
}

fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(|s| cut(s, MAX_TEXT_BYTES).to_owned())
}

/// Turns `report` into rows.
pub(super) fn prepare(report: &NewReport<'_>) -> Result<Prepared, ReportDbError> {
    let source = cut(report.source, MAX_TEXT_BYTES).to_owned();
    match report.content {
        Content::TlsRpt(r) => prepare_tls(r, source),
        Content::Dmarc(r) => prepare_dmarc(r, source),
    }
}

fn prepare_tls(r: &TlsReport, source: String) -> Result<Prepared, ReportDbError> {
    let mut per_domain: BTreeMap<String, [i64; 9]> = BTreeMap::new();
    let mut policies = Vec::with_capacity(r.policies.len());
    let mut failures = Vec::new();
    let (mut success, mut failure) = (0i64, 0i64);
    for (index, p) in r.policies.iter().enumerate() {
        let domain = domain_key(p.domain.as_deref().unwrap_or(""));
        let ok = signed("total-successful-session-count", p.success)?;
        let failed = signed("total-failure-session-count", p.failure)?;
        success = success.saturating_add(ok);
        failure = failure.saturating_add(failed);
        let counts = per_domain.entry(domain.clone()).or_default();
        counts[0] = counts[0].saturating_add(ok);
        counts[1] = counts[1].saturating_add(failed);
        let mode = sts_mode(&p.strings);
        let policy = match (&p.policy_type, &mode) {
            (PolicyType::Sts, Some(mode)) => format!("sts {mode}"),
            (other, _) => other.as_str().to_owned(),
        };
        policies.push(PolicyRow {
            domain: domain.clone(),
            policy: cut(&policy, MAX_TEXT_BYTES).to_owned(),
            p: mode,
            pct: None,
            strings: json_list(&p.strings),
            mx: json_list(&p.mx),
            success: ok,
            failure: failed,
        });
        for f in &p.failures {
            failures.push(FailureRow {
                policy_idx: index as i64,
                domain: domain.clone(),
                result: cut(f.result.as_str(), MAX_TEXT_BYTES).to_owned(),
                count: signed("failed-session-count", f.count)?,
                sending_ip: text(&f.sending_ip),
                receiving_mx: f.receiving_mx.as_deref().map(domain_key),
                receiving_helo: text(&f.receiving_helo),
                receiving_ip: text(&f.receiving_ip),
                additional_info: text(&f.additional_info),
                reason_code: text(&f.reason_code),
            });
        }
    }
    Ok(Prepared {
        kind: Kind::TlsRpt,
        organization: cut(&r.organization, MAX_KEY_BYTES).to_owned(),
        report_id: cut(&r.report_id, MAX_KEY_BYTES).to_owned(),
        begin: r.begin.unix_seconds(),
        end: r.end.unix_seconds(),
        domains: joined(per_domain.keys()),
        source,
        success,
        failure,
        per_domain: per_domain
            .into_iter()
            .map(|(domain, counts)| DomainCounts { domain, counts })
            .collect(),
        policies,
        failures,
        records: Vec::new(),
        selectors: Vec::new(),
    })
}

fn prepare_dmarc(r: &dmarc::Report, source: String) -> Result<Prepared, ReportDbError> {
    let domain = domain_key(r.policy.domain.as_deref().unwrap_or(""));
    let messages = signed("messages", r.messages)?;
    let dmarc_pass = signed("dmarc_pass", r.dmarc_pass)?;
    let d = &r.dispositions;
    // RFC 9990's disposition `pass` means nothing was done to the message: counted as none.
    let none = signed("disposition none", d.none.saturating_add(d.pass))?;
    let counts = [
        dmarc_pass,
        messages - dmarc_pass,
        messages,
        dmarc_pass,
        signed("dkim_pass", r.dkim_pass)?,
        signed("spf_pass", r.spf_pass)?,
        none,
        signed("disposition quarantine", d.quarantine)?,
        signed("disposition reject", d.reject)?,
    ];
    let p = r.policy.p.clone();
    let policy = format!("p={}", p.as_deref().unwrap_or("?"));
    let records = r
        .records
        .iter()
        .map(|rec| {
            Ok(RecordRow {
                source_ip: cut(&rec.source_ip, MAX_TEXT_BYTES).to_owned(),
                count: signed("record count", rec.count)?,
                disposition: rec.disposition.as_str(),
                dkim: text(&rec.dkim),
                spf: text(&rec.spf),
                header_from: rec.header_from.as_deref().map(domain_key),
                envelope_from: text(&rec.envelope_from),
                envelope_to: text(&rec.envelope_to),
            })
        })
        .collect::<Result<Vec<_>, ReportDbError>>()?;
    Ok(Prepared {
        kind: Kind::Dmarc,
        organization: cut(r.organization.as_deref().unwrap_or(""), MAX_KEY_BYTES).to_owned(),
        report_id: cut(&r.report_id, MAX_KEY_BYTES).to_owned(),
        begin: signed("begin", r.begin)?,
        end: signed("end", r.end)?,
        domains: domain.clone(),
        source,
        success: counts[0],
        failure: counts[1],
        per_domain: vec![DomainCounts {
            domain: domain.clone(),
            counts,
        }],
        policies: vec![PolicyRow {
            domain,
            policy: cut(&policy, MAX_TEXT_BYTES).to_owned(),
            p: text(&p),
            pct: r.policy.pct.map(i64::from),
            strings: "[]".to_owned(),
            mx: "[]".to_owned(),
            success: counts[0],
            failure: counts[1],
        }],
        failures: Vec::new(),
        records,
        selectors: dkim_selectors(r)?,
    })
}

/// The report's (signing domain, selector) pairs, messages summed, most messages first; pairs
/// without a selector or whose selector is not one (RFC 6376 §3.1) are left out.
fn dkim_selectors(r: &dmarc::Report) -> Result<Vec<SelectorRow>, ReportDbError> {
    let mut pairs: BTreeMap<(String, String), u64> = BTreeMap::new();
    for rec in &r.records {
        for auth in &rec.auth_dkim {
            let (Some(domain), Some(selector)) = (auth.domain.as_deref(), auth.selector.as_deref())
            else {
                continue;
            };
            let selector = selector.trim().to_ascii_lowercase();
            if !mtasts_proto::dkim::key::valid_selector(&selector) {
                continue;
            }
            let messages = pairs.entry((domain_key(domain), selector)).or_default();
            *messages = messages.saturating_add(rec.count);
        }
    }
    let mut rows = pairs
        .into_iter()
        .filter(|((domain, _), _)| !domain.is_empty())
        .map(|((domain, selector), messages)| {
            Ok(SelectorRow {
                domain,
                selector,
                messages: signed("selector messages", messages)?,
            })
        })
        .collect::<Result<Vec<_>, ReportDbError>>()?;
    rows.sort_by_key(|row| std::cmp::Reverse(row.messages));
    rows.truncate(MAX_SELECTORS_PER_REPORT);
    Ok(rows)
}

/// The `mode:` of an STS policy's lines (`testing`, `enforce`, `none`), lowercased.
fn sts_mode(strings: &[String]) -> Option<String> {
    strings.iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim().eq_ignore_ascii_case("mode"))
            .then(|| cut(value.trim(), 64).to_ascii_lowercase())
    })
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn joined<'a>(domains: impl Iterator<Item = &'a String>) -> String {
    domains.map(String::as_str).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_keys() {
        assert_eq!(domain_key(" Example.COM. "), "example.com");
        assert_eq!(domain_key(&"a".repeat(300)).len(), MAX_DOMAIN_BYTES);
        assert_eq!(domain_key(""), "");
        assert_eq!(domain_key("Not A Domain"), "not a domain");
    }

    #[test]
    fn sts_mode_is_read_from_the_policy_lines() {
        let lines = ["version: STSv1", "Mode: Enforce", "mx: a"].map(String::from);
        assert_eq!(sts_mode(&lines).as_deref(), Some("enforce"));
        assert_eq!(sts_mode(&[]), None);
    }

    #[test]
    fn tls_report_rows() {
        let json = br#"{"organization-name": "Org", "report-id": "r1",
          "date-range": {"start-datetime": "2024-03-25T00:00:00Z", "end-datetime": "2024-03-25T23:59:59Z"},
          "policies": [
            {"policy": {"policy-type": "sts", "policy-domain": "Example.com",
                        "policy-string": ["version: STSv1", "mode: testing"], "mx-host": ["mx.example.com"]},
             "summary": {"total-successful-session-count": 5, "total-failure-session-count": 2},
             "failure-details": [{"result-type": "certificate-expired", "failed-session-count": 2,
                                  "receiving-mx-hostname": "MX.example.com."}]},
            {"policy": {"policy-type": "no-policy-found", "policy-domain": "other.org"},
             "summary": {"total-successful-session-count": 1, "total-failure-session-count": 0}}]}"#;
        let report = TlsReport::parse(json).unwrap();
        let p = prepare(&NewReport {
            source: "x",
            content: Content::TlsRpt(&report),
            normalized: "{}",
            raw: json,
        })
        .unwrap();
        assert_eq!((p.success, p.failure), (6, 2));
        assert_eq!(p.domains, "example.com other.org");
        assert_eq!(p.policies[0].policy, "sts testing");
        assert_eq!(p.policies[1].policy, "no-policy-found");
        assert_eq!(
            p.failures[0].receiving_mx.as_deref(),
            Some("mx.example.com")
        );
        assert_eq!(p.per_domain[0].counts[..2], [5, 2]);
        assert_eq!(p.per_domain[1].counts[..2], [1, 0]);
    }
}
