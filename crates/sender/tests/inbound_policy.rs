//! The inbound policy service on real sockets (TCP and UNIX), fed what Postfix sends and
//! what it never sends: malformed and oversized requests close only their own connection,
//! without an answer, while a good client keeps getting answers; SIGHUP-style reload swaps
//! the rules without dropping connections; the metrics count every outcome.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mtasts_sender::{Config, Server};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const RULES: &str = r#"
[inbound.senders]
"partner.example" = "encrypt"
"strict.example" = { level = "verify", refuse = "550 5.7.0" }
"#;

fn config_text(dir: &Path, rules: &str) -> String {
    format!(
        r#"
data_dir = "{dir}"
[socketmap]
tcp = []
[http]
listen = []
[cache]
url = "memory"
[refresh]
enabled = false
[inbound]
tcp = ["127.0.0.1:0"]
unix = {{ path = "{dir}/policy.sock", mode = "0600" }}
{rules}
"#,
        dir = dir.display()
    )
}

struct Running {
    server_daemon: Arc<mtasts_sender::Daemon>,
    tcp: std::net::SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mtasts.toml");
    std::fs::write(&config_path, config_text(dir.path(), RULES)).unwrap();
    let config = Config::load(&config_path).unwrap();
    let server: Server = mtasts_sender::bind(config, Some(config_path.clone()))
        .await
        .expect("bind");
    let tcp = server.inbound_addrs()[0];
    let server_daemon = server.daemon().clone();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        server
            .run(stop, Arc::new(tokio::sync::Notify::new()))
            .await
            .unwrap()
    });
    Running {
        server_daemon,
        tcp,
        shutdown,
        _dir: dir,
        config_path,
    }
}

fn request(sender: &str, tls: Option<&str>) -> Vec<u8> {
    format!(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nsender={sender}\nrecipient=bob@inbound.example\nclient_address=192.0.2.10\nclient_name=unknown\nencryption_protocol={}\nccert_subject=\n\n",
        tls.unwrap_or("")
    )
    .into_bytes()
}

/// Sends `bytes` and reads one answer; `None` when the server closes (or resets) first.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Option<String> {
    // The server may close before everything is written (oversized input).
    let _ = stream.write_all(bytes).await;
    read_answer(stream).await
}

