//! Just enough of TLS 1.0–1.2 (RFC 2246, 4346, 5246) to learn which version a server that
//! rustls refuses would speak: a hand-built ClientHello and a parser for the server's first
//! flight (ServerHello, Certificate, ServerHelloDone, or an alert).
//!
//! Sans-IO and bounded: [`parse_server_flight`] looks at the bytes received so far and never
//! reads past them; every length is checked before use.
//!
//! Hand-written because no library fits: rustls implements only TLS 1.2 and 1.3 and will not
//! add older versions, and the OpenSSL-based crates depend on the system library, whose
//! default security level refuses TLS 1.0/1.1 as well. We never complete such a handshake;
//! we only read what the server offers, so a ClientHello and a bounded parser suffice.

/// The server's first flight, as far as it was seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ServerFlight {
    /// The ServerHello, once seen.
    pub(crate) hello: Option<ServerHello>,
    /// The certificate chain (DER, end-entity first), if a Certificate message followed.
    pub(crate) certificates: Option<Vec<Vec<u8>>>,
    /// Whether the flight is over for our purposes: the Certificate or ServerHelloDone arrived,
    /// or the server moved on to something else (an alert after the ServerHello, say).
    pub(crate) complete: bool,
}

/// The parts of a ServerHello we report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerHello {
    /// `server_version`, e.g. `0x0301` for TLS 1.0.
    pub(crate) version: u16,
    /// The chosen cipher suite.
    pub(crate) cipher_suite: u16,
}

/// Why the server's bytes end the legacy probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FlightError {
    /// The server sent an alert before any ServerHello: `(level, description)`.
    Alert(u8, u8),
    /// The first bytes are not a TLS record.
    NotTls,
    /// A record or handshake message does not parse; names the part.
    Malformed(&'static str),
}

impl std::fmt::Display for FlightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlightError::Alert(level, description) => {
                let level = if *level == 2 { "fatal" } else { "warning" };
                let description = rustls::AlertDescription::from(*description);
                write!(f, "the server sent a {level} {description:?} alert")
            }
            FlightError::NotTls => write!(f, "the server did not answer with TLS"),
            FlightError::Malformed(what) => write!(f, "malformed {what} from the server"),
        }
    }
}

/// A TLS 1.0–1.2 ClientHello record for `sni` (without SNI if `sni` is not a DNS name).
///
/// The record layer says TLS 1.0 (`0x0301`) and `client_version` says TLS 1.2 (`0x0303`), with no
/// `supported_versions` extension, so any server from SSLv3 to TLS 1.2 answers with the highest
/// version it has. The cipher suites cover what legacy servers offer (ECDHE and RSA key
/// exchange, CBC and GCM, RSA and ECDSA certificates, 3DES last).
pub(crate) fn client_hello(sni: &str, random: [u8; 32]) -> Vec<u8> {
    let mut extensions = Vec::new();
    if is_dns_name(sni) {
        let name = sni.as_bytes();
        let mut list = Vec::new();
        list.push(0); // host_name
        put_u16(&mut list, name.len());
        list.extend_from_slice(name);
        let mut body = Vec::new();
        put_u16(&mut body, list.len());
        body.extend(list);
        put_extension(&mut extensions, EXT_SERVER_NAME, &body);
    }
    put_extension(
        &mut extensions,
        EXT_SUPPORTED_GROUPS,
        &u16_list(SUPPORTED_GROUPS),
    );
    put_extension(&mut extensions, EXT_EC_POINT_FORMATS, &[1, 0]); // uncompressed
    put_extension(
        &mut extensions,
        EXT_SIGNATURE_ALGORITHMS,
        &u16_list(SIGNATURE_SCHEMES),
    );
    put_extension(&mut extensions, EXT_RENEGOTIATION_INFO, &[0]);

    let mut hello = Vec::new();
    put_u16(&mut hello, usize::from(CLIENT_VERSION));
    hello.extend_from_slice(&random);
    hello.push(0); // empty session id
    hello.extend(u16_list(CIPHER_SUITES));
    hello.extend_from_slice(&[1, 0]); // compression methods: null only
    put_u16(&mut hello, extensions.len());
    hello.extend(extensions);

    let mut handshake = vec![HANDSHAKE_CLIENT_HELLO];
    put_u24(&mut handshake, hello.len());
    handshake.extend(hello);

    let mut record = vec![CONTENT_HANDSHAKE];
    put_u16(&mut record, usize::from(RECORD_VERSION));
    put_u16(&mut record, handshake.len());
    record.extend(handshake);
    record
}

