//! Mail delivery (RFC 8460 §3, §5.3): the report mail composed by
//! `mtasts_proto::tlsrpt::outgoing::compose_mail`, DKIM-signed over
//! [`SIGNED_HEADERS`] (relaxed/relaxed, never `l=`), sent through the configured relay or
//! directly to the rua domain's MX.
//!
//! Direct delivery uses port 25 (`mx_port` in tests), STARTTLS whenever offered with any
//! certificate accepted: RFC 8460 §5.3.1 says report mail must be delivered despite TLS
//! failures and must not honour MTA-STS or DANE (a domain with a broken MX certificate is the
//! one that most needs its report). These connections are the resolver's own, not an MTA's,
//! so they never produce TLS results that would feed a later report (no report loop), and the
//! mail carries `TLS-Required: No` (RFC 8689) for when it goes through a relay: Postfix then
//! skips the policy lookup and reports nothing for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mtasts_net::dns::{DnsError, DnsLookup};
use mtasts_net::public_only::is_public;
use mtasts_net::smtp::submit::{self, Credentials, Server, Starttls, SubmitConfig};
use mtasts_proto::tlsrpt::outgoing::{ReportMail, SIGNED_HEADERS, compose_mail};
use mtasts_store::tlsrpt::StoredReport;
use rustls::RootCertStore;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::Attempt;

/// Most MX hosts tried for one message (the rest of a long list is not reached).
pub const MAX_MX_TRIED: usize = 5;

/// Reads a PEM private key: RSA (PKCS#1 or PKCS#8) or Ed25519 (PKCS#8).
pub fn dkim_key_from_pem(pem: &str) -> Result<DkimKey, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM private key: {e}"))?;
    match der {
        PrivateKeyDer::Pkcs8(pkcs8) => {
            if let Ok(key) = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der()) {
                return Ok(DkimKey::Ed25519(key));
            }
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs8(pkcs8))
                .map(DkimKey::Rsa)
                .map_err(|e| format!("neither an Ed25519 nor an RSA key: {e}"))
        }
        der @ PrivateKeyDer::Pkcs1(_) => RsaKey::<Sha256>::from_key_der(der)
            .map(DkimKey::Rsa)
            .map_err(|e| format!("not a usable RSA key: {e}")),
        _ => Err("an EC (SEC1) key: DKIM signs with RSA or Ed25519".into()),
    }
}

/// Reads a PEM private key file (at most 64 KiB).
pub fn load_dkim_key(path: &std::path::Path) -> Result<DkimKey, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > 65_536 {
        return Err(format!("{}: larger than 64 KiB", path.display()));
    }
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    dkim_key_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
}

/// The DKIM signer of report mail: every header of [`SIGNED_HEADERS`], relaxed/relaxed,
/// never `l=` (RFC 8460 §3 forbids it).
pub struct DkimSigning {
    signer: DkimSigner<DkimKey, Done>,
}

impl DkimSigning {
    /// A signer for `d=domain`, `s=selector`.
    pub fn new(domain: &str, selector: &str, key: DkimKey) -> Self {
        let signer = DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS.iter().copied())
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed)
            .body_length(false);
        DkimSigning { signer }
    }

    /// The `DKIM-Signature` header (with its CRLF) for `message`.
    pub fn sign(&self, message: &[u8]) -> Result<String, String> {
        self.signer
            .sign(message)
            .map(|s| s.to_header())
            .map_err(|e| format!("DKIM signing: {e}"))
    }
}

/// Where report mail goes.
pub enum Route {
    /// A submission relay.
    Relay {
        /// `host:port`.
        relay: String,
        /// STARTTLS use.
        starttls: Starttls,
        /// AUTH credentials.
        auth: Option<Credentials>,
    },
    /// Directly to the recipient domain's MX hosts on this port (25).
    Direct {
        /// The port.
        port: u16,
    },
}

