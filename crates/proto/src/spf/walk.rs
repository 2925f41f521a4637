//! The SPF evaluation tree as a receiver walks it (RFC 7208 §4.6, §5, §6.1), without a message:
//! every mechanism is evaluated as if none matched, which is the walk that costs the most
//! lookups and so the one the limits must allow.
//!
//! [`SpfWalk`] is a state machine: [`SpfWalk::step`] says which DNS query it needs, the caller
//! does it and hands the result to [`SpfWalk::answer`], until the walk is done. The caller owns
//! all I/O; every decision (lookup and void-lookup limits, loops, missing targets, `all`
//! qualifiers) is taken here.

use std::net::IpAddr;

use serde::Serialize;

use super::record::{Mechanism, Qualifier, SpfRecord, Term, is_spf};
use crate::txt::TxtRr;
use crate::{Diagnostic, Severity};

/// Terms that cause DNS lookups, at most (§4.6.4).
pub const MAX_DNS_LOOKUPS: usize = 10;
/// Lookups answering NXDOMAIN or no records, at most (§4.6.4).
pub const MAX_VOID_LOOKUPS: usize = 2;
/// MX records one `mx` mechanism may have (§4.6.4).
pub const MAX_MX_RECORDS: usize = 10;
/// The walk stops following after this many lookups: past the limit a receiver has already
/// returned `permerror`, and this bounds what a hostile tree can make the checker do.
pub const WALK_LOOKUP_CAP: usize = 30;

const RULE_RECORD: &str = "RFC 7208 §4.5";
const RULE_LIMITS: &str = "RFC 7208 §4.6.4";

/// A DNS query the walk needs answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// TXT records at the name.
    Txt(String),
    /// MX records of the name.
    Mx(String),
    /// Addresses of the name; only A records count when `ipv4_only` (`exists`, §5.7).
    Addresses {
        /// The name.
        name: String,
        /// Only IPv4 addresses count.
        ipv4_only: bool,
    },
}

/// Why a lookup gave no records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsFailure {
    /// NXDOMAIN or no records of the type: a void lookup.
    NotFound,
    /// SERVFAIL, timeout and the like: the receiver's result is `temperror` (§2.6.6).
    Temporary(String),
}

/// The answer to a [`Query`], of the same kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// For [`Query::Txt`].
    Txt(Result<Vec<TxtRr>, DnsFailure>),
    /// For [`Query::Mx`]: the exchange names.
    Mx(Result<Vec<String>, DnsFailure>),
    /// For [`Query::Addresses`].
    Addresses(Result<Vec<IpAddr>, DnsFailure>),
}

/// What the walk wants next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Answer this query with [`SpfWalk::answer`].
    Query(Query),
    /// The walk is over: take the outcome with [`SpfWalk::finish`].
    Done,
}

/// How a record came into the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The domain checked.
    Root,
    /// An `include:` target.
    Include,
    /// A `redirect=` target.
    Redirect,
}

/// What was found at one node of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// Not looked up (yet).
    Pending,
    /// Exactly one record, and it parses.
    Valid,
    /// No `v=spf1` record.
    None,
    /// More than one `v=spf1` record (`permerror`, §4.5).
    Multiple,
    /// The record does not parse (`permerror`).
    Invalid,
    /// The lookup failed temporarily (`temperror`).
    TempError,
    /// Not followed: a loop, a macro depending on the message, or past the walk cap.
    NotFollowed,
}

/// The overall outcome, in the result names of §2.6 where they apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpfStatus {
    /// A record whose whole tree evaluates without error.
    Valid,
    /// No SPF record: receivers get `none`.
    None,
    /// Receivers get `permerror`: several records, bad syntax, limits exceeded, a loop, a
    /// missing include target.
    Permerror,
    /// Receivers get `temperror`: a lookup in the tree failed temporarily.
    Temperror,
}

impl SpfStatus {
    /// `valid`, `none`, `permerror`, `temperror`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpfStatus::Valid => "valid",
            SpfStatus::None => "none",
            SpfStatus::Permerror => "permerror",
            SpfStatus::Temperror => "temperror",
        }
    }
}

