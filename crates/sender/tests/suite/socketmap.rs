//! Socketmap answers and framing, over real sockets.

use mtasts_proto::socketmap::encode_netstring;
use mtasts_testkit::TestNet;

use super::world::*;

#[tokio::test]
async fn enforce_domain_gets_secure_with_the_policy_patterns() {
    let net = TestNet::start().await;
    sts_domain(&net, "enforce.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    assert_eq!(
        world.ask("postfix", "enforce.test").await,
        secure_answer("enforce.test")
    );
    // Key forms Postfix sends: case, trailing dot, brackets and ports.
    for key in [
        "Enforce.TEST.",
        "[enforce.test]",
        "[enforce.test]:587",
        "enforce.test:25",
    ] {
        assert_eq!(
            world.ask("postfix", key).await,
            secure_answer("enforce.test"),
            "{key}"
        );
    }
}

#[tokio::test]
async fn profiles_shape_the_answer() {
    let net = TestNet::start().await;
    sts_domain(&net, "enforce.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    assert_eq!(
        world.ask("postfix-pre34", "enforce.test").await,
        "OK secure match=mx.enforce.test:.mx.enforce.test"
    );
    let with_attributes = world.ask("postfix310", "enforce.test").await;
    assert!(
        with_attributes.starts_with(&format!(
            "{} policy_type=sts policy_domain=enforce.test mx_host_pattern=mx.enforce.test mx_host_pattern=*.mx.enforce.test {{ policy_string = version: STSv1 }}",
            secure_answer("enforce.test")
        )),
        "{with_attributes}"
    );
    // Unknown names get the default profile.
    assert_eq!(
        world.ask("anything", "enforce.test").await,
        secure_answer("enforce.test")
    );
}

#[tokio::test]
async fn testing_is_notfound_unless_the_profile_treats_it_as_enforce() {
    let net = TestNet::start().await;
    sts_domain(&net, "testing.test", "testing", "1").await;
    let world = World::start(net, "").await;
    assert_eq!(world.ask("postfix", "testing.test").await, "NOTFOUND ");
    assert_eq!(
        world.ask("strict-testing", "testing.test").await,
        secure_answer("testing.test")
    );
}

#[tokio::test]
async fn mode_none_and_no_record_are_notfound() {
    let net = TestNet::start().await;
    net.add_sts_domain(
        "none.test",
        "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n",
        "v=STSv1; id=1",
    )
    .await;
    let world = World::start(net, "").await;
    assert_eq!(world.ask("postfix", "none.test").await, "NOTFOUND ");
    assert_eq!(world.ask("postfix", "plain.test").await, "NOTFOUND ");
}

#[tokio::test]
async fn parent_probes_and_address_literals_are_notfound_without_dns() {
    let net = TestNet::start().await;
    sts_domain(&net, "enforce.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    for key in [
        ".enforce.test",
        "[192.0.2.1]",
        "[2001:db8::1]:25",
        "[ipv6:2001:db8::1]",
        "192.0.2.1",
        "not a domain",
    ] {
        assert_eq!(world.ask("postfix", key).await, "NOTFOUND ", "{key}");
    }
    assert_eq!(world.net.zone().queries(), vec![]);
}

#[tokio::test]
async fn static_levels_win_over_mta_sts() {
    let net = TestNet::start().await;
    sts_domain(&net, "enforce.test", "enforce", "1").await;
    let world = World::start(
        net,
        r#"
[tls_levels]
"enforce.test" = "encrypt"
".corp.test" = { level = "secure", match = ["mx.corp.test", ".corp.test"] }
"legacy.test" = "may"
"#,
    )
    .await;
    assert_eq!(world.ask("postfix", "enforce.test").await, "OK encrypt");
    assert_eq!(
        world.ask("postfix", "eu.corp.test").await,
        "OK secure match=mx.corp.test:.corp.test servername=hostname"
    );
    assert_eq!(world.ask("postfix", "legacy.test").await, "OK may");
    // The static entry spared the lookup.
    assert_eq!(fetches(&world.net, "enforce.test"), 0);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let net = TestNet::start().await;
    sts_domain(&net, "a.test", "enforce", "1").await;
    sts_domain(&net, "b.test", "testing", "1").await;
    let world = World::start(net, "").await;
    let mut client = world.client().await;
    let mut wire = Vec::new();
    for key in ["a.test", "b.test", ".a.test", "a.test"] {
        wire.extend(encode_netstring(format!("postfix {key}").as_bytes()));
    }
    client.send_raw(&wire).await;
    assert_eq!(client.reply().await.unwrap(), secure_answer("a.test"));
    assert_eq!(client.reply().await.unwrap(), "NOTFOUND ");
    assert_eq!(client.reply().await.unwrap(), "NOTFOUND ");
    assert_eq!(client.reply().await.unwrap(), secure_answer("a.test"));
}

#[tokio::test]
async fn malformed_or_oversized_netstrings_close_only_their_connection() {
    let net = TestNet::start().await;
    sts_domain(&net, "a.test", "enforce", "1").await;
    let world = World::start(net, "").await;
    let mut keeper = world.client().await;
    assert_eq!(
        keeper.ask("postfix", "a.test").await,
        secure_answer("a.test")
    );

    let mut bad = world.client().await;
    bad.send_raw(b"abc:postfix a.test,").await;
    assert_eq!(bad.reply().await, None);

    let mut no_comma = world.client().await;
    no_comma.send_raw(b"14:postfix a.test;").await;
    assert_eq!(no_comma.reply().await, None);

    let mut oversized = world.client().await;
    let mut payload = b"postfix ".to_vec();
    payload.resize(10_001, b'a');
    oversized.send_raw(&encode_netstring(&payload)).await;
    assert_eq!(oversized.reply().await, None);

    // A well-framed request that is not `NAME KEY` is answered, and the connection stays.
    let mut odd = world.client().await;
    odd.send_raw(&encode_netstring(b"nospace")).await;
    assert!(odd.reply().await.unwrap().starts_with("PERM "));
    assert_eq!(odd.ask("postfix", "a.test").await, secure_answer("a.test"));

    assert_eq!(
        keeper.ask("postfix", "a.test").await,
        secure_answer("a.test")
    );
    let metrics = world.daemon.metrics().encode();
    assert!(
        metrics.contains("mtasts_socketmap_errors_total{kind=\"framing\"} 3"),
        "{metrics}"
    );
}