/// Sends report mail.
pub struct MailDelivery {
    /// Envelope and header `From`.
    pub from: String,
    /// The EHLO name.
    pub helo: String,
    /// `organization-name` (the human-readable part).
    pub organization: String,
    /// `TLS-Report-Submitter`.
    pub submitter: String,
    /// The signer.
    pub dkim: DkimSigning,
    /// Relay or direct.
    pub route: Route,
    /// DNS for MX and addresses.
    pub dns: Arc<dyn DnsLookup>,
    /// Roots for verified STARTTLS at a relay.
    pub roots: Arc<RootCertStore>,
    /// Deliver to MX hosts on private or loopback addresses (tests).
    pub allow_private: bool,
    /// Time limit of one SMTP exchange.
    pub timeout: Duration,
}

impl MailDelivery {
    /// The signed message for `to`, as it goes over the wire.
    pub fn message(&self, to: &str, report: &StoredReport, now: i64) -> Result<Vec<u8>, String> {
        let message_id = format!("{}.{}@{}", report.report_id, random_token(), self.submitter);
        let unsigned = compose_mail(&ReportMail {
            from: &self.from,
            to,
            domain: &report.domain,
            submitter: &self.submitter,
            report_id: &report.report_id,
            organization: &self.organization,
            date: now,
            message_id: &message_id,
            file_name: &report.file_name,
            gz: &report.gz,
        });
        let signature = self.dkim.sign(&unsigned)?;
        let mut signed = Vec::with_capacity(signature.len() + unsigned.len());
        signed.extend_from_slice(signature.as_bytes());
        signed.extend_from_slice(&unsigned);
        Ok(signed)
    }

    /// One attempt to mail `report` to the `mailto:` URI `uri`.
    pub async fn send(&self, uri: &str, report: &StoredReport, now: i64) -> Attempt {
        let to = match mailto_address(uri) {
            Ok(to) => to,
            Err(e) => return Attempt::refused(format!("{uri}: {e}")),
        };
        let message = match self.message(&to, report, now) {
            Ok(m) => m,
            Err(e) => return Attempt::retry(e),
        };
        let rcpt = [to.clone()];
        match &self.route {
            Route::Relay {
                relay,
                starttls,
                auth,
            } => {
                let server = match self.relay_server(relay).await {
                    Ok(s) => s,
                    Err(e) => return Attempt::retry(e),
                };
                let config = self.config(*starttls, auth.clone());
                self.one(&config, &server, &rcpt, &message).await
            }
            Route::Direct { port } => {
                let domain = to.rsplit_once('@').map_or("", |(_, d)| d);
                let hosts = match self.mx_hosts(domain).await {
                    Ok(h) => h,
                    Err(attempt) => return attempt,
                };
                let config = self.config(Starttls::OpportunisticUnverified, None);
                let mut last = Attempt::retry(format!("{domain}: no MX host could be reached"));
                for host in hosts.into_iter().take(MAX_MX_TRIED) {
                    let addresses = match self.dns.ip(&host).await {
                        Ok(a) => a,
                        Err(e) => {
                            last = Attempt::retry(format!("resolving {host}: {e}"));
                            continue;
                        }
                    };
                    for ip in addresses {
                        if !self.allow_private && !is_public(ip) {
                            last = Attempt::refused(format!(
                                "{host} resolves to {ip}, which is not a public address"
                            ));
                            continue;
                        }
                        let server = Server {
                            name: host.clone(),
                            addr: SocketAddr::new(ip, *port),
                        };
                        match self.one(&config, &server, &rcpt, &message).await {
                            // A 5xx from one MX is the domain's answer; do not ask the others.
                            done @ (Attempt::Delivered(_)
                            | Attempt::Failed {
                                permanent: true, ..
                            }) => return done,
                            failed => last = failed,
                        }
                    }
                }
                last
            }
        }
    }

    fn config(&self, starttls: Starttls, auth: Option<Credentials>) -> SubmitConfig {
        SubmitConfig {
            helo: self.helo.clone(),
            starttls,
            roots: self.roots.clone(),
            auth,
            timeout: self.timeout,
        }
    }

