//! [`AcmeError`]: what went wrong, classified so the scheduler knows how to retry.

use std::time::Duration;

use super::http::{LastResponse, TransportError};

/// Why an ACME operation failed. The variants are what the scheduler branches on; `detail` is
/// for people (the CA's problem detail or our description) and never holds key material or
/// account credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcmeError {
    /// The CA's rate limit (`urn:ietf:params:acme:error:rateLimited`); `retry_after` is its
    /// `Retry-After`, when it sent one.
    #[error("rate limited by the CA{}", retry_note(.retry_after))]
    RateLimited {
        /// The delay the CA asked for.
        retry_after: Option<Duration>,
    },
    /// The CA refused: the challenge failed validation, CAA forbids it, the name is not
    /// acceptable, … Retrying soon is unlikely to help until something changes.
    #[error("refused by the CA: {detail}")]
    Rejected {
        /// What the CA said.
        detail: String,
    },
    /// The CA could not be reached or answered with a server error, or a time limit passed:
    /// retry with backoff.
    #[error("CA unavailable: {detail}")]
    Unavailable {
        /// What happened.
        detail: String,
    },
    /// A problem on our side: configuration, stored credentials, a request the CA found
    /// malformed.
    #[error("invalid ACME request or configuration: {detail}")]
    Invalid {
        /// What is wrong.
        detail: String,
    },
}

fn retry_note(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(" (retry after {} s)", d.as_secs()))
        .unwrap_or_default()
}

impl AcmeError {
    pub(crate) fn rejected(detail: impl Into<String>) -> Self {
        AcmeError::Rejected {
            detail: detail.into(),
        }
    }

    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        AcmeError::Unavailable {
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        AcmeError::Invalid {
            detail: detail.into(),
        }
    }
}

/// The ACME problem type namespace (RFC 8555 §6.7).
const ACME_ERROR: &str = "urn:ietf:params:acme:error:";

/// How a problem type is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    RateLimited,
    Rejected,
    Unavailable,
    Invalid,
}

/// Classifies an RFC 8555 §6.7 problem type (without the namespace).
fn class_of(problem_type: &str) -> Option<Class> {
    Some(match problem_type {
        "rateLimited" => Class::RateLimited,
        // Transient by definition: instant-acme already retried badNonce twice.
        "badNonce" | "serverInternal" => Class::Unavailable,
        // The CA's verdict about the name or the proof of control.
        "caa"
        | "connection"
        | "dns"
        | "incorrectResponse"
        | "rejectedIdentifier"
        | "tls"
        | "unauthorized"
        | "unsupportedIdentifier" => Class::Rejected,
        // Our request, our account or our configuration.
        "accountDoesNotExist"
        | "alreadyRevoked"
        | "badCSR"
        | "badPublicKey"
        | "badRevocationReason"
        | "badSignatureAlgorithm"
        | "externalAccountRequired"
        | "invalidContact"
        | "malformed"
        | "orderNotReady"
        | "unsupportedContact"
        | "userActionRequired" => Class::Invalid,
        _ => return None,
    })
}

