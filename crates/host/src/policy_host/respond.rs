//! Turning a classified request into a response, with the policy bodies prepared once per
//! snapshot so a request only clones reference-counted bytes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Frame, SizeHint};
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Request, Response, StatusCode};

use super::route::{Http01Route, PolicyRoute, classify_http01, classify_policy};
use crate::metrics::ServeMetrics;
use crate::snapshot::{Snapshot, SnapshotHandle};

/// The body type of every response.
pub(crate) type Body = Full<Bytes>;

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
const GET_HEAD: HeaderValue = HeaderValue::from_static("GET, HEAD");

/// A response body that holds on to the request's (never read) body until the response
/// has been sent. HTTP/2 tells a client that is still uploading to stop with RST_STREAM
/// NO_ERROR when the response is already complete (RFC 9113 §8.1), but with CANCEL when the
/// request body goes away first, and clients (curl) report CANCEL as a failed request.
#[derive(Debug)]
pub(crate) struct HoldingBody<R> {
    body: Body,
    _request_body: R,
}

impl<R> HoldingBody<R> {
    pub(crate) fn new(body: Body, request_body: R) -> Self {
        HoldingBody {
            body,
            _request_body: request_body,
        }
    }
}

impl<R: Unpin> hyper::body::Body for HoldingBody<R> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// One domain's policy, ready to send.
#[derive(Debug)]
struct PreparedPolicy {
    body: Bytes,
    content_length: HeaderValue,
}

/// The policies of one snapshot, keyed like `Snapshot::domains`.
#[derive(Debug)]
struct Prepared {
    /// Held so its address cannot be reused by a later snapshot while this is cached.
    snapshot: Arc<Snapshot>,
    policies: HashMap<String, PreparedPolicy>,
}

impl Prepared {
    fn new(snapshot: Arc<Snapshot>) -> Self {
        let policies = snapshot
            .domains
            .iter()
            .map(|(name, domain)| {
                let body = Bytes::from_owner(StrBytes(domain.policy_body.clone()));
                let prepared = PreparedPolicy {
                    content_length: HeaderValue::from(body.len()),
                    body,
                };
                (name.clone(), prepared)
            })
            .collect();
        Prepared { snapshot, policies }
    }
}

/// Lets `Bytes` share the snapshot's `Arc<str>` instead of copying every body.
struct StrBytes(Arc<str>);

impl AsRef<[u8]> for StrBytes {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Answers policy requests from the current snapshot.
#[derive(Debug)]
pub(crate) struct PolicyResponder {
    snapshot: SnapshotHandle,
    prepared: ArcSwapOption<Prepared>,
    cache_control: HeaderValue,
    metrics: ServeMetrics,
    /// The report host's own policy: the policy domain (`reports.<zone>`, whose policy host
    /// is `mta-sts.reports.<zone>`) and its body, fixed by the configuration.
    own: Option<(String, PreparedPolicy)>,
}

impl PolicyResponder {
    /// `proxy_max_age`: see [`super::ListenerLimits::proxy_max_age`].
    pub(crate) fn new(snapshot: SnapshotHandle, proxy_max_age: Option<u32>) -> Self {
        let cache_control = match proxy_max_age {
            Some(seconds) => {
                HeaderValue::from_str(&format!("max-age={seconds}")).unwrap_or(NO_STORE)
            }
            None => NO_STORE,
        };
        PolicyResponder {
            snapshot,
            prepared: ArcSwapOption::empty(),
            cache_control,
            metrics: ServeMetrics::default(),
            own: None,
        }
    }

