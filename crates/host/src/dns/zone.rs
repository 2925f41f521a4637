//! What the delegated zone answers: a pure function of the question and one [`Snapshot`], with
//! no sockets, so every case can be tested directly.
//!
//! The zone `Z` holds exactly these names (see [`mtasts_proto::hosted::delegation`]):
//!
//! * the apex `Z`: SOA, NS, and A/AAAA = the public addresses (when the zone is
//!   `mta-sts.<d>` of a domain `d` the provider hosts itself, the apex is that domain's
//!   policy host, and a delegation point cannot also be a CNAME);
//! * `ns.Z` and `policy.Z`: A/AAAA = the public addresses;
//! * `_mta-sts.<d>.t<id>.Z` for every hosted `d`, where `<id>` is the id of the tenant
//!   hosting `d`: TXT `v=STSv1; id=…` once an id is published, no records before;
//! * `_smtp._tls.<d>.t<id>.Z` likewise: TXT = the domain's TLSRPT value, when it has one;
//! * the empty non-terminals above those names (`t<id>.Z`, `<d>.t<id>.Z`,
//!   `_tls.<d>.t<id>.Z`, every label suffix of `<d>` followed by `t<id>`);
//! * the report host (see [`mtasts_proto::hosted::reporting`]): `reports.Z` with A/AAAA and,
//!   when the mail intake runs, `MX 10 reports.Z`; `mta-sts.reports.Z` with A/AAAA (its own
//!   policy host); `_mta-sts.reports.Z` TXT `v=STSv1; id=…` of its own policy;
//!   `_smtp._tls.reports.Z` TXT naming its own report addresses;
//! * `<d>._report._dmarc.reports.Z` TXT `v=DMARC1` for every hosted `d`, whichever tenant
//!   hosts it (RFC 7489 §7.1: the service accepts `d`'s DMARC reports), with its empty
//!   non-terminals (`_dmarc.reports.Z`, `_report._dmarc.reports.Z`, the label suffixes of
//!   `<d>` above `_report`, and `_tls.reports.Z`).
//!
//! The same names under another tenant's label do not exist (NXDOMAIN): a tenant that adds a
//! domain whose owner's CNAMEs still point at another tenant's names publishes nothing
//! through them.
//!
//! Everything else inside `Z` is NXDOMAIN; a known name asked for a type it lacks is NODATA;
//! both carry the SOA in the authority section so resolvers cache the negative answer
//! (RFC 2308 §3). Names outside `Z` are REFUSED: the service is not a resolver.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, MX, NS, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mtasts_proto::hosted::delegation::{
    NAMESERVER_LABEL, POLICY_HOST_LABEL, parse_tenant_label, tenant_label,
};
use mtasts_proto::hosted::reporting::{DMARC_AUTHORIZATION, ReportAddresses};

use crate::snapshot::{HostedDomain, Snapshot, ZoneSettings};

/// SOA refresh. Nodes answer from the database, not by zone transfer, so the timers only
/// need to be plausible for tools that check them.
const SOA_REFRESH: i32 = 3600;
/// SOA retry.
const SOA_RETRY: i32 = 600;
/// SOA expire (one week).
const SOA_EXPIRE: i32 = 604_800;

/// The preference of the report host's MX record (its only one).
const REPORT_MX_PREFERENCE: u16 = 10;

/// The longest character-string a TXT record can hold (RFC 1035 §3.3).
const MAX_CHARACTER_STRING: usize = 255;

/// Why the zone's own names cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// A name the zone needs (`<zone>`, `ns.<zone>`, `hostmaster.<zone>`) is not a valid DNS
    /// name, in practice because the zone is too long.
    #[error("the zone name {name:?} is not a valid DNS name: {reason}")]
    Name {
        /// The offending name.
        name: String,
        /// What hickory said about it.
        reason: String,
    },
}

/// The response to one question: what the DNS glue puts into the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// NOERROR, NXDOMAIN or REFUSED.
    pub code: ResponseCode,
    /// Whether the AA bit is set: for every answer about a name inside the zone.
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section: the zone's SOA for NXDOMAIN and NODATA, else empty.
    pub authority: Vec<Record>,
    /// The additional section: the name server's addresses next to an NS answer.
    pub additionals: Vec<Record>,
}

