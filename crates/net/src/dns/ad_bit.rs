//! `AdBitClient`: one DNS query sent by us, to read the AD (authentic data) bit of the answer.
//!
//! DANE (RFC 7672 §2.2) counts TLSA records, and the MX RRset they hang off, only when DNSSEC
//! validated them. Like Postfix with `smtp_dns_support_level = dnssec`, we trust a local
//! validating resolver's verdict: the AD bit of its answer (RFC 4035 §3.2.3, RFC 6840 §5.7).
//!
//! Hand-written because hickory-resolver 0.26 cannot give that bit. `Lookup::message()` does
//! return the answer, but the resolver's request options have no AD flag and set EDNS DO only
//! with `validate`, which makes hickory validate DNSSEC itself (its own trust anchor and
//! crypto) instead of trusting the configured resolver; without AD or DO in the query a
//! validating resolver leaves AD clear (RFC 6840 §5.7). CNAME hops it follows itself come
//! back as a message it builds, with a fresh header. So the query is built and read with
//! hickory-proto, and only the exchange (UDP with a TCP retry when truncated, an EDNS-less
//! retry on FORMERR, server failover within one deadline) is ours.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::lookup::{DnsError, Secured};
use super::name::{absolute, code_name};

/// EDNS payload size advertised (the DNS Flag Day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// Receive buffer for UDP answers; a larger datagram is cut and then fails to parse.
const UDP_BUFFER_BYTES: usize = 4096;

/// How many CNAMEs [`chain_records`] follows inside one answer.
const MAX_CNAME_CHAIN: usize = 16;

/// Sends queries with RD, AD and EDNS DO set to the configured servers, in order.
pub(super) struct AdBitClient {
    servers: Vec<SocketAddr>,
    /// The time limit for one lookup, all servers included.
    timeout: Duration,
}

impl AdBitClient {
    /// A client for `servers` (asked in order) with `timeout` for each whole lookup.
    pub(super) fn new(servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        AdBitClient { servers, timeout }
    }

    /// The records of `qtype` at `name` (following CNAMEs from `name` inside the answer),
    /// converted by `extract`, with the AD bit of the answer: the one direct-query machinery
    /// behind `DnsLookup::tlsa_secure`, `mx_secure` and `ip_secure`.
    ///
    /// One query with RD, AD and EDNS DO set (so a validating resolver reports its verdict,
    /// RFC 6840 §5.7), over UDP with a 4 KiB receive buffer, repeated over TCP when
    /// truncated; answers that do not match the query are ignored. Servers are tried in
    /// order (the next one on a timeout, network error, SERVFAIL or REFUSED) within the
    /// configured time limit for the whole lookup. No records of the type: NXDOMAIN or
    /// NODATA after the response code, as for the plain lookups.
    pub(super) async fn records<T>(
        &self,
        name: &str,
        qtype: RecordType,
        extract: impl Fn(&RData) -> Option<T>,
    ) -> Result<Secured<Vec<T>>, DnsError> {
        let qname = absolute(name)?;
        let response = self.query_direct(&qname, qtype).await?;
        let value: Vec<T> = chain_records(&response, &qname, qtype)
            .filter_map(|r| extract(&r.data))
            .collect();
        if value.is_empty() {
            return Err(match response.metadata.response_code {
                ResponseCode::NXDomain => DnsError::NxDomain,
                _ => DnsError::NoData,
            });
        }
        Ok(Secured {
            value,
            authenticated: response.metadata.authentic_data,
        })
    }

    /// One query of `qtype` at `qname`, sent by us to the configured servers; the first
    /// NOERROR or NXDOMAIN response, or the last failure.
    async fn query_direct(&self, qname: &Name, qtype: RecordType) -> Result<Message, DnsError> {
        let deadline = Instant::now() + self.timeout;
        let mut last = DnsError::Other("no DNS server configured".to_string());
        for (i, server) in self.servers.iter().enumerate() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                last = DnsError::Timeout;
                break;
            }
            // Leave each remaining server an equal share of the time left.
            let share = remaining / u32::try_from(self.servers.len() - i).unwrap_or(u32::MAX);
            let outcome = tokio::time::timeout(share, exchange(*server, qname, qtype)).await;
            match outcome {
                Err(_) => last = DnsError::Timeout,
                Ok(Err(e)) => last = e,
                Ok(Ok(response)) => match response.metadata.response_code {
                    ResponseCode::NoError | ResponseCode::NXDomain => return Ok(response),
                    code => last = DnsError::ServerFailure(code_name(code)),
                },
            }
        }
        Err(last)
    }
}

