//! The breakdown rollups behind `mtasts serve`'s report views (TLS failures, DMARC sources,
//! the latest policies, reports per organization, the last arrival), on SQLite and
//! PostgreSQL: random reports stored (with duplicates, replacements and reparses) and every
//! scoped read compared with a recomputation from the reports themselves; the same answers
//! after retention deleted the raw reports, after the migration's backfill, and from
//! concurrent stores of one report.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use mtasts_proto::dmarc::{self, Mode};
use mtasts_proto::rollup::{Span, day_of};
use mtasts_proto::tlsrpt::report::{TlsReport, UtcTime};
use mtasts_store::reports::{
    Content, FailureDetail, FailureGroup, Filter, Inserted, Kind, MAX_LABEL_BYTES, NewInput,
    NewReport, OrganizationCount, PolicySeen, ReportDb, Scope, SourceGroup,
};
use mtasts_testkit::services::unique;

use crate::reports::{D, DAY};

/// The domains the reports are about.
const DOMAINS: [&str; 3] = ["example.com", "example.net", "mail.example.org"];
/// The reporting organizations.
const ORGS: [&str; 3] = ["Google", "Microsoft Corporation", "Mail.ru"];

// ---- The reports, as the test knows them ------------------------------------------------

#[derive(Clone, Debug)]
struct Detail {
    result: String,
    mx: Option<String>,
    rip: Option<String>,
    sip: Option<String>,
    count: u64,
}

#[derive(Clone, Debug)]
struct TlsPolicy {
    domain: String,
    mode: &'static str,
    details: Vec<Detail>,
}

#[derive(Clone, Debug)]
struct Rec {
    ip: String,
    header_from: Option<String>,
    dkim: &'static str,
    spf: &'static str,
    disposition: &'static str,
    count: u64,
}

#[derive(Clone, Debug)]
enum Body {
    Tls(Vec<TlsPolicy>),
    Dmarc {
        domain: String,
        p: &'static str,
        pct: u32,
        records: Vec<Rec>,
    },
}

/// One report: what is stored, and what the recomputation reads.
#[derive(Clone, Debug)]
struct Report {
    org: String,
    id: String,
    begin: i64,
    end: i64,
    /// When it first arrived.
    received: i64,
    /// A version tag (a replacement has another, so its normalized JSON differs).
    version: u32,
    body: Body,
}

impl Report {
    fn kind(&self) -> Kind {
        match self.body {
            Body::Tls(_) => Kind::TlsRpt,
            Body::Dmarc { .. } => Kind::Dmarc,
        }
    }

    fn domains(&self) -> BTreeSet<String> {
        match &self.body {
            Body::Tls(policies) => policies.iter().map(|p| p.domain.clone()).collect(),
            Body::Dmarc { domain, .. } => BTreeSet::from([domain.clone()]),
        }
    }

    fn document(&self) -> String {
        match &self.body {
            Body::Tls(policies) => {
                let policies: Vec<String> = policies
                    .iter()
                    .map(|p| {
                        let details: Vec<String> = p
                            .details
                            .iter()
                            .map(|d| {
                                let mut fields = vec![
                                    format!("\"result-type\": \"{}\"", d.result),
                                    format!("\"failed-session-count\": {}", d.count),
                                ];
                                for (name, value) in [
                                    ("receiving-mx-hostname", &d.mx),
                                    ("receiving-ip", &d.rip),
                                    ("sending-mta-ip", &d.sip),
                                ] {
                                    if let Some(v) = value {
                                        fields.push(format!("\"{name}\": \"{v}\""));
                                    }
                                }
                                format!("{{{}}}", fields.join(", "))
                            })
                            .collect();
                        let failed: u64 = p.details.iter().map(|d| d.count).sum();
                        format!(
                            r#"{{"policy": {{"policy-type": "sts", "policy-domain": "{}",
                                "policy-string": ["version: STSv1", "mode: {}", "mx: *.{}"]}},
                              "summary": {{"total-successful-session-count": 100,
                                "total-failure-session-count": {failed}}},
                              "failure-details": [{}]}}"#,
                            p.domain,
                            p.mode,
                            p.domain,
                            details.join(", ")
                        )
                    })
                    .collect();
                format!(
                    r#"{{"organization-name": "{}", "report-id": "{}",
                      "date-range": {{"start-datetime": "{}", "end-datetime": "{}"}},
                      "policies": [{}]}}"#,
                    self.org,
                    self.id,
                    UtcTime::from_unix_seconds(self.begin).unwrap(),
                    UtcTime::from_unix_seconds(self.end).unwrap(),
                    policies.join(", ")
                )
            }
            Body::Dmarc {
                domain,
                p,
                pct,
                records,
            } => {
                let rows: String = records
                    .iter()
                    .map(|r| {
                        let header_from = r
                            .header_from
                            .as_ref()
                            .map(|h| format!("<header_from>{h}</header_from>"))
                            .unwrap_or_default();
                        format!(
                            "<record><row><source_ip>{}</source_ip><count>{}</count>\
                             <policy_evaluated><disposition>{}</disposition><dkim>{}</dkim>\
                             <spf>{}</spf></policy_evaluated></row><identifiers>{header_from}\
                             </identifiers><auth_results><spf><domain>{domain}</domain>\
                             <result>{}</result></spf></auth_results></record>",
                            r.ip, r.count, r.disposition, r.dkim, r.spf, r.spf
                        )
                    })
                    .collect();
                format!(
                    "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>{}</org_name>\
                     <email>d@example</email><report_id>{}</report_id><date_range><begin>{}\
                     </begin><end>{}</end></date_range></report_metadata><policy_published>\
                     <domain>{domain}</domain><p>{p}</p><pct>{pct}</pct></policy_published>\
                     {rows}</feedback>",
                    self.org, self.id, self.begin, self.end
                )
            }
        }
    }
}

