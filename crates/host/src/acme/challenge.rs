//! What the CA checks to see that we control a name, and who puts it up: [`Challenge`] and
//! [`ChallengeBoard`].

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use futures::future::BoxFuture;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use super::AcmeError;

/// The challenge types this module can answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// HTTP-01 (RFC 8555 §8.3): the key authorization at
    /// `http://<host>/.well-known/acme-challenge/<token>`.
    #[default]
    Http01,
    /// TLS-ALPN-01 (RFC 8737): a self-signed certificate with the key authorization's digest,
    /// presented on port 443 to clients that offer ALPN `acme-tls/1`.
    TlsAlpn01,
}

impl ChallengeKind {
    /// The ACME name: `http-01` or `tls-alpn-01` (also the database's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }

    /// The other kind: the fallback when the CA does not offer this one.
    pub fn other(self) -> ChallengeKind {
        match self {
            ChallengeKind::Http01 => ChallengeKind::TlsAlpn01,
            ChallengeKind::TlsAlpn01 => ChallengeKind::Http01,
        }
    }

    pub(crate) fn acme_type(self) -> instant_acme::ChallengeType {
        match self {
            ChallengeKind::Http01 => instant_acme::ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => instant_acme::ChallengeType::TlsAlpn01,
        }
    }
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ChallengeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "http-01" => Ok(ChallengeKind::Http01),
            "tls-alpn-01" => Ok(ChallengeKind::TlsAlpn01),
            _ => Err(format!(
                "unknown challenge type {s:?} (http-01 or tls-alpn-01)"
            )),
        }
    }
}

/// One challenge response every node must serve until the CA has checked it.
///
/// Every variant names the `host` being validated and the CA's `token` (unique per
/// challenge: the database row's key) and carries the key authorization, so a board can store
/// either kind in one row shape.
#[derive(Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Serve `key_authorization` as the body of
    /// `http://<host>/.well-known/acme-challenge/<token>`.
    Http01 {
        /// The name being validated (`mta-sts.<domain>`).
        host: String,
        /// The CA's token.
        token: String,
        /// `<token>.<account key thumbprint>`.
        key_authorization: String,
    },
    /// Present `cert_pem`/`key_pem` for SNI `host` to clients offering ALPN `acme-tls/1`.
    TlsAlpn01 {
        /// The name being validated (`mta-sts.<domain>`).
        host: String,
        /// The CA's token.
        token: String,
        /// `<token>.<account key thumbprint>` (its SHA-256 is in the certificate).
        key_authorization: String,
        /// The self-signed challenge certificate (RFC 8737 §3), PEM.
        cert_pem: String,
        /// Its throw-away private key, PKCS#8 PEM.
        key_pem: String,
    },
}

impl Challenge {
    /// An HTTP-01 challenge.
    pub fn http01(host: &str, token: &str, key_authorization: &str) -> Challenge {
        Challenge::Http01 {
            host: host.to_string(),
            token: token.to_string(),
            key_authorization: key_authorization.to_string(),
        }
    }

    /// A TLS-ALPN-01 challenge: generates the certificate RFC 8737 §3 asks for — self-signed
    /// (fresh ECDSA P-256 key), `host` as its only subjectAltName, and the critical
    /// id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holding the DER OCTET STRING of
    /// SHA-256(`key_authorization`).
    pub fn tls_alpn01(
        host: &str,
        token: &str,
        key_authorization: &str,
    ) -> Result<Challenge, AcmeError> {
        let fail = |e: rcgen::Error| AcmeError::invalid(format!("TLS-ALPN-01 certificate: {e}"));
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(fail)?;
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(fail)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        // Validators ignore the dates; a short window keeps a leaked one useless.
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(7);
        let sha = digest(&SHA256, key_authorization.as_bytes());
        params.custom_extensions = vec![CustomExtension::new_acme_identifier(sha.as_ref())];
        let cert = params.self_signed(&key).map_err(fail)?;
        Ok(Challenge::TlsAlpn01 {
            host: host.to_string(),
            token: token.to_string(),
            key_authorization: key_authorization.to_string(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Which kind this is.
    pub fn kind(&self) -> ChallengeKind {
        match self {
            Challenge::Http01 { .. } => ChallengeKind::Http01,
            Challenge::TlsAlpn01 { .. } => ChallengeKind::TlsAlpn01,
        }
    }

    /// The name being validated.
    pub fn host(&self) -> &str {
        match self {
            Challenge::Http01 { host, .. } | Challenge::TlsAlpn01 { host, .. } => host,
        }
    }

    /// The CA's token.
    pub fn token(&self) -> &str {
        match self {
            Challenge::Http01 { token, .. } | Challenge::TlsAlpn01 { token, .. } => token,
        }
    }

    /// The key authorization.
    pub fn key_authorization(&self) -> &str {
        match self {
            Challenge::Http01 {
                key_authorization, ..
            }
            | Challenge::TlsAlpn01 {
                key_authorization, ..
            } => key_authorization,
        }
    }
}

impl fmt::Debug for Challenge {
    /// Leaves out the challenge key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(match self {
            Challenge::Http01 { .. } => "Http01",
            Challenge::TlsAlpn01 { .. } => "TlsAlpn01",
        })
        .field("host", &self.host())
        .field("token", &self.token())
        .finish_non_exhaustive()
    }
}

/// Where challenges are put up for the CA to see. The node's implementation writes them to
/// the database and returns from `publish` once every live node serves them; a test's writes
/// a snapshot directly.
pub trait ChallengeBoard: Send + Sync {
    /// Makes every node answer `challenge`; resolves once they all do (the issuer tells the
    /// CA to look only then). May be called for a challenge already published.
    fn publish<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, Result<(), AcmeError>>;

    /// Stops answering `challenge`. Called after every issuance attempt that got as far as
    /// `publish`, successful or not (also when `publish` itself failed); best effort.
    fn withdraw<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, ()>;
}
