//! ACME (RFC 8555) certificates for `mta-sts.<domain>`, through instant-acme.
//!
//! [`Issuer::connect`] restores (or creates) the account; [`Issuer::issue`] orders one
//! certificate for one host name, proving control with HTTP-01 or TLS-ALPN-01 through a
//! [`ChallengeBoard`] — the node's board makes every node of the cluster serve the challenge
//! before the CA is told to look. [`renewal`] decides when to renew and how long to back off;
//! [`AcmeError`] says which kind of failure happened so the scheduler can choose.
//!
//! Nothing here logs or formats key material or account credentials: `Debug` of
//! [`IssuedCert`] and [`Challenge`] leave the keys out.

mod challenge;
mod error;
mod http;
pub mod renewal;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, Identifier, Key, NewAccount, NewOrder, Order,
    OrderStatus,
};
use mtasts_net::pem::PemError;
use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use x509_parser::extensions::GeneralName;

pub use challenge::{Challenge, ChallengeBoard, ChallengeKind};
pub use error::AcmeError;
pub use renewal::{renewal_due, retry_delay};

use http::{AcmeHttp, LastResponse};

/// Time limits of the ACME client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcmeTimeouts {
    /// One HTTPS exchange with the CA: connect, TLS, request, whole answer.
    pub request: Duration,
    /// [`ChallengeBoard::publish`] (every node serving the challenge); also bounds `withdraw`.
    pub publish: Duration,
    /// From telling the CA the challenge is ready to the order being ready, and again from
    /// finalization to the certificate.
    pub validation: Duration,
    /// The whole of [`Issuer::issue`].
    pub issuance: Duration,
}

impl Default for AcmeTimeouts {
    /// 30 s per request, 60 s to publish, 2 min for validation, 5 min in all.
    fn default() -> Self {
        AcmeTimeouts {
            request: Duration::from_secs(30),
            publish: Duration::from_secs(60),
            validation: Duration::from_secs(120),
            issuance: Duration::from_secs(300),
        }
    }
}

/// How to reach the CA and which challenge to prefer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The CA's directory URL (`https://…`).
    pub directory_url: String,
    /// PEM certificates trusted for the CA's HTTPS in addition to the built-in Mozilla roots
    /// (a test CA such as Pebble).
    pub ca_root_pem: Option<String>,
    /// The account's contact address (without `mailto:`).
    pub contact_email: Option<String>,
    /// The challenge type to use when the CA offers it; otherwise the other one.
    pub challenge: ChallengeKind,
    /// Time limits.
    pub timeouts: AcmeTimeouts,
}

impl AcmeConfig {
    /// The defaults for `directory_url`: built-in roots only, no contact, HTTP-01.
    pub fn new(directory_url: impl Into<String>) -> Self {
        AcmeConfig {
            directory_url: directory_url.into(),
            ca_root_pem: None,
            contact_email: None,
            challenge: ChallengeKind::default(),
            timeouts: AcmeTimeouts::default(),
        }
    }
}

/// A certificate the CA issued.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The chain as the CA sent it, end-entity first, PEM.
    pub chain_pem: String,
    /// The end-entity certificate's private key (ECDSA P-256, PKCS#8 PEM).
    pub key_pem: String,
    /// The leaf's notBefore, Unix seconds.
    pub not_before: i64,
    /// The leaf's notAfter, Unix seconds.
    pub not_after: i64,
}

impl IssuedCert {
    /// The chain and key ready for rustls.
    pub fn certified_key(&self) -> Result<Arc<CertifiedKey>, AcmeError> {
        certified_key(&self.chain_pem, &self.key_pem)
    }
}

impl fmt::Debug for IssuedCert {
    /// Leaves out the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Builds a rustls [`CertifiedKey`] from a PEM chain (end-entity first) and a PEM private key,
/// checking that the key belongs to the end-entity certificate (the policy host's loader,
/// which also accepts TLS-ALPN-01 challenge certificates).
pub fn certified_key(chain_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, AcmeError> {
    crate::policy_host::certified_key_from_pem(chain_pem, key_pem)
        .map_err(|e| AcmeError::invalid(e.to_string()))
}

fn parse_chain(chain_pem: &str) -> Result<Vec<CertificateDer<'static>>, AcmeError> {
    mtasts_net::pem::parse_chain(chain_pem.as_bytes()).map_err(|e| match e {
        PemError::Malformed { reason, .. } => {
            AcmeError::invalid(format!("certificate PEM: {reason}"))
        }
        _ => AcmeError::invalid("no certificate in the PEM"),
    })
}

/// The one member of saved account credentials that says which CA they belong to
/// (instant-acme keeps the rest private).
#[derive(serde::Deserialize)]
struct SavedDirectory {
    directory: Option<String>,
}

/// An ACME account at one CA, ready to order certificates. Cheap to clone; one issuer serves
/// concurrent issuances.
#[derive(Clone)]
pub struct Issuer {
    account: Account,
    config: AcmeConfig,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("directory_url", &self.config.directory_url)
            .field("account", &self.account.id())
            .finish_non_exhaustive()
    }
}