/// A parsed report and the strings a [`NewReport`] borrows.
struct Parsed {
    tls: Option<TlsReport>,
    dmarc: Option<dmarc::Report>,
    normalized: String,
    raw: String,
}

impl Parsed {
    fn of(r: &Report) -> Parsed {
        let raw = r.document();
        let (tls, dmarc) = match r.body {
            Body::Tls(_) => (Some(TlsReport::parse(raw.as_bytes()).unwrap()), None),
            Body::Dmarc { .. } => (
                None,
                Some(dmarc::parse(raw.as_bytes(), Mode::Full).unwrap()),
            ),
        };
        Parsed {
            tls,
            dmarc,
            normalized: format!("{{\"id\": \"{}\", \"version\": {}}}", r.id, r.version),
            raw,
        }
    }

    fn new_report(&self) -> NewReport<'_> {
        let content = match (&self.tls, &self.dmarc) {
            (Some(t), _) => Content::TlsRpt(t),
            (_, Some(d)) => Content::Dmarc(d),
            _ => unreachable!(),
        };
        NewReport {
            source: "test",
            content,
            normalized: &self.normalized,
            raw: self.raw.as_bytes(),
        }
    }
}

/// Stores `reports` as one input of bytes `tag`, arrived at `received`; the id of each.
async fn store(db: &ReportDb, reports: &[Report], tag: &str, received: i64) -> Vec<i64> {
    let parsed: Vec<Parsed> = reports.iter().map(Parsed::of).collect();
    let news: Vec<NewReport<'_>> = parsed.iter().map(Parsed::new_report).collect();
    let mut sha256 = [0u8; 32];
    for (i, b) in tag.bytes().enumerate() {
        sha256[i % 32] ^= b.wrapping_add(i as u8);
    }
    sha256[31] ^= tag.len() as u8;
    let input = NewInput {
        sha256,
        source: "test",
        received_at: received,
        size: tag.len() as u64,
        gzip: tag.as_bytes(),
    };
    let stored = db.store(&input, &news, &[]).await.unwrap();
    stored
        .reports
        .iter()
        .map(|r| match r {
            Inserted::New(id) | Inserted::Duplicate(id) => *id,
        })
        .collect()
}

// ---- Random reports ---------------------------------------------------------------------

/// xorshift64*: the same reports for a seed on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn maybe(&mut self, items: &[&str]) -> Option<String> {
        let i = self.below(items.len() as u64 + 1) as usize;
        items.get(i).map(|s| (*s).to_owned())
    }
}

/// A report range: a whole day (both end conventions), one crossing midnight, several days,
/// an empty one, and (DMARC only: the TLS reads of rows count those differently) one longer
/// than the 31 days that are spread.
fn range(rng: &mut Rng, dmarc: bool) -> (i64, i64) {
    let day = D + rng.below(20) as i64 * DAY;
    let choices = if dmarc { 6 } else { 5 };
    match rng.below(choices) {
        0 => (day, day + DAY - 1),
        1 => (day, day + DAY),
        2 => {
            let begin = day + 3600 * (1 + rng.below(23) as i64);
            (begin, begin + DAY)
        }
        3 => {
            let begin = day + rng.below(DAY as u64) as i64;
            (begin, begin + 1 + rng.below(3 * DAY as u64) as i64)
        }
        4 => (day + 7200, day + 7200),
        _ => (day, day + 40 * DAY),
    }
}

fn random_report(rng: &mut Rng, n: usize) -> Report {
    let org = rng.pick(&ORGS).to_string();
    let dmarc = rng.below(2) == 0;
    let (begin, end) = range(rng, dmarc);
    let body = if dmarc {
        let records = (0..rng.below(6))
            .map(|_| Rec {
                ip: rng
                    .pick(&["192.0.2.1", "192.0.2.2", "2001:db8::25"])
                    .to_string(),
                header_from: rng.maybe(&["example.com", "news.example.com"]),
                dkim: rng.pick(&["pass", "fail"]),
                spf: rng.pick(&["pass", "fail"]),
                disposition: rng.pick(&["none", "quarantine", "reject", "pass"]),
                count: rng.below(60),
            })
            .collect();
        Body::Dmarc {
            domain: rng.pick(&DOMAINS).to_string(),
            p: rng.pick(&["none", "quarantine", "reject"]),
            pct: rng.pick(&[100, 50]),
            records,
        }
    } else {
        let mut domains: Vec<&str> = DOMAINS.to_vec();
        domains.truncate(1 + rng.below(3) as usize);
        let policies = domains
            .iter()
            .map(|domain| TlsPolicy {
                domain: domain.to_string(),
                mode: rng.pick(&["testing", "enforce"]),
                details: (0..rng.below(5))
                    .map(|_| Detail {
                        result: rng
                            .pick(&[
                                "certificate-expired",
                                "starttls-not-supported",
                                "validation-failure",
                            ])
                            .to_string(),
                        mx: rng.maybe(&["mx1.example.com", "mx2.example.com"]),
                        rip: rng.maybe(&["198.51.100.1", "198.51.100.2"]),
                        sip: rng.maybe(&["203.0.113.7", "203.0.113.8"]),
                        count: rng.below(25),
                    })
                    .collect(),
            })
            .collect();
        Body::Tls(policies)
    };
    Report {
        org,
        id: format!("r{n}"),
        begin,
        end,
        received: end.max(begin) + 3600 + rng.below(5 * DAY as u64) as i64,
        version: 1,
        body,
    }
}

