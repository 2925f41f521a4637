//! DNS messages by hand: queries with any class and optional EDNS, malformed packets, and a
//! strict walker of answers that refuses a message whose section counts do not match its bytes
//! (the defect of issue 10: a truncated UDP answer claiming no records but carrying half a TXT
//! record). Over UDP and TCP, every read bounded by a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// Record types and classes the probe uses.
pub(crate) const TXT: u16 = 16;
pub(crate) const SOA: u16 = 6;
pub(crate) const IN: u16 = 1;
pub(crate) const CH: u16 = 3;
pub(crate) const ANY: u16 = 255;
/// The RCODE REFUSED.
pub(crate) const REFUSED: u8 = 5;

/// How long to wait for one answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A query for `name` `qtype` in `qclass`, with an OPT record advertising `edns` bytes when
/// given.
pub(crate) fn query(id: u16, name: &str, qtype: u16, qclass: u16, edns: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00]); // RD
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&u16::from(edns.is_some()).to_be_bytes());
    encode_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    if let Some(size) = edns {
        out.push(0); // root
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // ttl (ext rcode, version, flags), rdlen
    }
    out
}

/// Appends `name` in wire form.
pub(crate) fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// A parsed answer: header fields and the records of each section, checked against the
/// counts.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) id: u16,
    pub(crate) truncated: bool,
    pub(crate) rcode: u8,
    /// ANCOUNT, NSCOUNT, ARCOUNT as the header states them.
    pub(crate) counts: [u16; 3],
    /// Record types of the answer section.
    pub(crate) answer_types: Vec<u16>,
    /// RDATA of the answer section.
    pub(crate) answer_data: Vec<Vec<u8>>,
}

/// Walks `msg` strictly: the question and every record the header counts, and nothing after
/// them. An error says where the message and its counts disagree.
pub(crate) fn parse(msg: &[u8]) -> Result<Answer, String> {
    if msg.len() < 12 {
        return Err(format!("{} bytes: shorter than a header", msg.len()));
    }
    let word = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let qd = word(4);
    let counts = [word(6), word(8), word(10)];
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at)?;
        at = need(msg, at, 4)?;
    }
    let mut answer_types = Vec::new();
    let mut answer_data = Vec::new();
    for (section, count) in counts.iter().enumerate() {
        for n in 0..*count {
            at = skip_name(msg, at).map_err(|e| format!("section {section} record {n}: {e}"))?;
            let fixed =
                need(msg, at, 10).map_err(|e| format!("section {section} record {n}: {e}"))?;
            let rtype = word(at);
            let rdlen = usize::from(word(at + 8));
            let end = need(msg, fixed, rdlen)
                .map_err(|e| format!("section {section} record {n} rdata: {e}"))?;
            if section == 0 {
                answer_types.push(rtype);
                answer_data.push(msg[fixed..end].to_vec());
            }
            at = end;
        }
    }
    if at != msg.len() {
        return Err(format!(
            "{} bytes after the records the header counts ({counts:?}); the message is {} bytes",
            msg.len() - at,
            msg.len()
        ));
    }
    Ok(Answer {
        id: word(0),
        truncated: msg[2] & 0x02 != 0,
        rcode: msg[3] & 0x0f,
        counts,
        answer_types,
        answer_data,
    })
}

fn need(msg: &[u8], at: usize, n: usize) -> Result<usize, String> {
    let end = at + n;
    if end > msg.len() {
        return Err(format!(
            "needs {n} bytes at {at}, the message ends at {}",
            msg.len()
        ));
    }
    Ok(end)
}

/// The offset after the name at `at` (labels, ending in the root or a pointer).
fn skip_name(msg: &[u8], mut at: usize) -> Result<usize, String> {
    for _ in 0..128 {
        let len = *msg
            .get(at)
            .ok_or_else(|| format!("name runs past the end at {at}"))?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return need(msg, at, 2),
            l if l < 64 => at = need(msg, at + 1, usize::from(l))?,
            l => return Err(format!("label type {l:#x} at {at}")),
        }
    }
    Err("more than 127 labels".to_owned())
}

/// Sends `packet` over UDP to `addr`; the answer, if one comes within the timeout.
pub(crate) fn udp(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    udp_within(addr, packet, TIMEOUT)
}

/// Like [`udp`], waiting at most `wait` (for packets that may well get no answer).
pub(crate) fn udp_within(addr: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.send_to(packet, addr).unwrap();
    let mut buf = vec![0; 65_535];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Sends `packet` over TCP (with its length prefix); the answer, if one comes in time.
pub(crate) fn tcp(addr: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    tcp_within(addr, packet, TIMEOUT)
}

/// Like [`tcp`], waiting at most `wait` for the answer.
pub(crate) fn tcp_within(addr: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    tcp_raw(addr, &framed, wait)
}

/// Writes `bytes` as they are on a TCP connection and reads one length-prefixed answer,
/// waiting at most `wait`.
pub(crate) fn tcp_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(bytes).ok()?;
    let mut len = [0; 2];
    stream.read_exact(&mut len).ok()?;
    let mut buf = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// Whether the authority at `addr` answers the zone's SOA over UDP and TCP, well formed.
pub(crate) fn still_answers(addr: SocketAddr, zone: &str) -> bool {
    let q = query(0x5157, zone, SOA, IN, None);
    let ok = |a: Option<Vec<u8>>| {
        a.and_then(|m| parse(&m).ok())
            .is_some_and(|a| a.id == 0x5157 && a.rcode == 0 && a.answer_types == [SOA])
    };
    ok(udp(addr, &q)) && ok(tcp(addr, &q))
}
