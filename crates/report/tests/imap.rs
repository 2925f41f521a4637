//! `mtasts_report::imap` against a real Dovecot on loopback (testkit's `dovecot`): implicit TLS
//! and STARTTLS, wrong password, an unknown CA, real report mails from the samples stored and
//! marked, nothing imported twice, a failing store leaving messages unmarked, the move and
//! delete modes, an oversized message, a mailbox rebuilt with a new UIDVALIDITY, watch mode
//! with IDLE and across a dropped connection; and fake servers: an endless line, a server that
//! stops answering, a plain server without STARTTLS.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mtasts_proto::imap_url::ImapUrl;
use mtasts_report::imap::{
    Accepted, Counts, FetchConfig, FetchError, KEYWORD, MessageSink, Processed, SinkError, fetch,
    watch,
};
use mtasts_report::{Found, FoundError, Limits, walk};
use mtasts_testkit::dovecot::Dovecot;
use mtasts_testkit::services::samples_dir;
use mtasts_testkit::{CertSpec, TestCa};

/// Real report mails from the samples: (path under samples/, reports inside).
const MAILS: &[(&str, u64)] = &[
    ("tlsrpt/mox/example.eml", 1),
    ("tlsrpt/mox/microsoft.eml", 1),
    ("dmarc/mox/google.eml", 1),
];

/// A sink that keeps what it was given in memory; it fails every message after the first
/// `fail_after` when that is set.
#[derive(Default)]
struct MemorySink {
    stored: Mutex<Vec<(String, Vec<u8>)>>,
    refused: Mutex<Vec<FoundError>>,
    fail_after: Option<usize>,
    calls: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("the database is away")]
struct Away;

impl MessageSink for MemorySink {
    async fn accept(
        &self,
        message: &[u8],
        source: &str,
        _received_at: i64,
    ) -> Result<Accepted, SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_after.is_some_and(|limit| n >= limit) {
            return Err(SinkError::new(Away));
        }
        let mut stored = self.stored.lock().unwrap();
        let seen = stored.iter().any(|(_, m)| m == message);
        stored.push((source.to_owned(), message.to_vec()));
        let found = walk(message, source, &Limits::default());
        let reports = found
            .iter()
            .filter(|f| !matches!(f, Found::Error(_)))
            .count() as u64;
        let errors = found
            .into_iter()
            .filter_map(|f| match f {
                Found::Error(e) => Some(e),
                _ => None,
            })
            .collect();
        Ok(if seen {
            Accepted::new(0, reports, errors)
        } else {
            Accepted::new(reports, 0, errors)
        })
    }

    async fn refuse(&self, error: &FoundError, _received_at: i64) -> Result<(), SinkError> {
        if self.fail_after.is_some() {
            return Err(SinkError::new(Away));
        }
        self.refused.lock().unwrap().push(error.clone());
        Ok(())
    }
}

struct World {
    ca: TestCa,
    dovecot: Dovecot,
    samples: std::path::PathBuf,
}

fn world() -> Option<World> {
    let samples = samples_dir()?;
    let ca = TestCa::new();
    let cert = ca.issue("localhost", &CertSpec::Valid);
    let dovecot = Dovecot::start_or_skip(&cert, "reports", "s3cret \"quoted\"")?;
    Some(World {
        ca,
        dovecot,
        samples,
    })
}

impl World {
    fn config(&self, scheme: &str) -> FetchConfig {
        let port = match scheme {
            "imaps" => self.dovecot.imaps().port(),
            _ => self.dovecot.imap().port(),
        };
        let url = ImapUrl::parse(&format!("{scheme}://reports@localhost:{port}/INBOX")).unwrap();
        let mut config = FetchConfig::new(
            url,
            self.dovecot.password().to_owned(),
            self.ca.root_store(),
        );
        config.timeout = Duration::from_secs(10);
        config
    }

    fn deliver_samples(&self) {
        for (path, _) in MAILS {
            let bytes = std::fs::read(self.samples.join(path)).unwrap();
            self.dovecot.deliver("INBOX", &bytes).unwrap();
        }
    }

    fn inbox(&self) -> Vec<mtasts_testkit::dovecot::MaildirMessage> {
        self.dovecot.messages("INBOX").unwrap()
    }
}

fn reports_in_samples() -> u64 {
    MAILS.iter().map(|(_, n)| n).sum()
}

async fn run(config: &FetchConfig, sink: &MemorySink) -> (Counts, Result<(), FetchError>) {
    let mut counts = Counts::default();
    let result = fetch(config, sink, &mut counts).await;
    (counts, result)
}

