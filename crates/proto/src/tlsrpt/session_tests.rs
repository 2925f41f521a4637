//! Tests of session results: canonical keys (examples and round-trip properties), the domain
//! key rule, and the JSON intake format (every error kind, never panics).

use super::*;

fn sts() -> PolicyKey {
    PolicyKey {
        policy_type: PolicyType::Sts,
        domain: Some("example.com".into()),
        strings: vec!["version: STSv1".into(), "mode: testing".into()],
        mx: vec!["*.mx.example.com".into()],
    }
}

#[test]
fn policy_key_is_compact_json_with_rfc_names() {
    assert_eq!(
        sts().to_key(),
        r#"{"policy-type":"sts","policy-string":["version: STSv1","mode: testing"],"policy-domain":"example.com","mx-host":["*.mx.example.com"]}"#
    );
    let none = PolicyKey {
        policy_type: PolicyType::NoPolicyFound,
        domain: None,
        strings: vec![],
        mx: vec![],
    };
    assert_eq!(
        none.to_key(),
        r#"{"policy-type":"no-policy-found","policy-string":[]}"#
    );
    assert_eq!(PolicyKey::from_key(&none.to_key()).unwrap(), none);
    assert_eq!(PolicyKey::from_key(&sts().to_key()).unwrap(), sts());
}
