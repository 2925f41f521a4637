//! The steps of one discovery read into typed state and details: the `_mta-sts` TXT lookup,
//! the stored policy, and the policy fetch.

use mtasts_net::dns::DnsLookup;
use mtasts_net::fetch::FetchReport;
use mtasts_proto::ResultType;
use mtasts_proto::sts::cache::{CacheError, CachedPolicy, Step, TxtState};
use mtasts_proto::sts::record;
use mtasts_proto::txt::Selection;
use mtasts_store::{Entry, EntryState};

use super::outcome::{FetchDetails, TxtDetails};

/// The `_mta-sts` TXT lookup, classified.
pub(crate) async fn txt(dns: &dyn DnsLookup, domain: &str) -> (TxtState, TxtDetails) {
    let name = mtasts_proto::sts::record_name(domain);
    let mut details = TxtDetails {
        name: name.clone(),
        status: "no-record",
        id: None,
        record: None,
        error: None,
    };
    let rrset = match dns.txt(&name).await {
        Ok(rrset) => rrset,
        Err(e) if e.is_not_found() => {
            details.error = Some(e.to_string());
            return (TxtState::NoRecord, details);
        }
        Err(e) => {
            details.status = "temp-error";
            details.error = Some(e.to_string());
            return (TxtState::TempError, details);
        }
    };
    let state = match record::select(&rrset) {
        Selection::Found { record, raw, .. } => {
            details.status = "record";
            details.id = Some(record.id.as_str().to_string());
            details.record = Some(raw);
            TxtState::Record(record.id)
        }
        Selection::Missing { .. } => TxtState::NoRecord,
        Selection::Multiple { raws, .. } => {
            details.status = "multiple";
            details.record = Some(raws.join("; "));
            details.error = Some("more than one v=STSv1 record".to_string());
            TxtState::NoRecord
        }
        Selection::Invalid { raw, error, .. } => {
            details.status = "invalid";
            details.record = Some(raw);
            details.error = Some(error.to_string());
            TxtState::NoRecord
        }
    };
    (state, details)
}

/// The cached policy of an entry, if it holds a valid one.
pub(crate) fn stored_policy(domain: &str, entry: &Entry) -> Option<CachedPolicy> {
    match parse_stored(entry)? {
        Ok(policy) => Some(policy),
        Err(e) => {
            tracing::warn!(%domain, error = %e, "cached policy no longer parses; ignoring it");
            None
        }
    }
}

/// An entry's policy parsed again (`None`: the entry holds no policy), for callers that
/// decide themselves what a policy that no longer parses means.
pub(crate) fn parse_stored(entry: &Entry) -> Option<Result<CachedPolicy, CacheError>> {
    let EntryState::Policy {
        id,
        body,
        fetched_at,
    } = &entry.state
    else {
        return None;
    };
    Some(CachedPolicy::from_stored(id, body.clone(), *fetched_at))
}

/// The cache step as shown in [`super::DiscoveryDetails::step`].
pub(crate) fn step_name(step: Step) -> &'static str {
    match step {
        Step::UseCached => "use-cached",
        Step::Fetch => "fetch",
        Step::NoPolicy => "no-policy",
    }
}

/// The fetched policy, or the discovery outcome and RFC 8460 result type of the failure.
pub(crate) type FetchOutcome = Result<CachedPolicy, (&'static str, ResultType)>;

/// A fetch report read as the policy cached under the TXT record's `id`, or as the failure,
/// with the details shown to operators.
pub(crate) fn read_fetch(
    report: &FetchReport,
    id: mtasts_proto::sts::record::PolicyId,
    now: u64,
) -> (FetchOutcome, FetchDetails) {
    let mut details = FetchDetails {
        url: report.url.clone(),
        ip: report.ip.map(|ip| ip.to_string()),
        status: report.status,
        tls_version: report.tls_version.clone(),
        error: None,
        result_type: None,
    };
    let outcome = match &report.outcome {
        Err(e) => Err(("fetch-error", e.result_type(), e.to_string())),
        Ok(fetched) => match String::from_utf8(fetched.body.clone()) {
            Err(_) => Err((
                "invalid",
                ResultType::StsPolicyInvalid,
                "the policy is not UTF-8".to_string(),
            )),
            Ok(body) => CachedPolicy::new(id, body, now).map_err(|e| {
                let message = match &e {
                    CacheError::Policy(p) => p.to_string(),
                    other => other.to_string(),
                };
                ("invalid", ResultType::StsPolicyInvalid, message)
            }),
        },
    };
    let outcome = outcome.map_err(|(outcome, result_type, error)| {
        details.error = Some(error);
        details.result_type = Some(result_type.to_string());
        (outcome, result_type)
    });
    (outcome, details)
}
