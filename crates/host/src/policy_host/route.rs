//! Request classification: method, authority, SNI and path → which answer. Pure (no I/O, no
//! snapshot): the caller passes the lookup of a hosted domain, so every rule here is tested
//! without sockets.

use std::borrow::Cow;

use hyper::Method;

/// The policy file's path (RFC 8461 §3.2).
pub(crate) const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// The prefix of HTTP-01 challenge paths (RFC 8555 §8.3).
pub(crate) const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// The host label every policy host name starts with (RFC 8461 §3.2).
const POLICY_LABEL: &[u8] = b"mta-sts.";

/// What the policy host answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PolicyRoute<T> {
    /// 200 with the policy (`head`: headers only).
    Serve {
        /// What the lookup returned for the domain.
        policy: T,
        /// A `HEAD` request.
        head: bool,
    },
    /// 404: not the policy path, not a policy host name, or not a hosted domain.
    NotFound,
    /// 421: the Host names a hosted domain but the TLS session was set up for another name.
    /// Clients that coalesce HTTP/2 connections retry on a fresh connection (RFC 9110
    /// §15.5.20), and a sender never gets a policy the certificate was not checked for.
    Misdirected,
    /// 405: the policy resource exists, but only GET and HEAD read it.
    MethodNotAllowed,
}

/// Classifies a request to the HTTPS policy host.
///
/// * The path must be exactly [`POLICY_PATH`] (`path` excludes the query string): no
///   percent-decoding, case folding or trailing slash, since a sender that needs any of
///   those is broken anyway and lenience here would hide it from a checker. A query string
///   is ignored: senders never send one, and refusing it would buy nothing.
/// * `authority` (the request URI's authority or the `Host` header) without port, userinfo
///   and trailing dot, case-insensitively, must be `mta-sts.<d>` and `lookup(d)` (`d`
///   lowercased) must find the domain.
/// * When the TLS session has an SNI name, it must be the same host ([`PolicyRoute::Misdirected`]
///   otherwise). Without SNI the Host alone decides: the fallback certificate was presented,
///   which no validating sender accepts, so nothing is gained by refusing.
/// * Only then does the method matter: 405 means "this resource exists, not with this
///   method" (RFC 9110 §15.5.6), so a POST to an unknown name is a 404 like a GET.
pub(crate) fn classify_policy<T>(
    method: &Method,
    path: &str,
    authority: Option<&str>,
    sni: Option<&str>,
    lookup: impl FnOnce(&str) -> Option<T>,
) -> PolicyRoute<T> {
    if path != POLICY_PATH {
        return PolicyRoute::NotFound;
    }
    let Some(host) = authority.map(host_of) else {
        return PolicyRoute::NotFound;
    };
    let Some(domain) = policy_domain(host) else {
        return PolicyRoute::NotFound;
    };
    let Some(policy) = lookup(&domain) else {
        return PolicyRoute::NotFound;
    };
    if let Some(sni) = sni
        && !sni.trim_end_matches('.').eq_ignore_ascii_case(host)
    {
        return PolicyRoute::Misdirected;
    }
    match *method {
        Method::GET => PolicyRoute::Serve {
            policy,
            head: false,
        },
        Method::HEAD => PolicyRoute::Serve { policy, head: true },
        _ => PolicyRoute::MethodNotAllowed,
    }
}

/// What the policy host answers on the service's report host (`reports.<zone>`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReportRoute {
    /// The Host names another host: the policy routes decide.
    OtherHost,
    /// `POST` of the intake path: the report intake answers.
    Intake,
    /// 404: another path on the report host.
    NotFound,
    /// 421: the TLS session was set up for another name (see [`PolicyRoute::Misdirected`]).
    Misdirected,
    /// 405: the intake path with another method; only `POST` delivers a report.
    MethodNotAllowed,
}

