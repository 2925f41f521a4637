//! What a tenant sees of a TLS report that also names domains it does not host (a sender may
//! put several recipient domains in one report, and they may belong to other tenants or to
//! nobody): only the policies of its own domains, in the normalized object and in the raw
//! document, and the session counts of those policies. DMARC reports name one domain, so a
//! tenant sees all of one or none of it.

use std::collections::BTreeSet;

use mtasts_store::reports::domain_key;
use serde_json::Value;

/// Whether every one of a report's domains (stored form) is in `own`.
pub(super) fn all_own(domains: &[String], own: &BTreeSet<String>) -> bool {
    domains.iter().all(|d| own.contains(d))
}

/// Keeps the policies of `own` domains in a TLS report's normalized object (the output
/// contract's `policies[].domain`); the successful and failed sessions of those kept.
pub(super) fn restrict_normalized(normalized: &mut Value, own: &BTreeSet<String>) -> (u64, u64) {
    let Some(policies) = normalized.get_mut("policies").and_then(Value::as_array_mut) else {
        return (0, 0);
    };
    policies.retain(|p| is_own(p.get("domain"), own));
    policies.iter().fold((0, 0), |(ok, failed), p| {
        (
            ok + p.get("success").and_then(Value::as_u64).unwrap_or(0),
            failed + p.get("failure").and_then(Value::as_u64).unwrap_or(0),
        )
    })
}

/// The raw TLS report with only the `policies` entries whose `policy-domain` is in `own`,
/// serialized again (the bytes as received would show the others); `None` when the document
/// is not a JSON object with a `policies` list (it was read leniently), and the caller then
/// shows the restricted normalized object instead.
pub(super) fn restrict_raw(raw: &[u8], own: &BTreeSet<String>) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(raw).ok()?;
    let policies = doc.get_mut("policies")?.as_array_mut()?;
    policies.retain(|p| is_own(p.get("policy").and_then(|p| p.get("policy-domain")), own));
    serde_json::to_vec_pretty(&doc).ok()
}

fn is_own(domain: Option<&Value>, own: &BTreeSet<String>) -> bool {
    domain
        .and_then(Value::as_str)
        .is_some_and(|d| own.contains(&domain_key(d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn own() -> BTreeSet<String> {
        BTreeSet::from(["example.com".to_owned()])
    }

    #[test]
    fn only_own_policies_remain() {
        let mut normalized = json!({"policies": [
            {"domain": "Example.COM.", "success": 5, "failure": 2},
            {"domain": "other.org", "success": 100, "failure": 50},
            {"domain": null, "success": 1, "failure": 1}]});
        assert_eq!(restrict_normalized(&mut normalized, &own()), (5, 2));
        assert_eq!(normalized["policies"].as_array().unwrap().len(), 1);

        let raw = br#"{"organization-name": "Org", "policies": [
            {"policy": {"policy-type": "sts", "policy-domain": "example.com"}},
            {"policy": {"policy-type": "sts", "policy-domain": "other.org"}},
            {"policy": {"policy-type": "no-policy-found"}}]}"#;
        let shown = restrict_raw(raw, &own()).unwrap();
        let text = String::from_utf8(shown).unwrap();
        assert!(
            text.contains("example.com") && text.contains("\"Org\""),
            "{text}"
        );
        assert!(!text.contains("other.org"), "{text}");
        assert!(!text.contains("no-policy-found"), "{text}");
    }

    #[test]
    fn documents_without_a_policies_list_are_not_restricted_in_place() {
        assert_eq!(restrict_raw(b"not json", &own()), None);
        assert_eq!(restrict_raw(br#"{"policies": 3}"#, &own()), None);
        let mut normalized = json!({"kind": "tlsrpt"});
        assert_eq!(restrict_normalized(&mut normalized, &own()), (0, 0));
    }

    #[test]
    fn all_own_needs_every_domain() {
        assert!(all_own(&["example.com".to_owned()], &own()));
        assert!(!all_own(
            &["example.com".to_owned(), "other.org".to_owned()],
            &own()
        ));
    }
}