    /// Counts every answer into `metrics` (`policy_request`).
    pub(crate) fn with_metrics(mut self, metrics: ServeMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Also serves `body` (CRLF lines) as the policy of `domain`, the report host, at
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`, by the same rules as hosted
    /// policies.
    pub(crate) fn with_own_policy(mut self, domain: &str, body: &str) -> Self {
        let body = Bytes::copy_from_slice(body.as_bytes());
        let policy = PreparedPolicy {
            content_length: HeaderValue::from(body.len()),
            body,
        };
        self.own = Some((domain.to_ascii_lowercase(), policy));
        self
    }

    /// The response to `request` on a TLS session whose SNI was `sni`.
    pub(crate) fn respond<B>(&self, request: &Request<B>, sni: Option<&str>) -> Response<Body> {
        let authority = authority(request);
        let prepared = self.prepared();
        // See `Freshness`: a node cut off from the database must not serve a policy that
        // may be older than the id other nodes publish.
        if !prepared.snapshot.is_fresh() {
            self.metrics.policy_request("unavailable");
            return error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n");
        }
        let route = classify_policy(
            request.method(),
            request.uri().path(),
            authority,
            sni,
            |domain| {
                prepared.policies.get(domain).or_else(|| {
                    self.own
                        .as_ref()
                        .filter(|(own, _)| own == domain)
                        .map(|(_, policy)| policy)
                })
            },
        );
        self.metrics.policy_request(match route {
            PolicyRoute::Serve { .. } => "served",
            PolicyRoute::NotFound => "not_found",
            PolicyRoute::Misdirected => "misdirected",
            PolicyRoute::MethodNotAllowed => "method_not_allowed",
        });
        match route {
            PolicyRoute::Serve { policy, head } => {
                let body = if head {
                    Bytes::new()
                } else {
                    policy.body.clone()
                };
                let mut response = Response::new(Full::new(body));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, TEXT_PLAIN);
                // Set explicitly so HEAD reports the GET length (hyper's HTTP/2 side would
                // not fill it in for an empty body).
                headers.insert(CONTENT_LENGTH, policy.content_length.clone());
                headers.insert(CACHE_CONTROL, self.cache_control.clone());
                headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
                response
            }
            PolicyRoute::NotFound => error(StatusCode::NOT_FOUND, "not found\n"),
            PolicyRoute::Misdirected => {
                error(StatusCode::MISDIRECTED_REQUEST, "misdirected request\n")
            }
            PolicyRoute::MethodNotAllowed => {
                let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                response.headers_mut().insert(ALLOW, GET_HEAD);
                response
            }
        }
    }

    /// The prepared policies of the current snapshot (one `load` of the handle); rebuilt by
    /// the first request that sees a new snapshot.
    fn prepared(&self) -> Arc<Prepared> {
        let current = self.snapshot.load();
        let cached = self.prepared.load();
        if let Some(prepared) = cached.as_ref()
            && Arc::ptr_eq(&prepared.snapshot, &current)
        {
            return prepared.clone();
        }
        let fresh = Arc::new(Prepared::new(arc_swap::Guard::into_inner(current)));
        // A request that loaded the snapshot just before a swap must not replace the newer
        // preparation another request already stored; it answers from its own.
        let newer_cached = cached
            .as_ref()
            .is_some_and(|p| p.snapshot.generation > fresh.snapshot.generation);
        if !newer_cached {
            self.prepared.store(Some(fresh.clone()));
        }
        fresh
    }
}

/// The authority a request names: its URI's (HTTP/2, absolute form) or its `Host` header.
pub(crate) fn authority<B>(request: &Request<B>) -> Option<&str> {
    request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| request.headers().get(HOST).and_then(|h| h.to_str().ok()))
}

/// 404.
pub(crate) fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not found\n")
}

/// 421 (see `PolicyRoute::Misdirected`).
pub(crate) fn misdirected() -> Response<Body> {
    error(StatusCode::MISDIRECTED_REQUEST, "misdirected request\n")
}

/// 405 with `Allow: allow`.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}

/// The HTTP-01 answer to `request`.
pub(crate) fn respond_http01<B>(snapshot: &SnapshotHandle, request: &Request<B>) -> Response<Body> {
    let snapshot = snapshot.load();
    if !snapshot.is_fresh() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n");
    }
    let route = classify_http01(request.method(), request.uri().path(), |token| {
        snapshot.challenges.http01.get(token)
    });
    match route {
        Http01Route::Serve { value, head } => {
            let length = HeaderValue::from(value.len());
            // Validation requests are rare; copying the key authorization is fine.
            let body = if head {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(value.as_bytes())
            };
            let mut response = Response::new(Full::new(body));
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, OCTET_STREAM);
            headers.insert(CONTENT_LENGTH, length);
            headers.insert(CACHE_CONTROL, NO_STORE);
            headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
            response
        }
        Http01Route::NotFound => error(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A short `text/plain` error. `no-store` so a proxy in front never keeps a 404 from before
/// a domain was added.
fn error(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, TEXT_PLAIN);
    headers.insert(CACHE_CONTROL, NO_STORE);
    headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{HostedDomain, handle};

    fn snapshot(generation: u64, body: &str) -> Snapshot {
        let mut snapshot = Snapshot {
            generation,
            ..Default::default()
        };
        snapshot.domains.insert(
            "a.example".to_string(),
            HostedDomain {
                name: "a.example".to_string(),
                tenant_id: 1,
                policy_body: body.into(),
                txt_id: None,
                tlsrpt: None,
                certificate: None,
                reports_to_service: true,
            },
        );
        snapshot
            .challenges
            .http01
            .insert("tok".to_string(), "tok.key".to_string());
        snapshot
    }

    fn get(method: &str, uri: &str, host: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(HOST, host)
            .body(())
            .unwrap()
    }

    fn body(response: &Response<Body>) -> Bytes {
        use http_body_util::BodyExt;
        let mut body = response.body().clone();
        futures::executor::block_on(body.frame())
            .map(|f| f.unwrap().into_data().unwrap())
            .unwrap_or_default()
    }

    #[test]
    fn policy_responses() {
        let handle = handle(snapshot(1, "version: STSv1\r\nmode: none\r\n"));
        let responder = PolicyResponder::new(handle.clone(), None);
        let sni = Some("mta-sts.a.example");

        let ok = responder.respond(&get("GET", POLICY_PATH, "mta-sts.a.example:443"), sni);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(ok.headers()[CONTENT_LENGTH], "28");
        assert_eq!(ok.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(ok.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(body(&ok), "version: STSv1\r\nmode: none\r\n");

        let head = responder.respond(&get("HEAD", POLICY_PATH, "mta-sts.a.example"), sni);
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(head.headers()[CONTENT_LENGTH], "28");
        assert!(body(&head).is_empty());

        let query = responder.respond(
            &get("GET", "/.well-known/mta-sts.txt?x=1", "mta-sts.a.example"),
            sni,
        );
        assert_eq!(query.status(), StatusCode::OK);

        let post = responder.respond(&get("POST", POLICY_PATH, "mta-sts.a.example"), sni);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[ALLOW], "GET, HEAD");

        let other = responder.respond(&get("GET", "/", "mta-sts.a.example"), sni);
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        assert_eq!(other.headers()[CONTENT_TYPE], "text/plain");
        assert!(other.headers().get(hyper::header::LOCATION).is_none());

        let misdirected = responder.respond(
            &get("GET", POLICY_PATH, "mta-sts.a.example"),
            Some("mta-sts.b.example"),
        );
        assert_eq!(misdirected.status(), StatusCode::MISDIRECTED_REQUEST);

        // Absolute-form (and HTTP/2) authority wins over Host.
        let absolute = responder.respond(
            &get(
                "GET",
                "https://mta-sts.a.example/.well-known/mta-sts.txt",
                "other.example",
            ),
            sni,
        );
        assert_eq!(absolute.status(), StatusCode::OK);
    }

    #[test]
    fn the_report_hosts_own_policy_is_served_like_a_hosted_one() {
        let own =
            "version: STSv1\r\nmode: testing\r\nmx: reports.zone.example\r\nmax_age: 86400\r\n";
        let responder = PolicyResponder::new(handle(snapshot(1, "hosted\r\n")), None)
            .with_own_policy("reports.zone.example", own);
        let host = "mta-sts.reports.zone.example";
        let ok = responder.respond(&get("GET", POLICY_PATH, host), Some(host));
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(ok.headers()[CONTENT_LENGTH], own.len().to_string().as_str());
        assert_eq!(body(&ok), own);
        // Any case and a trailing dot, like hosted policies; HEAD has the length only.
        let upper = responder.respond(
            &get("HEAD", POLICY_PATH, "MTA-STS.Reports.Zone.Example."),
            None,
        );
        assert_eq!(upper.status(), StatusCode::OK);
        assert!(body(&upper).is_empty());
        // SNI for another name: 421; other paths and methods as for every policy.
        let misdirected =
            responder.respond(&get("GET", POLICY_PATH, host), Some("mta-sts.a.example"));
        assert_eq!(misdirected.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(
            responder
                .respond(&get("POST", POLICY_PATH, host), Some(host))
                .status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            responder
                .respond(&get("GET", "/", host), Some(host))
                .status(),
            StatusCode::NOT_FOUND
        );
        // The report host itself is no policy host, and hosted policies are unchanged.
        assert_eq!(
            responder
                .respond(&get("GET", POLICY_PATH, "reports.zone.example"), None)
                .status(),
            StatusCode::NOT_FOUND
        );
        let hosted = responder.respond(&get("GET", POLICY_PATH, "mta-sts.a.example"), None);
        assert_eq!(body(&hosted), "hosted\r\n");
        // Without it, the name is unknown.
        let plain = PolicyResponder::new(handle(snapshot(1, "hosted\r\n")), None);
        assert_eq!(
            plain
                .respond(&get("GET", POLICY_PATH, host), Some(host))
                .status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn a_new_snapshot_is_served_at_once() {
        let handle = handle(snapshot(1, "one\r\n"));
        let responder = PolicyResponder::new(handle.clone(), Some(60));
        let request = get("GET", POLICY_PATH, "mta-sts.a.example");
        let first = responder.respond(&request, None);
        assert_eq!(body(&first), "one\r\n");
        assert_eq!(first.headers()[CACHE_CONTROL], "max-age=60");
        // Same generation, new snapshot: still noticed (by identity, not by number).
        handle.store(Arc::new(snapshot(1, "two\r\n")));
        assert_eq!(body(&responder.respond(&request, None)), "two\r\n");
        handle.store(Arc::new(snapshot(2, "three\r\n")));
        assert_eq!(body(&responder.respond(&request, None)), "three\r\n");
        handle.store(Arc::new(Snapshot::default()));
        assert_eq!(
            responder.respond(&request, None).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn http01_responses() {
        let handle = handle(snapshot(1, ""));
        let ok = respond_http01(&handle, &get("GET", "/.well-known/acme-challenge/tok", "x"));
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "application/octet-stream");
        assert_eq!(body(&ok), "tok.key");
        for (method, path) in [
            ("GET", "/.well-known/acme-challenge/nope"),
            ("POST", "/.well-known/acme-challenge/tok"),
            ("GET", POLICY_PATH),
        ] {
            let response = respond_http01(&handle, &get(method, path, "x"));
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        }
    }

    use super::super::route::POLICY_PATH;

    #[test]
    fn a_stale_snapshot_is_not_served() {
        use crate::snapshot::Freshness;
        let mut stale = snapshot(3, "version: STSv1\r\nmode: none\r\nmax_age: 86400\r\n");
        let freshness = Arc::new(Freshness::new());
        stale.freshness = Some(freshness.clone());
        let handle = handle(stale);
        let responder = PolicyResponder::new(handle, None);
        let request = Request::get("/.well-known/mta-sts.txt")
            .header(HOST, "mta-sts.a.example")
            .body(())
            .unwrap();
        let response = responder.respond(&request, Some("mta-sts.a.example"));
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        freshness.extend_to(std::time::Instant::now() + std::time::Duration::from_secs(30));
        let response = responder.respond(&request, Some("mta-sts.a.example"));
        assert_eq!(response.status(), StatusCode::OK);
    }
}
