//! The evidence `mtasts_proto::readiness` judges, built from what the reports database
//! stores: the daily rollups, the failure and source groupings, and the latest policy seen.
//! `mtasts report summary` and `mtasts serve` both build it here, so their verdicts agree.

use mtasts_proto::readiness::dmarc::{DmarcDay, DmarcEvidence, DmarcSource};
use mtasts_proto::readiness::tls::{Published, TlsDay, TlsEvidence, TlsFailure};
use mtasts_proto::sts::mx_pattern::MxPattern;
use mtasts_store::reports::{
    DailyRow, FailureGroup, Filter, Kind, PolicySeen, ReportDb, ReportDbError, SourceGroup,
};
use serde_json::Value;

/// The TLS evidence of `domain` from its rollups (`days`: TLS rows of that domain), its
/// failure groups, the latest policy senders saw, and that policy's `mx` patterns.
pub fn tls_evidence(
    domain: &str,
    days: &[DailyRow],
    failures: &[FailureGroup],
    policy: Option<&PolicySeen>,
    mx: Vec<MxPattern>,
    now: i64,
) -> TlsEvidence {
    TlsEvidence {
        domain: domain.to_owned(),
        days: days
            .iter()
            .map(|d| TlsDay {
                day: d.day,
                organization: d.organization.clone(),
                success: d.success,
                failure: d.failure,
            })
            .collect(),
        failures: failures
            .iter()
            .map(|g| TlsFailure {
                result: g.result.parse().unwrap_or_else(|e| match e {}),
                receiving_mx: g.receiving_mx.clone(),
                organization: g.organization.clone(),
                count: g.count,
                first_day: g.first_day,
                last_day: g.last_day,
            })
            .collect(),
        published: policy
            .map(|p| Published::from_label(&p.policy))
            .unwrap_or(Published::Unknown),
        mx,
        now,
    }
}

/// The DMARC evidence of `domain` from its rollups (`days`: DMARC rows of that domain), its
/// sources and the latest policy published.
pub fn dmarc_evidence(
    domain: &str,
    days: &[DailyRow],
    sources: &[SourceGroup],
    policy: Option<&PolicySeen>,
    now: i64,
) -> DmarcEvidence {
    DmarcEvidence {
        domain: domain.to_owned(),
        days: days
            .iter()
            .map(|d| DmarcDay {
                day: d.day,
                organization: d.organization.clone(),
                messages: d.messages,
                dmarc_pass: d.dmarc_pass,
            })
            .collect(),
        sources: sources
            .iter()
            .map(|s| DmarcSource {
                source_ip: s.source_ip.clone(),
                header_from: s.header_from.clone(),
                messages: s.messages,
                dmarc_pass: s.dmarc_pass,
                dkim_pass: s.dkim_pass,
                spf_pass: s.spf_pass,
            })
            .collect(),
        p: policy.and_then(|p| p.p.clone()),
        now,
    }
}

/// Sorts DMARC sources as they are shown and judged: most failing messages first, then most
/// messages, then by address.
pub fn worst_sources_first(sources: &mut [SourceGroup]) {
    sources.sort_by(|a, b| {
        (b.messages - b.dmarc_pass.min(b.messages))
            .cmp(&(a.messages - a.dmarc_pass.min(a.messages)))
            .then(b.messages.cmp(&a.messages))
            .then_with(|| a.source_ip.cmp(&b.source_ip))
    });
}

/// The latest policy of `kind` seen for `domain` among `policies`.
pub fn latest_policy(policies: &[PolicySeen], kind: Kind, domain: &str) -> Option<PolicySeen> {
    policies
        .iter()
        .filter(|p| p.kind == kind && p.domain == domain)
        .max_by_key(|p| p.last_seen)
        .cloned()
}

/// The `mx` patterns of the STS policy senders saw in the newest TLS report for `domain`
/// that `filter` selects (empty when there is none: the MX list is then not judged). Reads
/// one report's normalized JSON.
pub async fn policy_mx(
    db: &ReportDb,
    domain: &str,
    filter: &Filter,
) -> Result<Vec<MxPattern>, ReportDbError> {
    let f = Filter {
        domain: Some(domain.to_owned()),
        kind: Some(Kind::TlsRpt),
        ..filter.clone()
    };
    let Some(row) = db.list(&f, 1).await?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let Some(stored) = db.get(row.id).await? else {
        return Ok(Vec::new());
    };
    Ok(mx_patterns(&stored.normalized, domain))
}

/// The `mx` patterns of the `sts` policies for `domain` in a report's normalized JSON: its
/// `mx-host` list when the sender copied it, else the policy's own `mx:` lines.
pub fn mx_patterns(normalized: &str, domain: &str) -> Vec<MxPattern> {
    let report: Value = serde_json::from_str(normalized).unwrap_or(Value::Null);
    let mut patterns = Vec::new();
    for policy in report["policies"].as_array().into_iter().flatten() {
        let same_domain = policy["domain"]
            .as_str()
            .is_some_and(|d| d.trim_end_matches('.').eq_ignore_ascii_case(domain));
        if policy["type"] != "sts" || !same_domain {
            continue;
        }
        let listed: Vec<&str> = policy["mx"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let lines: Vec<&str> = policy["strings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|line| line.trim().strip_prefix("mx:"))
            .collect();
        let values = if listed.is_empty() { lines } else { listed };
        for value in values {
            if let Ok(p) = value.trim().parse::<MxPattern>()
                && !patterns.contains(&p)
            {
                patterns.push(p);
            }
        }
    }
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_patterns_prefer_the_copied_list_and_fall_back_to_the_policy_lines() {
        let copied = r#"{"policies": [{"type": "sts", "domain": "Example.COM.",
            "mx": ["mx1.example.com", "*.mx.example.com", "mx1.example.com"],
            "strings": ["version: STSv1", "mx: other.example.com"]}]}"#;
        let got: Vec<String> = mx_patterns(copied, "example.com")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["mx1.example.com", "*.mx.example.com"]);
        let lines = r#"{"policies": [{"type": "sts", "domain": "example.com",
            "strings": ["version: STSv1", "mx: other.example.com", "mode: testing"]},
            {"type": "sts", "domain": "elsewhere.example", "strings": ["mx: no.example"]},
            {"type": "tlsa", "domain": "example.com", "strings": ["mx: no.example"]}]}"#;
        let got: Vec<String> = mx_patterns(lines, "example.com")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["other.example.com"]);
        assert!(mx_patterns("not json", "example.com").is_empty());
    }

    #[test]
    fn sources_are_worst_first() {
        let source = |ip: &str, messages, pass| SourceGroup {
            domain: "example.com".into(),
            source_ip: ip.into(),
            header_from: "example.com".into(),
            messages,
            dmarc_pass: pass,
            dkim_pass: pass,
            spf_pass: 0,
            none: messages,
            quarantine: 0,
            reject: 0,
        };
        let mut sources = vec![
            source("192.0.2.1", 100, 100),
            source("192.0.2.2", 10, 0),
            source("192.0.2.3", 50, 40),
            source("192.0.2.0", 10, 0),
        ];
        worst_sources_first(&mut sources);
        let order: Vec<&str> = sources.iter().map(|s| s.source_ip.as_str()).collect();
        // .3, .0 and .2 fail 10 each: the larger source first, then by address.
        assert_eq!(order, ["192.0.2.3", "192.0.2.0", "192.0.2.2", "192.0.2.1"]);
    }
}
