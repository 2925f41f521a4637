//! DANE precedence: MTA-STS never overrides DNSSEC-authenticated TLSA records (RFC 8461 §2),
//! which count only behind a DNSSEC-authenticated MX RRset (as in Postfix).

use std::net::Ipv4Addr;

use mtasts_testkit::{Fault, TestNet};

use super::world::*;

/// An enforce MTA-STS domain whose MX hosts are `mx1.<domain>` and `mx2.<domain>` (an
/// authenticated MX RRset), with authenticated TLSA records on the hosts listed in `tlsa`.
async fn domain(net: &TestNet, domain: &str, tlsa: &[&str]) {
    unsigned_mx_domain(net, domain, tlsa).await;
    net.zone().set_secure(domain, true);
}

/// Like [`domain`], but the MX RRset is not authenticated (the TLSA records still are).
async fn unsigned_mx_domain(net: &TestNet, domain: &str, tlsa: &[&str]) {
    sts_domain(net, domain, "enforce", "1").await;
    for (pref, host) in [(10, "mx1"), (20, "mx2")] {
        net.zone().add_mx(domain, pref, &format!("{host}.{domain}"));
    }
    for host in tlsa {
        let name = format!("_25._tcp.{host}.{domain}");
        net.zone().add_tlsa(&name, 3, 1, 1, &[0xab; 32]);
        net.zone().set_secure(&name, true);
    }
}

/// A daemon with DANE on or off.
async fn world(net: TestNet, dane: bool) -> World {
    let net = std::sync::Arc::new(net);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    World::start_in(net, dir, "", |config| config.dane = dane).await
}

#[tokio::test]
async fn every_mx_with_tlsa_is_dane_only() {
    let net = TestNet::start().await;
    domain(&net, "all.test", &["mx1", "mx2"]).await;
    let world = world(net, true).await;
    assert_eq!(world.ask("postfix", "all.test").await, "OK dane-only");
    let (_, _, body) = world.http_get("/v1/policy/all.test").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["source"], "dane");
    assert_eq!(json["dane"]["level"], "dane-only");
    assert_eq!(json["dane"]["mx_authenticated"], true);
    assert_eq!(json["dane"]["implicit_mx"], false);
    assert_eq!(json["dane"]["hosts"][0]["authenticated"], true);
    // DANE decided: the MTA-STS policy was not even fetched.
    assert_eq!(fetches(&world.net, "all.test"), 0);
}

#[tokio::test]
async fn some_mx_with_tlsa_is_dane() {
    let net = TestNet::start().await;
    domain(&net, "some.test", &["mx2"]).await;
    let world = world(net, true).await;
    assert_eq!(world.ask("postfix", "some.test").await, "OK dane");
}

#[tokio::test]
async fn unauthenticated_tlsa_leaves_the_decision_to_mta_sts() {
    let net = TestNet::start().await;
    domain(&net, "unsigned.test", &[]).await;
    net.zone()
        .add_tlsa("_25._tcp.mx1.unsigned.test", 3, 1, 1, &[0xab; 32]);
    let world = world(net, true).await;
    assert_eq!(
        world.ask("postfix", "unsigned.test").await,
        secure_answer("unsigned.test")
    );
}

#[tokio::test]
async fn a_failing_tlsa_lookup_is_temp_not_mta_sts() {
    let net = TestNet::start().await;
    domain(&net, "broken.test", &["mx1"]).await;
    net.zone()
        .set_fault("_25._tcp.mx2.broken.test", Fault::ServFail);
    let world = world(net, true).await;
    let answer = world.ask("postfix", "broken.test").await;
    assert!(answer.starts_with("TEMP "), "{answer}");
}

/// Postfix uses TLSA records only behind a DNSSEC-validated MX RRset: without it, a
/// `dane-only` answer would just defer the mail, and MTA-STS overrides no DANE.
#[tokio::test]
async fn an_unauthenticated_mx_rrset_leaves_the_decision_to_mta_sts() {
    let net = TestNet::start().await;
    unsigned_mx_domain(&net, "insecure-mx.test", &["mx1", "mx2"]).await;
    let world = world(net, true).await;
    assert_eq!(
        world.ask("postfix", "insecure-mx.test").await,
        secure_answer("insecure-mx.test")
    );
    let (_, _, body) = world.http_get("/v1/policy/insecure-mx.test").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["source"], "cache");
    assert_eq!(fetches(&world.net, "insecure-mx.test"), 1);
    // The TLSA records were not even asked for.
    assert!(
        !world
            .net
            .zone()
            .queries()
            .iter()
            .any(|(_, t)| t.to_string() == "TLSA"),
        "{:?}",
        world.net.zone().queries()
    );
    // Once the MX RRset is authenticated (after the finding's lifetime), DANE applies.
    world.net.zone().set_secure("insecure-mx.test", true);
    world.clock.advance(301);
    assert_eq!(
        world.ask("postfix", "insecure-mx.test").await,
        "OK dane-only"
    );
}

#[tokio::test]
async fn an_unauthenticated_mx_rrset_also_hides_a_failing_tlsa_lookup() {
    let net = TestNet::start().await;
    unsigned_mx_domain(&net, "insecure-broken.test", &["mx1"]).await;
    net.zone()
        .set_fault("_25._tcp.mx2.insecure-broken.test", Fault::ServFail);
    let world = world(net, true).await;
    assert_eq!(
        world.ask("postfix", "insecure-broken.test").await,
        secure_answer("insecure-broken.test")
    );
}

#[tokio::test]
async fn a_failing_mx_lookup_is_temp() {
    let net = TestNet::start().await;
    domain(&net, "mxfail.test", &["mx1", "mx2"]).await;
    // Only queries for the domain itself (its MX) fail; `_mta-sts.` and `mta-sts.` answer.
    net.zone().set_fault("mxfail.test", Fault::ServFail);
    let world = world(net, true).await;
    let answer = world.ask("postfix", "mxfail.test").await;
    assert!(answer.starts_with("TEMP "), "{answer}");
}

/// A domain without MX records is its own MX host; its address records stand in for the
/// MX RRset and must be authenticated.
#[tokio::test]
async fn a_domain_without_mx_is_its_own_mx_host() {
    let net = TestNet::start().await;
    for domain in ["nomx.test", "nomx-unsigned.test"] {
        sts_domain(&net, domain, "enforce", "1").await;
        net.zone().add_a(domain, Ipv4Addr::new(127, 0, 0, 25));
        let tlsa = format!("_25._tcp.{domain}");
        net.zone().add_tlsa(&tlsa, 3, 1, 1, &[0xcd; 32]);
        net.zone().set_secure(&tlsa, true);
    }
    net.zone().set_secure("nomx.test", true);
    let world = world(net, true).await;
    assert_eq!(world.ask("postfix", "nomx.test").await, "OK dane-only");
    let (_, _, body) = world.http_get("/v1/policy/nomx.test").await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["dane"]["implicit_mx"], true);
    assert_eq!(json["dane"]["mx_authenticated"], true);
    assert_eq!(json["dane"]["hosts"][0]["host"], "nomx.test");
    assert_eq!(
        world.ask("postfix", "nomx-unsigned.test").await,
        secure_answer("nomx-unsigned.test")
    );
}

#[tokio::test]
async fn dane_is_off_unless_configured() {
    let net = TestNet::start().await;
    domain(&net, "off.test", &["mx1", "mx2"]).await;
    let world = world(net, false).await;
    assert_eq!(
        world.ask("postfix", "off.test").await,
        secure_answer("off.test")
    );
}