    async fn one(
        &self,
        config: &SubmitConfig,
        server: &Server,
        rcpt: &[String],
        message: &[u8],
    ) -> Attempt {
        match submit::submit(config, server, &self.from, rcpt, message).await {
            Ok(done) => Attempt::Delivered(format!(
                "{} ({}): {}",
                server.name,
                if done.tls { "TLS" } else { "plain" },
                done.reply
            )),
            Err(e) => Attempt::Failed {
                permanent: e.is_permanent(),
                error: e.to_string(),
            },
        }
    }

    async fn relay_server(&self, relay: &str) -> Result<Server, String> {
        let (host, port) = relay
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("relay {relay:?} is not host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip = match host.parse() {
            Ok(ip) => ip,
            Err(_) => *self
                .dns
                .ip(host)
                .await
                .map_err(|e| format!("resolving the relay {host}: {e}"))?
                .first()
                .ok_or_else(|| format!("the relay {host} has no address"))?,
        };
        Ok(Server {
            name: host.to_owned(),
            addr: SocketAddr::new(ip, port),
        })
    }

    /// The MX hosts of `domain` by preference; the domain itself when it has no MX (RFC 5321
    /// §5.1); a null MX (RFC 7505) refuses mail for good.
    async fn mx_hosts(&self, domain: &str) -> Result<Vec<String>, Attempt> {
        match self.dns.mx(domain).await {
            Ok(mut records) => {
                records.sort_by_key(|r| r.preference);
                if records.iter().any(|r| r.exchange.is_empty()) {
                    return Err(Attempt::refused(format!(
                        "{domain} publishes a null MX: it accepts no mail"
                    )));
                }
                if records.is_empty() {
                    return Ok(vec![domain.to_owned()]);
                }
                Ok(records.into_iter().map(|r| r.exchange).collect())
            }
            Err(DnsError::NoData) => Ok(vec![domain.to_owned()]),
            Err(DnsError::NxDomain) => Err(Attempt::refused(format!("{domain} does not exist"))),
            Err(e) => Err(Attempt::retry(format!("MX lookup of {domain}: {e}"))),
        }
    }
}

/// The address of a `mailto:` rua (RFC 6068): the part before any `?`, percent-decoded; one
/// address with a local part and a domain.
pub fn mailto_address(uri: &str) -> Result<String, String> {
    let rest = uri
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("mailto:"))
        .map(|_| &uri[7..])
        .ok_or_else(|| "not a mailto: URI".to_string())?;
    let rest = rest.split('?').next().unwrap_or(rest);
    let mut bytes = Vec::with_capacity(rest.len());
    let raw = rest.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a bad percent escape".to_string())?;
            bytes.push(hex);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    let address = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    if address.contains(',') {
        return Err("several addresses in one URI".into());
    }
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| "no @ in the address".to_string())?;
    if local.is_empty()
        || domain.is_empty()
        || address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>')
    {
        return Err(format!("{address:?} is not an address"));
    }
    Ok(address)
}

/// 16 random hex digits (a Message-ID's unique part).
fn random_token() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // The system random source failing is a broken host; a fixed value keeps the mail valid
    // (the report id already makes the Message-ID unique per report).
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_addresses_are_decoded() {
        assert_eq!(
            mailto_address("mailto:tlsrpt@example.com").unwrap(),
            "tlsrpt@example.com"
        );
        assert_eq!(
            mailto_address("MAILTO:a%2Bb@example.com?subject=x").unwrap(),
            "a+b@example.com"
        );
        assert!(mailto_address("mailto:example.com").is_err());
        assert!(mailto_address("mailto:a@b%2Cc@d").is_err());
        assert!(mailto_address("mailto:a%zz@b").is_err());
        assert!(mailto_address("https://x").is_err());
        assert!(mailto_address("mailto:a%20b@c").is_err());
    }
}