/// Classifies a request by whether it is for `report_host` (`reports.<zone>`, lowercase):
/// the authority is compared like [`classify_policy`] does (no port, userinfo or trailing dot,
/// any case), the SNI must name the same host when present, and the path must be exactly
/// `path` (the intake's; a query string is ignored).
pub(crate) fn classify_report(
    method: &Method,
    path: &str,
    authority: Option<&str>,
    sni: Option<&str>,
    report_host: &str,
    intake_path: &str,
) -> ReportRoute {
    let Some(host) = authority.map(host_of) else {
        return ReportRoute::OtherHost;
    };
    if !host.eq_ignore_ascii_case(report_host) {
        return ReportRoute::OtherHost;
    }
    if let Some(sni) = sni
        && !sni.trim_end_matches('.').eq_ignore_ascii_case(report_host)
    {
        return ReportRoute::Misdirected;
    }
    if path != intake_path {
        return ReportRoute::NotFound;
    }
    if *method == Method::POST {
        ReportRoute::Intake
    } else {
        ReportRoute::MethodNotAllowed
    }
}

/// What the HTTP-01 listener answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Http01Route<T> {
    /// 200 with the key authorization (`head`: headers only).
    Serve {
        /// What the lookup returned for the token.
        value: T,
        /// A `HEAD` request.
        head: bool,
    },
    /// 404: everything else, other methods included (nothing else lives on this listener, so
    /// there is no resource a 405 could talk about).
    NotFound,
}

/// Classifies a request to the HTTP-01 listener: `GET` (or `HEAD`) of
/// `/.well-known/acme-challenge/<token>` with a token of base64url characters that `lookup`
/// knows. Any Host is accepted: the CA reaches this listener under each domain's name and
/// the token alone identifies the challenge.
pub(crate) fn classify_http01<T>(
    method: &Method,
    path: &str,
    lookup: impl FnOnce(&str) -> Option<T>,
) -> Http01Route<T> {
    let head = match *method {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Http01Route::NotFound,
    };
    let Some(token) = path.strip_prefix(ACME_CHALLENGE_PREFIX) else {
        return Http01Route::NotFound;
    };
    // RFC 8555 §8.3: tokens are base64url without padding; anything else cannot be ours.
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Http01Route::NotFound;
    }
    match lookup(token) {
        Some(value) => Http01Route::Serve { value, head },
        None => Http01Route::NotFound,
    }
}