#[tokio::test]
async fn imaps_stores_every_sample_mail_marks_it_and_a_second_run_imports_nothing() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    w.dovecot
        .deliver("INBOX", b"Subject: hello\r\n\r\nnot a report\r\n")
        .unwrap();
    let sink = MemorySink::default();
    let (counts, result) = run(&w.config("imaps"), &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, MAILS.len() as u64 + 1);
    assert_eq!(counts.new, reports_in_samples());
    assert_eq!(counts.duplicate, 0);
    assert_eq!(counts.errors.len(), 1, "{:?}", counts.errors);
    let stored = sink.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), MAILS.len() + 1);
    for (source, _) in &stored {
        assert!(
            source.starts_with(&format!(
                "imaps://reports@localhost:{}/INBOX#",
                w.dovecot.imaps().port()
            )),
            "{source}"
        );
        assert!(!source.contains("s3cret"));
    }
    // Every message delivered is stored byte for byte…
    for (path, _) in MAILS {
        let bytes = std::fs::read(w.samples.join(path)).unwrap();
        assert!(stored.iter().any(|(_, m)| *m == bytes), "{path} not stored");
    }
    // …and marked, and nothing else changed (not even \Seen).
    let inbox = w.inbox();
    assert_eq!(inbox.len(), MAILS.len() + 1);
    for message in &inbox {
        assert_eq!(
            message.keywords,
            vec![KEYWORD.to_owned()],
            "{}",
            message.file
        );
        assert_eq!(message.flags, "", "{}", message.file);
    }
    let (again, result) = run(&w.config("imaps"), &sink).await;
    result.unwrap();
    assert_eq!(again, Counts::default());
    assert_eq!(sink.stored.lock().unwrap().len(), MAILS.len() + 1);
}

#[tokio::test]
async fn starttls_on_the_plain_port_works_the_same() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let sink = MemorySink::default();
    let (counts, result) = run(&w.config("imap"), &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, MAILS.len() as u64);
    assert_eq!(counts.new, reports_in_samples());
    assert!(w.inbox().iter().all(|m| m.keywords == [KEYWORD]));
    // STARTTLS to the implicit-TLS port is not mistaken for success.
    let mut wrong = w.config("imap");
    wrong.url.port = w.dovecot.imaps().port();
    let (_, result) = run(&wrong, &sink).await;
    assert!(result.is_err());
}

#[tokio::test]
async fn a_wrong_password_is_a_login_error() {
    let Some(w) = world() else { return };
    let mut config = w.config("imaps");
    config.password = "wrong".into();
    let (_, result) = run(&config, &MemorySink::default()).await;
    match result {
        Err(FetchError::Login(message)) => {
            assert!(message.to_lowercase().contains("auth"), "{message}")
        }
        other => panic!("expected a login error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let other = TestCa::new();
    let sink = MemorySink::default();
    for scheme in ["imaps", "imap"] {
        let mut config = w.config(scheme);
        config.roots = other.root_store();
        let (_, result) = run(&config, &sink).await;
        match result {
            Err(FetchError::Tls(reason)) => assert!(reason.contains("certificate"), "{reason}"),
            other => panic!("{scheme}: expected a TLS error, got {other:?}"),
        }
    }
    assert!(sink.stored.lock().unwrap().is_empty());
    assert!(w.inbox().iter().all(|m| m.keywords.is_empty()));
}

#[tokio::test]
async fn a_message_that_fails_to_store_is_not_marked() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let failing = MemorySink {
        fail_after: Some(1),
        ..MemorySink::default()
    };
    let (counts, result) = run(&w.config("imaps"), &failing).await;
    match result {
        Err(FetchError::Store { message, .. }) => assert!(message.contains("/INBOX#"), "{message}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(counts.messages, 1);
    let marked = w.inbox().iter().filter(|m| !m.keywords.is_empty()).count();
    assert_eq!(marked, 1, "only the stored message is marked");
    // The next run takes the others, and only them.
    let sink = MemorySink::default();
    let (counts, result) = run(&w.config("imaps"), &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, MAILS.len() as u64 - 1);
    assert!(w.inbox().iter().all(|m| m.keywords == [KEYWORD]));
}

#[tokio::test]
async fn move_mode_moves_processed_messages_to_the_folder() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let mut config = w.config("imaps");
    config.processed = Processed::Move("Processed".into());
    let sink = MemorySink::default();
    let (counts, result) = run(&config, &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, MAILS.len() as u64);
    assert!(w.inbox().is_empty());
    let moved = w.dovecot.messages("Processed").unwrap();
    assert_eq!(moved.len(), MAILS.len());
    let (again, result) = run(&config, &sink).await;
    result.unwrap();
    assert_eq!(again.messages, 0);
}

#[tokio::test]
async fn delete_mode_expunges_processed_messages() {
    let Some(w) = world() else { return };
    w.deliver_samples();
    let mut config = w.config("imaps");
    config.processed = Processed::Delete;
    let sink = MemorySink::default();
    let (counts, result) = run(&config, &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, MAILS.len() as u64);
    assert_eq!(sink.stored.lock().unwrap().len(), MAILS.len());
    assert!(w.inbox().is_empty());
}

#[tokio::test]
async fn an_oversized_message_is_recorded_as_too_large_and_marked_without_being_fetched() {
    let Some(w) = world() else { return };
    let small = b"Subject: small\r\n\r\nhello\r\n".to_vec();
    let mut large = b"Subject: large\r\n\r\n".to_vec();
    large.extend(std::iter::repeat_n(b'x', 8000));
    large.extend(b"\r\n");
    w.dovecot.deliver("INBOX", &small).unwrap();
    w.dovecot.deliver("INBOX", &large).unwrap();
    let mut config = w.config("imaps");
    config.max_message_bytes = 4096;
    let sink = MemorySink::default();
    let (counts, result) = run(&config, &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, 2);
    let stored = sink.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, small);
    let refused = sink.refused.lock().unwrap().clone();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].code.as_str(), "too-large");
    assert!(
        refused[0].message.contains("4096"),
        "{}",
        refused[0].message
    );
    assert!(counts.errors.iter().any(|e| e.code.as_str() == "too-large"));
    assert!(w.inbox().iter().all(|m| m.keywords == [KEYWORD]));
    let (again, result) = run(&config, &sink).await;
    result.unwrap();
    assert_eq!(again.messages, 0, "not refused again on every run");
}

