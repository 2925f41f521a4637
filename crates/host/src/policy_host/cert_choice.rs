//! Which certificate a TLS handshake gets ([`CertChooser`], rustls's `ResolvesServerCert` over
//! the snapshot), the TLS configuration around it, and loading certificates from PEM.

use std::sync::Arc;

use mtasts_net::pem::PemError;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use thiserror::Error;

use mtasts_proto::hosted::reporting::ReportAddresses;

use super::ListenerLimits;
use crate::snapshot::{Snapshot, SnapshotHandle};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737 §6.2).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Why [`certified_key_from_pem`] refused a certificate and key.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateError {
    /// The chain PEM holds no `CERTIFICATE` block.
    #[error("no certificate in the chain PEM")]
    NoCertificate,
    /// The chain PEM could not be read.
    #[error("invalid certificate PEM: {0}")]
    ChainPem(String),
    /// The key PEM holds no private key, or one that could not be read.
    #[error("invalid private key PEM: {0}")]
    KeyPem(String),
    /// The key is of a kind the crypto provider cannot sign with.
    #[error("unsupported private key: {0}")]
    UnsupportedKey(String),
    /// The key does not belong to the end-entity certificate.
    #[error("the private key does not match the certificate: {0}")]
    KeyMismatch(String),
}

/// Loads a certificate chain (end-entity first) and its private key (PKCS#8, PKCS#1 or SEC1)
/// from PEM, as the database stores them, into what rustls serves. Refuses a key that does
/// not belong to the end-entity certificate, so a half-written renewal cannot take a domain's
/// TLS down with "decrypt error" handshakes.
pub fn certified_key_from_pem(
    chain_pem: &str,
    key_pem: &str,
) -> Result<Arc<CertifiedKey>, CertificateError> {
    let chain = mtasts_net::pem::parse_chain(chain_pem.as_bytes()).map_err(|e| match e {
        PemError::Malformed { reason, .. } => CertificateError::ChainPem(reason),
        _ => CertificateError::NoCertificate,
    })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| CertificateError::KeyPem(e.to_string()))?;
    certified_key_from_der(chain, key, &provider())
}