/// Parses the server's first flight from the bytes received so far. Incomplete input gives
/// the parts seen so far with `complete == false`.
pub(crate) fn parse_server_flight(buf: &[u8]) -> Result<ServerFlight, FlightError> {
    let mut flight = ServerFlight::default();
    let mut handshake = Vec::new();
    let mut pos = 0;
    let mut late_alert = false;
    while let Some(header) = buf.get(pos..pos + 5) {
        let (content_type, major, length) = (header[0], header[1], be16(&header[3..5]));
        if !matches!(content_type, 20..=23) || major != 3 {
            return Err(if pos == 0 {
                FlightError::NotTls
            } else {
                FlightError::Malformed("record header")
            });
        }
        if length > RECORD_MAX {
            return Err(FlightError::Malformed("record length"));
        }
        let Some(fragment) = buf.get(pos + 5..pos + 5 + length) else {
            break; // incomplete record
        };
        pos += 5 + length;
        match content_type {
            CONTENT_HANDSHAKE => handshake.extend_from_slice(fragment),
            CONTENT_ALERT => {
                let [level, description, ..] = fragment else {
                    return Err(FlightError::Malformed("alert"));
                };
                if !has_server_hello(&handshake) {
                    return Err(FlightError::Alert(*level, *description));
                }
                late_alert = true;
                break;
            }
            // ChangeCipherSpec or application data: the plaintext part of the flight is over.
            _ => {
                late_alert = true;
                break;
            }
        }
    }
    parse_handshake_messages(&handshake, &mut flight)?;
    if late_alert && flight.hello.is_some() {
        flight.complete = true;
    }
    Ok(flight)
}

/// The protocol name for a `server_version`, as reports write it.
pub(crate) fn version_name(version: u16) -> String {
    match version {
        0x0300 => "SSLv3".to_owned(),
        0x0301 => "TLSv1.0".to_owned(),
        0x0302 => "TLSv1.1".to_owned(),
        0x0303 => "TLSv1.2".to_owned(),
        0x0304 => "TLSv1.3".to_owned(),
        other => format!("unknown (0x{other:04x})"),
    }
}

/// The IANA name of a cipher suite (`TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA`), when known.
pub(crate) fn cipher_name(suite: u16) -> Option<String> {
    let name = rustls::CipherSuite::from(suite).as_str()?;
    // rustls spells the TLS 1.3 suites `TLS13_…`; IANA calls them `TLS_…`.
    Some(match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_owned(),
    })
}

fn parse_handshake_messages(bytes: &[u8], flight: &mut ServerFlight) -> Result<(), FlightError> {
    let mut pos = 0;
    while let Some(header) = bytes.get(pos..pos + 4) {
        let (kind, length) = (header[0], be24(&header[1..4]));
        if length > HANDSHAKE_MAX {
            return Err(FlightError::Malformed("handshake message length"));
        }
        let Some(body) = bytes.get(pos + 4..pos + 4 + length) else {
            return Ok(()); // incomplete message
        };
        pos += 4 + length;
        if flight.hello.is_none() && kind != HANDSHAKE_SERVER_HELLO {
            return Err(FlightError::Malformed(
                "first handshake message (not a ServerHello)",
            ));
        }
        match kind {
            HANDSHAKE_SERVER_HELLO if flight.hello.is_none() => {
                flight.hello = Some(parse_server_hello(body)?);
            }
            HANDSHAKE_CERTIFICATE => {
                flight.certificates = Some(parse_certificate(body)?);
                flight.complete = true;
                return Ok(());
            }
            HANDSHAKE_SERVER_HELLO_DONE => {
                flight.complete = true;
                return Ok(());
            }
            _ => {} // ServerKeyExchange, CertificateRequest, CertificateStatus…
        }
    }
    Ok(())
}