#[tokio::test]
async fn watch_imports_what_arrives_while_idling_and_stops_on_shutdown() {
    let Some(w) = world() else { return };
    w.dovecot
        .deliver("INBOX", &std::fs::read(w.samples.join(MAILS[0].0)).unwrap())
        .unwrap();
    let config = w.config("imaps");
    let sink = MemorySink::default();
    let mut counts = Counts::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stored = |n: usize| sink.stored.lock().unwrap().len() >= n;
    let driver = async {
        wait_for(|| stored(1)).await;
        // Let the client enter IDLE before the next message lands.
        tokio::time::sleep(Duration::from_millis(500)).await;
        w.dovecot
            .deliver("INBOX", &std::fs::read(w.samples.join(MAILS[2].0)).unwrap())
            .unwrap();
        wait_for(|| stored(2)).await;
        stop_tx.send(()).unwrap();
    };
    let watching = watch(&config, &sink, &mut counts, async {
        let _ = stop_rx.await;
    });
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(watching, driver)
    })
    .await
    .expect("watch stops on shutdown");
    result.unwrap();
    assert_eq!(counts.messages, 2);
    assert!(w.inbox().iter().all(|m| m.keywords == [KEYWORD]));
}

#[tokio::test]
async fn watch_fails_at_once_when_the_first_login_is_refused() {
    let Some(w) = world() else { return };
    let mut config = w.config("imaps");
    config.password = "wrong".into();
    let mut counts = Counts::default();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        watch(
            &config,
            &MemorySink::default(),
            &mut counts,
            std::future::pending(),
        ),
    )
    .await
    .expect("a refused first login ends watch");
    assert!(matches!(result, Err(FetchError::Login(_))), "{result:?}");
}

