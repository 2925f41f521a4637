//! A stand-in for sys4's libtlsrpt, the C library Postfix 3.10+ reports TLS results through:
//! it writes datagrams byte for byte as the library does and sends them to a collector's UNIX
//! datagram socket, so collector tests see exactly what Postfix would send without a Postfix
//! built with `-DUSE_TLSRPT` (Debian's is not).
//!
//! The wire facts reproduced (`shared/reference/interop.md` §2; libtlsrpt's `libtlsrpt.c` and
//! its generated escape table):
//!
//! * Member order: `dpv` (libtlsrpt 0.5.0+, [`DeliveryRequest::new`]; older versions have none,
//!   [`DeliveryRequest::without_dpv`]), `d`, `pr`, then `policies`; in a policy `policy-type`,
//!   `policy-domain` (left out when null), `policy-string`, `mx-host`, `failure-details` (each
//!   left out when empty), `t` (the number of failure details added), `f` (0 success, 1
//!   failure); in a failure detail `c`, then `s`, `n`, `h`, `r`, `a`, `f` (each left out when null).
//! * String members are written `"name": "value"` (a space after the colon), numbers and arrays
//!   `"name":1` (none); array elements and members are joined by `,` with no space.
//! * Strings are escaped byte by byte: `"` and `\` with a backslash; backspace, tab, newline,
//!   form feed and carriage return as `\b \t \n \f \r`; other bytes below 0x20 and 0x7f as
//!   `\u00xx` (lowercase hex); every byte from 0x80 up copied unchanged, so a string that is not
//!   UTF-8 makes a datagram that is not UTF-8. A C string ends at its first NUL byte.
//! * One `sendto` per delivery request, non-blocking by default (a full socket buffer loses the
//!   datagram and the caller sees the error, as with the library).
//!
//! Where the `dpv` member sits in 0.5.0 is not in the sources at hand; it is written first, as a
//! string member (`"dpv": "1"`), which is how the library writes every member it starts an
//! object with. A collector must not depend on the position (JSON members are unordered).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// `tlsrpt_policy_type_t`.
pub const POLICY_TLSA: i32 = 1;
/// `tlsrpt_policy_type_t`.
pub const POLICY_STS: i32 = 2;
/// `tlsrpt_policy_type_t`.
pub const NO_POLICY_FOUND: i32 = 9;

/// Every `tlsrpt_failure_t` code with the RFC 8460 result type it stands for; 901 is the
/// library's "internal" code, which has none.
pub const FAILURE_CODES: &[(i32, Option<&str>)] = &[
    (201, Some("starttls-not-supported")),
    (202, Some("certificate-host-mismatch")),
    (203, Some("certificate-not-trusted")),
    (204, Some("certificate-expired")),
    (205, Some("validation-failure")),
    (301, Some("sts-policy-fetch-error")),
    (302, Some("sts-policy-invalid")),
    (303, Some("sts-webpki-invalid")),
    (304, Some("tlsa-invalid")),
    (305, Some("dnssec-invalid")),
    (306, Some("dane-required")),
    (901, None),
];

/// One failure detail as `tlsrpt_add_delivery_request_failure` takes it (`None` is a NULL
/// pointer: the member is left out).
#[derive(Clone, Debug, Default)]
pub struct Failure<'a> {
    /// `failure_code`.
    pub code: i32,
    /// `sending_mta_ip` (`s`).
    pub sending_mta_ip: Option<&'a [u8]>,
    /// `receiving_mx_hostname` (`n`).
    pub receiving_mx_hostname: Option<&'a [u8]>,
    /// `receiving_mx_helo` (`h`).
    pub receiving_mx_helo: Option<&'a [u8]>,
    /// `receiving_ip` (`r`).
    pub receiving_ip: Option<&'a [u8]>,
    /// `additional_information` (`a`).
    pub additional_information: Option<&'a [u8]>,
    /// `failure_reason_code` (`f`).
    pub failure_reason_code: Option<&'a [u8]>,
}

/// Appends `s` escaped as libtlsrpt escapes it (see the module docs), up to its first NUL.
pub fn escape(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s.iter().take_while(|&&b| b != 0) {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x00..=0x1f | 0x7f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
            _ => out.push(b),
        }
    }
}

/// A delivery request being built, as `tlsrpt_dr_t` is: the main buffer plus the current
/// policy's three sub-buffers (policy strings, MX patterns, failure details).
#[derive(Debug)]
pub struct DeliveryRequest {
    main: Vec<u8>,
    policy_count: usize,
    policy: Option<PolicyBuffers>,
}

