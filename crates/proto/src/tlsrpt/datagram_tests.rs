//! Tests of the libtlsrpt datagram reader.

use super::*;

#[test]
fn a_postfix_datagram_is_read() {
    let bytes = br#"{"dpv": "1","d": "Example.COM.","pr": "v=TLSRPTv1; rua=mailto:t@example.com","policies":[{"policy-type":2,"policy-domain": "example.com","policy-string":["version: STSv1"],"mx-host":["*.mx.example.com"],"failure-details":[{"c":204,"s": "192.0.2.1","n": "a.mx.example.com"}],"t":1,"f":1}]}"#;
    let result = parse_datagram(bytes).unwrap();
    assert_eq!(result.domain, "example.com");
    assert!(result.policies[0].failed);
    assert_eq!(
        result.policies[0].failures[0].result_type,
        ResultType::CertificateExpired
    );
}