/// Upper bound for one wait between polls of the order.
const MAX_POLL_DELAY: Duration = Duration::from_secs(10);
/// The first wait between polls of the order.
const FIRST_POLL_DELAY: Duration = Duration::from_millis(250);

impl Issuer {
    /// Restores the account from `saved_credentials_json` (what an earlier call returned), or
    /// creates one with the terms of service agreed when there is none or the CA no longer
    /// knows it. Returns the credentials to persist when an account was created (they hold
    /// the account's private key: store them like a password).
    pub async fn connect(
        config: AcmeConfig,
        saved_credentials_json: Option<&str>,
    ) -> Result<(Issuer, Option<String>), AcmeError> {
        let roots = root_store(config.ca_root_pem.as_deref())?;
        let http = AcmeHttp::new(roots, config.timeouts.request);
        let deadline = config.timeouts.issuance;
        let connect = http::recording(Self::connect_account(&config, http, saved_credentials_json));
        let (account, created) =
            tokio::time::timeout(deadline, connect)
                .await
                .map_err(|_| {
                    AcmeError::unavailable(format!("no account at the CA within {deadline:?}"))
                })??;
        let issuer = Issuer { account, config };
        tracing::info!(
            directory = %issuer.config.directory_url,
            account = %issuer.account.id(),
            created = created.is_some(),
            "ACME account ready"
        );
        Ok((issuer, created))
    }

