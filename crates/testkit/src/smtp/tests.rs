//! Tests of the test MX hosts: the EHLO reply, STARTTLS through `openssl s_client`, the legacy
//! TLS backends, and the limits.

use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::Command;

use super::dialogue::ehlo_reply;
use super::legacy::OPENSSL;
use super::*;

#[test]
fn ehlo_reply_is_multi_line_with_starttls_when_offered() {
    let reply = ehlo_reply("mx.example.test", true);
    assert!(reply.starts_with("250-mx.example.test"));
    assert!(reply.contains("250-STARTTLS\r\n"));
    assert!(reply.ends_with("250 ENHANCEDSTATUSCODES\r\n"));
    assert!(!ehlo_reply("mx.example.test", false).contains("STARTTLS"));
}

/// Runs `openssl s_client -starttls smtp` against `spec` and returns its brief output.
async fn s_client(spec: MxHostSpec, flags: &[&str]) -> String {
    let ca = TestCa::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = MxServer::start(addr, "mx.example.test", spec, &ca)
        .await
        .unwrap();
    let output = Command::new(OPENSSL)
        .args(["s_client", "-brief", "-starttls", "smtp", "-connect"])
        .arg(server.addr().to_string())
        .args(["-cipher", "DEFAULT@SECLEVEL=0"])
        .args(flags)
        .stdin(Stdio::null())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout)
}

#[tokio::test]
async fn modern_host_negotiates_tls13() {
    let out = s_client(MxHostSpec::default(), &[]).await;
    assert!(out.contains("Protocol version: TLSv1.3"), "{out}");
}

#[tokio::test]
async fn tls12_only_host_negotiates_tls12() {
    let spec = MxHostSpec {
        tls: MxTls::Tls12Only,
        ..Default::default()
    };
    let out = s_client(spec, &[]).await;
    assert!(out.contains("Protocol version: TLSv1.2"), "{out}");
}

#[tokio::test]
async fn openssl_backend_stops_with_the_server() {
    let ca = TestCa::new();
    let spec = MxHostSpec {
        tls: MxTls::Tls10Only,
        ..Default::default()
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = MxServer::start(addr, "mx.example.test", spec, &ca)
        .await
        .unwrap();
    let backend = server._legacy.as_ref().unwrap().addr;
    TcpStream::connect(backend).await.unwrap();
    drop(server);
    for _ in 0..100 {
        if TcpStream::connect(backend).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("openssl s_server still listens on {backend}");
}

#[tokio::test]
async fn legacy_hosts_negotiate_tls10_and_tls11_through_openssl() {
    let spec = MxHostSpec {
        tls: MxTls::Tls10Only,
        ..Default::default()
    };
    let out = s_client(spec, &["-tls1"]).await;
    assert!(out.contains("Protocol version: TLSv1\n"), "{out}");
    let spec = MxHostSpec {
        tls: MxTls::Tls11Only,
        ..Default::default()
    };
    let out = s_client(spec, &["-tls1_1"]).await;
    assert!(out.contains("Protocol version: TLSv1.1"), "{out}");
}

/// A minimal SMTP client for the mail tests.
struct Client<S> {
    stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// Reads one whole (possibly multi-line) reply.
    async fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                .await
                .expect("reply in time")
                .expect("read reply");
            assert!(n > 0, "connection closed after {text:?}");
            text.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return text;
            }
        }
    }

    async fn send(&mut self, text: &str) {
        write(self.stream.get_mut(), text).await.expect("send");
    }

    /// Sends one command line and returns the reply.
    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Sends each command in turn and checks that its reply starts with the given code
    /// and a space: an SMTP dialogue as a table, one row per exchange.
    async fn dialogue(&mut self, steps: &[(&str, &str)]) {
        for (line, code) in steps {
            let reply = self.cmd(line).await;
            assert!(
                reply.starts_with(&format!("{code} ")),
                "{line:?}: expected {code}, got {reply:?}"
            );
        }
    }
}

async fn connect(server: &MxServer) -> Client<TcpStream> {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let mut client = Client {
        stream: BufReader::new(tcp),
    };
    assert!(client.reply().await.starts_with("220 "));
    client
}

async fn start(spec: MxHostSpec) -> (TestCa, MxServer) {
    let ca = TestCa::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = MxServer::start(addr, "mx.example.test", spec, &ca)
        .await
        .unwrap();
    (ca, server)
}

#[tokio::test]
async fn plaintext_delivery_is_recorded_without_tls() {
    let (_ca, server) = start(MxHostSpec::default()).await;
    let mut c = connect(&server).await;
    assert!(
        c.cmd("EHLO client.test")
            .await
            .contains("250 ENHANCEDSTATUSCODES")
    );
    c.dialogue(&[
        ("MAIL FROM:<a@client.test> SIZE=100 BODY=8BITMIME", "250"),
        ("RCPT TO:<b@example.test>", "250"),
        ("rcpt to: <c@example.test>", "250"),
        ("DATA", "354"),
        ("Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.", "250 2.0.0"),
        ("QUIT", "221"),
    ])
    .await;
    let mail = server.received();
    assert_eq!(mail.len(), 1);
    let m = &mail[0];
    assert_eq!(m.mx_host, "mx.example.test");
    assert_eq!(m.helo, "client.test");
    assert_eq!(m.mail_from, "a@client.test");
    assert_eq!(m.rcpt_to, ["b@example.test", "c@example.test"]);
    assert_eq!(m.text(), "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n");
    assert!(!m.over_tls());
}

