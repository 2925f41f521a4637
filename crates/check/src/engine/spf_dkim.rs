//! The SPF and DKIM stages of the engine: drives the SPF tree walk with DNS answers and looks up
//! the key record of every DKIM selector asked for.

use mtasts_net::dns::DnsLookup;
use mtasts_proto::spf::{Answer, Query, SpfOutcome, SpfWalk, Step};

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
                Some(spf::report(walk_spf(self.dns.as_ref(), domain).await))
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

/// Answers the walk's queries one by one (each depends on the records before it).
async fn walk_spf(dns: &dyn DnsLookup, domain: &str) -> SpfOutcome {
    let mut walk = SpfWalk::new(domain);
    while let Step::Query(query) = walk.step() {
        let answer = match query {
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
        };
        walk.answer(answer);
    }
    walk.finish()
}