#[derive(Debug, Default)]
struct PolicyBuffers {
    strings: Vec<u8>,
    mx: Vec<u8>,
    failures: Vec<u8>,
    failure_count: usize,
}

fn string_member(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\": \"");
    escape(value, out);
    out.push(b'"');
}

fn push_element(list: &mut Vec<u8>, value: &[u8]) {
    if !list.is_empty() {
        list.push(b',');
    }
    list.push(b'"');
    escape(value, list);
    list.push(b'"');
}

impl DeliveryRequest {
    /// `tlsrpt_init_delivery_request` of libtlsrpt 0.5.0+: `{"dpv": "1","d": …,"pr": …`.
    pub fn new(domain: &[u8], record: &[u8]) -> Self {
        let mut main = b"{".to_vec();
        string_member(&mut main, "dpv", b"1");
        main.push(b',');
        string_member(&mut main, "d", domain);
        main.push(b',');
        string_member(&mut main, "pr", record);
        DeliveryRequest {
            main,
            policy_count: 0,
            policy: None,
        }
    }

    /// As libtlsrpt before 0.5.0, which sent no `dpv`.
    pub fn without_dpv(domain: &[u8], record: &[u8]) -> Self {
        let mut main = b"{".to_vec();
        string_member(&mut main, "d", domain);
        main.push(b',');
        string_member(&mut main, "pr", record);
        DeliveryRequest {
            main,
            policy_count: 0,
            policy: None,
        }
    }

    /// `tlsrpt_init_policy`; `policy_type` is sent as given (any integer, to test collectors).
    ///
    /// # Panics
    /// When the previous policy was not finished (the library refuses that too).
    pub fn init_policy(&mut self, policy_type: i32, policy_domain: Option<&[u8]>) -> &mut Self {
        assert!(self.policy.is_none(), "tlsrpt_init_policy inside a policy");
        self.main.extend_from_slice(if self.policy_count == 0 {
            b",\"policies\":[{"
        } else {
            b",{"
        });
        self.main
            .extend_from_slice(format!("\"policy-type\":{policy_type}").as_bytes());
        if let Some(domain) = policy_domain {
            self.main.push(b',');
            string_member(&mut self.main, "policy-domain", domain);
        }
        self.policy_count += 1;
        self.policy = Some(PolicyBuffers::default());
        self
    }

    fn current(&mut self) -> &mut PolicyBuffers {
        self.policy
            .as_mut()
            .expect("libtlsrpt calls outside tlsrpt_init_policy/tlsrpt_finish_policy")
    }

    /// `tlsrpt_add_policy_string`.
    pub fn add_policy_string(&mut self, line: &[u8]) -> &mut Self {
        push_element(&mut self.current().strings, line);
        self
    }

    /// `tlsrpt_add_mx_host_pattern`.
    pub fn add_mx_host_pattern(&mut self, pattern: &[u8]) -> &mut Self {
        push_element(&mut self.current().mx, pattern);
        self
    }

    /// `tlsrpt_add_delivery_request_failure`.
    pub fn add_failure(&mut self, failure: &Failure<'_>) -> &mut Self {
        let policy = self.current();
        policy.failure_count += 1;
        let out = &mut policy.failures;
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(format!("{{\"c\":{}", failure.code).as_bytes());
        for (name, value) in [
            ("s", failure.sending_mta_ip),
            ("n", failure.receiving_mx_hostname),
            ("h", failure.receiving_mx_helo),
            ("r", failure.receiving_ip),
            ("a", failure.additional_information),
            ("f", failure.failure_reason_code),
        ] {
            if let Some(value) = value {
                out.push(b',');
                string_member(out, name, value);
            }
        }
        out.push(b'}');
        self
    }

    /// `tlsrpt_finish_policy` with `final_result` 0 (success) or 1 (failure); sent as given.
    pub fn finish_policy(&mut self, final_result: i32) -> &mut Self {
        let policy = self
            .policy
            .take()
            .expect("tlsrpt_finish_policy without tlsrpt_init_policy");
        for (name, list) in [
            ("policy-string", &policy.strings),
            ("mx-host", &policy.mx),
            ("failure-details", &policy.failures),
        ] {
            if !list.is_empty() {
                self.main
                    .extend_from_slice(format!(",\"{name}\":[").as_bytes());
                self.main.extend_from_slice(list);
                self.main.push(b']');
            }
        }
        self.main.extend_from_slice(
            format!(",\"t\":{},\"f\":{final_result}}}", policy.failure_count).as_bytes(),
        );
        self
    }

