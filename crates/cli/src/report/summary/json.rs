//! The summary as one JSON document (`--json`, docs/report/summary.md).

use super::*;

impl Summary {
    pub(super) fn to_json(&self) -> Document<'_> {
        let mut doc = Document::empty(&self.filter, self.now);
        doc.tlsrpt = self
            .tls
            .iter()
            .map(|d| {
                let a = &d.assessment;
                TlsJson {
                    domain: &a.domain,
                    policy: d.policy.as_ref().map(|p| p.policy.as_str()),
                    verdict: &a.verdict,
                    days_with_reports: a.days,
                    organizations: &a.organizations,
                    success: a.success,
                    failure: a.failure,
                    days: per_day(&d.days)
                        .into_iter()
                        .map(|(day, t)| TlsDayJson {
                            day: date::iso_day(day),
                            reports: t.reports,
                            organizations: t.organizations.len(),
                            success: t.success,
                            failure: t.failure,
                        })
                        .collect(),
                    failures: d
                        .failures
                        .iter()
                        .map(|f| FailureJson {
                            result: &f.result,
                            receiving_mx: f.receiving_mx.as_deref(),
                            organization: &f.organization,
                            count: f.count,
                            first_day: date::iso_day(f.first_day),
                            last_day: date::iso_day(f.last_day),
                        })
                        .collect(),
                    problems: a
                        .problems
                        .iter()
                        .map(|p| ProblemJson {
                            result: p.result.as_str(),
                            receiving_mx: p.receiving_mx.as_deref(),
                            mx_in_policy: p.mx_in_policy,
                            organizations: &p.organizations,
                            count: p.count,
                            first_day: date::iso_day(p.first_day),
                            last_day: date::iso_day(p.last_day),
                            state: p.state,
                            advice: &p.advice,
                        })
                        .collect(),
                }
            })
            .collect();
        doc.dmarc = self
            .dmarc
            .iter()
            .map(|d| {
                let a = &d.assessment;
                let totals = per_day(&d.days);
                DmarcJson {
                    domain: &a.domain,
                    policy: d.policy.as_ref().map(|p| PolicyJson {
                        p: p.p.as_deref(),
                        pct: p.pct,
                    }),
                    verdict: &a.verdict,
                    days_with_reports: a.days,
                    organizations: &a.organizations,
                    messages: a.messages,
                    dmarc_pass: a.dmarc_pass,
                    dkim_pass: total(totals.values().map(|t| t.dkim_pass)),
                    spf_pass: total(totals.values().map(|t| t.spf_pass)),
                    pass_rate: a.pass_rate.as_deref(),
                    dispositions: Dispositions {
                        none: total(d.days.iter().map(|x| x.none)),
                        quarantine: total(d.days.iter().map(|x| x.quarantine)),
                        reject: total(d.days.iter().map(|x| x.reject)),
                    },
                    would_quarantine: a.would_quarantine,
                    would_reject: a.would_reject,
                    days: totals
                        .into_iter()
                        .map(|(day, t)| DmarcDayJson {
                            day: date::iso_day(day),
                            reports: t.reports,
                            organizations: t.organizations.len(),
                            messages: t.messages,
                            dmarc_pass: t.dmarc_pass,
                            dkim_pass: t.dkim_pass,
                            spf_pass: t.spf_pass,
                        })
                        .collect(),
                    sources: d
                        .sources
                        .iter()
                        .map(|s| SourceJson {
                            source_ip: &s.source_ip,
                            header_from: &s.header_from,
                            messages: s.messages,
                            dmarc_pass: s.dmarc_pass,
                            dkim_pass: s.dkim_pass,
                            spf_pass: s.spf_pass,
                            dispositions: Dispositions {
                                none: s.none,
                                quarantine: s.quarantine,
                                reject: s.reject,
                            },
                        })
                        .collect(),
                }
            })
            .collect();
        doc.errors = self
            .errors
            .iter()
            .map(|e| ErrorJson {
                id: e.id,
                source: &e.source,
                code: &e.code,
                error: &e.message,
                received_at: rfc3339(e.received_at),
            })
            .collect();
        doc
    }
}

pub(in crate::report) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The `--json` document (docs/report/summary.md); fields in the order printed.
#[derive(Serialize)]
pub(super) struct Document<'a> {
    filter: FilterJson,
    now: String,
    tlsrpt: Vec<TlsJson<'a>>,
    dmarc: Vec<DmarcJson<'a>>,
    errors: Vec<ErrorJson<'a>>,
}

impl Document<'_> {
    /// The same keys with empty lists (also what a database without reports prints).
    pub(super) fn empty(filter: &Filter, now: i64) -> Document<'static> {
        Document {
            filter: FilterJson {
                domain: filter.domain.clone(),
                since: filter.since.map(rfc3339),
                until: filter.until.map(rfc3339),
                kind: filter.kind.map(Kind::as_str),
            },
            now: rfc3339(now),
            tlsrpt: Vec::new(),
            dmarc: Vec::new(),
            errors: Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct FilterJson {
    domain: Option<String>,
    since: Option<String>,
    until: Option<String>,
    kind: Option<&'static str>,
}

#[derive(Serialize)]
struct TlsJson<'a> {
    domain: &'a str,
    policy: Option<&'a str>,
    verdict: &'a Verdict,
    days_with_reports: usize,
    organizations: &'a [String],
    success: u64,
    failure: u64,
    days: Vec<TlsDayJson>,
    failures: Vec<FailureJson<'a>>,
    problems: Vec<ProblemJson<'a>>,
}

#[derive(Serialize)]
struct TlsDayJson {
    day: String,
    reports: u64,
    organizations: usize,
    success: u64,
    failure: u64,
}

#[derive(Serialize)]
struct FailureJson<'a> {
    result: &'a str,
    receiving_mx: Option<&'a str>,
    organization: &'a str,
    count: u64,
    first_day: String,
    last_day: String,
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    result: &'a str,
    receiving_mx: Option<&'a str>,
    mx_in_policy: Option<bool>,
    organizations: &'a [String],
    count: u64,
    first_day: String,
    last_day: String,
    state: State,
    advice: &'a str,
}

#[derive(Serialize)]
struct DmarcJson<'a> {
    domain: &'a str,
    policy: Option<PolicyJson<'a>>,
    verdict: &'a Verdict,
    days_with_reports: usize,
    organizations: &'a [String],
    messages: u64,
    dmarc_pass: u64,
    dkim_pass: u64,
    spf_pass: u64,
    pass_rate: Option<&'a str>,
    dispositions: Dispositions,
    would_quarantine: u64,
    would_reject: u64,
    days: Vec<DmarcDayJson>,
    sources: Vec<SourceJson<'a>>,
}

#[derive(Serialize)]
struct PolicyJson<'a> {
    p: Option<&'a str>,
    pct: Option<u32>,
}

#[derive(Serialize)]
struct Dispositions {
    none: u64,
    quarantine: u64,
    reject: u64,
}

#[derive(Serialize)]
struct DmarcDayJson {
    day: String,
    reports: u64,
    organizations: usize,
    messages: u64,
    dmarc_pass: u64,
    dkim_pass: u64,
    spf_pass: u64,
}

#[derive(Serialize)]
struct SourceJson<'a> {
    source_ip: &'a str,
    header_from: &'a str,
    messages: u64,
    dmarc_pass: u64,
    dkim_pass: u64,
    spf_pass: u64,
    dispositions: Dispositions,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    id: i64,
    source: &'a str,
    code: &'a str,
    error: &'a str,
    received_at: String,
}