/// The host of an authority: without userinfo, port and one trailing dot. IPv6 literals
/// keep their brackets (they never name a policy host anyway).
pub(crate) fn host_of(authority: &str) -> &str {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// `d` of `mta-sts.<d>`, lowercased (snapshot keys are lowercase); borrowed when the client
/// already sent lowercase, as nearly all do.
fn policy_domain(host: &str) -> Option<Cow<'_, str>> {
    let bytes = host.as_bytes();
    if bytes.len() <= POLICY_LABEL.len()
        || !bytes[..POLICY_LABEL.len()].eq_ignore_ascii_case(POLICY_LABEL)
    {
        return None;
    }
    // The prefix matched ASCII bytes, so this is a character boundary.
    let domain = &host[POLICY_LABEL.len()..];
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(domain.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_host_routes() {
        let report = |method: Method, path: &str, authority: Option<&str>, sni: Option<&str>| {
            classify_report(
                &method,
                path,
                authority,
                sni,
                "reports.zone.example",
                "/tlsrpt",
            )
        };
        let host = Some("reports.zone.example");
        assert_eq!(
            report(Method::POST, "/tlsrpt", host, host),
            ReportRoute::Intake
        );
        for authority in [
            "reports.zone.example:443",
            "REPORTS.Zone.Example",
            "reports.zone.example.",
            "user@reports.zone.example:8443",
        ] {
            assert_eq!(
                report(
                    Method::POST,
                    "/tlsrpt",
                    Some(authority),
                    Some("Reports.zone.example.")
                ),
                ReportRoute::Intake,
                "{authority}"
            );
        }
        // Without SNI the Host decides, as for policies.
        assert_eq!(
            report(Method::POST, "/tlsrpt", host, None),
            ReportRoute::Intake
        );
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            assert_eq!(
                report(method.clone(), "/tlsrpt", host, host),
                ReportRoute::MethodNotAllowed,
                "{method}"
            );
        }
        for path in ["/", "/tlsrpt/", "/TLSRPT", "/tlsrpt/x", POLICY_PATH] {
            assert_eq!(
                report(Method::POST, path, host, host),
                ReportRoute::NotFound,
                "{path}"
            );
        }
        assert_eq!(
            report(Method::POST, "/tlsrpt", host, Some("mta-sts.a.example")),
            ReportRoute::Misdirected
        );
        for authority in [
            None,
            Some("mta-sts.a.example"),
            Some("mta-sts.reports.zone.example"),
            Some("reports.zone.example.evil"),
            Some("zone.example"),
        ] {
            assert_eq!(
                report(Method::POST, "/tlsrpt", authority, host),
                ReportRoute::OtherHost,
                "{authority:?}"
            );
        }
    }

    fn hosted(domain: &str) -> Option<String> {
        matches!(domain, "a.example" | "b.example").then(|| domain.to_string())
    }

    fn policy(
        method: Method,
        path: &str,
        authority: Option<&str>,
        sni: Option<&str>,
    ) -> PolicyRoute<String> {
        classify_policy(&method, path, authority, sni, hosted)
    }

    fn serve(domain: &str, head: bool) -> PolicyRoute<String> {
        PolicyRoute::Serve {
            policy: domain.to_string(),
            head,
        }
    }

    #[test]
    fn get_and_head_of_the_policy_path() {
        let sni = Some("mta-sts.a.example");
        let host = Some("mta-sts.a.example");
        assert_eq!(
            policy(Method::GET, POLICY_PATH, host, sni),
            serve("a.example", false)
        );
        assert_eq!(
            policy(Method::HEAD, POLICY_PATH, host, sni),
            serve("a.example", true)
        );
    }

    #[test]
    fn host_port_case_and_trailing_dot() {
        let sni = Some("mta-sts.a.example");
        for authority in [
            "mta-sts.a.example:443",
            "MTA-STS.A.Example",
            "Mta-Sts.a.example:8443",
            "mta-sts.a.example.",
            "mta-sts.a.example.:443",
            "user@mta-sts.a.example:443",
        ] {
            assert_eq!(
                policy(Method::GET, POLICY_PATH, Some(authority), sni),
                serve("a.example", false),
                "{authority}"
            );
        }
    }

    #[test]
    fn only_the_exact_path() {
        let host = Some("mta-sts.a.example");
        for path in [
            "/",
            "",
            "/mta-sts.txt",
            "/.well-known/mta-sts.txt/",
            "/.well-known/MTA-STS.txt",
            "/.well-known/mta_sts.txt",
            "//.well-known/mta-sts.txt",
            "/.well-known/mta-sts%2Etxt",
            "/.well-known/./mta-sts.txt",
        ] {
            assert_eq!(
                policy(Method::GET, path, host, host),
                PolicyRoute::NotFound,
                "{path:?}"
            );
        }
    }

    #[test]
    fn unknown_or_non_policy_hosts_are_404() {
        for authority in [
            None,
            Some(""),
            Some("a.example"),
            Some("mta-sts."),
            Some("mta-sts"),
            Some("www.a.example"),
            Some("mta-sts.c.example"),
            Some("mta_sts.a.example"),
            Some("policy.zone.example"),
            Some("[::1]:443"),
            Some("127.0.0.1"),
            Some("mta-sts.a.example:bad"),
        ] {
            assert_eq!(
                policy(Method::GET, POLICY_PATH, authority, None),
                PolicyRoute::NotFound,
                "{authority:?}"
            );
        }
    }

    #[test]
    fn sni_must_agree_with_the_host() {
        let host = Some("mta-sts.a.example");
        assert_eq!(
            policy(Method::GET, POLICY_PATH, host, Some("mta-sts.b.example")),
            PolicyRoute::Misdirected
        );
        assert_eq!(
            policy(Method::GET, POLICY_PATH, host, Some("policy.zone.example")),
            PolicyRoute::Misdirected
        );
        // SNI in another case or with a dot still names the same host.
        assert_eq!(
            policy(Method::GET, POLICY_PATH, host, Some("MTA-STS.a.example.")),
            serve("a.example", false)
        );
        // No SNI: the Host decides.
        assert_eq!(
            policy(Method::GET, POLICY_PATH, host, None),
            serve("a.example", false)
        );
        // A mismatch on an unknown name stays a plain 404.
        assert_eq!(
            policy(
                Method::GET,
                POLICY_PATH,
                Some("mta-sts.c.example"),
                Some("mta-sts.a.example")
            ),
            PolicyRoute::NotFound
        );
    }

    #[test]
    fn other_methods() {
        let host = Some("mta-sts.a.example");
        for method in [
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
            Method::PATCH,
            Method::TRACE,
            Method::CONNECT,
            Method::from_bytes(b"BREW").unwrap(),
        ] {
            assert_eq!(
                policy(method.clone(), POLICY_PATH, host, host),
                PolicyRoute::MethodNotAllowed,
                "{method}"
            );
            assert_eq!(
                policy(method.clone(), "/other", host, host),
                PolicyRoute::NotFound,
                "{method}"
            );
            assert_eq!(
                policy(method.clone(), POLICY_PATH, Some("mta-sts.c.example"), None),
                PolicyRoute::NotFound,
                "{method}"
            );
        }
    }

    #[test]
    fn host_of_strips_what_it_should() {
        assert_eq!(host_of("a.example"), "a.example");
        assert_eq!(host_of("a.example:443"), "a.example");
        assert_eq!(host_of("a.example."), "a.example");
        assert_eq!(host_of("u:p@a.example:1"), "a.example");
        assert_eq!(host_of("[::1]:443"), "[::1]");
        assert_eq!(host_of("[::1]"), "[::1]");
        assert_eq!(host_of("a.example:"), "a.example");
        assert_eq!(host_of(""), "");
        assert_eq!(host_of(":"), "");
    }

    fn token(t: &str) -> Option<&'static str> {
        (t == "tok-EN_1").then_some("tok-EN_1.thumbprint")
    }

    #[test]
    fn http01_serves_known_tokens_only() {
        let path = "/.well-known/acme-challenge/tok-EN_1";
        assert_eq!(
            classify_http01(&Method::GET, path, token),
            Http01Route::Serve {
                value: "tok-EN_1.thumbprint",
                head: false
            }
        );
        assert_eq!(
            classify_http01(&Method::HEAD, path, token),
            Http01Route::Serve {
                value: "tok-EN_1.thumbprint",
                head: true
            }
        );
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(classify_http01(&method, path, token), Http01Route::NotFound);
        }
        for path in [
            "/.well-known/acme-challenge/",
            "/.well-known/acme-challenge/other",
            "/.well-known/acme-challenge/tok-EN_1/",
            "/.well-known/acme-challenge/tok-EN_1/x",
            "/.well-known/acme-challenge/tok%2DEN_1",
            "/.well-known/acme-challenge/../acme-challenge/tok-EN_1",
            "/.well-known/ACME-CHALLENGE/tok-EN_1",
            "/.well-known/mta-sts.txt",
            "/",
        ] {
            assert_eq!(
                classify_http01(&Method::GET, path, token),
                Http01Route::NotFound,
                "{path}"
            );
        }
    }

    #[test]
    fn http01_does_not_look_up_invalid_tokens() {
        let looked_up = std::cell::Cell::new(false);
        let route = classify_http01(&Method::GET, "/.well-known/acme-challenge/a.b", |_| {
            looked_up.set(true);
            Some(())
        });
        assert_eq!(route, Http01Route::NotFound);
        assert!(!looked_up.get());
    }
}