/// Maps a [`instant_acme::Problem`] using the last answer's status and `Retry-After`.
pub(crate) fn from_problem(problem: &instant_acme::Problem, last: &LastResponse) -> AcmeError {
    let type_of = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| t.strip_prefix(ACME_ERROR))
            .and_then(class_of)
    };
    // A compound problem is as bad as its worst subproblem; otherwise the first one counts.
    let class = match problem.r#type.as_deref() {
        Some(t) if t == format!("{ACME_ERROR}compound") => {
            let classes: Vec<Class> = problem
                .subproblems
                .iter()
                .filter_map(|s| type_of(&s.r#type))
                .collect();
            [
                Class::RateLimited,
                Class::Invalid,
                Class::Rejected,
                Class::Unavailable,
            ]
            .into_iter()
            .find(|c| classes.contains(c))
        }
        _ => type_of(&problem.r#type),
    };
    let status = problem.status.or(last.status);
    let class = class.unwrap_or(match status {
        Some(500..) => Class::Unavailable,
        Some(429) => Class::RateLimited,
        _ => Class::Rejected,
    });
    let detail = problem.to_string();
    match class {
        Class::RateLimited => AcmeError::RateLimited {
            retry_after: last.retry_after,
        },
        Class::Rejected => AcmeError::Rejected { detail },
        Class::Unavailable => AcmeError::Unavailable { detail },
        Class::Invalid => AcmeError::Invalid { detail },
    }
}

/// Maps an instant-acme error using the last answer's status and `Retry-After`.
pub(crate) fn from_acme(error: instant_acme::Error, last: &LastResponse) -> AcmeError {
    use instant_acme::Error as E;
    match error {
        E::Api(problem) => from_problem(&problem, last),
        E::Other(inner) => match inner.downcast::<TransportError>() {
            Ok(transport) => AcmeError::unavailable(transport.0),
            Err(other) => AcmeError::unavailable(other.to_string()),
        },
        // A body that is not the JSON ACME promises: a proxy's error page, a CA in trouble.
        E::Json(e) => AcmeError::unavailable(match last.status {
            Some(status) => format!("unexpected answer (HTTP {status}): {e}"),
            None => format!("unexpected answer: {e}"),
        }),
        E::Timeout(_) => AcmeError::unavailable("the CA did not finish in time"),
        E::InvalidUri(e) => AcmeError::invalid(format!("invalid URL: {e}")),
        E::Http(e) => AcmeError::invalid(format!("cannot build the request: {e}")),
        // Never the key itself: only that it was rejected.
        E::KeyRejected => AcmeError::invalid("the stored account key is not a P-256 key"),
        E::Crypto => AcmeError::invalid("a signing operation failed"),
        E::Unsupported(what) => AcmeError::invalid(format!("the CA does not support {what}")),
        E::Str(what) => AcmeError::unavailable(format!("unexpected answer from the CA: {what}")),
        other => AcmeError::unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(json: &str) -> instant_acme::Problem {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rate_limited_carries_retry_after() {
        let p = problem(
            r#"{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many","status":429}"#,
        );
        let last = LastResponse {
            status: Some(429),
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(
            from_problem(&p, &last),
            AcmeError::RateLimited {
                retry_after: Some(Duration::from_secs(3600))
            }
        );
        assert_eq!(
            from_problem(&p, &LastResponse::default()),
            AcmeError::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn problem_types_are_classified() {
        let cases = [
            ("unauthorized", "Rejected"),
            ("caa", "Rejected"),
            ("connection", "Rejected"),
            ("incorrectResponse", "Rejected"),
            ("rejectedIdentifier", "Rejected"),
            ("serverInternal", "Unavailable"),
            ("badNonce", "Unavailable"),
            ("malformed", "Invalid"),
            ("badCSR", "Invalid"),
            ("accountDoesNotExist", "Invalid"),
        ];
        for (t, want) in cases {
            let p = problem(&format!(
                r#"{{"type":"urn:ietf:params:acme:error:{t}","detail":"d","status":400}}"#
            ));
            let got = from_problem(&p, &LastResponse::default());
            let name = match got {
                AcmeError::RateLimited { .. } => "RateLimited",
                AcmeError::Rejected { .. } => "Rejected",
                AcmeError::Unavailable { .. } => "Unavailable",
                AcmeError::Invalid { .. } => "Invalid",
            };
            assert_eq!(name, want, "{t}");
        }
    }

    #[test]
    fn unknown_types_fall_back_to_the_status() {
        let p = problem(r#"{"type":"urn:example:weird","detail":"d"}"#);
        let at = |status| LastResponse {
            status: Some(status),
            retry_after: None,
        };
        assert!(matches!(
            from_problem(&p, &at(503)),
            AcmeError::Unavailable { .. }
        ));
        assert!(matches!(
            from_problem(&p, &at(403)),
            AcmeError::Rejected { .. }
        ));
        assert!(matches!(
            from_problem(&p, &at(429)),
            AcmeError::RateLimited { .. }
        ));
    }

    #[test]
    fn compound_problems_take_the_worst_subproblem() {
        let p = problem(
            r#"{"type":"urn:ietf:params:acme:error:compound","detail":"several",
                "subproblems":[
                  {"type":"urn:ietf:params:acme:error:caa","detail":"caa forbids"},
                  {"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down"}]}"#,
        );
        assert!(matches!(
            from_problem(&p, &LastResponse::default()),
            AcmeError::RateLimited { .. }
        ));
        let p = problem(
            r#"{"type":"urn:ietf:params:acme:error:compound","detail":"several",
                "subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"caa forbids"}]}"#,
        );
        let err = from_problem(&p, &LastResponse::default());
        assert!(
            matches!(&err, AcmeError::Rejected { detail } if detail.contains("caa forbids")),
            "{err:?}"
        );
    }

    #[test]
    fn transport_failures_are_unavailable() {
        let e = instant_acme::Error::Other(Box::new(TransportError("connect refused".into())));
        assert_eq!(
            from_acme(e, &LastResponse::default()),
            AcmeError::unavailable("connect refused")
        );
        assert!(matches!(
            from_acme(instant_acme::Error::KeyRejected, &LastResponse::default()),
            AcmeError::Invalid { .. }
        ));
    }
}