/// A server that greets, then sends a line that never ends: the read fails at the line limit
/// instead of buffering.
#[tokio::test]
async fn an_endless_line_from_the_server_is_cut_at_the_limit() {
    use tokio::io::AsyncWriteExt;
    let ca = TestCa::new();
    let cert = ca.issue("localhost", &CertSpec::Valid);
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config(&[]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut sent = 0usize;
        tls.write_all(b"* OK ready\r\n").await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        // Stops when the client hangs up, or after 64 MiB.
        while sent < 64 * 1024 * 1024 && tls.write_all(&chunk).await.is_ok() {
            sent += chunk.len();
        }
        sent
    });
    let url = ImapUrl::parse(&format!("imaps://r@localhost:{port}/INBOX")).unwrap();
    let config = FetchConfig::new(url, "pw".into(), ca.root_store());
    let (_, result) = run(&config, &MemorySink::default()).await;
    match result {
        Err(FetchError::Connection(m) | FetchError::Protocol(m)) => {
            assert!(m.contains("longer than"), "{m}")
        }
        other => panic!("expected the line limit, got {other:?}"),
    }
    let sent = server.await.unwrap();
    assert!(sent < 8 * 1024 * 1024, "the client read {sent} bytes");
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rebuilt_mailbox_with_a_new_uidvalidity_imports_only_the_unmarked_messages() {
    let Some(w) = world() else { return };
    w.dovecot
        .deliver("INBOX", &std::fs::read(w.samples.join(MAILS[0].0)).unwrap())
        .unwrap();
    let sink = MemorySink::default();
    let (counts, result) = run(&w.config("imaps"), &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, 1);
    // The server loses its UID list and indexes (a restore, a migration): every UID and the
    // UIDVALIDITY are new, the keywords stay with the messages.
    let folder = w.dovecot.folder("INBOX");
    for entry in std::fs::read_dir(&folder).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("dovecot-uidlist") || name.starts_with("dovecot.index") {
            std::fs::remove_file(folder.join(name)).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(1100));
    w.dovecot
        .deliver("INBOX", &std::fs::read(w.samples.join(MAILS[1].0)).unwrap())
        .unwrap();
    let (counts, result) = run(&w.config("imaps"), &sink).await;
    result.unwrap();
    assert_eq!(counts.messages, 1, "only the new message");
    let stored = sink.stored.lock().unwrap().clone();
    let validity = |source: &str| {
        source
            .rsplit_once('#')
            .and_then(|(_, v)| v.split_once('.'))
            .map(|(v, _)| v.to_owned())
            .unwrap()
    };
    assert_ne!(
        validity(&stored[0].0),
        validity(&stored[1].0),
        "{:?}",
        stored.iter().map(|(s, _)| s).collect::<Vec<_>>()
    );
    assert!(w.inbox().iter().all(|m| m.keywords == [KEYWORD]));
}

#[tokio::test]
async fn watch_reconnects_after_the_connection_drops() {
    let Some(w) = world() else { return };
    let proxy = mtasts_testkit::proxy::TcpProxy::start(w.dovecot.imaps()).await;
    let mut config = w.config("imaps");
    config.url.port = proxy.addr().port();
    w.dovecot
        .deliver("INBOX", &std::fs::read(w.samples.join(MAILS[0].0)).unwrap())
        .unwrap();
    let sink = MemorySink::default();
    let mut counts = Counts::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stored = |n: usize| sink.stored.lock().unwrap().len() >= n;
    let driver = async {
        wait_for(|| stored(1)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.cut();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        proxy.restore();
        w.dovecot
            .deliver("INBOX", &std::fs::read(w.samples.join(MAILS[1].0)).unwrap())
            .unwrap();
        wait_for(|| stored(2)).await;
        stop_tx.send(()).unwrap();
    };
    let watching = watch(&config, &sink, &mut counts, async {
        let _ = stop_rx.await;
    });
    let (result, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(watching, driver)
    })
    .await
    .expect("watch stops on shutdown");
    result.unwrap();
    assert_eq!(counts.messages, 2);
    assert!(proxy.relayed() >= 2, "a second connection was made");
}

#[tokio::test]
async fn a_server_that_stops_answering_is_a_timeout() {
    use tokio::io::AsyncWriteExt;
    let ca = TestCa::new();
    let cert = ca.issue("localhost", &CertSpec::Valid);
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config(&[]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        tls.write_all(b"* OK ready\r\n").await.unwrap();
        // Reads the LOGIN and never answers.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tls);
    });
    let url = ImapUrl::parse(&format!("imaps://r@localhost:{port}/INBOX")).unwrap();
    let mut config = FetchConfig::new(url, "pw".into(), ca.root_store());
    config.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let (_, result) = run(&config, &MemorySink::default()).await;
    assert!(
        matches!(result, Err(FetchError::Timeout("LOGIN", _))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn imap_without_starttls_is_refused_before_the_password_is_sent() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tcp = BufReader::new(tcp);
        tcp.get_mut()
            .write_all(b"* OK plain only\r\n")
            .await
            .unwrap();
        let mut heard = Vec::new();
        let mut line = String::new();
        while tcp.read_line(&mut line).await.unwrap_or(0) > 0 {
            let tag = line.split(' ').next().unwrap_or("*").to_owned();
            heard.push(line.trim_end().to_owned());
            let reply = format!("{tag} BAD command unknown\r\n");
            if tcp.get_mut().write_all(reply.as_bytes()).await.is_err() {
                break;
            }
            line.clear();
        }
        heard
    });
    let url = ImapUrl::parse(&format!("imap://r@localhost:{port}/INBOX")).unwrap();
    let config = FetchConfig::new(url, "pw-never-sent".into(), TestCa::new().root_store());
    let (_, result) = run(&config, &MemorySink::default()).await;
    assert!(
        matches!(result, Err(FetchError::NoStartTls(_))),
        "{result:?}"
    );
    let heard = server.await.unwrap();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert!(heard[0].ends_with("STARTTLS"), "{heard:?}");
}
