//! The SPF and DKIM stages of the engine: drives the SPF tree walk with DNS answers and looks up
//! the key record of every DKIM selector asked for.

use mtasts_net::dns::DnsLookup;
use std::time::{Duration, Instant};

use mtasts_proto::spf::{Answer, DnsFailure, Query, SpfOutcome, SpfWalk, Step};

use super::Checker;
use crate::finding::Finding;
use crate::report::{DkimReport, SpfReport};
use crate::stages::{dkim, spf};

/// What the SPF and DKIM stages add to a report.
pub(super) struct AuthOutcome {
    pub(super) spf: Option<SpfReport>,
    pub(super) dkim: Option<DkimReport>,
    pub(super) findings: Vec<Finding>,
}

impl Checker {
    /// Runs the SPF and DKIM stages that are selected, side by side.
    pub(super) async fn check_spf_dkim(&self, domain: &str, selectors: &[String]) -> AuthOutcome {
        let stages = self.options.stages;
        let spf = async {
            if stages.spf {
                // Half the domain's deadline: a tree of slow name servers must not cost the
                // whole check (and the MTA-STS findings with it) its deadline.
                let budget = self.options.deadline / 2;
                Some(spf::report(
                    walk_spf(self.dns.as_ref(), domain, budget).await,
                ))
            } else {
                None
            }
        };
        let dkim = async {
            if !stages.dkim {
                return None;
            }
            let lookups = selectors.iter().map(|selector| async move {
                let answer = self
                    .dns
                    .txt(&mtasts_proto::dkim::key_name(selector, domain))
                    .await;
                dkim::evaluate(selector, domain, &answer)
            });
            Some(futures::future::join_all(lookups).await)
        };
        let (spf, dkim) = tokio::join!(spf, dkim);
        let mut findings = Vec::new();
        let spf = spf.map(|(report, spf_findings)| {
            findings.extend(spf_findings);
            report
        });
        let dkim = dkim.map(|keys| {
            let mut selectors = Vec::new();
            for (report, key_findings) in keys {
                findings.extend(key_findings);
                selectors.push(report);
            }
            DkimReport { selectors }
        });
        AuthOutcome {
            spf,
            dkim,
            findings,
        }
    }
}

/// Answers the walk's queries one by one (each depends on the records before it). Once
/// `budget` is spent, the remaining queries are answered as temporary failures, so the walk
/// ends quickly with a temperror instead of running into the domain's deadline.
async fn walk_spf(dns: &dyn DnsLookup, domain: &str, budget: Duration) -> SpfOutcome {
    let started = Instant::now();
    let mut walk = SpfWalk::new(domain);
    while let Step::Query(query) = walk.step() {
        let left = budget.saturating_sub(started.elapsed());
        let answer = match tokio::time::timeout(left, lookup(dns, query.clone())).await {
            Ok(answer) => answer,
            Err(_) => {
                let why = DnsFailure::Temporary(format!(
                    "the SPF walk used up its {} s time budget",
                    budget.as_secs()
                ));
                match query {
                    Query::Txt(_) => Answer::Txt(Err(why)),
                    Query::Mx(_) => Answer::Mx(Err(why)),
                    Query::Addresses { .. } => Answer::Addresses(Err(why)),
                }
            }
        };
        walk.answer(answer);
    }
    walk.finish()
}

async fn lookup(dns: &dyn DnsLookup, query: Query) -> Answer {
    match query {
        Query::Txt(name) => spf::txt_answer(dns.txt(&name).await),
        Query::Mx(name) => Answer::Mx(
            dns.mx(&name)
                .await
                .map(|mx| mx.into_iter().map(|m| m.exchange).collect())
                .map_err(|e| spf::failure(&e)),
        ),
        Query::Addresses { name, .. } => {
            Answer::Addresses(dns.ip(&name).await.map_err(|e| spf::failure(&e)))
        }
    }
}