fn parse_server_hello(body: &[u8]) -> Result<ServerHello, FlightError> {
    const ERR: FlightError = FlightError::Malformed("ServerHello");
    let version = body.get(0..2).map(be16).ok_or(ERR)?;
    // version (2) + random (32), then the session id with its length byte.
    let session_len = usize::from(*body.get(34).ok_or(ERR)?);
    if session_len > 32 {
        return Err(ERR);
    }
    let at = 35 + session_len;
    let cipher_suite = body.get(at..at + 2).map(be16).ok_or(ERR)?;
    body.get(at + 2).ok_or(ERR)?; // compression method; extensions are not needed
    let version = u16::try_from(version).map_err(|_| ERR)?;
    let cipher_suite = u16::try_from(cipher_suite).map_err(|_| ERR)?;
    Ok(ServerHello {
        version,
        cipher_suite,
    })
}

fn parse_certificate(body: &[u8]) -> Result<Vec<Vec<u8>>, FlightError> {
    const ERR: FlightError = FlightError::Malformed("Certificate");
    let total = body.get(0..3).map(be24).ok_or(ERR)?;
    let list = body.get(3..3 + total).ok_or(ERR)?;
    if 3 + total != body.len() {
        return Err(ERR);
    }
    let mut certificates = Vec::new();
    let mut pos = 0;
    while pos < list.len() {
        let length = list.get(pos..pos + 3).map(be24).ok_or(ERR)?;
        let der = list.get(pos + 3..pos + 3 + length).ok_or(ERR)?;
        if der.is_empty() || certificates.len() == CHAIN_MAX {
            return Err(ERR);
        }
        certificates.push(der.to_vec());
        pos += 3 + length;
    }
    Ok(certificates)
}

fn has_server_hello(handshake: &[u8]) -> bool {
    handshake.first() == Some(&HANDSHAKE_SERVER_HELLO)
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn u16_list(values: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 2 * values.len());
    put_u16(&mut out, 2 * values.len());
    for value in values {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

fn put_extension(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    put_u16(out, body.len());
    out.extend_from_slice(body);
}

/// Appends a length we built ourselves; all of them are far below 2^16.
fn put_u16(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u16).to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u32).to_be_bytes()[1..]);
}

/// The big-endian value of a two-byte slice.
fn be16(bytes: &[u8]) -> usize {
    be(bytes)
}

/// The big-endian value of a three-byte slice.
fn be24(bytes: &[u8]) -> usize {
    be(bytes)
}

/// The big-endian value of a short slice (callers pass two or three bytes).
fn be(bytes: &[u8]) -> usize {
    bytes.iter().fold(0, |acc, &b| (acc << 8) | usize::from(b))
}

/// The largest TLS record fragment a server may send (2^14 plus the compression allowance).
const RECORD_MAX: usize = 16384 + 2048;
/// The largest handshake message accepted (certificate chains included).
const HANDSHAKE_MAX: usize = 64 * 1024;
/// The most certificates accepted in a chain.
const CHAIN_MAX: usize = 16;

const CONTENT_ALERT: u8 = 21;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const HANDSHAKE_SERVER_HELLO: u8 = 2;
const HANDSHAKE_CERTIFICATE: u8 = 11;
const HANDSHAKE_SERVER_HELLO_DONE: u8 = 14;
const RECORD_VERSION: u16 = 0x0301;
const CLIENT_VERSION: u16 = 0x0303;
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;

/// x25519, secp256r1, secp384r1, secp521r1.
const SUPPORTED_GROUPS: &[u16] = &[0x001d, 0x0017, 0x0018, 0x0019];

/// ECDSA and RSA (PSS and PKCS#1) with SHA-2, then the SHA-1 schemes TLS 1.0 servers use.
const SIGNATURE_SCHEMES: &[u16] = &[
    0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0203, 0x0201,
];

