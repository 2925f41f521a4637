//! TLS-ALPN-01 (RFC 8737) on the policy host's port.

use std::sync::Arc;
use std::time::Duration;

use mtasts_host::policy_host::certified_key_from_pem;
use tokio::io::AsyncWriteExt;

use crate::policy_host::common::*;

const ACME: &[u8] = b"acme-tls/1";

#[tokio::test]
async fn acme_tls_alpn_gets_only_the_challenge_certificate() {
    let site = Site::start().await;
    // A stand-in for the challenge certificate (the real one carries the acmeIdentifier
    // extension; the listener does not look inside).
    let challenge =
        rcgen::generate_simple_self_signed(vec!["mta-sts.a.example".to_string()]).unwrap();
    let challenge_key = certified_key_from_pem(
        &challenge.cert.pem(),
        &challenge.signing_key.serialize_pem(),
    )
    .unwrap();
    site.update(|s| {
        s.challenges
            .tls_alpn01
            .insert("mta-sts.a.example".to_string(), Arc::clone(&challenge_key));
    });

    for offered in [&[ACME][..], &[b"h2", ACME, b"http/1.1"][..]] {
        let mut tls = site
            .tls("mta-sts.a.example", true, offered, Trust::Any)
            .await
            .expect("the validation handshake completes");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ACME));
        assert_eq!(peer_cert(&tls), *challenge.cert.der());
        // Nothing is served after the handshake: the server closes.
        let _ = tls
            .write_all(
                format!("GET {POLICY_PATH} HTTP/1.1\r\nHost: mta-sts.a.example\r\n\r\n").as_bytes(),
            )
            .await;
        let rest = read_to_close(&mut tls, Duration::from_secs(5))
            .await
            .expect("closed after the handshake");
        assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    }

    // The same name without acme-tls/1: the normal certificate, and the policy.
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let tls = site
            .tls("mta-sts.a.example", true, &[alpn], Trust::TestCa)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        assert_eq!(peer_cert(&tls), site.a_cert.chain[0]);
    }
    let report = site.fetch("a.example").await;
    assert_eq!(report.outcome.unwrap().body, POLICY_A.as_bytes());
}

#[tokio::test]
async fn acme_tls_alpn_without_a_challenge_fails_the_handshake() {
    let site = Site::start().await;
    for sni in [
        "mta-sts.a.example",
        "mta-sts.unknown.example",
        FALLBACK_NAME,
    ] {
        let result = site.tls(sni, true, &[ACME], Trust::Any).await;
        assert!(
            result.is_err(),
            "{sni}: a handshake without a challenge certificate"
        );
    }
    assert!(
        site.tls("mta-sts.a.example", false, &[ACME], Trust::Any)
            .await
            .is_err()
    );
    // Other connections are unaffected.
    assert!(site.fetch("a.example").await.outcome.is_ok());
}
