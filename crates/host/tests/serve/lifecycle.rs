//! The whole life of a hosted domain on one node (SQLite), as the acceptance run.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use mtasts_host::serve::Serve;
use mtasts_testkit::TestNet;
use mtasts_testkit::smtp::MxHostSpec;
use serde_json::json;

use crate::support;

use super::harness::{
    Ports, api, config, delegate, eventually, fetch_policy, pebble, resolver, txt_id,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_domain_from_onboarding_to_removal() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MTASTS_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_test_writer()
        .try_init();
    let net = TestNet::start().await;
    let ip = net.next_ip();
    let ports = Ports::pick(ip).await;
    let Some(pebble) = pebble(&net, ports).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("serve.db").display());
    let serve = Serve::start(config(&net, ip, ports, database, &pebble, dir.path()))
        .await
        .unwrap();
    let admin = serve
        .admin_token()
        .expect("a new database prints an admin token")
        .to_owned();

    // The owner's mail setup (the CNAMEs onboarding asks for follow once the domain is added:
    // their TXT targets name the tenant).
    net.add_mx_host("mail.example.com", MxHostSpec::default())
        .await;
    net.zone().add_mx("example.com", 10, "mail.example.com");

    // Two tenants with their own tokens.
    let api_addr = serve.addrs().api;
    for name in ["acme", "other"] {
        support::api::create_tenant(api_addr, &admin, name).await;
    }
    let owner = support::api::create_token(api_addr, &admin, "acme", "owner", "test").await;
    let stranger = support::api::create_token(api_addr, &admin, "other", "owner", "test").await;

    // Add the domain without mx: the service looks the MX records up.
    let (status, body) = api(
        &serve,
        Method::POST,
        "/api/v1/domains",
        &owner,
        Some(
            json!({"domain": "example.com", "mode": "testing", "rua": "mailto:tlsrpt@example.com"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["mx"], json!(["mail.example.com"]));
    let tenant_id = serve
        .db()
        .domain("example.com")
        .await
        .unwrap()
        .unwrap()
        .tenant_id;
    let records = body["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["name"] == "_mta-sts.example.com"
        && r["target"] == format!("_mta-sts.example.com.t{tenant_id}.hosted.test")));
    assert!(records.iter().any(|r| r["name"] == "_smtp._tls.example.com"
        && r["target"] == format!("_smtp._tls.example.com.t{tenant_id}.hosted.test")));
    delegate(&net, &serve, "example.com", serve.addrs().dns[0]).await;
    assert!(
        records
            .iter()
            .any(|r| r["name"] == "mta-sts.example.com" && r["target"] == "policy.hosted.test")
    );

    // The delegated TXT answers once every node (this one) serves the policy.
    let dns = resolver(&net);
    let first_id = eventually(
        "the delegated TXT record",
        Duration::from_secs(20),
        || async { txt_id(dns.as_ref(), "example.com").await },
    )
    .await;

    // The certificate comes from Pebble through HTTP-01, and a strict sender fetches the policy.
    let body = eventually(
        "the policy over HTTPS with an ACME certificate",
        Duration::from_secs(60),
        || async {
            fetch_policy(dns.clone(), &pebble, ports.https, "example.com")
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(
        body,
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmax_age: 604800\r\n"
    );

    // The report host's own certificate (one order for reports.hosted.test and
    // mta-sts.reports.hosted.test) comes from Pebble too, once the zone answers for those
    // names, and its own policy passes the strict fetch.
    let own = eventually(
        "the report host's own policy over HTTPS",
        Duration::from_secs(60),
        || async {
            fetch_policy(dns.clone(), &pebble, ports.https, "reports.hosted.test")
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(
        own,
        "version: STSv1\r\nmode: testing\r\nmx: reports.hosted.test\r\nmax_age: 86400\r\n"
    );
    let stored = serve
        .db()
        .certificate("reports.hosted.test")
        .await
        .unwrap()
        .expect("the service certificate is stored under the report host");
    let chain = mtasts_net::pem::parse_chain(stored.chain_pem.as_bytes()).unwrap();
    let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref()).unwrap();
    let mut names: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["mta-sts.reports.hosted.test", "reports.hosted.test"]
    );
    // The SMTP intake presents that certificate at STARTTLS once the snapshot has it.
    let smtp = serve.addrs().smtp[0];
    let issuance = pebble.issuance_root_pem().to_owned();
    let version = eventually(
        "STARTTLS on the SMTP intake with the service certificate",
        Duration::from_secs(30),
        || starttls_version(smtp, issuance.clone()),
    )
    .await;
    assert!(version.starts_with("TLSv1."), "{version}");
    let (_, detail) = api(
        &serve,
        Method::GET,
        "/api/v1/domains/example.com",
        &owner,
        None,
    )
    .await;
    assert_eq!(detail["certificate"]["status"], "valid", "{detail}");
    assert_eq!(detail["policy_id"], first_id.as_str());

    // A DMARC report names the DKIM selector the domain signs with; its key is not published.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let dmarc = format!(
        "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>receiver.example</org_name>\
         <email>r@receiver.example</email><report_id>sel-1</report_id><date_range><begin>{}</begin>\
         <end>{}</end></date_range></report_metadata><policy_published><domain>example.com</domain>\
         <p>none</p></policy_published><record><row><source_ip>192.0.2.7</source_ip><count>12</count>\
         <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf>\
         </policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers>\
         <auth_results><dkim><domain>example.com</domain><selector>s2026</selector><result>pass</result>\
         </dkim><dkim><domain>esp.example</domain><selector>esp1</selector><result>pass</result></dkim>\
         <spf><domain>example.com</domain><result>pass</result></spf></auth_results></record></feedback>",
        now - 86_400,
        now - 1
    );
    mtasts_report::intake::Intake::new(serve.report_db().clone(), Default::default())
        .input(dmarc.as_bytes(), "test", 0)
        .await
        .unwrap();

    // Verification sees the delegation in place.
    let (status, verified) = api(
        &serve,
        Method::POST,
        "/api/v1/domains/example.com/verify",
        &owner,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    // The checker never connects to private or loopback addresses on a tenant's behalf
    // (this test's whole internet is loopback): the policy host looks absent to it.
    let findings = verified["verification"]["check"]["findings"].to_string();
    assert!(findings.contains("policy-fetch-failed"), "{findings}");
    assert!(findings.contains("has no address"), "{findings}");
    // The selector of the domain's own signatures was checked; the third party's was not.
    assert_eq!(
        verified["verification"]["check"]["dkim_selectors"],
        json!(["s2026"]),
        "{verified}"
    );
    assert!(findings.contains("dkim-key-missing"), "{findings}");
    assert!(
        findings.contains("s2026._domainkey.example.com"),
        "{findings}"
    );
    let records = verified["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{verified}");
    for record in records {
        assert_eq!(record["status"], "verified", "{record}");
    }
    // Senders find the service's report addresses and the owner's through the delegation.
    let rua = dns.txt("_smtp._tls.example.com").await.unwrap();
    assert_eq!(
        rua,
        vec![mtasts_proto::txt::TxtRr::single(
            "v=TLSRPTv1; rua=mailto:tlsrpt@reports.hosted.test,https://reports.hosted.test/tlsrpt,mailto:tlsrpt@example.com"
        )]
    );
    // The report host resolves, takes mail, and authorizes itself for the domain's DMARC
    // reports (RFC 7489 §7.1).
    assert_eq!(dns.ip("reports.hosted.test").await.unwrap(), vec![ip]);
    assert_eq!(
        dns.txt("example.com._report._dmarc.reports.hosted.test")
            .await
            .unwrap(),
        vec![mtasts_proto::txt::TxtRr::single("v=DMARC1")]
    );
    assert_eq!(
        dns.txt("other.example._report._dmarc.reports.hosted.test")
            .await,
        Err(mtasts_net::dns::DnsError::NxDomain)
    );
    // The TXT names are bound to the hosting tenant: under another tenant's label (where a
    // stale CNAME of another owner could point) they do not exist.
    for name in [
        format!("_mta-sts.example.com.t{}.hosted.test", tenant_id + 1),
        format!("_smtp._tls.example.com.t{}.hosted.test", tenant_id + 1),
    ] {
        assert_eq!(
            dns.txt(&name).await,
            Err(mtasts_net::dns::DnsError::NxDomain),
            "{name}"
        );
    }
    assert!(
        dns.txt(&format!("_mta-sts.example.com.t{tenant_id}.hosted.test"))
            .await
            .is_ok_and(|rrset| !rrset.is_empty())
    );

    // Another tenant cannot see it.
    for (method, path) in [
        (Method::GET, "/api/v1/domains/example.com"),
        (Method::PATCH, "/api/v1/domains/example.com"),
        (Method::DELETE, "/api/v1/domains/example.com"),
        (Method::GET, "/api/v1/domains/example.com/versions"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"mode": "none"}));
        let (status, _) = api(&serve, method.clone(), path, &stranger, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }

    // Enforce: the new policy is served first, the new id follows (RFC 8461 §8.1).
    let (status, body) = api(
        &serve,
        Method::PATCH,
        "/api/v1/domains/example.com",
        &owner,
        Some(json!({"mode": "enforce"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second_id = eventually("the enforce id", Duration::from_secs(20), || async {
        let id = txt_id(dns.as_ref(), "example.com").await?;
        if id == first_id {
            return None;
        }
        // Whenever the new id is visible, the new policy must already be served.
        let served = fetch_policy(dns.clone(), &pebble, ports.https, "example.com")
            .await
            .unwrap();
        assert!(
            served.contains("mode: enforce"),
            "id {id} published before its policy: {served}"
        );
        Some(id)
    })
    .await;
    let (_, versions) = api(
        &serve,
        Method::GET,
        "/api/v1/domains/example.com/versions",
        &owner,
        None,
    )
    .await;
    assert_eq!(
        versions["versions"].as_array().map(Vec::len),
        Some(2),
        "{versions}"
    );

    // Removal goes through mode: none under a new id (RFC 8461 §8.3).
    let (status, removing) = api(
        &serve,
        Method::DELETE,
        "/api/v1/domains/example.com",
        &owner,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{removing}");
    assert_eq!(removing["state"], "removing");
    assert!(removing["remove_after"].as_i64().unwrap() > 0);
    eventually("the mode: none id", Duration::from_secs(20), || async {
        let id = txt_id(dns.as_ref(), "example.com").await?;
        (id != second_id).then_some(())
    })
    .await;
    let served = fetch_policy(dns.clone(), &pebble, ports.https, "example.com")
        .await
        .unwrap();
    assert!(served.contains("mode: none"), "{served}");

    // While removing, the certificate is still renewed: senders must keep reaching the
    // `mode: none` policy. Make the stored one look old and due.
    let db = serve.db();
    let mut cert = db.certificate("example.com").await.unwrap().unwrap();
    let old_chain = cert.chain_pem.clone();
    cert.not_before -= 80 * 86_400;
    cert.not_after = cert.not_before + 90 * 86_400;
    db.put_certificate(cert).await.unwrap();
    eventually(
        "the renewal while removing",
        Duration::from_secs(60),
        || async {
            let now = db.certificate("example.com").await.ok()??;
            (now.chain_pem != old_chain).then_some(())
        },
    )
    .await;

    serve.shutdown().await;
}

/// Says EHLO and STARTTLS to the SMTP intake at `addr` and completes the handshake,
/// verifying `reports.hosted.test` against the Pebble issuance root `root_pem`: the TLS
/// version, or `None` while the ACME certificate is not issued yet (STARTTLS then presents
/// the self-signed fallback, which does not verify).
async fn starttls_version(addr: std::net::SocketAddr, root_pem: String) -> Option<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut io = BufReader::new(stream);
    let mut reply = String::new();
    let mut read_reply = async |io: &mut BufReader<tokio::net::TcpStream>| {
        reply.clear();
        loop {
            let mut line = String::new();
            if io.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Some(reply.clone());
            }
        }
    };
    read_reply(&mut io).await?;
    io.get_mut().write_all(b"EHLO sender.test\r\n").await.ok()?;
    let ehlo = read_reply(&mut io).await?;
    if !ehlo.contains("STARTTLS") {
        return None;
    }
    io.get_mut().write_all(b"STARTTLS\r\n").await.ok()?;
    assert!(read_reply(&mut io).await?.starts_with("220"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in mtasts_net::pem::parse_chain(root_pem.as_bytes()).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("reports.hosted.test").unwrap();
    let tls = connector.connect(name, io.into_inner()).await.ok()?;
    Some(format!("{:?}", tls.get_ref().1.protocol_version()?).replace("TLSv1_", "TLSv1."))
}