/// One record in the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfNode {
    /// The domain whose TXT records were looked up.
    pub domain: String,
    /// How the walk got here.
    pub via: Via,
    /// What was found.
    pub status: NodeStatus,
    /// The record text (or texts, when several).
    pub records: Vec<String>,
    /// Why the node is not valid, when it is not.
    pub error: Option<String>,
    /// Every term of a valid record, in order.
    pub terms: Vec<SpfTermNode>,
}

/// One term of a record and what evaluating it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpfTermNode {
    /// The term as written.
    pub term: String,
    /// The running count of DNS-lookup terms after this one (0 for terms without a lookup).
    pub lookup: Option<usize>,
    /// The lookup found nothing (NXDOMAIN or no records).
    pub void: bool,
    /// What the lookup found or why it was not done.
    pub note: Option<String>,
    /// The included or redirected-to record.
    pub target: Option<Box<SpfNode>>,
}

/// The outcome of a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpfOutcome {
    /// The overall status.
    pub status: SpfStatus,
    /// The root record's text, when there is exactly one.
    pub record: Option<String>,
    /// DNS-lookup terms in the whole tree (a receiver stops at the 11th).
    pub dns_lookups: usize,
    /// Void lookups in the whole tree.
    pub void_lookups: usize,
    /// The tree.
    pub tree: SpfNode,
    /// Every problem and note, in walk order.
    pub diagnostics: Vec<Diagnostic>,
}

struct NodeData {
    domain: String,
    via: Via,
    /// On the root's redirect chain: its `all` decides the result for unlisted hosts.
    main: bool,
    status: NodeStatus,
    records: Vec<String>,
    error: Option<String>,
    record: Option<SpfRecord>,
    terms: Vec<TermData>,
}

struct TermData {
    term: String,
    lookup: Option<usize>,
    void: bool,
    note: Option<String>,
    child: Option<usize>,
}

struct Frame {
    node: usize,
    next_term: usize,
    redirect_done: bool,
}

#[derive(Clone, Copy)]
enum Pending {
    Record(usize),
    Term(usize, usize, bool),
}

/// The walk over one domain's SPF tree.
pub struct SpfWalk {
    nodes: Vec<NodeData>,
    frames: Vec<Frame>,
    waiting: Option<(Pending, Query)>,
    lookups: usize,
    voids: usize,
    perm: bool,
    temp: bool,
    diagnostics: Vec<Diagnostic>,
}

fn diag(
    severity: Severity,
    code: &'static str,
    message: String,
    fix: String,
    rule: &'static str,
) -> Diagnostic {
    Diagnostic {
        severity,
        code,
        line: None,
        message,
        rule,
        fix,
    }
}

impl SpfWalk {
    /// A walk of the SPF tree of `domain` (lowercase, no trailing dot).
    pub fn new(domain: &str) -> Self {
        let mut walk = SpfWalk {
            nodes: Vec::new(),
            frames: Vec::new(),
            waiting: None,
            lookups: 0,
            voids: 0,
            perm: false,
            temp: false,
            diagnostics: Vec::new(),
        };
        let root = walk.add_node(domain, Via::Root, true);
        walk.frames.push(Frame {
            node: root,
            next_term: 0,
            redirect_done: false,
        });
        walk
    }