#[tokio::test]
async fn pipelined_transaction_and_null_sender() {
    let (_ca, server) = start(MxHostSpec::default()).await;
    let mut c = connect(&server).await;
    c.cmd("EHLO client.test").await;
    c.send("MAIL FROM:<>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 "));
    assert!(c.reply().await.starts_with("250 "));
    assert!(c.reply().await.starts_with("354 "));
    c.send("x\r\n.\r\nQUIT\r\n").await;
    assert!(c.reply().await.starts_with("250 "));
    assert!(c.reply().await.starts_with("221 "));
    let mail = server.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].mail_from, "");
}

#[tokio::test]
async fn commands_out_of_order_are_refused() {
    let (_ca, server) = start(MxHostSpec::default()).await;
    let mut c = connect(&server).await;
    c.dialogue(&[("MAIL FROM:<a@client.test>", "503")]).await;
    c.cmd("HELO client.test").await;
    c.dialogue(&[
        ("RCPT TO:<b@example.test>", "503"),
        ("DATA", "503"),
        ("MAIL FROM:a@client.test", "501"),
        ("MAIL FROM:<a@client.test>", "250"),
        ("MAIL FROM:<a@client.test>", "503"),
        ("RCPT TO:<>", "501"),
        ("DATA", "554"),
        ("RSET", "250"),
        ("RCPT TO:<b@example.test>", "503"),
        ("VRFY b", "502"),
    ])
    .await;
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let (_ca, server) = start(MxHostSpec::default()).await;
    let mut c = connect(&server).await;
    c.cmd("EHLO client.test").await;
    let too_big = format!("MAIL FROM:<a@client.test> SIZE={}", MAX_MESSAGE_BYTES + 1);
    assert!(c.cmd(&too_big).await.starts_with("552 "));
    assert!(c.cmd("MAIL FROM:<a@client.test>").await.starts_with("250 "));
    c.cmd("RCPT TO:<b@example.test>").await;
    assert!(c.cmd("DATA").await.starts_with("354 "));
    // One long line, sent in pieces, then the end of data.
    let piece = "y".repeat(64 * 1024);
    for _ in 0..(MAX_MESSAGE_BYTES / piece.len() + 1) {
        c.send(&piece).await;
    }
    assert!(c.cmd("\r\n.").await.starts_with("552 "));
    // The session goes on.
    assert!(c.cmd("NOOP").await.starts_with("250 "));
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn host_without_starttls_accepts_plaintext_mail() {
    let spec = MxHostSpec {
        starttls: Starttls::NotOffered,
        ..Default::default()
    };
    let (_ca, server) = start(spec).await;
    let mut c = connect(&server).await;
    assert!(!c.cmd("EHLO client.test").await.contains("STARTTLS"));
    c.cmd("MAIL FROM:<a@client.test>").await;
    c.cmd("RCPT TO:<b@example.test>").await;
    c.cmd("DATA").await;
    assert!(c.cmd("hello\r\n.").await.starts_with("250 "));
    let mail = server.received();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].tls, None);
}

#[tokio::test]
async fn delivery_after_starttls_records_version_and_sni() {
    let (ca, server) = start(MxHostSpec::default()).await;
    let mut c = connect(&server).await;
    c.cmd("EHLO client.test").await;
    // Begun in plaintext, abandoned by STARTTLS: nothing of it survives.
    c.cmd("MAIL FROM:<early@client.test>").await;
    assert!(c.cmd("STARTTLS").await.starts_with("220 "));
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(ca.root_store())
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("mx.example.test").unwrap();
    let tls = connector
        .connect(name, c.stream.into_inner())
        .await
        .unwrap();
    let mut c = Client {
        stream: BufReader::new(tls),
    };
    c.dialogue(&[("MAIL FROM:<a@client.test>", "503")]).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.dialogue(&[("STARTTLS", "503"), ("MAIL FROM:<a@client.test>", "250")])
        .await;
    c.cmd("RCPT TO:<b@example.test>").await;
    c.cmd("DATA").await;
    assert!(c.cmd("secret\r\n.").await.starts_with("250 "));
    c.cmd("QUIT").await;
    let mail = server.received();
    assert_eq!(mail.len(), 1);
    let tls = mail[0].tls.as_ref().unwrap();
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.sni.as_deref(), Some("mx.example.test"));
    assert!(!tls.cipher.is_empty());
    assert_eq!(mail[0].mail_from, "a@client.test");
}