/// One query to one server: UDP, then TCP when truncated; without EDNS again when the
/// server does not understand EDNS (FORMERR without an OPT record, RFC 6891 §7).
async fn exchange(
    server: SocketAddr,
    qname: &Name,
    qtype: RecordType,
) -> Result<Message, DnsError> {
    let response = exchange_with(server, qname, qtype, true).await?;
    if response.metadata.response_code == ResponseCode::FormErr && response.edns.is_none() {
        return exchange_with(server, qname, qtype, false).await;
    }
    Ok(response)
}

async fn exchange_with(
    server: SocketAddr,
    qname: &Name,
    qtype: RecordType,
    edns: bool,
) -> Result<Message, DnsError> {
    let request = build_query(qname, qtype, edns);
    let bytes = request
        .to_vec()
        .map_err(|e| DnsError::Other(format!("cannot encode DNS query: {e}")))?;
    let response = exchange_udp(server, &request, &bytes).await?;
    if !response.metadata.truncation {
        return Ok(response);
    }
    exchange_tcp(server, &request, &bytes).await
}

/// A recursive query asking for DNSSEC status: RD, AD and (with EDNS) DO set.
fn build_query(qname: &Name, qtype: RecordType, edns: bool) -> Message {
    let mut request = Message::query();
    request.metadata.recursion_desired = true;
    request.metadata.authentic_data = true;
    request.add_query(Query::query(qname.clone(), qtype));
    if edns {
        let mut opt = Edns::new();
        opt.set_max_payload(EDNS_PAYLOAD);
        opt.set_dnssec_ok(true);
        request.set_edns(opt);
    }
    request
}

fn io_error(what: &str, server: SocketAddr, e: std::io::Error) -> DnsError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return DnsError::Timeout;
    }
    DnsError::Other(format!("{what} {server}: {e}"))
}

/// UDP from a fresh socket (random port) connected to the server, so only its datagrams
/// arrive; datagrams that do not answer our query are skipped. The caller bounds the time.
async fn exchange_udp(
    server: SocketAddr,
    request: &Message,
    bytes: &[u8],
) -> Result<Message, DnsError> {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| io_error("UDP socket for", server, e))?;
    socket
        .connect(server)
        .await
        .map_err(|e| io_error("UDP to", server, e))?;
    socket
        .send(bytes)
        .await
        .map_err(|e| io_error("UDP to", server, e))?;
    let mut buf = vec![0u8; UDP_BUFFER_BYTES];
    loop {
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| io_error("UDP from", server, e))?;
        if let Ok(response) = Message::from_vec(&buf[..n])
            && answers(request, &response)
        {
            return Ok(response);
        }
        tracing::debug!(%server, "ignoring a UDP datagram that does not answer the query");
    }
}

/// TCP with the two-byte length prefix (RFC 1035 §4.2.2); the prefix bounds the answer at
/// 65535 bytes. The caller bounds the time.
async fn exchange_tcp(
    server: SocketAddr,
    request: &Message,
    bytes: &[u8],
) -> Result<Message, DnsError> {
    let len = u16::try_from(bytes.len())
        .map_err(|_| DnsError::Other("DNS query too long for TCP".to_string()))?;
    let mut stream = tokio::net::TcpStream::connect(server)
        .await
        .map_err(|e| io_error("TCP to", server, e))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| io_error("TCP to", server, e))?;
    let mut prefix = [0u8; 2];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| io_error("TCP from", server, e))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| io_error("TCP from", server, e))?;
    let response = Message::from_vec(&buf)
        .map_err(|e| DnsError::Other(format!("malformed DNS answer from {server}: {e}")))?;
    if !answers(request, &response) {
        return Err(DnsError::Other(format!(
            "DNS answer from {server} does not match the query"
        )));
    }
    Ok(response)
}

