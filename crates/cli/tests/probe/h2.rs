//! Raw HTTP/2 over TLS to the policy host, for floods no well-behaved client sends: thousands of
//! streams opened and reset at once (the "rapid reset" attack), and more concurrent streams than
//! the server allows. The certificate is not checked: the probe wants the server's behaviour,
//! and an unknown name gets the fallback certificate anyway.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// A TLS stream to the policy host.
pub(crate) type Tls = StreamOwned<ClientConnection, TcpStream>;

/// Connects to `addr` with SNI `host`, offering `alpn`.
pub(crate) fn connect(addr: SocketAddr, host: &str, alpn: &[u8]) -> std::io::Result<Tls> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(schemes)))
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// The client connection preface and an empty SETTINGS frame.
pub(crate) fn preface() -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(4, 0, 0, &[]));
    out
}

/// One frame: type, flags, stream id, payload.
pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS frame (END_HEADERS | END_STREAM) for `GET https://host/.well-known/mta-sts.txt`,
/// in HPACK without indexing or Huffman.
pub(crate) fn get(stream: u32, host: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87]; // :method GET, :scheme https
    literal(&mut block, 4, "/.well-known/mta-sts.txt"); // :path
    literal(&mut block, 1, host); // :authority
    frame(1, 0x05, stream, &block)
}

/// RST_STREAM with CANCEL.
pub(crate) fn reset(stream: u32) -> Vec<u8> {
    frame(3, 0, stream, &8u32.to_be_bytes())
}

/// A literal header field without indexing, its name from static table entry `index` (< 15).
fn literal(block: &mut Vec<u8>, index: u8, value: &str) {
    block.push(index);
    block.push(value.len() as u8);
    block.extend_from_slice(value.as_bytes());
}

/// Writes `bytes` (stopping when the server has closed the connection), reading what the
/// server sends meanwhile, then reads until the server closes or `limit` passes; returns the
/// bytes read.
pub(crate) fn write_then_drain(tls: &mut Tls, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let mut read = Vec::new();
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(5)));
    for chunk in bytes.chunks(8 * 1024) {
        if tls.write_all(chunk).and_then(|()| tls.flush()).is_err() {
            break;
        }
        if !read_some(tls, &mut read) {
            break;
        }
    }
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && read.len() < 16 * 1024 * 1024 {
        if !read_some(tls, &mut read) {
            break;
        }
    }
    read
}

/// Reads what has arrived (until the socket's read timeout); false once the connection is
/// closed or broken.
fn read_some(tls: &mut Tls, read: &mut Vec<u8>) -> bool {
    let mut buf = [0; 16 * 1024];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return true;
            }
            Err(_) => return false,
        }
    }
}

/// The frame types, in order, of the frames in `bytes` (a partial last frame is left out).
pub(crate) fn frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = (usize::from(bytes[at]) << 16)
            | (usize::from(bytes[at + 1]) << 8)
            | usize::from(bytes[at + 2]);
        types.push(bytes[at + 3]);
        at += 9 + len;
    }
    types
}

/// Whether the policy host answers an HTTP/1.1 request over a new TLS connection.
pub(crate) fn policy_host_answers(addr: SocketAddr, host: &str) -> bool {
    let Ok(mut tls) = connect(addr, host, b"http/1.1") else {
        return false;
    };
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let answer = write_then_drain(&mut tls, request.as_bytes(), Duration::from_secs(5));
    answer.starts_with(b"HTTP/1.1 ")
}

#[derive(Debug)]
struct AnyCertificate(Vec<SignatureScheme>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.clone()
    }
}
