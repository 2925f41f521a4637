//! curl against the policy host: HTTP/2 and HTTP/1.1 by ALPN, headers, the exact body.

use std::process::Output;

use mtasts_testkit::services::{self, Service};

use crate::policy_host::common::*;

/// `curl` with `args`, or `None` (and a note) when curl is not installed.
async fn curl(args: &[&str]) -> Option<Output> {
    match tokio::process::Command::new("curl")
        .args(args)
        .output()
        .await
    {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            services::skip(Service::Curl, &format_args!("curl is not installed ({e})"));
            None
        }
        Err(e) => panic!("cannot run curl: {e}"),
    }
}

fn headers(text: &str) -> Vec<(String, String)> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn curl_over_http2_and_http1() {
    let site = Site::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = site.net.ca_file();
    let port = site.addr.port();
    let resolve = format!("mta-sts.a.example:{port}:{}", site.ip());
    let url = format!("https://mta-sts.a.example:{port}{POLICY_PATH}");
    for (flag, version, status_line) in [
        ("--http2", "2", "HTTP/2 200"),
        ("--http1.1", "1.1", "HTTP/1.1 200 OK"),
    ] {
        let head_file = dir.path().join(format!("head{version}"));
        let body_file = dir.path().join(format!("body{version}"));
        let Some(output) = curl(&[
            "--silent",
            "--show-error",
            flag,
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &resolve,
            "--dump-header",
            head_file.to_str().unwrap(),
            "--output",
            body_file.to_str().unwrap(),
            "--write-out",
            "%{http_version}",
            &url,
        ])
        .await
        else {
            return;
        };
        assert!(
            output.status.success(),
            "curl {flag}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout), version);
        let head = std::fs::read_to_string(&head_file).unwrap();
        assert!(head.starts_with(status_line), "{head}");
        let headers = headers(&head);
        assert_eq!(header(&headers, "content-type"), Some("text/plain"));
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "cache-control"), Some("no-store"));
        assert_eq!(
            header(&headers, "content-length"),
            Some(POLICY_A.len().to_string().as_str())
        );
        assert_eq!(header(&headers, "location"), None);
        assert_eq!(std::fs::read(&body_file).unwrap(), POLICY_A.as_bytes());
    }
}

#[tokio::test]
async fn curl_head_unknown_host_and_post() {
    let site = Site::start().await;
    let ca = site.net.ca_file();
    let port = site.addr.port();
    let run = |host: &str, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "--silent".into(),
            "--show-error".into(),
            "--cacert".into(),
            ca.to_str().unwrap().into(),
            "--resolve".into(),
            format!("{host}:{port}:{}", site.ip()),
            "--include".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(format!("https://{host}:{port}{POLICY_PATH}"));
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&args).await
        }
    };
    // HEAD over HTTP/2: the GET length, no body.
    let Some(head) = run("mta-sts.a.example", &["--http2", "--head"]).await else {
        return;
    };
    let text = String::from_utf8(head.stdout).unwrap();
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(
        text.contains(&format!("content-length: {}\r\n", POLICY_A.len())),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text}");

    // An unknown name: the fallback certificate (untrusted, hence --insecure), then 404.
    for flag in ["--http2", "--http1.1"] {
        let out = run("mta-sts.unknown.example", &[flag, "--insecure"])
            .await
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(" 404"), "{flag}: {text}");
        assert!(!text.to_ascii_lowercase().contains("location:"), "{text}");
    }
    // Without --insecure, the fallback certificate is refused for that name.
    let out = run("mta-sts.unknown.example", &["--http2"]).await.unwrap();
    assert!(!out.status.success());

    // POST over HTTP/2. Without a body: curl 7.88 reports the RST_STREAM NO_ERROR that
    // follows an early response to an unfinished upload as a failure (RFC 9113 §8.1 says
    // the client must not); `https::http2_post_with_an_unfinished_body_gets_its_405` covers
    // that case with a conforming client.
    let out = run("mta-sts.a.example", &["--http2", "--request", "POST"])
        .await
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("HTTP/2 405"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("allow: GET, HEAD\r\n"), "{text}");
}