/// Whether `response` answers `request`: same id, a response, the same single question.
fn answers(request: &Message, response: &Message) -> bool {
    response.metadata.id == request.metadata.id
        && response.metadata.message_type == MessageType::Response
        && response.queries.len() == 1
        && request.queries.first().is_some_and(|q| {
            let r = &response.queries[0];
            r.name() == q.name() && r.query_type() == q.query_type()
        })
}

/// The records of `qtype` for `qname` in the answer section, following CNAMEs from `qname`
/// (at most [`MAX_CNAME_CHAIN`]); records owned by other names are ignored.
fn chain_records<'m>(
    response: &'m Message,
    qname: &Name,
    qtype: RecordType,
) -> impl Iterator<Item = &'m hickory_resolver::proto::rr::Record> {
    let mut owner = qname.clone();
    for _ in 0..MAX_CNAME_CHAIN {
        let has_type = response
            .answers
            .iter()
            .any(|r| r.record_type() == qtype && r.name == owner);
        if has_type {
            break;
        }
        let next = response.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == owner => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) => owner = target,
            None => break,
        }
    }
    response
        .answers
        .iter()
        .filter(move |r| r.record_type() == qtype && r.name == owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matching_responses_count() {
        let qname = absolute("_25._tcp.mx.example.com").unwrap();
        let request = build_query(&qname, RecordType::TLSA, true);
        assert!(request.metadata.authentic_data && request.metadata.recursion_desired);
        assert!(request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
        let mut response = request.clone();
        response.metadata.message_type = MessageType::Response;
        assert!(answers(&request, &response));
        // Names compare case-insensitively.
        response.queries = vec![Query::query(
            absolute("_25._TCP.MX.example.com").unwrap(),
            RecordType::TLSA,
        )];
        assert!(answers(&request, &response));
        let mut other = response.clone();
        other.metadata.id = request.metadata.id.wrapping_add(1);
        assert!(!answers(&request, &other));
        let mut other = response.clone();
        other.queries = vec![Query::query(qname.clone(), RecordType::A)];
        assert!(!answers(&request, &other));
        let mut other = response.clone();
        other.metadata.message_type = MessageType::Query;
        assert!(!answers(&request, &other));
        let mut other = response;
        other.queries.clear();
        assert!(!answers(&request, &other));
    }

    #[test]
    fn chains_end_at_the_right_owner() {
        use hickory_resolver::proto::rr::Record;
        use hickory_resolver::proto::rr::rdata::CNAME;
        let a = absolute("a.example").unwrap();
        let b = absolute("b.example").unwrap();
        let txt = |owner: &Name, s: &str| {
            Record::from_rdata(
                owner.clone(),
                60,
                RData::TXT(hickory_resolver::proto::rr::rdata::TXT::new(vec![
                    s.to_string(),
                ])),
            )
        };
        let mut response = Message::response(1, hickory_resolver::proto::op::OpCode::Query);
        response.add_answer(Record::from_rdata(
            a.clone(),
            60,
            RData::CNAME(CNAME(b.clone())),
        ));
        response.add_answer(txt(&b, "at b"));
        // A stray record for an unrelated owner is not part of the answer.
        response.add_answer(txt(&absolute("c.example").unwrap(), "stray"));
        let found: Vec<_> = chain_records(&response, &a, RecordType::TXT).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, b);
        // A loop ends without records.
        let mut looped = Message::response(1, hickory_resolver::proto::op::OpCode::Query);
        looped.add_answer(Record::from_rdata(
            a.clone(),
            60,
            RData::CNAME(CNAME(b.clone())),
        ));
        looped.add_answer(Record::from_rdata(
            b.clone(),
            60,
            RData::CNAME(CNAME(a.clone())),
        ));
        assert_eq!(chain_records(&looped, &a, RecordType::TXT).count(), 0);
    }
}