/// Cipher suites a TLS 1.0–1.2 server may pick, strongest first.
const CIPHER_SUITES: &[u16] = &[
    0xc02b, // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    0xc02f, // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    0xc02c, // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
    0xc030, // TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
    0xc009, // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
    0xc013, // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA
    0xc00a, // TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA
    0xc014, // TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA
    0x0033, // TLS_DHE_RSA_WITH_AES_128_CBC_SHA
    0x0039, // TLS_DHE_RSA_WITH_AES_256_CBC_SHA
    0x009c, // TLS_RSA_WITH_AES_128_GCM_SHA256
    0x009d, // TLS_RSA_WITH_AES_256_GCM_SHA384
    0x002f, // TLS_RSA_WITH_AES_128_CBC_SHA
    0x0035, // TLS_RSA_WITH_AES_256_CBC_SHA
    0xc012, // TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    0x000a, // TLS_RSA_WITH_3DES_EDE_CBC_SHA
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `content_type` holding `body`.
    fn record(content_type: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![content_type, 3, 1];
        put_u16(&mut out, body.len());
        out.extend_from_slice(body);
        out
    }

    fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        put_u24(&mut out, body.len());
        out.extend_from_slice(body);
        out
    }

    fn server_hello(version: u16, suite: u16) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend([7u8; 32]);
        body.push(32);
        body.extend([9u8; 32]);
        body.extend(suite.to_be_bytes());
        body.push(0);
        body.extend([0, 5, 0xff, 0x01, 0, 1, 0]); // renegotiation_info
        handshake(HANDSHAKE_SERVER_HELLO, &body)
    }

    fn certificate(chain: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for der in chain {
            put_u24(&mut list, der.len());
            list.extend_from_slice(der);
        }
        let mut body = Vec::new();
        put_u24(&mut body, list.len());
        body.extend(list);
        handshake(HANDSHAKE_CERTIFICATE, &body)
    }

    /// Walks the ClientHello we build, checking every length field; returns the extensions.
    fn walk_client_hello(hello: &[u8]) -> Vec<(usize, Vec<u8>)> {
        assert_eq!(&hello[..3], &[CONTENT_HANDSHAKE, 3, 1]);
        assert_eq!(be16(&hello[3..5]), hello.len() - 5);
        assert_eq!(hello[5], HANDSHAKE_CLIENT_HELLO);
        assert_eq!(be24(&hello[6..9]), hello.len() - 9);
        let body = &hello[9..];
        assert_eq!(&body[..2], &[3, 3]);
        assert_eq!(body[34], 0);
        let suites_len = be16(&body[35..37]);
        assert_eq!(suites_len, 2 * CIPHER_SUITES.len());
        let mut pos = 37 + suites_len;
        assert_eq!(&body[pos..pos + 2], &[1, 0]);
        pos += 2;
        let ext_len = be16(&body[pos..pos + 2]);
        pos += 2;
        assert_eq!(pos + ext_len, body.len());
        let mut extensions = Vec::new();
        while pos < body.len() {
            let kind = be16(&body[pos..pos + 2]);
            let len = be16(&body[pos + 2..pos + 4]);
            extensions.push((kind, body[pos + 4..pos + 4 + len].to_vec()));
            pos += 4 + len;
        }
        assert_eq!(pos, body.len());
        extensions
    }

    #[test]
    fn client_hello_is_well_formed() {
        let hello = client_hello("mx.example.com", [0x42; 32]);
        assert_eq!(&hello[11..43], &[0x42; 32]);
        let extensions = walk_client_hello(&hello);
        let kinds: Vec<usize> = extensions.iter().map(|(kind, _)| *kind).collect();
        // No supported_versions (43): the server must pick by client_version.
        assert_eq!(kinds, [0, 10, 11, 13, 0xff01]);
        let sni = &extensions[0].1;
        assert_eq!(be16(&sni[..2]), sni.len() - 2);
        assert_eq!(sni[2], 0);
        assert_eq!(be16(&sni[3..5]), 14);
        assert_eq!(&sni[5..], b"mx.example.com");
    }

    #[test]
    fn client_hello_omits_sni_for_addresses_and_junk() {
        for name in ["192.0.2.1", "", "a..b", "bad name", "mx.example.com."] {
            let extensions = walk_client_hello(&client_hello(name, [0; 32]));
            assert_ne!(extensions[0].0, 0, "{name}");
        }
    }

    #[test]
    fn full_flight_in_one_record() {
        let mut flight = server_hello(0x0301, 0xc014);
        flight.extend(certificate(&[b"leaf", b"intermediate"]));
        flight.extend(handshake(12, &[1, 2, 3]));
        flight.extend(handshake(HANDSHAKE_SERVER_HELLO_DONE, &[]));
        let parsed = parse_server_flight(&record(CONTENT_HANDSHAKE, &flight)).unwrap();
        assert_eq!(
            parsed.hello,
            Some(ServerHello {
                version: 0x0301,
                cipher_suite: 0xc014
            })
        );
        assert_eq!(
            parsed.certificates,
            Some(vec![b"leaf".to_vec(), b"intermediate".to_vec()])
        );
        assert!(parsed.complete);
    }

    #[test]
    fn messages_split_across_records_and_partial_input() {
        let mut messages = server_hello(0x0302, 0x002f);
        messages.extend(certificate(&[b"leaf"]));
        let (a, b) = messages.split_at(50);
        let mut bytes = record(CONTENT_HANDSHAKE, a);
        bytes.extend(record(CONTENT_HANDSHAKE, b));
        let parsed = parse_server_flight(&bytes).unwrap();
        assert_eq!(parsed.hello.map(|h| h.version), Some(0x0302));
        assert_eq!(parsed.certificates, Some(vec![b"leaf".to_vec()]));
        for end in 0..bytes.len() {
            let partial = parse_server_flight(&bytes[..end]).unwrap();
            assert!(!partial.complete, "complete at {end}");
            assert!(partial.certificates.is_none());
        }
    }

    #[test]
    fn alerts_before_and_after_the_hello() {
        assert_eq!(
            parse_server_flight(&record(CONTENT_ALERT, &[2, 70])),
            Err(FlightError::Alert(2, 70))
        );
        assert_eq!(
            FlightError::Alert(2, 70).to_string(),
            "the server sent a fatal ProtocolVersion alert"
        );
        let mut bytes = record(CONTENT_HANDSHAKE, &server_hello(0x0301, 0x0035));
        bytes.extend(record(CONTENT_ALERT, &[2, 40]));
        let parsed = parse_server_flight(&bytes).unwrap();
        assert!(parsed.complete);
        assert!(parsed.certificates.is_none());
    }

    #[test]
    fn non_tls_and_malformed_input() {
        assert_eq!(
            parse_server_flight(b"220 mx ESMTP\r\n"),
            Err(FlightError::NotTls)
        );
        assert_eq!(
            parse_server_flight(b"\x16\x02\x00\x00\x01\x00"),
            Err(FlightError::NotTls)
        );
        let too_long = [CONTENT_HANDSHAKE, 3, 1, 0xff, 0xff];
        assert_eq!(
            parse_server_flight(&too_long),
            Err(FlightError::Malformed("record length"))
        );
        let wrong_first = record(
            CONTENT_HANDSHAKE,
            &handshake(HANDSHAKE_CERTIFICATE, &[0, 0, 0]),
        );
        assert!(matches!(
            parse_server_flight(&wrong_first),
            Err(FlightError::Malformed(_))
        ));
        let short_hello = record(
            CONTENT_HANDSHAKE,
            &handshake(HANDSHAKE_SERVER_HELLO, &[3, 1, 0]),
        );
        assert_eq!(
            parse_server_flight(&short_hello),
            Err(FlightError::Malformed("ServerHello"))
        );
        let mut bad_cert = server_hello(0x0301, 0x002f);
        bad_cert.extend(handshake(HANDSHAKE_CERTIFICATE, &[0, 0, 9, 0, 0, 1]));
        let parsed = parse_server_flight(&record(CONTENT_HANDSHAKE, &bad_cert));
        assert_eq!(parsed, Err(FlightError::Malformed("Certificate")));
        // Partial input is not an error.
        assert_eq!(
            parse_server_flight(&[CONTENT_HANDSHAKE, 3]),
            Ok(ServerFlight::default())
        );
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut valid = server_hello(0x0301, 0xc013);
        valid.extend(certificate(&[&[0x30; 40]]));
        let valid = record(CONTENT_HANDSHAKE, &valid);
        for round in 0..5000 {
            let mut bytes = valid.clone();
            for _ in 0..(round % 7 + 1) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % bytes.len();
                bytes[at] = (seed >> 32) as u8;
            }
            let cut = (seed >> 40) as usize % (bytes.len() + 1);
            let _ = parse_server_flight(&bytes[..cut]);
        }
    }

    #[test]
    fn names() {
        assert_eq!(version_name(0x0300), "SSLv3");
        assert_eq!(version_name(0x0301), "TLSv1.0");
        assert_eq!(version_name(0x0302), "TLSv1.1");
        assert_eq!(version_name(0x7f00), "unknown (0x7f00)");
        assert_eq!(
            cipher_name(0xc014).as_deref(),
            Some("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA")
        );
        assert_eq!(
            cipher_name(0x1301).as_deref(),
            Some("TLS_AES_128_GCM_SHA256")
        );
        assert_eq!(cipher_name(0xfafa), None);
    }
}
