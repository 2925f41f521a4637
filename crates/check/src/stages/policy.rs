//! The policy fetch and policy file stages (RFC 8461 §3.2, §3.3).

use mtasts_net::cert::{CertInfo, CertProblem};
use mtasts_net::fetch::{FetchError, FetchReport};
use mtasts_proto::sts::policy::{self, Mode, Policy};
use mtasts_proto::{ResultType, Severity};

use crate::finding::{Finding, Stage};
use crate::report::{CertificateReport, PolicyStatus};

const FETCH_RULE: &str = "RFC 8461 §3.3";
const SYNTAX_RULE: &str = "RFC 8461 §3.2";
/// Below this, a policy protects little between a sender's visits (RFC 8461 §3.2: "weeks or greater").
const SHORT_MAX_AGE: u32 = 86_400;

/// What the fetch and parse stages decided.
#[derive(Clone, Debug)]
pub struct PolicyOutcome {
    /// `valid`, `fetch-error`, `webpki-invalid` or `invalid`.
    pub status: PolicyStatus,
    /// The policy a sender applies (only when `status` is `valid`).
    pub policy: Option<Policy>,
    /// The body, when one was fetched.
    pub raw: Option<String>,
    /// The RFC 8460 result type a sender reports, when discovery failed.
    pub result_type: Option<ResultType>,
    /// Findings.
    pub findings: Vec<Finding>,
}

/// Evaluates a fetch of the policy of `domain`.
pub fn evaluate(domain: &str, fetch: &FetchReport) -> PolicyOutcome {
    let host = mtasts_proto::sts::policy_host(domain);
    let fetched = match &fetch.outcome {
        Ok(fetched) => fetched,
        Err(error) => return fetch_failure(domain, &host, fetch, error),
    };
    let mut findings = Vec::new();
    if fetched.content_type.is_none() {
        findings.push(Finding::new(
            Stage::PolicyFetch,
            Severity::Warning,
            "policy-content-type-missing",
            format!("{} has no Content-Type header. The RFC says senders SHOULD check for text/plain; some (postfix-mta-sts-resolver) reject a policy without it (RFC 8461 §3.2).", fetch.url),
            "Serve the policy file with `Content-Type: text/plain`.",
            SYNTAX_RULE,
        ));
    }
    let raw = String::from_utf8_lossy(&fetched.body).into_owned();
    let analysis = policy::analyze(&fetched.body);
    let mut syntax: Vec<Finding> = analysis
        .diagnostics
        .iter()
        .map(|d| {
            let code = (d.severity == Severity::Error).then_some("policy-syntax");
            Finding::from_diagnostic(Stage::Policy, d, code)
        })
        .collect();
    let Some(policy) = analysis.policy else {
        for f in &mut syntax {
            if f.code == "policy-syntax" {
                f.result_type = Some(ResultType::StsPolicyInvalid);
            }
        }
        if !syntax.iter().any(|f| f.code == "policy-syntax") {
            // analyze() promises an error diagnostic for a rejected body; keep the contract
            // even if it ever does not.
            syntax.push(
                Finding::new(
                    Stage::Policy,
                    Severity::Error,
                    "policy-syntax",
                    "The policy body is not a valid MTA-STS policy.",
                    "Serve `version: STSv1`, `mode:`, `max_age:` and `mx:` lines as RFC 8461 §3.2 describes.",
                    SYNTAX_RULE,
                )
                .with_result(ResultType::StsPolicyInvalid),
            );
        }
        findings.extend(syntax);
        return PolicyOutcome {
            status: PolicyStatus::Invalid,
            policy: None,
            raw: Some(raw),
            result_type: Some(ResultType::StsPolicyInvalid),
            findings,
        };
    };
    findings.extend(syntax);
    findings.extend(mode_findings(domain, &policy));
    PolicyOutcome {
        status: PolicyStatus::Valid,
        policy: Some(policy),
        raw: Some(raw),
        result_type: None,
        findings,
    }
}