fn certified_key_from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, CertificateError> {
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertificateError::UnsupportedKey(e.to_string()))?;
    // Compare the key with the leaf's SubjectPublicKeyInfo ourselves rather than through
    // `CertifiedKey::keys_match`, whose WebPKI parse refuses TLS-ALPN-01 challenge
    // certificates (their acmeIdentifier extension is critical).
    let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref())
        .map_err(|e| CertificateError::ChainPem(format!("the end-entity certificate: {e}")))?;
    match signing_key.public_key() {
        Some(spki) if spki.as_ref() == leaf.tbs_certificate.subject_pki.raw => {}
        // A key that cannot tell its public half is not a mismatch (rustls' own reading);
        // aws-lc-rs keys always can.
        None => {}
        Some(_) => {
            return Err(CertificateError::KeyMismatch(
                "the private key does not belong to the end-entity certificate".to_owned(),
            ));
        }
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// The one crypto provider (aws-lc-rs), chosen explicitly rather than through the process
/// default so nothing else installed in the process changes what this listener offers.
pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// A self-signed certificate for `name` (the shared policy host `policy.<zone>`), so a
/// handshake for an unknown name or without SNI completes and gets an HTTP 404 instead of a
/// TLS alert: far easier to diagnose for an owner whose `mta-sts` CNAME is wrong. The SMTP
/// intake makes one for the report host, its STARTTLS certificate until ACME issued the real
/// one ([`service_certificate`]). `None` if generation fails; those handshakes then fail
/// instead.
pub(crate) fn fallback_certificate(name: &str) -> Option<Arc<CertifiedKey>> {
    let generated = match rcgen::generate_simple_self_signed(vec![name.to_string()]) {
        Ok(generated) => generated,
        Err(e) => {
            tracing::error!(error = %e, name, "cannot generate the fallback certificate");
            return None;
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    match certified_key_from_der(vec![generated.cert.der().clone()], key, &provider()) {
        Ok(key) => Some(key),
        Err(e) => {
            tracing::error!(error = %e, name, "cannot load the fallback certificate");
            None
        }
    }
}

/// Picks the certificate of each handshake from the snapshot current at that moment, so a
/// renewal or a new domain takes effect without a restart.
#[derive(Debug)]
pub(crate) struct CertChooser {
    snapshot: SnapshotHandle,
    fallback: Option<Arc<CertifiedKey>>,
    service: ServiceNames,
}

impl CertChooser {
    pub(crate) fn new(
        snapshot: SnapshotHandle,
        fallback: Option<Arc<CertifiedKey>>,
        service: ServiceNames,
    ) -> Self {
        CertChooser {
            snapshot,
            fallback,
            service,
        }
    }
}

/// The names the service's own certificate ([`Snapshot::service_certificate`]) is for: the
/// report host `reports.<zone>` and its policy host `mta-sts.reports.<zone>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceNames {
    names: [String; 2],
}

impl ServiceNames {
    pub(crate) fn new(reports: &ReportAddresses) -> Self {
        ServiceNames {
            names: [reports.host().to_owned(), reports.own_policy_host()],
        }
    }

    /// Whether `sni` (lowercase, as rustls hands it over) is one of them.
    fn contains(&self, sni: &str) -> bool {
        self.names.iter().any(|name| name == sni)
    }
}

impl ResolvesServerCert for CertChooser {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
        select_certificate(
            &self.snapshot.load(),
            hello.server_name(),
            acme,
            &self.service,
            self.fallback.as_ref(),
        )
    }
}

/// The certificate for a ClientHello with SNI `sni` (rustls lowercases it) that offers
/// `acme-tls/1` or not.
///
/// An `acme-tls/1` offer is a TLS-ALPN-01 validation: it gets the challenge certificate or
/// nothing (RFC 8737 §3: the validation handshake must not see a regular certificate, and the
/// CA must not mistake one for an answer). Otherwise the service's own names get the
/// service certificate, `mta-sts.<d>` gets `d`'s certificate; anything else, and a name
/// without a certificate yet, the fallback.
pub(crate) fn select_certificate(
    snapshot: &Snapshot,
    sni: Option<&str>,
    acme: bool,
    service: &ServiceNames,
    fallback: Option<&Arc<CertifiedKey>>,
) -> Option<Arc<CertifiedKey>> {
    if acme {
        return snapshot.challenges.tls_alpn01.get(sni?).cloned();
    }
    if let Some(name) = sni
        && service.contains(name)
    {
        return service_certificate(snapshot, fallback);
    }
    sni.and_then(|name| name.strip_prefix("mta-sts."))
        .and_then(|domain| snapshot.domains.get(domain))
        .and_then(|domain| domain.certificate.clone())
        .or_else(|| fallback.cloned())
}

/// The certificate presented for the service's own names (the report host and its policy
/// host), by HTTPS and by the SMTP intake's STARTTLS alike: the service certificate once ACME
/// issued it, the self-signed `fallback` until then (or without ACME), so those names always
/// complete a handshake. Reporters may ignore the certificate (RFC 8460 §5.3) and opportunistic
/// SMTP senders do not check it; a sender enforcing the report host's own MTA-STS policy waits
/// for the real one either way.
pub(crate) fn service_certificate(
    snapshot: &Snapshot,
    fallback: Option<&Arc<CertifiedKey>>,
) -> Option<Arc<CertifiedKey>> {
    snapshot
        .service_certificate
        .clone()
        .or_else(|| fallback.cloned())
}

/// The rustls configuration of the policy host: TLS 1.3 and 1.2, certificates from
/// `chooser`, ALPN `acme-tls/1`, `h2`, `http/1.1`, and resumption both ways (a session cache
/// for TLS 1.2 clients without tickets, tickets for the rest) since senders reconnect for
/// every fetch and a resumed handshake skips the signature.
pub(crate) fn server_config(chooser: Arc<CertChooser>, limits: &ListenerLimits) -> ServerConfig {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        // aws-lc-rs implements both versions; failing here would be a rustls build problem.
        .expect("aws-lc-rs supports TLS 1.3 and 1.2")
        .with_no_client_auth()
        .with_cert_resolver(chooser);
    // Server preference decides (rustls picks the first of ours the client offers), and
    // `acme-tls/1` comes first: a client offering it has been given a challenge
    // certificate and must negotiate it. Normal clients never offer it.
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec(), b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(limits.tls_session_cache.max(1));
    match rustls::crypto::aws_lc_rs::Ticketer::new() {
        Ok(ticketer) => config.ticketer = ticketer,
        // Only a broken RNG gets here; stateful resumption still works.
        Err(e) => tracing::warn!(error = %e, "TLS session tickets disabled"),
    }
    // A TLS 1.3 ticket is good for one resumption and a resumed session gets a fresh one, so
    // one per handshake is enough for clients that open one connection at a time, as
    // senders do; more would only cost encryptions nobody uses.
    config.send_tls13_tickets = 1;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::HostedDomain;

    fn key(name: &str) -> Arc<CertifiedKey> {
        fallback_certificate(name).expect("self-signed test certificate")
    }

    #[test]
    fn real_tls_alpn01_challenge_certificates_load() {
        // Their critical acmeIdentifier extension is what WebPKI parsing refuses.
        let challenge =
            crate::acme::Challenge::tls_alpn01("mta-sts.example.com", "token", "token.thumbprint")
                .unwrap();
        let crate::acme::Challenge::TlsAlpn01 {
            cert_pem, key_pem, ..
        } = &challenge
        else {
            unreachable!("asked for TLS-ALPN-01")
        };
        assert!(certified_key_from_pem(cert_pem, key_pem).is_ok());
        let other = crate::acme::Challenge::tls_alpn01("mta-sts.example.org", "t", "t.x").unwrap();
        let crate::acme::Challenge::TlsAlpn01 {
            key_pem: other_key, ..
        } = &other
        else {
            unreachable!("asked for TLS-ALPN-01")
        };
        assert!(matches!(
            certified_key_from_pem(cert_pem, other_key),
            Err(CertificateError::KeyMismatch(_))
        ));
    }

    fn snapshot(cert: &Arc<CertifiedKey>, challenge: &Arc<CertifiedKey>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (name, certificate) in [("a.example", Some(cert.clone())), ("b.example", None)] {
            snapshot.domains.insert(
                name.to_string(),
                HostedDomain {
                    name: name.to_string(),
                    tenant_id: 1,
                    policy_body: "version: STSv1\r\n".into(),
                    txt_id: None,
                    tlsrpt: None,
                    certificate,
                    reports_to_service: true,
                },
            );
        }
        snapshot
            .challenges
            .tls_alpn01
            .insert("mta-sts.a.example".to_string(), challenge.clone());
        snapshot
    }

    #[test]
    fn picks_by_sni_and_alpn() {
        let (cert, challenge, fallback) = (
            key("mta-sts.a.example"),
            key("mta-sts.a.example"),
            key("policy.zone.example"),
        );
        let snapshot = snapshot(&cert, &challenge);
        let service = service_names();
        let pick = |sni, acme| select_certificate(&snapshot, sni, acme, &service, Some(&fallback));
        let is = |got: Option<Arc<CertifiedKey>>, want: &Arc<CertifiedKey>| {
            got.is_some_and(|got| Arc::ptr_eq(&got, want))
        };
        assert!(is(pick(Some("mta-sts.a.example"), false), &cert));
        assert!(is(pick(Some("mta-sts.a.example"), true), &challenge));
        // No certificate yet, unknown names, other names, no SNI: the fallback.
        assert!(is(pick(Some("mta-sts.b.example"), false), &fallback));
        assert!(is(pick(Some("mta-sts.c.example"), false), &fallback));
        assert!(is(pick(Some("a.example"), false), &fallback));
        assert!(is(pick(Some("policy.zone.example"), false), &fallback));
        assert!(is(pick(None, false), &fallback));
        // acme-tls/1 is answered from the challenges or not at all.
        assert!(pick(Some("mta-sts.b.example"), true).is_none());
        assert!(pick(Some("policy.zone.example"), true).is_none());
        assert!(pick(None, true).is_none());
        // Without a fallback, unknown names fail the handshake.
        assert!(select_certificate(&snapshot, Some("x.example"), false, &service, None).is_none());
        // The service's names get the fallback until the service certificate is issued.
        assert!(is(pick(Some("reports.zone.example"), false), &fallback));
        assert!(is(
            pick(Some("mta-sts.reports.zone.example"), false),
            &fallback
        ));
    }

    fn service_names() -> ServiceNames {
        let delegation = mtasts_proto::hosted::delegation::Delegation::new("zone.example").unwrap();
        ServiceNames::new(&ReportAddresses::new(&delegation))
    }

    #[test]
    fn the_service_certificate_serves_exactly_the_service_names() {
        let (cert, challenge, fallback, service_cert) = (
            key("mta-sts.a.example"),
            key("mta-sts.a.example"),
            key("policy.zone.example"),
            key("reports.zone.example"),
        );
        let mut snapshot = snapshot(&cert, &challenge);
        snapshot.service_certificate = Some(service_cert.clone());
        let service = service_names();
        let pick = |sni, acme| select_certificate(&snapshot, sni, acme, &service, Some(&fallback));
        let is = |got: Option<Arc<CertifiedKey>>, want: &Arc<CertifiedKey>| {
            got.is_some_and(|got| Arc::ptr_eq(&got, want))
        };
        assert!(is(pick(Some("reports.zone.example"), false), &service_cert));
        assert!(is(
            pick(Some("mta-sts.reports.zone.example"), false),
            &service_cert
        ));
        // Hosted domains keep theirs; other names of the zone get the fallback.
        assert!(is(pick(Some("mta-sts.a.example"), false), &cert));
        for other in [
            "policy.zone.example",
            "zone.example",
            "x.reports.zone.example",
            "mta-sts.zone.example",
            "reports.zone.example.evil",
        ] {
            assert!(is(pick(Some(other), false), &fallback), "{other}");
        }
        assert!(is(pick(None, false), &fallback));
        // A TLS-ALPN-01 validation of a service name gets its challenge or nothing.
        assert!(pick(Some("reports.zone.example"), true).is_none());
    }

    #[test]
    fn pem_loading_checks_the_pair() {
        let a = rcgen::generate_simple_self_signed(vec!["a.example".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.example".to_string()]).unwrap();
        let loaded = certified_key_from_pem(&a.cert.pem(), &a.signing_key.serialize_pem()).unwrap();
        assert_eq!(loaded.cert, vec![a.cert.der().clone()]);
        assert!(matches!(
            certified_key_from_pem(&a.cert.pem(), &b.signing_key.serialize_pem()),
            Err(CertificateError::KeyMismatch(_))
        ));
        assert!(matches!(
            certified_key_from_pem("", &a.signing_key.serialize_pem()),
            Err(CertificateError::NoCertificate)
        ));
        assert!(matches!(
            certified_key_from_pem(&a.cert.pem(), ""),
            Err(CertificateError::KeyPem(_))
        ));
        assert!(matches!(
            certified_key_from_pem(
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                &a.signing_key.serialize_pem()
            ),
            Err(CertificateError::ChainPem(_))
        ));
    }
}