impl Answer {
    /// No records, not authoritative, NOERROR: the base of error responses.
    pub(super) fn empty() -> Answer {
        Answer {
            code: ResponseCode::NoError,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }

    fn refused() -> Answer {
        Answer {
            code: ResponseCode::Refused,
            ..Answer::empty()
        }
    }
}

/// A query name split at the apex.
enum Relative {
    /// Not at or below the apex.
    Outside,
    /// Inside the zone, with a label no name of ours can have (bytes other than letters,
    /// digits, `-` and `_`): it cannot exist.
    Unusual,
    /// The labels below the apex, lowercase, most specific first (empty at the apex).
    Labels(Vec<String>),
}

/// What a name inside the zone is.
enum Node<'s> {
    Apex,
    /// `ns.Z` or `policy.Z`: the public addresses.
    Host,
    Sts(&'s HostedDomain),
    TlsRpt(&'s HostedDomain),
    /// One of the report host's own names.
    Report(ReportName),
    /// `<d>._report._dmarc.reports.Z` of a hosted `d`.
    DmarcAuthorization,
    /// Exists only because names below it exist.
    EmptyNonTerminal,
    Missing,
}

/// The fixed names of the report host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportName {
    /// `reports.Z`: the HTTPS intake and the mail domain.
    Host,
    /// `mta-sts.reports.Z`: its own policy host.
    PolicyHost,
    /// `_mta-sts.reports.Z`.
    StsRecord,
    /// `_smtp._tls.reports.Z`.
    TlsRptRecord,
}

/// The zone as one snapshot defines it, with the lookups a query needs prepared.
///
/// Built once per snapshot (it indexes the empty non-terminals, so that an unknown name costs
/// one hash lookup however many domains are hosted) and then answers any number of
/// questions.
#[derive(Debug)]
pub struct ZoneView {
    snapshot: Arc<Snapshot>,
    /// The apex labels, lowercase, most specific first.
    zone_labels: Vec<String>,
    apex: Name,
    nameserver: Name,
    ipv4: Vec<Ipv4Addr>,
    ipv6: Vec<Ipv6Addr>,
    ttl: u32,
    soa: Record,
    /// Relative names (below the apex, without it) that exist only as ancestors of hosted
    /// names, e.g. `t7`, `com.t7`, `example.com.t7` and `_tls.example.com.t7` for the domain
    /// `example.com` hosted by tenant 7.
    empty_non_terminals: HashSet<String>,
    /// The zone name (lowercase, no trailing dot).
    zone: String,
    /// The report host's names, relative to the apex.
    report_names: HashMap<String, ReportName>,
    reports: ReportAddresses,
    /// `reports.Z.`, the MX target.
    report_host: Name,
    /// Whether the report host takes mail (has an MX record).
    report_mail: bool,
    /// The report host's own `_mta-sts` and `_smtp._tls` values.
    own_sts: String,
    own_tlsrpt: String,
}

impl ZoneView {
    /// The zone of `settings` with the hosted domains of `snapshot`.
    ///
    /// Fails only when the zone is so long that `hostmaster.<zone>` exceeds the 255-octet
    /// limit of a DNS name; the error is the same for every snapshot.
    pub fn new(settings: &ZoneSettings, snapshot: Arc<Snapshot>) -> Result<ZoneView, ZoneError> {
        let zone = settings.delegation.zone();
        let apex = fqdn(zone)?;
        let nameserver = fqdn(&settings.delegation.nameserver())?;
        let hostmaster = fqdn(&format!("hostmaster.{zone}"))?;
        let soa = Record::from_rdata(
            apex.clone(),
            settings.ttl,
            RData::SOA(SOA::new(
                nameserver.clone(),
                hostmaster,
                // RFC 1982 serial arithmetic wraps, so truncation keeps the order for any
                // change smaller than 2^31 generations.
                snapshot.generation as u32,
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                settings.ttl,
            )),
        );
        let mut ipv4 = Vec::new();
        let mut ipv6 = Vec::new();
        for ip in &settings.public_ips {
            match ip {
                IpAddr::V4(v4) if !ipv4.contains(v4) => ipv4.push(*v4),
                IpAddr::V6(v6) if !ipv6.contains(v6) => ipv6.push(*v6),
                _ => {}
            }
        }
        let mut empty_non_terminals = HashSet::new();
        for (domain, hosted) in &snapshot.domains {
            let tenant = tenant_label(hosted.tenant_id);
            let mut rest = domain.as_str();
            loop {
                empty_non_terminals.insert(format!("{rest}.{tenant}"));
                match rest.split_once('.') {
                    Some((_, parent)) => rest = parent,
                    None => break,
                }
            }
            empty_non_terminals.insert(format!("_tls.{domain}.{tenant}"));
            empty_non_terminals.insert(tenant);
        }
        let reports = settings.reports();
        let relative = |name: &str| -> String {
            name.strip_suffix(zone)
                .and_then(|n| n.strip_suffix('.'))
                .unwrap_or(name)
                .to_owned()
        };
        let report_names: HashMap<String, ReportName> = [
            (reports.host().to_owned(), ReportName::Host),
            (reports.own_policy_host(), ReportName::PolicyHost),
            (reports.own_sts_record_name(), ReportName::StsRecord),
            (reports.own_tlsrpt_record_name(), ReportName::TlsRptRecord),
        ]
        .into_iter()
        .map(|(name, kind)| (relative(&name), kind))
        .collect();
        let dmarc_names = snapshot
            .domains
            .keys()
            .map(|d| relative(&reports.dmarc_authorization_name(d)));
        // Every ancestor of a report name below the apex exists; those that own no records
        // are empty non-terminals (the report names themselves are matched first).
        for name in report_names.keys().cloned().chain(dmarc_names) {
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                empty_non_terminals.insert(parent.to_owned());
                rest = parent;
            }
        }
        let report_host = fqdn(reports.host())?;
        Ok(ZoneView {
            zone: zone.to_owned(),
            report_names,
            report_host,
            report_mail: settings.report_mail,
            own_sts: mtasts_proto::sts::record::record_text(
                &reports.own_policy_id(settings.own_policy_mode),
            ),
            own_tlsrpt: reports.own_tlsrpt_record(settings.report_mail),
            reports,
            zone_labels: zone.split('.').rev().map(str::to_string).collect(),
            apex,
            nameserver,
            ipv4,
            ipv6,
            ttl: settings.ttl,
            soa,
            empty_non_terminals,
            snapshot,
        })
    }

