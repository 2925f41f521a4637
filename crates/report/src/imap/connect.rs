//! Opening an IMAP session: TCP, then TLS (from the first byte for `imaps://`, after STARTTLS
//! for `imap://`), the server's certificate verified against the configured roots, then LOGIN.
//! Nothing is sent in clear but `STARTTLS` itself; every step has a deadline.

use std::sync::Arc;
use std::time::Duration;

use async_imap::{Client, Session};
use mtasts_net::cert::{OnInvalid, RecordingVerifier};
use mtasts_proto::imap_url::Security;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::framing::{Bounded, Framing, MAX_LINE};
use super::{FetchConfig, FetchError, short};

/// The stream an IMAP session runs on.
pub(crate) type Stream = Bounded<TlsStream<TcpStream>>;

/// Connects, secures and logs in as `config` says.
pub(crate) async fn open(config: &FetchConfig) -> Result<Session<Stream>, FetchError> {
    let url = &config.url;
    let t = config.timeout;
    let tcp = step(t, "connecting", connect_tcp(&url.host, url.port, t)).await??;
    let tcp = match url.security {
        Security::Tls => tcp,
        _ => step(t, "STARTTLS", starttls(tcp)).await??,
    };
    let server_name = ServerName::try_from(url.host.clone())
        .map_err(|_| FetchError::Protocol(format!("{} is not a TLS server name", url.host)))?;
    let verifier = RecordingVerifier::new(config.roots.clone(), OnInvalid::Abort);
    let tls_config = verifier.client_config(&[b"imap"]);
    let connector = TlsConnector::from(Arc::new(tls_config));
    let tls = match step(t, "the TLS handshake", connector.connect(server_name, tcp)).await? {
        Ok(tls) => tls,
        Err(e) => {
            let reason = match verifier.validation().map(|v| v.result) {
                Some(Err(problem)) => format!("certificate refused: {problem}"),
                _ => e.to_string(),
            };
            return Err(FetchError::Tls(reason));
        }
    };
    let stream = Bounded::new(tls, Framing::new(MAX_LINE, config.max_message_bytes));
    let mut client = Client::new(stream);
    // After STARTTLS the session goes on without a second greeting (RFC 3501 §6.2.1).
    if url.security == Security::Tls {
        greeting(&mut client, t).await?;
    }
    match step(t, "LOGIN", client.login(&url.user, &config.password)).await? {
        Ok(session) => Ok(session),
        Err((async_imap::error::Error::No(message), _)) => Err(FetchError::Login(short(&message))),
        Err((async_imap::error::Error::Bad(message), _)) => Err(FetchError::Login(short(&message))),
        Err((e, _)) => Err(FetchError::from_imap("LOGIN", e)),
    }
}

/// Runs `future` within `timeout`, naming the `step` when it does not finish.
pub(crate) async fn step<F: Future>(
    timeout: Duration,
    step: &'static str,
    future: F,
) -> Result<F::Output, FetchError> {
    tokio::time::timeout(timeout, future)
        .await
        .map_err(|_| FetchError::Timeout(step, timeout))
}

async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, FetchError> {
    let addrs: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| FetchError::Connect(format!("{host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => last = Some(format!("{addr}: {e}")),
            Err(_) => last = Some(format!("{addr}: no answer within {timeout:?}")),
        }
    }
    Err(FetchError::Connect(
        last.unwrap_or_else(|| format!("{host} has no address")),
    ))
}

/// Reads the greeting and upgrades with STARTTLS; a server that refuses is an error (never a
/// fallback to plaintext). Bytes the server sent after its `OK` are dropped with the buffer.
async fn starttls(tcp: TcpStream) -> Result<TcpStream, FetchError> {
    let stream = Bounded::new(tcp, Framing::new(64 * 1024, 64 * 1024));
    let mut client = Client::new(stream);
    match client.read_response().await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(FetchError::Protocol("the server closed at once".into())),
        Err(e) => return Err(FetchError::Protocol(short(&e.to_string()))),
    }
    client
        .run_command_and_check_ok("STARTTLS", None)
        .await
        .map_err(|e| FetchError::NoStartTls(short(&e.to_string())))?;
    Ok(client.into_inner().into_inner())
}

/// Reads the server's greeting, which must be `* OK`.
async fn greeting<T>(client: &mut Client<T>, t: Duration) -> Result<(), FetchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    let greeting = step(t, "the greeting", client.read_response())
        .await?
        .map_err(|e| FetchError::Protocol(short(&e.to_string())))?;
    match greeting.as_ref().map(|g| g.parsed()) {
        Some(async_imap::imap_proto::Response::Data {
            status: async_imap::imap_proto::Status::Ok,
            ..
        }) => {}
        Some(other) => {
            return Err(FetchError::Protocol(short(&format!(
                "unexpected greeting {other:?}"
            ))));
        }
        None => return Err(FetchError::Protocol("the server closed at once".into())),
    }
    Ok(())
}