    async fn connect_account(
        config: &AcmeConfig,
        http: AcmeHttp,
        saved: Option<&str>,
    ) -> Result<(Account, Option<String>), AcmeError> {
        if let Some(saved) = saved {
            // Never quote the JSON or serde's error about it: both may hold the key.
            let credentials: AccountCredentials = serde_json::from_str(saved)
                .map_err(|_| AcmeError::invalid("the saved ACME credentials cannot be read"))?;
            let saved_directory = serde_json::from_str::<SavedDirectory>(saved)
                .ok()
                .and_then(|saved| saved.directory);
            if saved_directory.as_deref() != Some(config.directory_url.as_str()) {
                return Err(AcmeError::invalid(format!(
                    "the saved ACME credentials belong to {}, not {}",
                    saved_directory.as_deref().unwrap_or("an unknown directory"),
                    config.directory_url
                )));
            }
            let pkcs8 = credentials.private_key().clone_key();
            let key = Key::from_pkcs8_der(pkcs8.clone_key()).map_err(acme_error)?;
            // Looks the account up by its key (onlyReturnExisting), so a CA that forgot it —
            // a reset test CA, a deactivated account — is noticed here, not at the first order.
            match Account::builder_with_http(Box::new(http.clone()))
                .from_key(
                    (key, PrivateKeyDer::Pkcs8(pkcs8)),
                    config.directory_url.clone(),
                )
                .await
            {
                Ok((account, _)) => return Ok((account, None)),
                Err(instant_acme::Error::Api(problem))
                    if problem.r#type.as_deref()
                        == Some("urn:ietf:params:acme:error:accountDoesNotExist") =>
                {
                    tracing::warn!(
                        directory = %config.directory_url,
                        "the CA does not know the saved ACME account; creating a new one"
                    );
                }
                Err(e) => return Err(acme_error(e)),
            }
        }
        let contact = config.contact_email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(Box::new(http))
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                config.directory_url.clone(),
                None,
            )
            .await
            .map_err(acme_error)?;
        let json = serde_json::to_string(&credentials)
            .map_err(|_| AcmeError::invalid("the new ACME credentials cannot be serialised"))?;
        Ok((account, Some(json)))
    }

    /// The configuration.
    pub fn config(&self) -> &AcmeConfig {
        &self.config
    }

    /// The account URL (not secret: it names the account, it does not authorise anything).
    pub fn account_id(&self) -> &str {
        self.account.id()
    }

    /// Orders a certificate for `host` (one DNS name, `mta-sts.<domain>`) and returns it
    /// with a fresh ECDSA P-256 key.
    ///
    /// Proves control with the configured challenge type, or the other one when the CA does
    /// not offer it: the challenge goes to `board`, the CA is told to look once `publish`
    /// returns, and it is withdrawn again whatever the outcome. Everything is bounded by
    /// [`AcmeTimeouts`].
    pub async fn issue(
        &self,
        host: &str,
        board: &dyn ChallengeBoard,
    ) -> Result<IssuedCert, AcmeError> {
        self.issue_names(&[host], board).await
    }

    /// Orders one certificate naming every host of `hosts` (the service's own certificate:
    /// `reports.<zone>` and `mta-sts.reports.<zone>`), each proved like [`Issuer::issue`]
    /// proves its one; the first name is the one messages use.
    pub async fn issue_names(
        &self,
        hosts: &[&str],
        board: &dyn ChallengeBoard,
    ) -> Result<IssuedCert, AcmeError> {
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        let Some(host) = hosts.first().cloned() else {
            return Err(AcmeError::invalid("an order names at least one host"));
        };
        for name in &hosts {
            if !matches!(
                ServerName::try_from(name.as_str()),
                Ok(ServerName::DnsName(_))
            ) {
                return Err(AcmeError::invalid(format!("{name:?} is not a DNS name")));
            }
        }
        let limit = self.config.timeouts.issuance;
        let mut published = Vec::new();
        let attempt = http::recording(self.order(&hosts, board, &mut published));
        let result = match tokio::time::timeout(limit, attempt).await {
            Ok(result) => result,
            Err(_) => Err(AcmeError::unavailable(format!(
                "issuance for {host} did not finish within {limit:?}"
            ))),
        };
        for challenge in published {
            let withdraw = board.withdraw(&challenge);
            if tokio::time::timeout(self.config.timeouts.publish, withdraw)
                .await
                .is_err()
            {
                tracing::warn!(%host, token = challenge.token(), "withdrawing the challenge timed out");
            }
        }
        match &result {
            Ok(cert) => tracing::info!(%host, not_after = cert.not_after, "certificate issued"),
            Err(e) => tracing::warn!(%host, error = %e, "certificate not issued"),
        }
        result
    }

    /// The order proper. `published` gets each challenge before it goes to the board, so
    /// the caller withdraws them even when this future is cancelled by the time limit.
    async fn order(
        &self,
        hosts: &[String],
        board: &dyn ChallengeBoard,
        published: &mut Vec<Challenge>,
    ) -> Result<IssuedCert, AcmeError> {
        // `issue_names` refused an empty list.
        let host = hosts[0].as_str();
        let identifiers: Vec<Identifier> =
            hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
        let mut order = self
            .account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(acme_error)?;
        tracing::debug!(%host, order = order.url(), "ACME order created");

        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(acme_error)?;
            // Each authorization proves one of the names: its challenge is for that name.
            let host = match authorization.identifier().identifier {
                Identifier::Dns(name) if hosts.contains(name) => name.clone(),
                other => {
                    return Err(AcmeError::rejected(format!(
                        "the CA asks to authorize {other:?}, which was not ordered"
                    )));
                }
            };
            let host = host.as_str();
            match authorization.status {
                // The CA remembers an earlier validation: nothing to prove.
                AuthorizationStatus::Valid => continue,
                AuthorizationStatus::Pending => {}
                status => {
                    return Err(AcmeError::rejected(format!(
                        "the authorization for {host} is {status:?}"
                    )));
                }
            }
            let preferred = self.config.challenge;
            let offered = |kind: ChallengeKind| {
                authorization
                    .challenges
                    .iter()
                    .any(|c| c.r#type == kind.acme_type())
            };
            let kind = [preferred, preferred.other()]
                .into_iter()
                .find(|kind| offered(*kind))
                .ok_or_else(|| {
                    AcmeError::rejected(format!(
                        "the CA offers neither http-01 nor tls-alpn-01 for {host}"
                    ))
                })?;
            let mut handle = authorization
                .challenge(kind.acme_type())
                .ok_or_else(|| AcmeError::unavailable("the offered challenge disappeared"))?;
            let key_authorization = handle.key_authorization();
            let challenge = match kind {
                ChallengeKind::Http01 => {
                    Challenge::http01(host, &handle.token, key_authorization.as_str())
                }
                ChallengeKind::TlsAlpn01 => {
                    Challenge::tls_alpn01(host, &handle.token, key_authorization.as_str())?
                }
            };
            published.push(challenge.clone());
            let limit = self.config.timeouts.publish;
            tokio::time::timeout(limit, board.publish(&challenge))
                .await
                .map_err(|_| {
                    AcmeError::unavailable(format!(
                        "the {kind} challenge for {host} was not served by every node within {limit:?}"
                    ))
                })??;
            handle.set_ready().await.map_err(acme_error)?;
            tracing::debug!(%host, %kind, "challenge ready");
        }

        let validation = self.config.timeouts.validation;
        self.wait_for(&mut order, host, "validation", |status| {
            matches!(status, OrderStatus::Ready | OrderStatus::Valid)
        })
        .await?;
        if order.state().status != OrderStatus::Ready {
            return Err(AcmeError::unavailable(format!(
                "the order for {host} is {:?}, not ready to finalize",
                order.state().status
            )));
        }

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| AcmeError::invalid(format!("certificate key: {e}")))?;
        let mut params = CertificateParams::new(hosts.to_vec())
            .map_err(|e| AcmeError::invalid(format!("CSR: {e}")))?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| AcmeError::invalid(format!("CSR: {e}")))?;
        order.finalize_csr(csr.der()).await.map_err(acme_error)?;

        let started = Instant::now();
        let mut delay = FIRST_POLL_DELAY;
        let chain_pem = loop {
            match order.certificate().await.map_err(acme_error)? {
                Some(chain) => break chain,
                None if started.elapsed() + delay > validation => {
                    return Err(AcmeError::unavailable(format!(
                        "the CA did not issue the certificate for {host} within {validation:?}"
                    )));
                }
                None => {
                    tokio::time::sleep(poll_wait(delay)).await;
                    delay = (delay * 2).min(MAX_POLL_DELAY);
                }
            }
        };
        let key_pem = key.serialize_pem();
        check_issued(hosts, chain_pem, key_pem)
    }

    /// Polls `order` until `done(status)`, it turns invalid (→ the CA's reason), or the
    /// validation time limit passes.
    async fn wait_for(
        &self,
        order: &mut Order,
        host: &str,
        what: &str,
        done: impl Fn(OrderStatus) -> bool,
    ) -> Result<(), AcmeError> {
        let limit = self.config.timeouts.validation;
        let started = Instant::now();
        let mut delay = FIRST_POLL_DELAY;
        loop {
            let status = order.refresh().await.map_err(acme_error)?.status;
            if done(status) {
                return Ok(());
            }
            if status == OrderStatus::Invalid {
                return Err(why_invalid(order, host).await);
            }
            if started.elapsed() + delay > limit {
                return Err(AcmeError::unavailable(format!(
                    "{what} of {host} did not finish within {limit:?} (order {status:?})"
                )));
            }
            tokio::time::sleep(poll_wait(delay)).await;
            delay = (delay * 2).min(MAX_POLL_DELAY);
        }
    }
}