    /// `tlsrpt_finish_delivery_request`: the datagram's bytes.
    ///
    /// # Panics
    /// When a policy is unfinished or none was added (the library sends nothing then).
    pub fn finish(mut self) -> Vec<u8> {
        assert!(self.policy.is_none(), "unfinished policy");
        assert!(self.policy_count > 0, "no policies");
        self.main.extend_from_slice(b"]}");
        self.main
    }
}

/// A sending socket, as `tlsrpt_open` makes one: unbound, `SOCK_DGRAM`, non-blocking.
#[derive(Debug)]
pub struct Emitter {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Emitter {
    /// Opens a socket that sends to the collector at `path` (non-blocking, as the library).
    pub fn open(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Emitter {
            socket,
            path: path.to_owned(),
        })
    }

    /// `tlsrpt_set_blocking` / `tlsrpt_set_nonblocking` (benchmarks block to lose nothing).
    pub fn set_blocking(&self, blocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(!blocking)
    }

    /// Sends one datagram (one `sendto`); an error (no collector, buffer full) loses it.
    pub fn send(&self, datagram: &[u8]) -> io::Result<()> {
        let sent = self.socket.send_to(datagram, &self.path)?;
        if sent != datagram.len() {
            return Err(io::Error::other("datagram truncated"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What libtlsrpt writes for a two-policy request (written out by hand from its source).
    #[test]
    fn bytes_are_written_as_libtlsrpt_writes_them() {
        let mut dr = DeliveryRequest::new(b"example.com", b"v=TLSRPTv1; rua=mailto:t@example.com");
        dr.init_policy(POLICY_STS, Some(b"example.com"))
            .add_policy_string(b"version: STSv1")
            .add_policy_string(b"mode: testing")
            .add_mx_host_pattern(b"*.mx.example.com")
            .add_failure(&Failure {
                code: 204,
                sending_mta_ip: Some(b"192.0.2.1"),
                receiving_mx_hostname: Some(b"a.mx.example.com"),
                failure_reason_code: Some(b"X \"q\" \\ \x01\x7f\xc3\xa9\xff"),
                ..Failure::default()
            })
            .finish_policy(1)
            .init_policy(NO_POLICY_FOUND, None)
            .finish_policy(0);
        let expected: &[u8] = b"{\"dpv\": \"1\",\"d\": \"example.com\",\"pr\": \"v=TLSRPTv1; rua=mailto:t@example.com\",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"example.com\",\"policy-string\":[\"version: STSv1\",\"mode: testing\"],\"mx-host\":[\"*.mx.example.com\"],\"failure-details\":[{\"c\":204,\"s\": \"192.0.2.1\",\"n\": \"a.mx.example.com\",\"f\": \"X \\\"q\\\" \\\\ \\u0001\\u007f\xc3\xa9\xff\"}],\"t\":1,\"f\":1},{\"policy-type\":9,\"t\":0,\"f\":0}]}";
        assert_eq!(
            String::from_utf8_lossy(&dr.finish()),
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn escapes_every_control_byte_and_stops_at_nul() {
        let mut out = Vec::new();
        escape(b"\x08\t\n\x0b\x0c\r\x1f a\0b", &mut out);
        assert_eq!(out, b"\\b\\t\\n\\u000b\\f\\r\\u001f a");
    }

    #[test]
    fn without_dpv_starts_with_d() {
        let mut dr = DeliveryRequest::without_dpv(b"a.example", b"r");
        dr.init_policy(POLICY_TLSA, Some(b"a.example"))
            .finish_policy(0);
        assert_eq!(
            dr.finish(),
            b"{\"d\": \"a.example\",\"pr\": \"r\",\"policies\":[{\"policy-type\":1,\"policy-domain\": \"a.example\",\"t\":0,\"f\":0}]}"
        );
    }

    #[test]
    fn datagrams_arrive_whole_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tlsrpt.sock");
        let collector = UnixDatagram::bind(&path).unwrap();
        let emitter = Emitter::open(&path).unwrap();
        let mut dr = DeliveryRequest::new(b"example.com", b"r");
        dr.init_policy(POLICY_STS, None).finish_policy(0);
        let bytes = dr.finish();
        emitter.send(&bytes).unwrap();
        let mut buf = vec![0; 70_000];
        let n = collector.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &bytes[..]);
        drop(collector);
        // No collector: the datagram is lost and the sender is told, as with the library.
        assert!(emitter.send(&bytes).is_err());
    }
}