    fn add_node(&mut self, domain: &str, via: Via, main: bool) -> usize {
        self.nodes.push(NodeData {
            domain: domain.to_owned(),
            via,
            main,
            status: NodeStatus::Pending,
            records: Vec::new(),
            error: None,
            record: None,
            terms: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// The next query to answer, or [`Step::Done`].
    pub fn step(&mut self) -> Step {
        loop {
            if let Some((_, query)) = &self.waiting {
                return Step::Query(query.clone());
            }
            let Some(frame) = self.frames.last_mut() else {
                return Step::Done;
            };
            let node = frame.node;
            match self.nodes[node].status {
                NodeStatus::Pending => {
                    let name = self.nodes[node].domain.clone();
                    self.waiting = Some((Pending::Record(node), Query::Txt(name)));
                    continue;
                }
                NodeStatus::Valid => {}
                _ => {
                    self.frames.pop();
                    continue;
                }
            }
            let count = self.nodes[node].terms.len();
            if frame.next_term < count {
                let i = frame.next_term;
                frame.next_term += 1;
                self.term(node, i);
                continue;
            }
            if !frame.redirect_done {
                frame.redirect_done = true;
                self.redirect(node);
                continue;
            }
            self.frames.pop();
        }
    }

    /// The answer to the query [`SpfWalk::step`] returned. An answer of another kind than
    /// the query counts as a temporary failure.
    pub fn answer(&mut self, answer: Answer) {
        let Some((pending, _)) = self.waiting.take() else {
            return;
        };
        match (pending, answer) {
            (Pending::Record(node), Answer::Txt(result)) => self.record_answer(node, result),
            (Pending::Term(node, i, ipv4_only), Answer::Addresses(result)) => {
                let result = result.map(|ips| {
                    ips.into_iter()
                        .filter(|ip| !ipv4_only || ip.is_ipv4())
                        .count()
                });
                self.term_answer(node, i, result, "address");
            }
            (Pending::Term(node, i, _), Answer::Mx(result)) => {
                if let Ok(hosts) = &result
                    && hosts.len() > MAX_MX_RECORDS
                {
                    self.perm = true;
                    let domain = self.nodes[node].domain.clone();
                    let term = self.nodes[node].terms[i].term.clone();
                    self.diagnostics.push(diag(
                        Severity::Error,
                        "spf-mx-too-many",
                        format!("The term {term:?} in the SPF record of {domain} names {} MX records; a receiver looks up the addresses of at most {MAX_MX_RECORDS} and returns permerror for more (RFC 7208 §4.6.4).", hosts.len()),
                        "Replace the mx mechanism with ip4:/ip6: ranges of the hosts that send mail, or reduce the MX records to 10.".to_owned(),
                        RULE_LIMITS,
                    ));
                }
                self.term_answer(node, i, result.map(|h| h.len()), "MX record");
            }
            (Pending::Record(node), _) => {
                self.record_answer(node, Err(DnsFailure::Temporary("wrong answer kind".into())))
            }
            (Pending::Term(node, i, _), _) => self.term_answer(
                node,
                i,
                Err(DnsFailure::Temporary("wrong answer kind".into())),
                "record",
            ),
        }
    }

    fn record_answer(&mut self, node: usize, result: Result<Vec<TxtRr>, DnsFailure>) {
        let (domain, via) = (self.nodes[node].domain.clone(), self.nodes[node].via);
        let rrset = match result {
            Ok(rrset) => rrset,
            Err(DnsFailure::Temporary(e)) => {
                self.temp = true;
                self.nodes[node].status = NodeStatus::TempError;
                self.nodes[node].error = Some(e.clone());
                self.diagnostics.push(diag(
                    Severity::Error,
                    "spf-dns-error",
                    format!("The TXT lookup of {domain} failed temporarily ({e}); receivers get temperror for SPF and may defer or reject mail from the domain until it answers (RFC 7208 §4.4, §2.6.6)."),
                    format!("Make sure every authoritative name server of {domain} answers TXT queries (an answer or NXDOMAIN, never SERVFAIL or a timeout)."),
                    "RFC 7208 §4.4",
                ));
                return;
            }
            Err(DnsFailure::NotFound) => {
                if via != Via::Root {
                    self.void(node, None);
                }
                Vec::new()
            }
        };
        let candidates: Vec<String> = rrset
            .iter()
            .map(|rr| rr.concat())
            .filter(|text| is_spf(text))
            .map(|text| String::from_utf8_lossy(&text).into_owned())
            .collect();
        self.nodes[node].records = candidates.clone();
        match candidates.len() {
            0 => {
                self.nodes[node].status = NodeStatus::None;
                if via == Via::Root {
                    self.diagnostics.push(diag(
                        Severity::Warning,
                        "spf-record-missing",
                        format!("No TXT record starting with \"v=spf1\" at {domain}: receivers get SPF result none, so mail claiming to be from {domain} cannot pass SPF and DMARC rests on DKIM alone (RFC 7208 §4.5)."),
                        format!("Publish {domain} TXT \"v=spf1 <your senders> -all\", listing the hosts and providers that send mail for {domain}; a domain that sends no mail publishes \"v=spf1 -all\"."),
                        RULE_RECORD,
                    ));
                } else {
                    self.perm = true;
                    self.nodes[node].error = Some("no v=spf1 record".into());
                    let how = if via == Via::Include {
                        "include:"
                    } else {
                        "redirect="
                    };
                    self.diagnostics.push(diag(
                        Severity::Error,
                        "spf-include-missing",
                        format!("The {how}{domain} target has no SPF record; receivers return permerror for the whole SPF check (RFC 7208 {}).", if via == Via::Include { "§5.2" } else { "§6.1" }),
                        format!("Remove {how}{domain} or correct the name (providers document the exact include to use)."),
                        if via == Via::Include { "RFC 7208 §5.2" } else { "RFC 7208 §6.1" },
                    ));
                }
            }
            1 => match SpfRecord::parse(&candidates[0]) {
                Ok(record) => {
                    self.nodes[node].terms = record
                        .terms
                        .iter()
                        .map(|(text, _)| TermData {
                            term: text.clone(),
                            lookup: None,
                            void: false,
                            note: None,
                            child: None,
                        })
                        .collect();
                    self.nodes[node].status = NodeStatus::Valid;
                    self.record_notes(node, &record);
                    self.nodes[node].record = Some(record);
                }
                Err(e) => {
                    self.perm = true;
                    self.nodes[node].status = NodeStatus::Invalid;
                    self.nodes[node].error = Some(e.to_string());
                    self.diagnostics.push(diag(
                        Severity::Error,
                        "spf-record-invalid",
                        format!("The SPF record {:?} at {domain} is invalid: {e}. Receivers return permerror (RFC 7208 §4.6).", candidates[0]),
                        "Write the record as \"v=spf1\" followed by space-separated mechanisms (ip4:, ip6:, a, mx, include:, exists:, all) and at most one redirect= and exp= (RFC 7208 §12).".to_owned(),
                        "RFC 7208 §4.6",
                    ));
                }
            },
            n => {
                self.perm = true;
                self.nodes[node].status = NodeStatus::Multiple;
                self.nodes[node].error = Some(format!("{n} v=spf1 records"));
                self.diagnostics.push(diag(
                    Severity::Error,
                    "spf-record-multiple",
                    format!("{n} TXT records at {domain} start with \"v=spf1\" ({}); receivers return permerror (RFC 7208 §4.5).", candidates.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")),
                    format!("Merge them into one v=spf1 record at {domain}: list every mechanism once, with a single all at the end."),
                    RULE_RECORD,
                ));
            }
        }
    }

    /// Notes on a record as a whole: its `all`, terms after it, an ignored redirect.
    fn record_notes(&mut self, node: usize, record: &SpfRecord) {
        let domain = self.nodes[node].domain.clone();
        let main = self.nodes[node].main;
        let all_at = record
            .terms
            .iter()
            .position(|(_, t)| matches!(t, Term::Directive(_, Mechanism::All)));
        if let Some(at) = all_at {
            let after = record.terms[at + 1..]
                .iter()
                .any(|(_, t)| matches!(t, Term::Directive(..)));
            if after {
                self.diagnostics.push(diag(
                    Severity::Warning,
                    "spf-terms-after-all",
                    format!("The SPF record of {domain} has mechanisms after all; receivers never evaluate them (RFC 7208 §5.1)."),
                    "Move all to the end of the record, after every other mechanism.".to_owned(),
                    "RFC 7208 §5.1",
                ));
            }
            if record.redirect().is_some() {
                self.diagnostics.push(diag(
                    Severity::Info,
                    "spf-redirect-ignored",
                    format!("The SPF record of {domain} has both all and redirect=; receivers ignore the redirect (RFC 7208 §6.1)."),
                    "Remove either the redirect= modifier or the all mechanism.".to_owned(),
                    "RFC 7208 §6.1",
                ));
            }
        } else if main && record.redirect().is_none() {
            self.diagnostics.push(diag(
                Severity::Warning,
                "spf-all-missing",
                format!("The SPF record of {domain} ends without an all mechanism or redirect=: mail from hosts it does not list gets neutral, as if there were no policy for them (RFC 7208 §4.7)."),
                "End the record with -all (or ~all while you are still finding every sender).".to_owned(),
                "RFC 7208 §4.7",
            ));
        }
    }

    fn term(&mut self, node: usize, i: usize) {
        let (domain, main) = (self.nodes[node].domain.clone(), self.nodes[node].main);
        let Some(record) = &self.nodes[node].record else {
            return;
        };
        let (text, term) = record.terms[i].clone();
        let Term::Directive(qualifier, mechanism) = term else {
            if let Term::Unknown { name, .. } = term {
                self.diagnostics.push(diag(
                    Severity::Info,
                    "spf-unknown-modifier",
                    format!("The SPF record of {domain} has the modifier {name}=, which receivers ignore (RFC 7208 §6)."),
                    format!("Remove {text} unless a provider asked for it."),
                    "RFC 7208 §6",
                ));
            }
            return;
        };
        if mechanism.counts_lookup() && !self.count_lookup(node, i) {
            return;
        }
        let target = |spec: Option<&super::macros::MacroString>| -> Result<String, String> {
            match spec {
                None => Ok(domain.clone()),
                Some(spec) => match spec.expand(&domain) {
                    Some(name) => Ok(name.trim_end_matches('.').to_ascii_lowercase()),
                    None => Err(spec.as_str().to_owned()),
                },
            }
        };
        let query = match &mechanism {
            Mechanism::All => {
                self.all_notes(&domain, main, qualifier, &text);
                return;
            }
            Mechanism::Ip4(_, len) | Mechanism::Ip6(_, len)
                if qualifier == Qualifier::Pass && len.is_some_and(|l| l < 8) =>
            {
                self.diagnostics.push(diag(
                    Severity::Warning,
                    "spf-wide-range",
                    format!("The term {text:?} in the SPF record of {domain} authorizes a network of more than 16 million addresses."),
                    "List the sending hosts or the provider's include instead of a wide range.".to_owned(),
                    "RFC 7208 §5.6",
                ));
                return;
            }
            Mechanism::Ip4(..) | Mechanism::Ip6(..) => return,
            Mechanism::Ptr(_) => {
                self.diagnostics.push(diag(
                    Severity::Warning,
                    "spf-ptr",
                    format!("The SPF record of {domain} uses {text:?}: ptr is slow, unreliable and \"SHOULD NOT be used\" (RFC 7208 §5.5); some receivers skip it."),
                    "Replace ptr with ip4:/ip6: ranges or a:/mx mechanisms naming the sending hosts.".to_owned(),
                    "RFC 7208 §5.5",
                ));
                self.nodes[node].terms[i].note =
                    Some("depends on the connecting address: not evaluated".into());
                return;
            }
            Mechanism::Include(spec) => match target(Some(spec)) {
                Ok(name) => {
                    self.follow(node, i, &name, Via::Include);
                    return;
                }
                Err(spec) => {
                    self.macro_note(node, i, &spec);
                    return;
                }
            },
            Mechanism::A { domain: spec, .. } => {
                target(spec.as_ref()).map(|name| Query::Addresses {
                    name,
                    ipv4_only: false,
                })
            }
            Mechanism::Mx { domain: spec, .. } => target(spec.as_ref()).map(Query::Mx),
            Mechanism::Exists(spec) => target(Some(spec)).map(|name| Query::Addresses {
                name,
                ipv4_only: true,
            }),
        };
        match query {
            Ok(query) => {
                let ipv4_only = matches!(
                    query,
                    Query::Addresses {
                        ipv4_only: true,
                        ..
                    }
                );
                self.waiting = Some((Pending::Term(node, i, ipv4_only), query));
            }
            Err(spec) => self.macro_note(node, i, &spec),
        }
    }

    /// Counts a DNS-lookup term; false when the walk no longer follows it.
    fn count_lookup(&mut self, node: usize, i: usize) -> bool {
        self.lookups += 1;
        self.nodes[node].terms[i].lookup = Some(self.lookups);
        if self.lookups == MAX_DNS_LOOKUPS + 1 {
            self.perm = true;
            let domain = &self.nodes[node].domain;
            let term = &self.nodes[node].terms[i].term;
            self.diagnostics.push(diag(
                Severity::Error,
                "spf-lookup-limit",
                format!("The SPF tree needs more than {MAX_DNS_LOOKUPS} DNS lookups (the 11th is {term:?} in the record of {domain}); receivers stop there and return permerror, so SPF fails for all mail (RFC 7208 §4.6.4)."),
                "Cut lookups: replace include:/a/mx of your own hosts with ip4:/ip6: ranges, remove includes of providers you no longer use, and never use ptr.".to_owned(),
                RULE_LIMITS,
            ));
        }
        if self.lookups > WALK_LOOKUP_CAP {
            self.nodes[node].terms[i].note = Some(format!(
                "not followed: the walk stops after {WALK_LOOKUP_CAP} lookups"
            ));
            return false;
        }
        true
    }

    fn all_notes(&mut self, domain: &str, main: bool, qualifier: Qualifier, text: &str) {
        match qualifier {
            Qualifier::Pass => self.diagnostics.push(diag(
                Severity::Error,
                "spf-all-pass",
                format!("The SPF record of {domain} ends with {text:?}: every host on the internet passes SPF for it{} (RFC 7208 §5.1).", if main { "" } else { ", and so for every domain that includes it" }),
                "End the record with -all (or ~all), after listing the hosts that really send mail.".to_owned(),
                "RFC 7208 §5.1",
            )),
            Qualifier::Neutral if main => self.diagnostics.push(diag(
                Severity::Warning,
                "spf-all-neutral",
                format!("The SPF record of {domain} ends with {text:?}: mail from any other host gets neutral, which says nothing, so forged mail is treated as if there were no SPF policy (RFC 7208 §8.2)."),
                "End the record with ~all, then -all once every sender is listed.".to_owned(),
                "RFC 7208 §8.2",
            )),
            _ => {}
        }
    }

    fn macro_note(&mut self, node: usize, i: usize, spec: &str) {
        self.nodes[node].terms[i].note = Some(format!(
            "{spec} depends on the message (macros other than %{{d}}): not evaluated"
        ));
        let domain = self.nodes[node].domain.clone();
        self.diagnostics.push(diag(
            Severity::Info,
            "spf-macro-not-evaluated",
            format!("The SPF record of {domain} has {:?}, whose target depends on the message being checked; it still counts as one DNS lookup (RFC 7208 §7).", self.nodes[node].terms[i].term),
            "Nothing to do if this is intended; check its expansion with a real message.".to_owned(),
            "RFC 7208 §7",
        ));
    }

    /// Follows an include or redirect to `name`, unless that is a loop.
    fn follow(&mut self, node: usize, i: usize, name: &str, via: Via) {
        let on_path = self
            .frames
            .iter()
            .any(|f| self.nodes[f.node].domain == name);
        if on_path {
            self.perm = true;
            self.nodes[node].terms[i].note =
                Some(format!("loop: {name} is already being evaluated"));
            let domain = self.nodes[node].domain.clone();
            let term = self.nodes[node].terms[i].term.clone();
            self.diagnostics.push(diag(
                Severity::Error,
                "spf-loop",
                format!("{term:?} in the SPF record of {domain} leads back to {name}, which is already being evaluated: the evaluation loops until the lookup limit and receivers return permerror (RFC 7208 §4.6.4)."),
                format!("Remove {term} from the record of {domain}."),
                RULE_LIMITS,
            ));
            return;
        }
        let main = via == Via::Redirect && self.nodes[node].main;
        let child = self.add_node(name, via, main);
        self.nodes[node].terms[i].child = Some(child);
        self.frames.push(Frame {
            node: child,
            next_term: 0,
            redirect_done: false,
        });
    }

    fn redirect(&mut self, node: usize) {
        let Some(record) = &self.nodes[node].record else {
            return;
        };
        if record.has_all() {
            return;
        }
        let Some(i) = record
            .terms
            .iter()
            .position(|(_, t)| matches!(t, Term::Redirect(_)))
        else {
            return;
        };
        let Term::Redirect(spec) = record.terms[i].1.clone() else {
            return;
        };
        if !self.count_lookup(node, i) {
            return;
        }
        let domain = self.nodes[node].domain.clone();
        match spec.expand(&domain) {
            Some(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                self.follow(node, i, &name, Via::Redirect);
            }
            None => self.macro_note(node, i, spec.as_str()),
        }
    }

    fn term_answer(
        &mut self,
        node: usize,
        i: usize,
        result: Result<usize, DnsFailure>,
        what: &str,
    ) {
        match result {
            Ok(0) | Err(DnsFailure::NotFound) => self.void(node, Some(i)),
            Ok(n) => self.nodes[node].terms[i].note = Some(format!("{n} {what}(s)")),
            Err(DnsFailure::Temporary(e)) => {
                self.temp = true;
                let domain = self.nodes[node].domain.clone();
                let term = self.nodes[node].terms[i].term.clone();
                self.nodes[node].terms[i].note = Some(format!("temporary DNS failure: {e}"));
                self.diagnostics.push(diag(
                    Severity::Error,
                    "spf-dns-error",
                    format!("The lookup for {term:?} in the SPF record of {domain} failed temporarily ({e}); receivers get temperror and may defer or reject the mail (RFC 7208 §2.6.6)."),
                    "Make sure the name servers of the name it looks up answer (an answer or NXDOMAIN, never SERVFAIL or a timeout).".to_owned(),
                    "RFC 7208 §2.6.6",
                ));
            }
        }
    }

    /// Records a void lookup, at a term or (for `None`) at an include/redirect target.
    fn void(&mut self, node: usize, term: Option<usize>) {
        self.voids += 1;
        let domain = self.nodes[node].domain.clone();
        let what = match term {
            Some(i) => {
                self.nodes[node].terms[i].void = true;
                self.nodes[node].terms[i].note = Some("void lookup: no records".into());
                let term = self.nodes[node].terms[i].term.clone();
                self.diagnostics.push(diag(
                    Severity::Warning,
                    "spf-void-lookup",
                    format!("{term:?} in the SPF record of {domain} finds no records (NXDOMAIN or an empty answer): it matches nothing and counts as a void lookup; receivers allow at most {MAX_VOID_LOOKUPS} (RFC 7208 §4.6.4)."),
                    format!("Remove {term} or correct the name it looks up."),
                    RULE_LIMITS,
                ));
                term
            }
            None => domain.clone(),
        };
        if self.voids == MAX_VOID_LOOKUPS + 1 {
            self.perm = true;
            self.diagnostics.push(diag(
                Severity::Error,
                "spf-void-lookup-limit",
                format!("The SPF tree makes more than {MAX_VOID_LOOKUPS} lookups that find nothing (the 3rd at {what:?}); receivers return permerror (RFC 7208 §4.6.4)."),
                "Remove the mechanisms and includes that name hosts or domains that do not exist.".to_owned(),
                RULE_LIMITS,
            ));
        }
    }

    /// The outcome; call after [`Step::Done`] (earlier, pending lookups are left out).
    pub fn finish(self) -> SpfOutcome {
        let root = &self.nodes[0];
        let status = if root.status == NodeStatus::None {
            SpfStatus::None
        } else if self.temp {
            SpfStatus::Temperror
        } else if self.perm {
            SpfStatus::Permerror
        } else {
            SpfStatus::Valid
        };
        let record = match root.records.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        SpfOutcome {
            status,
            record,
            dns_lookups: self.lookups,
            void_lookups: self.voids,
            tree: build(&self.nodes, 0),
            diagnostics: self.diagnostics,
        }
    }
}

fn build(nodes: &[NodeData], i: usize) -> SpfNode {
    let n = &nodes[i];
    SpfNode {
        domain: n.domain.clone(),
        via: n.via,
        status: n.status,
        records: n.records.clone(),
        error: n.error.clone(),
        terms: n
            .terms
            .iter()
            .map(|t| SpfTermNode {
                term: t.term.clone(),
                lookup: t.lookup,
                void: t.void,
                note: t.note.clone(),
                target: t.child.map(|c| Box::new(build(nodes, c))),
            })
            .collect(),
    }
}