    /// The snapshot this view answers from.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The zone's SOA record (serial = the snapshot's generation, truncated to 32 bits).
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The answer to the question (`qname`, `qtype`, `qclass`).
    ///
    /// Names match case-insensitively; answer records are owned by `qname` exactly as asked,
    /// so they echo the question's case. There are no wildcards and no CNAMEs, so a CNAME
    /// query never matches. ANY returns every record of the name. Zone transfers (AXFR,
    /// IXFR) and every class other than IN are REFUSED: CH (`version.bind`, `hostname.bind`)
    /// would tell a prober which software and node answer, and the QCLASS ANY (255) is
    /// refused like it, as the documentation promises, not read as IN.
    pub fn answer(&self, qname: &Name, qtype: RecordType, qclass: DNSClass) -> Answer {
        // Zone transfers are not offered: every node builds the zone from the database.
        if qclass != DNSClass::IN || matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Answer::refused();
        }
        let node = match self.relative_labels(qname) {
            Relative::Outside => return Answer::refused(),
            Relative::Unusual => Node::Missing,
            Relative::Labels(labels) => self.node(&labels),
        };
        if matches!(node, Node::Missing) {
            return self.negative(ResponseCode::NXDomain);
        }
        let mut owner = qname.clone();
        owner.set_fqdn(true);
        let answers: Vec<Record> = self
            .records(&node, &owner)
            .into_iter()
            .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
            .collect();
        if answers.is_empty() {
            return self.negative(ResponseCode::NoError);
        }
        let additionals = if answers.iter().any(|r| r.record_type() == RecordType::NS) {
            // Resolvers would ask for the name server's address next; save them the trip.
            self.addresses(&self.nameserver)
        } else {
            Vec::new()
        };
        Answer {
            code: ResponseCode::NoError,
            authoritative: true,
            answers,
            authority: Vec::new(),
            additionals,
        }
    }

    /// NXDOMAIN or NODATA: the SOA in the authority section.
    fn negative(&self, code: ResponseCode) -> Answer {
        Answer {
            code,
            authoritative: true,
            answers: Vec::new(),
            authority: vec![self.soa.clone()],
            additionals: Vec::new(),
        }
    }

    /// Where `qname` lies relative to the apex.
    fn relative_labels(&self, qname: &Name) -> Relative {
        let labels: Vec<&[u8]> = qname.iter().collect();
        if labels.len() < self.zone_labels.len() {
            return Relative::Outside;
        }
        let split = labels.len() - self.zone_labels.len();
        let in_zone = labels[split..]
            .iter()
            .rev()
            .zip(&self.zone_labels)
            .all(|(label, zone)| label.eq_ignore_ascii_case(zone.as_bytes()));
        if !in_zone {
            return Relative::Outside;
        }
        let mut relative = Vec::with_capacity(split);
        for label in &labels[..split] {
            // Our names are plain host-name labels; anything else (a dot inside a label,
            // binary bytes) cannot exist here, and must not be joined into a lookup key
            // that could collide with a real name.
            if !label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            {
                return Relative::Unusual;
            }
            relative.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        }
        Relative::Labels(relative)
    }

    fn node(&self, relative: &[String]) -> Node<'_> {
        let domains = &self.snapshot.domains;
        match relative {
            [] => return Node::Apex,
            [label] if label == NAMESERVER_LABEL || label == POLICY_HOST_LABEL => {
                return Node::Host;
            }
            [first, rest @ .., tenant] if first == "_mta-sts" && !rest.is_empty() => {
                if let Some(domain) = Self::hosted_by(domains, rest, tenant) {
                    return Node::Sts(domain);
                }
            }
            [first, second, rest @ .., tenant]
                if first == "_smtp" && second == "_tls" && !rest.is_empty() =>
            {
                if let Some(domain) = Self::hosted_by(domains, rest, tenant) {
                    return Node::TlsRpt(domain);
                }
            }
            _ => {}
        }
        let joined = relative.join(".");
        if let Some(name) = self.report_names.get(&joined) {
            return Node::Report(*name);
        }
        if self.is_dmarc_authorization(&joined) {
            return Node::DmarcAuthorization;
        }
        if self.empty_non_terminals.contains(&joined) {
            Node::EmptyNonTerminal
        } else {
            Node::Missing
        }
    }

    /// Whether `relative` is `<d>._report._dmarc.reports` of a hosted `d` (any tenant's).
    fn is_dmarc_authorization(&self, relative: &str) -> bool {
        let absolute = format!("{relative}.{}", self.zone);
        self.reports
            .dmarc_authorized_domain(&absolute)
            .is_some_and(|domain| self.snapshot.domains.contains_key(&domain))
    }

    /// The domain named by `labels` when the tenant of the `t<id>` label `tenant` hosts it;
    /// under any other tenant's label the name does not exist.
    fn hosted_by<'s>(
        domains: &'s HashMap<String, HostedDomain>,
        labels: &[String],
        tenant: &str,
    ) -> Option<&'s HostedDomain> {
        let tenant_id = parse_tenant_label(tenant)?;
        domains
            .get(&labels.join("."))
            .filter(|domain| domain.tenant_id == tenant_id)
    }

    /// Every record the node owns, owned by `owner`.
    fn records(&self, node: &Node<'_>, owner: &Name) -> Vec<Record> {
        match node {
            Node::Apex => {
                let mut records = vec![
                    Record::from_rdata(owner.clone(), self.ttl, self.soa.data.clone()),
                    Record::from_rdata(
                        owner.clone(),
                        self.ttl,
                        RData::NS(NS(self.nameserver.clone())),
                    ),
                ];
                records.extend(self.addresses(owner));
                records
            }
            Node::Host => self.addresses(owner),
            Node::Sts(domain) => match &domain.txt_id {
                Some(id) => vec![self.txt(owner, &mtasts_proto::sts::record::record_text(id))],
                None => Vec::new(),
            },
            Node::TlsRpt(domain) => match &domain.tlsrpt {
                Some(value) => vec![self.txt(owner, value)],
                None => Vec::new(),
            },
            Node::Report(ReportName::Host) => {
                let mut records = self.addresses(owner);
                if self.report_mail {
                    records.push(Record::from_rdata(
                        owner.clone(),
                        self.ttl,
                        RData::MX(MX::new(REPORT_MX_PREFERENCE, self.report_host.clone())),
                    ));
                }
                records
            }
            Node::Report(ReportName::PolicyHost) => self.addresses(owner),
            Node::Report(ReportName::StsRecord) => vec![self.txt(owner, &self.own_sts)],
            Node::Report(ReportName::TlsRptRecord) => vec![self.txt(owner, &self.own_tlsrpt)],
            Node::DmarcAuthorization => vec![self.txt(owner, DMARC_AUTHORIZATION)],
            Node::EmptyNonTerminal | Node::Missing => Vec::new(),
        }
    }

    fn addresses(&self, owner: &Name) -> Vec<Record> {
        let v4 = self.ipv4.iter().map(|ip| RData::A(A(*ip)));
        let v6 = self.ipv6.iter().map(|ip| RData::AAAA(AAAA(*ip)));
        v4.chain(v6)
            .map(|data| Record::from_rdata(owner.clone(), self.ttl, data))
            .collect()
    }

    fn txt(&self, owner: &Name, value: &str) -> Record {
        Record::from_rdata(owner.clone(), self.ttl, RData::TXT(txt_rdata(value)))
    }

    /// The apex name (lowercase, absolute).
    pub fn apex(&self) -> &Name {
        &self.apex
    }
}

/// A TXT RDATA holding `value`, split into character-strings of at most 255 bytes; readers
/// concatenate them without separators (RFC 8461 §3.1, RFC 8460 §3).
pub fn txt_rdata(value: &str) -> TXT {
    let chunks: Vec<&[u8]> = if value.is_empty() {
        // A TXT RDATA holds at least one character-string, possibly empty.
        vec![b""]
    } else {
        value.as_bytes().chunks(MAX_CHARACTER_STRING).collect()
    };
    TXT::from_bytes(chunks)
}

/// An absolute name from a zone-derived string (`Delegation` checked its labels, not the
/// length the `hostmaster.` or `policy.` prefix adds).
fn fqdn(name: &str) -> Result<Name, ZoneError> {
    Name::from_ascii(format!("{name}.")).map_err(|e| ZoneError::Name {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