fn mode_findings(domain: &str, policy: &Policy) -> Vec<Finding> {
    let mut findings = Vec::new();
    match policy.mode {
        Mode::Testing => findings.push(Finding::new(
            Stage::Policy,
            Severity::Warning,
            "policy-mode-testing",
            "The policy is in testing mode: senders report failures (if you publish TLS-RPT) but still deliver over unauthenticated or plaintext connections, so it does not protect yet (RFC 8461 §5).",
            format!("Once TLS-RPT reports show no failures for a few weeks, change `mode: testing` to `mode: enforce` and publish a new id in _mta-sts.{domain}."),
            "RFC 8461 §5",
        )),
        Mode::None => findings.push(Finding::new(
            Stage::Policy,
            Severity::Warning,
            "policy-mode-none",
            "The policy is in mode none: MTA-STS is being withdrawn and senders behave as if there were no policy (RFC 8461 §5, §8.3).",
            "If you did not mean to withdraw MTA-STS, serve `mode: testing` or `mode: enforce` and publish a new id. If you did, keep serving this policy until every earlier policy's max_age has passed, then remove the TXT record and the policy host.",
            "RFC 8461 §8.3",
        )),
        Mode::Enforce => {}
    }
    if policy.mode != Mode::None && policy.max_age.seconds() < SHORT_MAX_AGE {
        findings.push(Finding::new(
            Stage::Policy,
            Severity::Info,
            "policy-max-age-short",
            format!("max_age is {} seconds; senders forget the policy that soon after their last fetch, which leaves first-contact downgrade windows (RFC 8461 §3.2 recommends weeks or more, §10.2).", policy.max_age),
            "Use max_age: 604800 (a week) while testing and 1209600 to 31557600 once enforcing.",
            SYNTAX_RULE,
        ));
    }
    findings
}