/// The wait before the next poll: our backoff, or longer when the CA's last `Retry-After`
/// asked for it (never beyond [`MAX_POLL_DELAY`]: the time limits decide when to give up).
fn poll_wait(delay: Duration) -> Duration {
    let asked = http::last().retry_after.unwrap_or_default();
    delay.max(asked).min(MAX_POLL_DELAY)
}

/// Why an order became invalid: the order's problem, else the first failed challenge's.
async fn why_invalid(order: &mut Order, host: &str) -> AcmeError {
    let none = LastResponse::default();
    if let Some(problem) = &order.state().error {
        return error::from_problem(problem, &none);
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        if let Ok(state) = authorization.refresh().await
            && let Some(problem) = state.challenges.iter().find_map(|c| c.error.as_ref())
        {
            return error::from_problem(problem, &none);
        }
    }
    AcmeError::rejected(format!("the CA marked the order for {host} invalid"))
}

/// Checks what the CA sent: a parsable chain whose leaf names `host` and belongs to our key.
fn check_issued(
    hosts: &[String],
    chain_pem: String,
    key_pem: String,
) -> Result<IssuedCert, AcmeError> {
    let host = hosts.join(", ");
    let bad =
        |what: String| AcmeError::rejected(format!("the CA's certificate for {host}: {what}"));
    let chain = parse_chain(&chain_pem).map_err(|e| bad(e.to_string()))?;
    let (_, leaf) = x509_parser::parse_x509_certificate(chain[0].as_ref())
        .map_err(|e| bad(format!("unparsable: {e}")))?;
    let names: Vec<String> = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !hosts.iter().all(|host| names.contains(host)) {
        return Err(bad(format!("it names {names:?}")));
    }
    certified_key(&chain_pem, &key_pem).map_err(|e| bad(e.to_string()))?;
    let validity = leaf.validity();
    Ok(IssuedCert {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        chain_pem,
        key_pem,
    })
}

/// The Mozilla roots plus every certificate of `extra_pem`.
fn root_store(extra_pem: Option<&str>) -> Result<Arc<RootCertStore>, AcmeError> {
    let builtin = mtasts_net::trust::TrustConfig::default()
        .root_store()
        .map_err(|e| AcmeError::invalid(e.to_string()))?;
    let Some(extra_pem) = extra_pem else {
        return Ok(builtin);
    };
    let mut store = (*builtin).clone();
    let extra = parse_chain(extra_pem)
        .map_err(|e| AcmeError::invalid(format!("the extra ACME root: {e}")))?;
    for cert in extra {
        store
            .add(cert)
            .map_err(|e| AcmeError::invalid(format!("the extra ACME root: {e}")))?;
    }
    Ok(Arc::new(store))
}

/// Maps an instant-acme error in the context of the current ACME operation.
fn acme_error(e: instant_acme::Error) -> AcmeError {
    error::from_acme(e, &http::last())
}
