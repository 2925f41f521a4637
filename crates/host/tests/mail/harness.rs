//! The SMTP intake on a loopback address with a temporary SQLite reports database, and a
//! small SMTP client (plain or after STARTTLS with the test CA's root) to talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mtasts_host::mail::deliver::Deliver;
use mtasts_host::mail::dkim::DkimVerifier;
use mtasts_host::mail::tls::{CertificateSource, FixedCertificate};
use mtasts_host::mail::{MailConfig, MailIntake};
use mtasts_net::cert::{ChainValidation, OnInvalid, RecordingVerifier};
use mtasts_proto::hosted::delegation::Delegation;
use mtasts_proto::hosted::reporting::ReportAddresses;
use mtasts_report::intake::Intake;
use mtasts_store::reports::ReportDb;
use mtasts_testkit::{CertSpec, TestCa};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The report host of the tests' zone.
pub(crate) const HOST: &str = "reports.hosted.test";
/// The TLS-RPT mailbox.
pub(crate) const TLSRPT: &str = "tlsrpt@reports.hosted.test";

pub(crate) struct Running {
    pub(crate) intake: Option<MailIntake>,
    pub(crate) addr: SocketAddr,
    pub(crate) db: ReportDb,
    pub(crate) ca: TestCa,
    pub(crate) dir: tempfile::TempDir,
}

impl Running {
    /// Starts the intake with `config`, presenting a test-CA certificate for
    /// `reports.hosted.test` when `tls`.
    pub(crate) async fn start(config: MailConfig, tls: bool) -> Running {
        Self::start_with(config, tls, None).await
    }

    /// [`Running::start`], verifying DKIM with `dkim` when given.
    pub(crate) async fn start_with(
        config: MailConfig,
        tls: bool,
        dkim: Option<DkimVerifier>,
    ) -> Running {
        let ca = TestCa::new();
        let certificate = tls.then(|| certified_key(&ca));
        Self::start_from(config, ca, Arc::new(FixedCertificate(certificate)), dkim).await
    }

    /// The intake with STARTTLS certificates from `certificates` (what `serve` gives it);
    /// `ca` is the test CA the tests issue from.
    pub(crate) async fn start_from(
        config: MailConfig,
        ca: TestCa,
        certificates: Arc<dyn CertificateSource>,
        dkim: Option<DkimVerifier>,
    ) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("serve.db").display());
        let db = ReportDb::open(&url).await.unwrap();
        let deliver = Deliver::new(Intake::new(db.clone(), mtasts_report::Limits::default()));
        let ip = mtasts_testkit::random_loopback();
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let intake = MailIntake::start(
            listener,
            ReportAddresses::new(&Delegation::new("hosted.test").unwrap()),
            config,
            match dkim {
                Some(dkim) => deliver.with_dkim(dkim),
                None => deliver,
            },
            certificates,
        );
        Running {
            intake: Some(intake),
            addr,
            db,
            ca,
            dir,
        }
    }

    pub(crate) async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

/// The test CA's certificate for the report host, as the intake presents it.
pub(crate) fn certified_key(ca: &TestCa) -> Arc<CertifiedKey> {
    let cert = ca.issue(HOST, &CertSpec::Valid);
    let key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&cert.key()).unwrap();
    Arc::new(CertifiedKey::new(cert.chain.clone(), key))
}

/// A sample report mail from `shared/samples`, with CRLF line ends.
pub(crate) fn sample(path: &str) -> Vec<u8> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/samples")
        .join(path);
    let text = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let text = String::from_utf8_lossy(&text).replace("\r\n", "\n");
    text.replace('\n', "\r\n").into_bytes()
}

/// `message` dot-stuffed and ended with `.`: what a client sends after `354`.
pub(crate) fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            out.push(b'.');
        }
        out.extend_from_slice(line);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A line-by-line SMTP client.
pub(crate) struct Client {
    io: Option<BufReader<Box<dyn Io>>>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        Client {
            io: Some(BufReader::new(Box::new(stream))),
        }
    }

    fn io(&mut self) -> &mut BufReader<Box<dyn Io>> {
        self.io.as_mut().unwrap()
    }

    /// Reads one whole reply: its code and its text lines.
    pub(crate) async fn reply(&mut self) -> Option<(u16, String)> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                self.io().read_line(&mut line),
            )
            .await
            .expect("a reply within 20 s")
            .ok()?;
            if n == 0 {
                return None;
            }
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                let code = line.get(..3)?.parse().ok()?;
                return Some((code, text));
            }
        }
    }

    /// Reads a reply and checks its code; returns its text.
    pub(crate) async fn expect(&mut self, code: u16) -> String {
        let (got, text) = self.reply().await.expect("a reply, not the end");
        assert_eq!(got, code, "{text}");
        text
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        let io = self.io().get_mut();
        io.write_all(bytes).await.unwrap();
        io.flush().await.unwrap();
    }

    /// Sends one command line and checks the reply's code.
    pub(crate) async fn command(&mut self, line: &str, code: u16) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.expect(code).await
    }

    /// The TLS handshake after `220` to STARTTLS; the chain must verify to `ca`'s root for
    /// the report host.
    pub(crate) async fn start_tls(&mut self, ca: &TestCa) {
        let seen = self.start_tls_seen(ca).await;
        assert_eq!(seen.result, Ok(()), "{:?}", seen.cert_info());
    }

    /// The TLS handshake after `220` to STARTTLS, completed whatever the certificate, as an
    /// opportunistic sender does; returns what was presented and whether it verified to
    /// `ca`'s root for the report host.
    pub(crate) async fn start_tls_seen(&mut self, ca: &TestCa) -> ChainValidation {
        let io = self.io.take().unwrap().into_inner();
        let verifier = RecordingVerifier::new(ca.root_store(), OnInvalid::Continue);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(verifier.client_config(&[])));
        let name = rustls_pki_types::ServerName::try_from(HOST).unwrap();
        let tls = connector.connect(name, io).await.unwrap();
        self.io = Some(BufReader::new(Box::new(tls)));
        verifier.take().expect("a certificate was presented")
    }

    /// MAIL, RCPT to the TLS-RPT mailbox, DATA with `message`: the final reply.
    pub(crate) async fn send_mail(&mut self, message: &[u8]) -> (u16, String) {
        self.command("MAIL FROM:<noreply@sender.test>", 250).await;
        self.command(&format!("RCPT TO:<{TLSRPT}>"), 250).await;
        self.command("DATA", 354).await;
        self.send(&stuffed(message)).await;
        self.reply().await.expect("a reply after the data")
    }
}
