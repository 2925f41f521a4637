//! The RFC 8460 §4.3 result types (IANA "STARTTLS Validation Result Types").

use std::fmt;
use std::str::FromStr;

/// A result type as a sender logs and reports it. Unknown values are kept verbatim (C131).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResultType {
    /// `certificate-expired`
    CertificateExpired,
    /// `certificate-host-mismatch`
    CertificateHostMismatch,
    /// `certificate-not-trusted`
    CertificateNotTrusted,
    /// `dane-required`
    DaneRequired,
    /// `dnssec-invalid`
    DnssecInvalid,
    /// `starttls-not-supported`
    StarttlsNotSupported,
    /// `sts-policy-fetch-error`
    StsPolicyFetchError,
    /// `sts-policy-invalid`
    StsPolicyInvalid,
    /// `sts-webpki-invalid`
    StsWebpkiInvalid,
    /// `tlsa-invalid`
    TlsaInvalid,
    /// `validation-failure`
    ValidationFailure,
    /// A value outside the registry, kept as received.
    Other(String),
}

impl ResultType {
    /// The registry spelling, e.g. `sts-policy-fetch-error`.
    pub fn as_str(&self) -> &str {
        match self {
            ResultType::CertificateExpired => "certificate-expired",
            ResultType::CertificateHostMismatch => "certificate-host-mismatch",
            ResultType::CertificateNotTrusted => "certificate-not-trusted",
            ResultType::DaneRequired => "dane-required",
            ResultType::DnssecInvalid => "dnssec-invalid",
            ResultType::StarttlsNotSupported => "starttls-not-supported",
            ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
            ResultType::StsPolicyInvalid => "sts-policy-invalid",
            ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
            ResultType::TlsaInvalid => "tlsa-invalid",
            ResultType::ValidationFailure => "validation-failure",
            ResultType::Other(s) => s,
        }
    }
}

impl fmt::Display for ResultType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResultType {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "certificate-expired" => ResultType::CertificateExpired,
            "certificate-host-mismatch" => ResultType::CertificateHostMismatch,
            "certificate-not-trusted" => ResultType::CertificateNotTrusted,
            "dane-required" => ResultType::DaneRequired,
            "dnssec-invalid" => ResultType::DnssecInvalid,
            "starttls-not-supported" => ResultType::StarttlsNotSupported,
            "sts-policy-fetch-error" => ResultType::StsPolicyFetchError,
            "sts-policy-invalid" => ResultType::StsPolicyInvalid,
            "sts-webpki-invalid" => ResultType::StsWebpkiInvalid,
            "tlsa-invalid" => ResultType::TlsaInvalid,
            "validation-failure" => ResultType::ValidationFailure,
            other => ResultType::Other(other.to_owned()),
        })
    }
}