fn fetch_failure(
    domain: &str,
    host: &str,
    fetch: &FetchReport,
    error: &FetchError,
) -> PolicyOutcome {
    let url = &fetch.url;
    let (status, code, message, fix) = match error {
        FetchError::Dns(e) if e.is_not_found() => (
            PolicyStatus::FetchError,
            "policy-fetch-failed",
            format!("The _mta-sts record is published but {host} has no address ({e}), so senders cannot fetch the policy."),
            format!("Add an A and/or AAAA record (or a CNAME to your policy host) for {host}, or remove _mta-sts.{domain} if you do not use MTA-STS."),
        ),
        FetchError::Dns(e) => (
            PolicyStatus::FetchError,
            "policy-fetch-failed",
            format!("Looking up the address of {host} failed ({e}), so senders cannot fetch the policy."),
            format!("Make sure the name servers for {host} answer A/AAAA queries."),
        ),
        FetchError::Connect(e) => (
            PolicyStatus::FetchError,
            "policy-fetch-failed",
            format!("No HTTPS connection to {host} on port 443: {e}."),
            format!("Run an HTTPS server for {host} on port 443 on every address it resolves to (IPv4 and IPv6), and allow it through firewalls."),
        ),
        FetchError::Tls(e) => (
            PolicyStatus::FetchError,
            "policy-fetch-failed",
            format!("The TLS handshake with {host} failed: {e}."),
            format!("Serve TLS 1.2 or 1.3 on {host}:443 with a certificate for {host}."),
        ),
        FetchError::Timeout(d) => (
            PolicyStatus::FetchError,
            "policy-timeout",
            format!("Fetching {url} did not complete within {} seconds.", d.as_secs_f32()),
            "Make the policy host answer quickly (senders may give up after a minute or much less), and check for firewalls that drop packets instead of rejecting them.".to_owned(),
        ),
        FetchError::Redirect { status, location } => (
            PolicyStatus::FetchError,
            "policy-redirect",
            format!("{url} answered {status} redirecting to {}; senders must not follow redirects (RFC 8461 §3.3).", location.as_deref().unwrap_or("(no Location header)")),
            format!("Serve the policy file directly at {url} with status 200: exempt /.well-known/mta-sts.txt from HTTPS-to-www or trailing-slash redirects."),
        ),
        FetchError::Status(code) => (
            PolicyStatus::FetchError,
            "policy-http-status",
            format!("{url} answered HTTP {code}; only 200 makes a valid policy (RFC 8461 §3.3)."),
            if *code == 404 {
                format!("Put the policy file at /.well-known/mta-sts.txt on {host} (static hosts like GitHub Pages hide dot-directories unless configured).")
            } else if *code == 403 || *code == 503 {
                "Exempt /.well-known/mta-sts.txt from WAF, bot protection and challenge pages: senders are not browsers.".to_owned()
            } else {
                format!("Serve the policy file at {url} with status 200.")
            },
        ),
        FetchError::ContentType(ct) => (
            PolicyStatus::FetchError,
            "policy-content-type",
            format!("{url} is served as {ct:?}; senders check for text/plain and strict ones reject anything else (RFC 8461 §3.2)."),
            "Serve the policy file with `Content-Type: text/plain` (object storage defaults to application/octet-stream; single-page-app hosting answers text/html).".to_owned(),
        ),
        FetchError::TooLarge(limit) => (
            PolicyStatus::FetchError,
            "policy-too-large",
            format!("The body of {url} is larger than {limit} bytes; senders cap policies at 64 KiB (RFC 8461 §3.3)."),
            "Serve only the policy lines: version, mode, mx, max_age.".to_owned(),
        ),
        FetchError::Http(e) => (
            PolicyStatus::FetchError,
            "policy-fetch-failed",
            format!("{url} did not answer with valid HTTP: {e}."),
            format!("Serve the policy over HTTP/1.1 at {url}."),
        ),
        FetchError::Certificate(problem) => {
            let (code, fix) = match problem {
                CertProblem::Expired | CertProblem::NotYetValid => (
                    "policy-certificate-expired",
                    format!("Renew the certificate of {host} (and automate renewal, e.g. with ACME)."),
                ),
                CertProblem::NameMismatch { .. } => (
                    "policy-certificate-name-mismatch",
                    format!("Serve a certificate whose subjectAltName includes {host} (or *.{domain}); a delegated (CNAME'd) host must present a certificate for {host}, not the provider's name."),
                ),
                _ => (
                    "policy-certificate-untrusted",
                    format!("Serve a certificate for {host} from a publicly trusted CA, with the full intermediate chain."),
                ),
            };
            let names = fetch.certificate.as_ref().map(|c| c.dns_names.join(", ")).unwrap_or_default();
            (
                PolicyStatus::WebpkiInvalid,
                code,
                format!("The certificate of {host} is not valid: {problem}{}. Senders refuse the policy (RFC 8461 §3.3).", if names.is_empty() { String::new() } else { format!(" (it names {names})") }),
                fix,
            )
        }
        // FetchError is non-exhaustive; a new kind is still a fetch failure.
        other => (
            PolicyStatus::FetchError,
            "policy-fetch-failed",
            format!("Fetching {url} failed: {other}."),
            format!("Serve the policy file at {url} over HTTPS with status 200."),
        ),
    };
    let result_type = error.result_type();
    PolicyOutcome {
        status,
        policy: None,
        raw: None,
        result_type: Some(result_type.clone()),
        findings: vec![
            Finding::new(
                Stage::PolicyFetch,
                Severity::Error,
                code,
                message,
                fix,
                FETCH_RULE,
            )
            .with_result(result_type),
        ],
    }
}

/// The certificate object of the report, with RFC 3339 dates.
pub fn certificate_report(
    info: Option<&CertInfo>,
    problem: Option<&CertProblem>,
) -> Option<CertificateReport> {
    if info.is_none() && problem.is_none() {
        return None;
    }
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    Some(CertificateReport {
        valid: problem.is_none(),
        names: info.map(|i| i.dns_names.clone()).unwrap_or_default(),
        not_after: info.and_then(|i| fmt(i.not_after)),
        not_before: info.and_then(|i| fmt(i.not_before)),
        issuer: info.map(|i| i.issuer.clone()),
        error: problem.map(|p| p.to_string()),
    })
}
