//! The DMARC lookups of one check: every `_dmarc` name either kind of receiver queries, at
//! once, then the §7.1 authorization names of the external report destinations.

use mtasts_proto::dmarc::discovery::names_to_query;

use super::Checker;
use crate::finding::Finding;
use crate::report_dmarc::DmarcReport;
use crate::stages::dmarc::{self, Answers};

impl Checker {
    /// Looks up and evaluates the DMARC record of `domain`.
    pub(super) async fn observe_dmarc(&self, domain: &str) -> (DmarcReport, Vec<Finding>) {
        let names = names_to_query(domain);
        let answers = futures::future::join_all(names.into_iter().map(|name| async move {
            let answer = self.dns.txt(&name).await;
            (name, answer)
        }))
        .await;
        let answers = Answers::new(answers);
        let auth_names = dmarc::authorization_names(domain, &answers);
        let authorizations =
            futures::future::join_all(auth_names.into_iter().map(|name| async move {
                let answer = self.dns.txt(&name).await;
                (name, answer)
            }))
            .await;
        dmarc::evaluate(domain, &answers, &authorizations)
    }
}
