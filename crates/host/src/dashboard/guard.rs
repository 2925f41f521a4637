//! The guard in front of every dashboard route: security headers on every response, and
//! cross-origin POSTs refused before any handler runs.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::Response;

use super::context::{Dash, DashboardConfig};
use super::html;
use super::reply::html_response;

/// The security headers every dashboard response carries.
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Adds the security headers to every response and refuses cross-origin POSTs before any
/// handler runs.
pub(super) async fn guard(
    State(dash): State<Dash>,
    request: Request,
    next: middleware::Next,
) -> Response {
    let mut response =
        if request.method() == Method::POST && !same_origin(request.headers(), &dash.config) {
            html_response(
                StatusCode::FORBIDDEN,
                html::message(
                    "Forbidden",
                    None,
                    "This form was sent from another site and was refused.",
                ),
            )
        } else {
            next.run(request).await
        };
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Whether a POST comes from this dashboard's own pages, as far as the browser says.
///
/// * An `Origin` other than `null` must be this host (by the `Host` header) or the configured
///   public origin.
/// * `Origin: null` is what browsers send for a form POST from a page whose
///   `Referrer-Policy` is `no-referrer` — ours, on purpose. For those, `Sec-Fetch-Site`
///   (sent by every current browser, and not settable by pages) decides: only `same-origin`
///   passes. A `null` without it (an old browser) passes to the CSRF check.
/// * No `Origin` at all is a non-browser client; the CSRF token and the `SameSite=Strict`
///   cookie still apply.
pub(super) fn same_origin(headers: &HeaderMap, config: &DashboardConfig) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.as_bytes().eq_ignore_ascii_case(b"same-origin"));
    if fetch_site == Some(false) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.to_ascii_lowercase();
    if origin == "null" {
        return true;
    }
    if config.origin().is_some_and(|o| o == origin) {
        return true;
    }
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| host.eq_ignore_ascii_case(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn origin_must_be_this_host() {
        let config = DashboardConfig::default();
        assert!(same_origin(&headers(&[("host", "127.0.0.9:80")]), &config));
        assert!(same_origin(
            &headers(&[("host", "127.0.0.9:80"), ("origin", "http://127.0.0.9:80")]),
            &config
        ));
        assert!(!same_origin(
            &headers(&[("host", "127.0.0.9:80"), ("origin", "http://evil.example")]),
            &config
        ));
        // Our own no-referrer pages make browsers send `Origin: null`; Sec-Fetch-Site decides.
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.9:80"),
                ("origin", "null"),
                ("sec-fetch-site", "same-origin")
            ]),
            &config
        ));
        for site in ["cross-site", "same-site", "none"] {
            assert!(!same_origin(
                &headers(&[
                    ("host", "127.0.0.9:80"),
                    ("origin", "null"),
                    ("sec-fetch-site", site)
                ]),
                &config
            ));
        }
        assert!(!same_origin(
            &headers(&[
                ("host", "127.0.0.9:80"),
                ("origin", "http://127.0.0.9:80"),
                ("sec-fetch-site", "cross-site")
            ]),
            &config
        ));
        let public = DashboardConfig {
            public_url: Some("https://Dash.Example/".to_owned()),
            ..DashboardConfig::default()
        };
        assert!(public.secure());
        assert!(same_origin(
            &headers(&[
                ("host", "10.0.0.1:8080"),
                ("origin", "https://dash.example")
            ]),
            &public
        ));
        assert!(!DashboardConfig::default().secure());
    }
}