async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        loop {
            match stream.read(&mut byte).await {
                Ok(1) => {
                    answer.push(byte[0]);
                    if answer.ends_with(b"\n\n") {
                        return Some(String::from_utf8_lossy(&answer).into_owned());
                    }
                }
                _ => return None,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the server neither answered nor closed within 10 s")
}

#[tokio::test]
async fn answers_postfix_requests_over_tcp_and_unix() {
    let running = start().await;
    let mut tcp = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
    let refused = ask(&mut tcp, &request("alice@partner.example", None))
        .await
        .unwrap();
    assert_eq!(
        refused,
        "action=450 4.7.0 TLS (STARTTLS) is required for mail from here (inbound rule sender partner.example: encrypt)\n\n"
    );
    let ok = ask(&mut tcp, &request("alice@partner.example", Some("TLSv1.3")))
        .await
        .unwrap();
    assert_eq!(ok, "action=DUNNO\n\n");
    let strict = ask(&mut tcp, &request("x@strict.example", Some("TLSv1.3")))
        .await
        .unwrap();
    assert!(
        strict.starts_with("action=550 5.7.0 TLS with a client certificate"),
        "{strict}"
    );
    // Pipelined requests are answered in order.
    let mut two = request("a@nobody.example", None);
    two.extend(request("a@partner.example", None));
    tcp.write_all(&two).await.unwrap();
    assert_eq!(read_answer(&mut tcp).await.unwrap(), "action=DUNNO\n\n");
    assert!(
        read_answer(&mut tcp)
            .await
            .unwrap()
            .starts_with("action=450 ")
    );
    // The same over the UNIX socket.
    let path = running.config_path.parent().unwrap().join("policy.sock");
    let mut unix = tokio::net::UnixStream::connect(&path).await.unwrap();
    let answer = ask(&mut unix, &request("alice@partner.example", None))
        .await
        .unwrap();
    assert!(answer.starts_with("action=450 4.7.0 "), "{answer}");
}

#[tokio::test]
async fn malformed_and_oversized_requests_close_only_their_connection() {
    let running = start().await;
    let mut good = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
    assert!(
        ask(&mut good, &request("a@partner.example", None))
            .await
            .is_some()
    );
    let mut many = b"request=smtpd_access_policy\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("x{i}=y\n").as_bytes());
    }
    many.push(b'\n');
    let mut big = b"request=smtpd_access_policy\n".to_vec();
    while big.len() < 40_000 {
        big.extend_from_slice(format!("pad{}={}\n", big.len(), "z".repeat(1000)).as_bytes());
    }
    big.push(b'\n');
    let bad: Vec<(&str, Vec<u8>)> = vec![
        (
            "no equals sign",
            b"request=smtpd_access_policy\nhello\n\n".to_vec(),
        ),
        ("no request", b"sender=a@partner.example\n\n".to_vec()),
        (
            "other request type",
            b"request=junk\nsender=a@partner.example\n\n".to_vec(),
        ),
        (
            "duplicate sender",
            b"request=smtpd_access_policy\nsender=a@nobody.example\nsender=a@partner.example\n\n"
                .to_vec(),
        ),
        (
            "non-UTF-8 sender",
            b"request=smtpd_access_policy\nsender=a@\xffpartner.example\n\n".to_vec(),
        ),
        (
            "bad address",
            b"request=smtpd_access_policy\nclient_address=999.1.1.1\n\n".to_vec(),
        ),
        ("line too long", vec![b'a'; 10_000]),
        ("too many attributes", many),
        ("request too large", big),
    ];
    let count = bad.len() as u64;
    for (what, bytes) in bad {
        let mut stream = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
        assert_eq!(ask(&mut stream, &bytes).await, None, "{what}: answered");
        // The good client is still served, on its old connection and on a new one.
        let answer = ask(&mut good, &request("a@partner.example", None)).await;
        assert!(
            answer.unwrap().starts_with("action=450 4.7.0 "),
            "after {what}"
        );
    }
    let mut fresh = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
    assert!(
        ask(&mut fresh, &request("a@partner.example", Some("TLSv1.2")))
            .await
            .unwrap()
            == "action=DUNNO\n\n"
    );
    let metrics = running.server_daemon.metrics().encode();
    assert!(
        metrics.contains(&format!(
            "mtasts_resolver_inbound_requests_total{{outcome=\"malformed\"}} {count}"
        )),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("mtasts_resolver_inbound_refusals_total{rule=\"sender partner.example\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mtasts_resolver_inbound_requests_total{outcome=\"satisfied\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_request_is_closed_and_others_are_served() {
    let running = start().await;
    // Half a request, then nothing: the server waits up to the request timeout (60 s by
    // default) for this one connection; meanwhile another is served at once.
    let mut slow = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
    slow.write_all(b"request=smtpd_access_policy\nsender=a@partner")
        .await
        .unwrap();
    let mut good = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
    assert!(
        ask(&mut good, &request("a@partner.example", None))
            .await
            .is_some()
    );
}

#[tokio::test]
async fn reload_swaps_the_rules_without_dropping_connections() {
    let running = start().await;
    let mut tcp = tokio::net::TcpStream::connect(running.tcp).await.unwrap();
    assert!(
        ask(&mut tcp, &request("a@partner.example", None))
            .await
            .unwrap()
            .starts_with("action=450 ")
    );
    let dir = running.config_path.parent().unwrap();
    std::fs::write(
        &running.config_path,
        config_text(dir, "[inbound.senders]\n\"partner.example\" = \"may\"\n"),
    )
    .unwrap();
    running.server_daemon.reload().unwrap();
    assert_eq!(
        ask(&mut tcp, &request("a@partner.example", None))
            .await
            .unwrap(),
        "action=DUNNO\n\n"
    );
    // A bad file keeps the rules in force.
    std::fs::write(
        &running.config_path,
        config_text(dir, "[inbound.senders]\n\"partner.example\" = \"secure\"\n"),
    )
    .unwrap();
    assert!(running.server_daemon.reload().is_err());
    assert_eq!(
        ask(&mut tcp, &request("a@partner.example", None))
            .await
            .unwrap(),
        "action=DUNNO\n\n"
    );
}