// ---- The recomputation ------------------------------------------------------------------

/// Every scoped read the views make, sorted the same way whatever made them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answers {
    details: Vec<FailureDetail>,
    groups: Vec<FailureGroup>,
    sources: Vec<SourceGroup>,
    policies: Vec<PolicySeen>,
    organizations: Vec<OrganizationCount>,
    last_received: BTreeMap<String, i64>,
}

impl Answers {
    fn sorted(mut self) -> Answers {
        self.details
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        self.groups
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        self.sources
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        self.policies
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        self.organizations
            .sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        self
    }
}

async fn answers(db: &ReportDb, scope: &Scope) -> Answers {
    Answers {
        details: db.tls_failure_details(scope).await.unwrap(),
        groups: db.tls_failures_of(scope).await.unwrap(),
        sources: db.dmarc_sources_of(scope).await.unwrap(),
        policies: db.policies_of(scope).await.unwrap(),
        organizations: db.organizations_of(scope).await.unwrap(),
        last_received: db
            .last_received_of(scope)
            .await
            .unwrap()
            .into_iter()
            .collect(),
    }
    .sorted()
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_LABEL_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// What the scoped reads should answer for `reports` (each stored once): recomputed from the
/// reports, each count spread over the report's days by `mtasts_proto::rollup`, the days of
/// the scope summed.
fn expected(reports: &[Report], scope: &Scope) -> Answers {
    let wanted: BTreeSet<String> = scope.domains.iter().map(|d| d.to_lowercase()).collect();
    let in_scope = |day: i64| {
        scope.since.is_none_or(|s| day >= day_of(s)) && scope.until.is_none_or(|u| day < u)
    };
    let kind_ok = |k: Kind| scope.kind.is_none_or(|want| want == k);
    type DetailKey = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let mut details: BTreeMap<DetailKey, u64> = BTreeMap::new();
    type GroupKey = (String, String, Option<String>, String);
    let mut groups: BTreeMap<GroupKey, (u64, i64, i64)> = BTreeMap::new();
    let mut sources: BTreeMap<(String, String, String), [u64; 7]> = BTreeMap::new();
    let mut policies: BTreeMap<(Kind, String), PolicySeen> = BTreeMap::new();
    let mut organizations: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut last_received: BTreeMap<String, i64> = BTreeMap::new();
    for r in reports {
        if !kind_ok(r.kind()) {
            continue;
        }
        let span = Span::new(r.begin, r.end);
        let days: Vec<i64> = span.days().collect();
        let covered: Vec<usize> = (0..days.len()).filter(|&i| in_scope(days[i])).collect();
        for domain in r.domains() {
            if !wanted.contains(&domain) {
                continue;
            }
            let last = last_received.entry(domain.clone()).or_default();
            *last = (*last).max(r.received);
            if !covered.is_empty() {
                *organizations
                    .entry((domain.clone(), r.org.clone()))
                    .or_default() += 1;
            }
        }
        let mut seen: Vec<PolicySeen> = Vec::new();
        match &r.body {
            Body::Tls(list) => {
                for p in list.iter().filter(|p| wanted.contains(&p.domain)) {
                    seen.push(PolicySeen {
                        kind: Kind::TlsRpt,
                        domain: p.domain.clone(),
                        policy: format!("sts {}", p.mode),
                        p: Some(p.mode.to_owned()),
                        pct: None,
                        last_seen: r.end,
                    });
                    // A report's details are grouped by key, then spread.
                    let mut keyed: BTreeMap<DetailKey, u64> = BTreeMap::new();
                    for d in &p.details {
                        let key = (
                            p.domain.clone(),
                            cut(&d.result),
                            d.mx.clone(),
                            d.rip.as_deref().map(cut),
                            d.sip.as_deref().map(cut),
                            r.org.clone(),
                        );
                        *keyed.entry(key).or_default() += d.count;
                    }
                    for (key, count) in keyed {
                        let shares = span.split(count);
                        for &i in &covered {
                            *details.entry(key.clone()).or_default() += shares[i];
                            let group =
                                (key.0.clone(), key.1.clone(), key.2.clone(), key.5.clone());
                            let g = groups.entry(group).or_insert((0, i64::MAX, i64::MIN));
                            g.0 += shares[i];
                            g.1 = g.1.min(days[i]);
                            g.2 = g.2.max(days[i]);
                        }
                    }
                }
            }
            Body::Dmarc {
                domain,
                p,
                pct,
                records,
            } => {
                if wanted.contains(domain) {
                    seen.push(PolicySeen {
                        kind: Kind::Dmarc,
                        domain: domain.clone(),
                        policy: format!("p={p}"),
                        p: Some((*p).to_owned()),
                        pct: Some(*pct),
                        last_seen: r.end,
                    });
                    let mut keyed: BTreeMap<(String, String, String), [u64; 7]> = BTreeMap::new();
                    for rec in records {
                        let n = rec.count;
                        let pass = rec.dkim == "pass" || rec.spf == "pass";
                        let sums = keyed
                            .entry((
                                domain.clone(),
                                cut(&rec.ip),
                                rec.header_from.clone().unwrap_or_default(),
                            ))
                            .or_default();
                        let values = [
                            if pass { n } else { 0 },
                            if pass { 0 } else { n },
                            if rec.dkim == "pass" { n } else { 0 },
                            if rec.spf == "pass" { n } else { 0 },
                            if matches!(rec.disposition, "none" | "pass") {
                                n
                            } else {
                                0
                            },
                            if rec.disposition == "quarantine" {
                                n
                            } else {
                                0
                            },
                            if rec.disposition == "reject" { n } else { 0 },
                        ];
                        for (s, v) in sums.iter_mut().zip(values) {
                            *s += v;
                        }
                    }
                    for (key, sums) in keyed {
                        let shares: Vec<Vec<u64>> = sums.iter().map(|&n| span.split(n)).collect();
                        let out = sources.entry(key).or_default();
                        for &i in &covered {
                            for (slot, share) in out.iter_mut().zip(&shares) {
                                *slot += share[i];
                            }
                        }
                    }
                }
            }
        }
        if covered.is_empty() {
            continue;
        }
        for s in seen {
            let key = (s.kind, s.domain.clone());
            let rank = |p: &PolicySeen| (p.last_seen, p.policy.clone(), p.p.clone(), p.pct);
            match policies.get(&key) {
                Some(old) if rank(old) >= rank(&s) => {}
                _ => {
                    policies.insert(key, s);
                }
            }
        }
    }
    Answers {
        details: details
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(
                |((domain, result, mx, rip, sip, org), count)| FailureDetail {
                    domain,
                    result,
                    receiving_mx: mx,
                    receiving_ip: rip,
                    sending_ip: sip,
                    organization: org,
                    count,
                },
            )
            .collect(),
        groups: groups
            .into_iter()
            .filter(|(_, g)| g.0 > 0)
            .map(
                |((domain, result, mx, org), (count, first, last))| FailureGroup {
                    domain,
                    result,
                    receiving_mx: mx,
                    organization: org,
                    count,
                    first_day: first,
                    last_day: last,
                },
            )
            .collect(),
        sources: sources
            .into_iter()
            .map(|((domain, source_ip, header_from), s)| SourceGroup {
                domain,
                source_ip,
                header_from,
                messages: s[0] + s[1],
                dmarc_pass: s[0],
                dkim_pass: s[2],
                spf_pass: s[3],
                none: s[4],
                quarantine: s[5],
                reject: s[6],
            })
            .filter(|s| s.messages > 0)
            .collect(),
        policies: policies.into_values().collect(),
        organizations: organizations
            .into_iter()
            .map(|((domain, organization), reports)| OrganizationCount {
                domain,
                organization,
                reports,
            })
            .collect(),
        last_received,
    }
    .sorted()
}

/// Scopes to compare over: everything, each kind, and random windows (whole days or not).
fn scopes(rng: &mut Rng) -> Vec<Scope> {
    let all: Vec<String> = DOMAINS.iter().map(|d| d.to_uppercase()).collect();
    let mut out = vec![
        Scope {
            domains: all.clone(),
            ..Scope::default()
        },
        Scope {
            domains: all.clone(),
            kind: Some(Kind::TlsRpt),
            ..Scope::default()
        },
        Scope {
            domains: vec![DOMAINS[0].into()],
            kind: Some(Kind::Dmarc),
            ..Scope::default()
        },
    ];
    for _ in 0..12 {
        let offset = if rng.below(2) == 0 {
            0
        } else {
            rng.below(DAY as u64) as i64
        };
        let since = D - 2 * DAY + rng.below(24) as i64 * DAY + offset;
        let until = since + (1 + rng.below(10) as i64) * DAY;
        let mut domains: Vec<String> = DOMAINS.iter().map(|d| d.to_string()).collect();
        domains.truncate(1 + rng.below(3) as usize);
        let kind = rng.pick(&[None, Some(Kind::TlsRpt), Some(Kind::Dmarc)]);
        out.push(Scope::new(domains, since, until, kind));
    }
    out
}

async fn compare(db: &ReportDb, reports: &[Report], scopes: &[Scope], when: &str) {
    for scope in scopes {
        let got = answers(db, scope).await;
        let want = expected(reports, scope);
        assert_eq!(got, want, "{when}: {scope:?}");
    }
}

// ---- A runner with a raw connection -----------------------------------------------------

/// Raw statements on the database under test (to undo a migration).
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn execute(&self, statement: &'static str) {
        match self {
            Raw::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(drop),
            Raw::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    async fn count(&self, statement: &'static str) -> i64 {
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{statement}: {e}"))
    }
}

/// Runs `case` with the database URL, a raw pool on it and an open [`ReportDb`].
async fn run_raw<F, Fut>(backend: crate::reports::Backend, case: F)
where
    F: FnOnce(String, Raw, ReportDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    match backend {
        crate::reports::Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("reports.db").display());
            let db = ReportDb::open(&url).await.unwrap();
            let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
            let outcome = tokio::spawn(case(url, raw, db.clone())).await;
            db.close().await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        crate::reports::Backend::Postgres => {
            let Some(schema) = crate::schema::Schema::create(&unique("rollups_test_")).await else {
                return;
            };
            let outcome = match ReportDb::open(&schema.url).await {
                Ok(db) => {
                    let raw = Raw::Postgres(schema.raw.clone());
                    let outcome = tokio::spawn(case(schema.url.clone(), raw, db.clone())).await;
                    db.close().await;
                    Ok(outcome)
                }
                Err(e) => Err(format!("open {}: {e}", schema.url)),
            };
            schema.drop().await;
            crate::schema::finish(outcome);
        }
    }
}

// ---- The cases --------------------------------------------------------------------------

mod cases {
    use super::*;

    both_databases!(crate::reports::run, crate::reports::Backend;
        rollups_answer_as_a_recomputation_from_the_reports,
        rollups_answer_as_the_reads_of_rows_for_reports_inside_the_window,
        replace_and_restore_move_the_breakdowns_exactly,
        retention_deletes_raw_reports_and_the_breakdowns_stay,
        concurrent_stores_of_one_report_count_it_once,
        the_longest_labels_make_a_key_and_are_cut,
    );

    /// Random reports, some arriving twice: every scoped read equals the recomputation.
    pub(crate) async fn rollups_answer_as_a_recomputation_from_the_reports(db: ReportDb) {
        let mut everything: Vec<Report> = Vec::new();
        for seed in [7u64, 1_234_567, 0xdead_beef] {
            let mut rng = Rng(seed);
            let base = (seed % 1000) as usize * 100;
            let reports: Vec<Report> = (0..30).map(|n| random_report(&mut rng, base + n)).collect();
            // In inputs of one to three reports.
            let mut i = 0;
            while i < reports.len() {
                let n = (1 + rng.below(3) as usize).min(reports.len() - i);
                let batch: Vec<Report> = reports[i..i + n].to_vec();
                let received = batch[0].received;
                // Each report keeps the arrival of the input that first carried it.
                store(&db, &batch, &format!("{seed}/{i}"), received).await;
                i += n;
            }
            everything.extend(reports.iter().cloned());
            let scopes = scopes(&mut rng);
            let all_so_far = all_stored(&db, &everything).await;
            compare(&db, &all_so_far, &scopes, &format!("seed {seed}")).await;
            // Duplicates (other bytes, later) add nothing.
            for (k, r) in reports.iter().enumerate().filter(|(k, _)| k % 3 == 0) {
                store(
                    &db,
                    std::slice::from_ref(r),
                    &format!("{seed}/again/{k}"),
                    D + 90 * DAY,
                )
                .await;
            }
            compare(
                &db,
                &all_so_far,
                &scopes,
                &format!("seed {seed}, duplicates"),
            )
            .await;
        }
    }

    /// The reports as stored so far: each report's arrival is its first input's.
    pub(super) async fn all_stored(db: &ReportDb, reports: &[Report]) -> Vec<Report> {
        let rows = db.list(&Filter::default(), 10_000).await.unwrap();
        let received: BTreeMap<(String, String), i64> = rows
            .iter()
            .map(|r| ((r.organization.clone(), r.report_id.clone()), r.received_at))
            .collect();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in reports {
            if seen.insert((r.org.clone(), r.id.clone())) {
                let mut r = r.clone();
                r.received = received[&(r.org.clone(), r.id.clone())];
                out.push(r);
            }
        }
        out
    }

    /// For reports inside the window, the rollups answer what the reads of the per-report
    /// rows (`mtasts report summary`'s) answer.
    pub(crate) async fn rollups_answer_as_the_reads_of_rows_for_reports_inside_the_window(
        db: ReportDb,
    ) {
        let mut rng = Rng(42);
        let reports: Vec<Report> = (0..40).map(|n| random_report(&mut rng, n)).collect();
        for (n, r) in reports.iter().enumerate() {
            store(
                &db,
                std::slice::from_ref(r),
                &format!("rows/{n}"),
                r.received,
            )
            .await;
        }
        let domains: Vec<String> = DOMAINS.iter().map(|d| d.to_string()).collect();
        for domain in &domains {
            // A window holding every report whole.
            let (since, until) = (D - 10 * DAY, D + 80 * DAY);
            let filter = |kind| Filter {
                domain: Some(domain.clone()),
                since: Some(since),
                until: Some(until),
                kind: Some(kind),
            };
            let scope = |kind| Scope::new(vec![domain.clone()], since, until, Some(kind));
            let mut rows = db.tls_failures(&filter(Kind::TlsRpt)).await.unwrap();
            rows.retain(|g| g.count > 0);
            let mut rolled = db.tls_failures_of(&scope(Kind::TlsRpt)).await.unwrap();
            rows.sort_by_key(|g| format!("{g:?}"));
            rolled.sort_by_key(|g| format!("{g:?}"));
            assert_eq!(rolled, rows, "{domain}");
            assert!(!rows.is_empty());
            let mut rows = db.dmarc_sources(&filter(Kind::Dmarc)).await.unwrap();
            rows.retain(|s| s.messages > 0);
            let mut rolled = db.dmarc_sources_of(&scope(Kind::Dmarc)).await.unwrap();
            rows.sort_by_key(|g| format!("{g:?}"));
            rolled.sort_by_key(|g| format!("{g:?}"));
            assert_eq!(rolled, rows, "{domain}");
            let both = Filter {
                kind: None,
                ..filter(Kind::Dmarc)
            };
            let scope_both = Scope::new(vec![domain.clone()], since, until, None);
            // The rows' read takes any of the policies seen at the latest end (the rollups the
            // largest label): the kind, domain and time agree.
            let seen = |list: Vec<PolicySeen>| -> Vec<(Kind, String, i64)> {
                list.into_iter()
                    .map(|p| (p.kind, p.domain, p.last_seen))
                    .collect()
            };
            assert_eq!(
                seen(db.policies_of(&scope_both).await.unwrap()),
                seen(db.policies(&both).await.unwrap()),
                "{domain}"
            );
            let stored = db.list(&both, 1000).await.unwrap();
            let mut per_org: BTreeMap<String, u64> = BTreeMap::new();
            for r in &stored {
                *per_org.entry(r.organization.clone()).or_default() += 1;
            }
            let orgs: BTreeMap<String, u64> = db
                .organizations_of(&scope_both)
                .await
                .unwrap()
                .into_iter()
                .map(|o| (o.organization, o.reports))
                .collect();
            assert_eq!(orgs, per_org, "{domain}");
        }
    }

    /// A TLS report and a DMARC report whose replacements change every key, the days and
    /// the organization.
    pub(super) fn pair(version: u32) -> Vec<Report> {
        let (tls_result, tls_count, org) = match version {
            1 => ("certificate-expired", 9, "Google"),
            _ => ("validation-failure", 4, "Mail.ru"),
        };
        let shift = i64::from(version - 1) * DAY;
        vec![
            Report {
                org: org.into(),
                id: "tls-1".into(),
                begin: D + 18 * 3600 + shift,
                end: D + DAY + 18 * 3600 + shift,
                received: D + 3 * DAY,
                version,
                body: Body::Tls(vec![TlsPolicy {
                    domain: "example.com".into(),
                    mode: if version == 1 { "testing" } else { "enforce" },
                    details: vec![Detail {
                        result: tls_result.into(),
                        mx: Some("mx1.example.com".into()),
                        rip: None,
                        sip: Some(format!("203.0.113.{version}")),
                        count: tls_count,
                    }],
                }]),
            },
            Report {
                org: org.into(),
                id: "dmarc-1".into(),
                begin: D + shift,
                end: D + DAY - 1 + shift,
                received: D + 3 * DAY,
                version,
                body: Body::Dmarc {
                    domain: "example.com".into(),
                    p: if version == 1 { "none" } else { "reject" },
                    pct: 100,
                    records: vec![Rec {
                        ip: format!("192.0.2.{version}"),
                        header_from: Some("example.com".into()),
                        dkim: "pass",
                        spf: if version == 1 { "fail" } else { "pass" },
                        disposition: "none",
                        count: 10 * u64::from(version),
                    }],
                },
            },
        ]
    }

    pub(crate) async fn replace_and_restore_move_the_breakdowns_exactly(db: ReportDb) {
        let mut rng = Rng(99);
        let others: Vec<Report> = (0..10).map(|n| random_report(&mut rng, 500 + n)).collect();
        store(&db, &others, "others", D + 40 * DAY).await;
        let v1 = pair(1);
        let ids = store(&db, &v1, "pair", D + 3 * DAY).await;
        let scopes = scopes(&mut rng);
        let mut model: Vec<Report> = all_stored(&db, &others).await;
        model.extend(v1.iter().cloned());
        compare(&db, &model, &scopes, "v1").await;

        // Reparsed into other contents: the rollups move from v1's keys and days to v2's.
        let v2 = pair(2);
        for (id, r) in ids.iter().zip(&v2) {
            let parsed = Parsed::of(r);
            assert!(db.replace_report(*id, &parsed.new_report()).await.unwrap());
            // The same contents again change nothing.
            assert!(!db.replace_report(*id, &parsed.new_report()).await.unwrap());
        }
        let mut model: Vec<Report> = all_stored(&db, &others).await;
        model.extend(v2.iter().cloned());
        compare(&db, &model, &scopes, "v2").await;
        // And back: exactly the first answers.
        for (id, r) in ids.iter().zip(&v1) {
            let parsed = Parsed::of(r);
            assert!(db.replace_report(*id, &parsed.new_report()).await.unwrap());
        }
        let mut model: Vec<Report> = all_stored(&db, &others).await;
        model.extend(v1.iter().cloned());
        compare(&db, &model, &scopes, "v1 again").await;

        // An input read again: its stored reports are left alone, a new one is counted.
        let input = db
            .input(db.input_ids().await.unwrap()[1])
            .await
            .unwrap()
            .unwrap();
        let extra = random_report(&mut rng, 900);
        let mut again = v1.clone();
        again.push(extra.clone());
        let parsed: Vec<Parsed> = again.iter().map(Parsed::of).collect();
        let news: Vec<NewReport<'_>> = parsed.iter().map(Parsed::new_report).collect();
        let (inserted, _) = db.restore_input(&input, &news, &[]).await.unwrap();
        assert!(matches!(inserted[2], Inserted::New(_)), "{inserted:?}");
        let mut extra = extra;
        extra.received = input.received_at;
        model.push(extra);
        compare(&db, &model, &scopes, "restored").await;
    }

    pub(crate) async fn retention_deletes_raw_reports_and_the_breakdowns_stay(db: ReportDb) {
        let mut rng = Rng(2024);
        let reports: Vec<Report> = (0..30).map(|n| random_report(&mut rng, n)).collect();
        for (n, r) in reports.iter().enumerate() {
            store(
                &db,
                std::slice::from_ref(r),
                &format!("ret/{n}"),
                r.received,
            )
            .await;
        }
        let scopes = scopes(&mut rng);
        let model = all_stored(&db, &reports).await;
        compare(&db, &model, &scopes, "stored").await;
        let daily = db.daily(&Filter::default()).await.unwrap();
        let purged = db.delete_older_than(D + 400 * DAY).await.unwrap();
        assert_eq!(purged.reports, 30);
        assert!(db.list(&Filter::default(), 10).await.unwrap().is_empty());
        // Every breakdown, the policies, the report counts and the last arrivals stay.
        compare(&db, &model, &scopes, "after retention").await;
        assert_eq!(db.daily(&Filter::default()).await.unwrap(), daily);
        // The reads of rows have nothing left.
        assert!(
            db.tls_failures(&Filter::default())
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub(crate) async fn concurrent_stores_of_one_report_count_it_once(db: ReportDb) {
        let reports = pair(1);
        let mut tasks = Vec::new();
        for i in 0..12u8 {
            let (db, mut reports) = (db.clone(), reports.clone());
            if i % 2 == 1 {
                // The other order: rows locked in opposite orders.
                reports.reverse();
            }
            tasks.push(tokio::spawn(async move {
                store(&db, &reports, &format!("concurrent/{i}"), D + 3 * DAY).await
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let mut rng = Rng(5);
        let scopes = scopes(&mut rng);
        compare(&db, &reports, &scopes, "concurrent").await;
        let rows = db.list(&Filter::default(), 10).await.unwrap();
        assert!(rows.iter().all(|r| r.duplicates == 11), "{rows:?}");
    }

    /// The widest key (PostgreSQL limits an index row to about 2.7 kB): the longest domain,
    /// organization and labels a report can carry are stored, the labels cut.
    pub(crate) async fn the_longest_labels_make_a_key_and_are_cut(db: ReportDb) {
        let label = |c: char| vec![c.to_string().repeat(63); 4].join(".")[..253].to_owned();
        let domain = label('d');
        let mx = label('m');
        let long = "é".repeat(600);
        let org = "o".repeat(1500);
        let report = Report {
            org: org.clone(),
            id: "long".into(),
            begin: D,
            end: D + DAY - 1,
            received: D + DAY,
            version: 1,
            body: Body::Tls(vec![TlsPolicy {
                domain: domain.clone(),
                mode: "testing",
                details: vec![Detail {
                    result: long.clone(),
                    mx: Some(mx.clone()),
                    rip: Some(long.clone()),
                    sip: Some(long.clone()),
                    count: 3,
                }],
            }]),
        };
        store(&db, std::slice::from_ref(&report), "long", D + DAY).await;
        let scope = Scope::new(vec![domain.clone()], D, D + DAY, None);
        let details = db.tls_failure_details(&scope).await.unwrap();
        assert_eq!(details.len(), 1, "{details:?}");
        let d = &details[0];
        // 'é' is two bytes: cut at a character boundary below the limit.
        assert_eq!(d.result.len(), MAX_LABEL_BYTES - 1);
        assert_eq!(
            d.sending_ip.as_deref().map(str::len),
            Some(MAX_LABEL_BYTES - 1)
        );
        assert_eq!(d.receiving_mx.as_deref(), Some(mx.as_str()));
        assert_eq!(d.organization.len(), 1024);
        assert_eq!(d.count, 3);
        let dmarc = Report {
            org: org.clone(),
            id: "long-dmarc".into(),
            body: Body::Dmarc {
                domain: domain.clone(),
                p: "none",
                pct: 100,
                records: vec![Rec {
                    ip: long.clone(),
                    header_from: Some(mx.clone()),
                    dkim: "fail",
                    spf: "fail",
                    disposition: "none",
                    count: 5,
                }],
            },
            ..report.clone()
        };
        store(&db, std::slice::from_ref(&dmarc), "long-dmarc", D + DAY).await;
        let sources = db.dmarc_sources_of(&scope).await.unwrap();
        assert_eq!(sources.len(), 1, "{sources:?}");
        assert_eq!(sources[0].source_ip.len(), MAX_LABEL_BYTES - 1);
        assert_eq!((sources[0].messages, sources[0].dmarc_pass), (5, 0));
        let mut model = vec![report, dmarc];
        for r in &mut model {
            r.org = org[..1024].to_owned();
        }
        compare(&db, &model, &[scope], "long").await;
    }
}

mod backfill {
    use super::cases::all_stored;
    use super::*;

    both_databases!(crate::rollups::run_raw, crate::reports::Backend;
        the_migration_backfills_the_breakdowns_of_stored_reports,
    );

    /// A database of the version before: its reports have no breakdown rollups yet. Opening it
    /// (several nodes at once) migrates and backfills them once, to the same answers.
    pub(crate) async fn the_migration_backfills_the_breakdowns_of_stored_reports(
        url: String,
        raw: Raw,
        db: ReportDb,
    ) {
        {
            let mut rng = Rng(31337);
            let reports: Vec<Report> = (0..40).map(|n| random_report(&mut rng, n)).collect();
            for chunk in reports.chunks(4) {
                store(&db, chunk, &chunk[0].id, chunk[0].received).await;
            }
            // And one input of many small reports: the backfill takes several batches.
            let bulk: Vec<Report> = (0..520i64)
                .map(|n| Report {
                    org: "Bulk".into(),
                    id: format!("bulk-{n}"),
                    begin: D + (n % 7) * DAY + 3600 * (n % 5),
                    end: D + (n % 7) * DAY + 3600 * (n % 5) + DAY,
                    received: D + 30 * DAY,
                    version: 1,
                    body: Body::Tls(vec![TlsPolicy {
                        domain: DOMAINS[n as usize % 3].into(),
                        mode: "testing",
                        details: vec![Detail {
                            result: "validation-failure".into(),
                            mx: None,
                            rip: None,
                            sip: Some(format!("203.0.113.{}", n % 11)),
                            count: 1 + n as u64 % 4,
                        }],
                    }]),
                })
                .collect();
            store(&db, &bulk, "bulk", D + 30 * DAY).await;
            let mut reports = reports;
            reports.extend(bulk);
            let scopes = scopes(&mut rng);
            let model = all_stored(&db, &reports).await;
            compare(&db, &model, &scopes, "stored").await;
            let daily = db.daily(&Filter::default()).await.unwrap();
            db.close().await;

            // Back to the version before: no breakdown tables, no new columns, the migration
            // not applied.
            for statement in [
                "DROP TABLE report_daily_tls_failures",
                "DROP TABLE report_daily_dmarc_sources",
                "DROP TABLE report_daily_policies",
                "DROP TABLE report_rollup_backfill",
                "DROP INDEX report_daily_empty",
                "ALTER TABLE report_daily DROP COLUMN begun",
                "ALTER TABLE report_daily DROP COLUMN last_received",
                "DELETE FROM _mtasts_reports_migrations WHERE version = 20261211000002",
            ] {
                raw.execute(statement).await;
            }

            // Three nodes open it at once (PostgreSQL; SQLite has one node, and its
            // migrations are not locked against another process).
            let nodes = match raw {
                Raw::Postgres(_) => 3,
                Raw::Sqlite(_) => 1,
            };
            let mut opens = Vec::new();
            for _ in 0..nodes {
                let url = url.clone();
                opens.push(tokio::spawn(
                    async move { ReportDb::open(&url).await.unwrap() },
                ));
            }
            let mut dbs = Vec::new();
            for open in opens {
                dbs.push(open.await.unwrap());
            }
            assert_eq!(
                raw.count("SELECT COUNT(*) FROM report_rollup_backfill")
                    .await,
                0,
                "the marker is gone once done"
            );
            for db in &dbs {
                compare(db, &model, &scopes, "backfilled").await;
            }
            assert_eq!(dbs[0].daily(&Filter::default()).await.unwrap(), daily);
            // Opening again does not count anything twice.
            let again = ReportDb::open(&url).await.unwrap();
            compare(&again, &model, &scopes, "opened again").await;
            // A reparse of a backfilled report moves its rollups to the unit.
            let id = dbs[0].list(&Filter::default(), 1).await.unwrap()[0].id;
            let stored = dbs[0].get(id).await.unwrap().unwrap();
            let index = model
                .iter()
                .position(|r| r.id == stored.row.report_id && r.org == stored.row.organization)
                .unwrap();
            let mut changed = model[index].clone();
            changed.version = 2;
            changed.org = "Other".into();
            let parsed = Parsed::of(&changed);
            assert!(
                again
                    .replace_report(id, &parsed.new_report())
                    .await
                    .unwrap()
            );
            let mut model = model;
            model[index] = changed;
            compare(&again, &model, &scopes, "reparsed").await;
            again.close().await;
            for db in dbs {
                db.close().await;
            }
        }
    }
}
