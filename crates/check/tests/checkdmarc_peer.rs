//! The judged comparison of issue 13: private test domains on the testkit's real DNS server
//! (loopback), whose DMARC and SPF records exercise the corners of RFC 7489, RFC 9989 and
//! RFC 7208 (organizational-domain fallback, several records, bad tags, lookup limits, void
//! lookups, loops, temporary failures), are checked by mtasts's [`Checker`] and by checkdmarc
//! 6.0.4 (PyPI) against the same server.
//!
//! Every [`Case`] states what the RFC calls for, our findings, and what checkdmarc says (its
//! error, its warnings, fields of its result), so the test fails when either side changes.
//! Where the two differ, [`Case::differs`] names the difference and the RFC section that
//! decides it; docs/check-dmarc.md carries the same table, and
//! [`the_documented_table_lists_every_case`] keeps the two together.
//!
//! checkdmarc runs through `tests/peer/checkdmarc_driver.py`, which points it at the testkit
//! server alone and refuses any other address at the socket layer; the test requires that it
//! refused nothing. checkdmarc lives in a virtual environment (`/opt/mtasts-checkdmarc`, or
//! `MTASTS_CHECKDMARC_PEER`) installed by `.ci/run`; without it the test is skipped, except
//! under `MTASTS_REQUIRE_SERVICES=1`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use mtasts_check::{CheckOptions, Checker, StageSet};
use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_net::fetch::{FetchConfig, PolicyFetcher};
use mtasts_net::smtp::{ProbeConfig, SmtpProber};
use mtasts_testkit::dns::Zone;
use mtasts_testkit::services::{self, Service};
use mtasts_testkit::{Fault, TestNet};
use serde_json::Value;

/// The checkdmarc release the expectations were taken from (`.ci/run` installs it).
const PEER_VERSION: &str = "6.0.4";

/// The most one run of the driver (every case) may take before it is killed: a guard against
/// a hung child, not a measurement.
const PEER_LIMIT: Duration = Duration::from_secs(300);

/// Which of the two checks a case is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The `_dmarc` record: our `dmarc` stage, checkdmarc's `check_dmarc`.
    Dmarc,
    /// The SPF record: our `spf` stage, checkdmarc's `check_spf`.
    Spf,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Dmarc => "dmarc",
            Kind::Spf => "spf",
        }
    }
}

/// What checkdmarc says about a domain.
struct Peer {
    /// `valid` in its result.
    valid: bool,
    /// A part of its `error`, or `None` when it gives none.
    error: Option<&'static str>,
    /// A part of each of its `warnings`, in its order; it must give exactly these.
    warnings: &'static [&'static str],
    /// JSON pointer into its result, and the value there as JSON text.
    fields: &'static [(&'static str, &'static str)],
}

/// One test domain, as published, and what each side must say about it.
struct Case {
    /// The domain checked.
    domain: &'static str,
    kind: Kind,
    /// The corner of the RFCs it exercises.
    what: &'static str,
    /// What the RFCs call for, with the section.
    rfc: &'static str,
    /// Publishes the domain's records (and faults) on the testkit server.
    zone: fn(&Zone),
    /// Our findings of the stage, `"severity code"`, in report order: exactly these.
    ours: &'static [&'static str],
    /// JSON pointer into our report, and the value there as JSON text.
    ours_fields: &'static [(&'static str, &'static str)],
    /// What checkdmarc says.
    peer: Peer,
    /// Where the two differ: how, who is right, and the RFC section that decides it. `None`
    /// when both report what the RFC calls for.
    differs: Option<&'static str>,
}

/// The mail host every test domain names, and the domains report addresses point to.
fn common(z: &Zone) {
    z.add_a("mx.example.net", "192.0.2.25".parse().unwrap());
    z.add_mx("reports.example.net", 10, "mx.example.net");
    z.add_mx("example.org", 10, "mx.example.net");
}

/// A domain that exists and receives mail, with each text as its own TXT RR at `_dmarc`.
fn dmarc(z: &Zone, domain: &str, records: &[&str]) {
    z.add_mx(domain, 10, "mx.example.net");
    for record in records {
        z.add_txt(&format!("_dmarc.{domain}"), &[record]);
    }
}

/// A domain that exists, with each text as its own TXT RR.
fn spf(z: &Zone, domain: &str, records: &[&str]) {
    z.add_mx(domain, 10, "mx.example.net");
    for record in records {
        z.add_txt(domain, &[record]);
    }
}

fn cases() -> Vec<Case> {
    vec![
        // ---- DMARC ----
        Case {
            domain: "reject.example.com",
            kind: Kind::Dmarc,
            what: "one valid record, p=reject",
            rfc: "the record applies: p=reject (RFC 7489 §6.6.3)",
            zone: |z| {
                dmarc(
                    z,
                    "reject.example.com",
                    &["v=DMARC1; p=reject; rua=mailto:dmarc@reject.example.com"],
                )
            },
            ours: &[],
            ours_fields: &[
                ("/dmarc/status", r#""valid""#),
                ("/dmarc/policy", r#""reject""#),
            ],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[
                    ("/location", r#""reject.example.com""#),
                    ("/tags/p/value", r#""reject""#),
                ],
            },
            differs: None,
        },
        Case {
            domain: "missing.example.com",
            kind: Kind::Dmarc,
            what: "no record at the domain nor at its organizational domain",
            rfc: "no DMARC policy (RFC 7489 §6.6.3 steps 3-4, RFC 9989 §4.10)",
            zone: |z| dmarc(z, "missing.example.com", &[]),
            ours: &["warning dmarc-record-missing"],
            ours_fields: &[("/dmarc/status", r#""none""#)],
            peer: Peer {
                valid: false,
                error: Some("A DMARC record does not exist for this domain or its parent domains."),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "mail.example.org",
            kind: Kind::Dmarc,
            what: "subdomain without a record: organizational-domain fallback",
            rfc: "the record of example.org applies with its sp=quarantine (RFC 7489 §6.6.3 step 3, §6.3 sp; RFC 9989 §4.10)",
            zone: |z| {
                dmarc(z, "mail.example.org", &[]);
                z.add_txt(
                    "_dmarc.example.org",
                    &["v=DMARC1; p=reject; sp=quarantine; rua=mailto:dmarc@example.org"],
                );
            },
            ours: &[
                "info dmarc-policy-inherited",
                "info dmarc-policy-quarantine",
            ],
            ours_fields: &[
                ("/dmarc/record/domain", r#""example.org""#),
                ("/dmarc/policy", r#""quarantine""#),
            ],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[
                    ("/location", r#""example.org""#),
                    ("/tags/sp/value", r#""quarantine""#),
                ],
            },
            differs: None,
        },
        Case {
            domain: "gone.example.org",
            kind: Kind::Dmarc,
            what: "subdomain that does not exist (NXDOMAIN), parent with a record",
            rfc: "policy discovery does not need the domain to exist: example.org's sp=quarantine applies (RFC 7489 §6.6.3; RFC 9989 §4.10, np absent so sp)",
            zone: |_| {},
            ours: &[
                "info dmarc-policy-inherited",
                "info dmarc-policy-quarantine",
            ],
            ours_fields: &[
                ("/dmarc/record/domain", r#""example.org""#),
                ("/dmarc/policy", r#""quarantine""#),
            ],
            peer: Peer {
                valid: false,
                error: Some("The domain does not exist."),
                warnings: &[],
                fields: &[],
            },
            differs: Some(
                "checkdmarc stops at the NXDOMAIN of the name itself and reports no policy; receivers still find example.org's record for mail from a non-existent subdomain (RFC 7489 §6.6.3 step 3; RFC 9989 §4.10 and its np tag exist for exactly that). mtasts is right.",
            ),
        },
        Case {
            domain: "a.dept.example.org",
            kind: Kind::Dmarc,
            what: "intermediate record with psd=n: the two kinds of receivers differ",
            rfc: "RFC 7489 receivers (PSL) use example.org: sp=quarantine (§6.6.3 step 3); RFC 9989 receivers stop the tree walk at dept.example.org (psd=n): p=none (§4.10)",
            zone: |z| {
                dmarc(z, "a.dept.example.org", &[]);
                z.add_txt(
                    "_dmarc.dept.example.org",
                    &["v=DMARC1; p=none; psd=n; rua=mailto:dmarc@example.org"],
                );
            },
            ours: &[
                "warning dmarc-receivers-disagree",
                "info dmarc-policy-inherited",
                "info dmarc-policy-quarantine",
            ],
            ours_fields: &[
                ("/dmarc/rfc7489/record_domain", r#""example.org""#),
                ("/dmarc/rfc7489/policy", r#""quarantine""#),
                ("/dmarc/rfc9989/record_domain", r#""dept.example.org""#),
                ("/dmarc/rfc9989/policy", r#""none""#),
            ],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[
                    "A p tag value of none makes DMARC unenforced on email sent as dept.example.org.",
                ],
                fields: &[
                    ("/location", r#""dept.example.org""#),
                    ("/tags/p/value", r#""none""#),
                ],
            },
            differs: Some(
                "checkdmarc gives only the RFC 9989 result (dept.example.org, p=none); RFC 7489 receivers, which find the organizational domain by the Public Suffix List (§3.2, §6.6.3), apply example.org's sp=quarantine. Both are right for RFC 9989; mtasts also reports the RFC 7489 receivers and warns that they differ.",
            ),
        },
        Case {
            domain: "two.example.com",
            kind: Kind::Dmarc,
            what: "two v=DMARC1 records at _dmarc",
            rfc: "no policy: RFC 7489 receivers stop (§6.6.3 step 5), RFC 9989 receivers discard both and find nothing above (§4.10)",
            zone: |z| {
                dmarc(
                    z,
                    "two.example.com",
                    &[
                        "v=DMARC1; p=reject; rua=mailto:dmarc@two.example.com",
                        "v=DMARC1; p=none; rua=mailto:dmarc@two.example.com",
                    ],
                )
            },
            ours: &["error dmarc-record-multiple"],
            ours_fields: &[("/dmarc/status", r#""invalid""#), ("/dmarc/policy", "null")],
            peer: Peer {
                valid: false,
                error: Some("Multiple DMARC policy records are not permitted"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "nop.example.com",
            kind: Kind::Dmarc,
            what: "no p tag, a valid rua",
            rfc: "receivers act as if p=none (RFC 7489 §6.6.3 step 6: a valid rua; RFC 9989 §4.7: p absent)",
            zone: |z| {
                dmarc(
                    z,
                    "nop.example.com",
                    &["v=DMARC1; rua=mailto:dmarc@nop.example.com"],
                )
            },
            ours: &["warning dmarc-p-missing", "warning dmarc-policy-none"],
            ours_fields: &[
                ("/dmarc/status", r#""valid""#),
                ("/dmarc/policy", r#""none""#),
            ],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[
                    "A missing p tag is equivalent to p=none in RFC 9989, but a p tag is required in older versions of DMARC.",
                    "A p tag value of none makes DMARC unenforced on email sent as nop.example.com.",
                ],
                fields: &[("/tags/p/value", r#""none""#)],
            },
            differs: None,
        },
        Case {
            domain: "badp.example.com",
            kind: Kind::Dmarc,
            what: "invalid p value (p=block), a valid rua",
            rfc: "p=block is invalid; with a valid rua receivers act as if p=none (RFC 7489 §6.6.3 step 6)",
            zone: |z| {
                dmarc(
                    z,
                    "badp.example.com",
                    &["v=DMARC1; p=block; rua=mailto:dmarc@badp.example.com"],
                )
            },
            ours: &[
                "error dmarc-tag-invalid",
                "warning dmarc-p-missing",
                "warning dmarc-policy-none",
            ],
            ours_fields: &[("/dmarc/policy", r#""none""#)],
            peer: Peer {
                valid: false,
                error: Some(
                    "Tag p must have one of the following values: none,quarantine,reject - not block",
                ),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "badp-norua.example.com",
            kind: Kind::Dmarc,
            what: "invalid p value, no rua",
            rfc: "RFC 7489 receivers apply no DMARC processing (§6.6.3 step 6); RFC 9989 receivers apply p=none",
            zone: |z| dmarc(z, "badp-norua.example.com", &["v=DMARC1; p=block"]),
            ours: &[
                "error dmarc-record-invalid",
                "error dmarc-tag-invalid",
                "error dmarc-p-missing",
                "warning dmarc-receivers-disagree",
                "warning dmarc-policy-none",
                "warning dmarc-rua-missing",
            ],
            ours_fields: &[
                ("/dmarc/status", r#""invalid""#),
                ("/dmarc/rfc7489/policy", "null"),
                ("/dmarc/rfc9989/policy", r#""none""#),
            ],
            peer: Peer {
                valid: false,
                error: Some(
                    "Tag p must have one of the following values: none,quarantine,reject - not block",
                ),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "badpct.example.com",
            kind: Kind::Dmarc,
            what: "pct=150 (out of range)",
            rfc: "pct is 0 to 100 (RFC 7489 §6.3); an invalid value is discarded for the default, 100 (§6.3); RFC 9989 removed pct",
            zone: |z| {
                dmarc(
                    z,
                    "badpct.example.com",
                    &["v=DMARC1; p=reject; pct=150; rua=mailto:dmarc@badpct.example.com"],
                )
            },
            ours: &["error dmarc-tag-invalid"],
            ours_fields: &[("/dmarc/record/pct", "100")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &["Support for the pct tag was removed in RFC 9989"],
                fields: &[],
            },
            differs: Some(
                "checkdmarc only notes that RFC 9989 removed pct and accepts 150; RFC 7489 §6.3 defines pct as an integer from 0 to 100, so RFC 7489 receivers discard it. mtasts is right.",
            ),
        },
        Case {
            domain: "unknown.example.com",
            kind: Kind::Dmarc,
            what: "unknown tag (foo=bar)",
            rfc: "unknown tags are ignored (RFC 7489 §6.3, RFC 9989 §4.7)",
            zone: |z| {
                dmarc(
                    z,
                    "unknown.example.com",
                    &["v=DMARC1; p=reject; foo=bar; rua=mailto:dmarc@unknown.example.com"],
                )
            },
            ours: &["info dmarc-tag-unknown"],
            ours_fields: &[("/dmarc/status", r#""valid""#)],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &["Unknown DMARC tag 'foo' was ignored"],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "dup.example.com",
            kind: Kind::Dmarc,
            what: "repeated tag (p=none; p=reject)",
            rfc: "a tag-list with a repeated tag is invalid (RFC 6376 §3.2, which DMARC's tag-list follows: RFC 7489 §6.4)",
            zone: |z| {
                dmarc(
                    z,
                    "dup.example.com",
                    &["v=DMARC1; p=none; p=reject; rua=mailto:dmarc@dup.example.com"],
                )
            },
            ours: &["error dmarc-record-invalid", "error dmarc-tag-duplicate"],
            ours_fields: &[("/dmarc/status", r#""invalid""#)],
            peer: Peer {
                valid: false,
                error: Some("Duplicate p tags are not permitted"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "baduri.example.com",
            kind: Kind::Dmarc,
            what: "rua without a URI scheme (rua=dmarc@…)",
            rfc: "rua is a list of URIs (RFC 7489 §6.3, §6.4); a bare address is not one, so no reports",
            zone: |z| {
                dmarc(
                    z,
                    "baduri.example.com",
                    &["v=DMARC1; p=reject; rua=dmarc@baduri.example.com"],
                )
            },
            ours: &["error dmarc-uri-invalid", "info dmarc-rua-missing"],
            ours_fields: &[("/dmarc/policy", r#""reject""#)],
            peer: Peer {
                valid: false,
                error: Some("dmarc@baduri.example.com is not a valid DMARC report URI"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "ext-yes.example.com",
            kind: Kind::Dmarc,
            what: "rua at another organization that authorizes it",
            rfc: "reports go there: ext-yes.example.com._report._dmarc.reports.example.net has v=DMARC1 (RFC 7489 §7.1)",
            zone: |z| {
                dmarc(
                    z,
                    "ext-yes.example.com",
                    &["v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.net"],
                );
                z.add_txt(
                    "ext-yes.example.com._report._dmarc.reports.example.net",
                    &["v=DMARC1"],
                );
            },
            ours: &[],
            ours_fields: &[("/dmarc/record/rua/0/authorized", "true")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "ext-no.example.com",
            kind: Kind::Dmarc,
            what: "rua at another organization without the authorization record",
            rfc: "receivers send no reports there (RFC 7489 §7.1)",
            zone: |z| {
                dmarc(
                    z,
                    "ext-no.example.com",
                    &["v=DMARC1; p=reject; rua=mailto:dmarc@reports.example.net"],
                )
            },
            ours: &["warning dmarc-report-authorization-missing"],
            ours_fields: &[("/dmarc/record/rua/0/authorized", "false")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[
                    "reports.example.net does not indicate that it accepts DMARC reports about ext-no.example.com",
                ],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "flaky.example.com",
            kind: Kind::Dmarc,
            what: "SERVFAIL on _dmarc.<domain>",
            rfc: "a temporary error: receivers report temperror and may defer (RFC 7489 §6.6.3, §6.6.2)",
            zone: |z| {
                dmarc(z, "flaky.example.com", &["v=DMARC1; p=reject"]);
                z.set_fault("_dmarc.flaky.example.com", Fault::ServFail);
            },
            ours: &["error dmarc-dns-error"],
            ours_fields: &[("/dmarc/status", r#""temp-error""#)],
            peer: Peer {
                valid: false,
                error: Some("answered SERVFAIL"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "mail.example.net",
            kind: Kind::Dmarc,
            what: "SERVFAIL on the organizational domain's _dmarc during the fallback",
            rfc: "a temporary error, not \"no record\" (RFC 7489 §6.6.3 step 3)",
            zone: |z| {
                dmarc(z, "mail.example.net", &[]);
                z.add_txt("_dmarc.example.net", &["v=DMARC1; p=reject"]);
                z.set_fault("_dmarc.example.net", Fault::ServFail);
            },
            ours: &["error dmarc-dns-error"],
            ours_fields: &[("/dmarc/status", r#""temp-error""#)],
            peer: Peer {
                valid: false,
                error: Some("answered SERVFAIL"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        // ---- SPF ----
        Case {
            domain: "valid.example.com",
            kind: Kind::Spf,
            what: "valid record with mx and an include",
            rfc: "2 DNS-lookup terms, ends in -all (RFC 7208 §4.6.4, §5.1)",
            zone: |z| {
                spf(
                    z,
                    "valid.example.com",
                    &["v=spf1 mx include:_spf.example.net -all"],
                );
                z.add_txt("_spf.example.net", &["v=spf1 ip4:192.0.2.0/24 -all"]);
            },
            ours: &[],
            ours_fields: &[("/spf/status", r#""valid""#), ("/spf/dns_lookups", "2")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[("/dns_lookups", "2")],
            },
            differs: None,
        },
        Case {
            domain: "nospf.example.com",
            kind: Kind::Spf,
            what: "no SPF record",
            rfc: "result none (RFC 7208 §4.5)",
            zone: |z| spf(z, "nospf.example.com", &[]),
            ours: &["warning spf-record-missing"],
            ours_fields: &[("/spf/status", r#""none""#)],
            peer: Peer {
                valid: false,
                error: Some("An SPF record does not exist."),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "twospf.example.com",
            kind: Kind::Spf,
            what: "two v=spf1 records",
            rfc: "permerror (RFC 7208 §4.5)",
            zone: |z| spf(z, "twospf.example.com", &["v=spf1 -all", "v=spf1 mx -all"]),
            ours: &["error spf-record-multiple"],
            ours_fields: &[("/spf/status", r#""permerror""#)],
            peer: Peer {
                valid: false,
                error: Some("The domain has multiple SPF TXT records"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "ten.example.com",
            kind: Kind::Spf,
            what: "exactly 10 DNS-lookup terms",
            rfc: "within the limit (RFC 7208 §4.6.4: more than 10 is a permerror)",
            zone: |z| {
                let terms: Vec<String> = (1..=10)
                    .map(|i| format!("a:h{i}.ten.example.com"))
                    .collect();
                spf(
                    z,
                    "ten.example.com",
                    &[&format!("v=spf1 {} -all", terms.join(" "))],
                );
                for i in 1..=10 {
                    z.add_a(
                        &format!("h{i}.ten.example.com"),
                        "192.0.2.1".parse().unwrap(),
                    );
                }
            },
            ours: &[],
            ours_fields: &[("/spf/status", r#""valid""#), ("/spf/dns_lookups", "10")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[("/dns_lookups", "10")],
            },
            differs: None,
        },
        Case {
            domain: "many.example.com",
            kind: Kind::Spf,
            what: "more than 10 DNS-lookup terms through includes",
            rfc: "permerror at the 11th (RFC 7208 §4.6.4)",
            zone: |z| {
                spf(
                    z,
                    "many.example.com",
                    &[
                        "v=spf1 include:p1.many.example.com include:p2.many.example.com include:p3.many.example.com include:p4.many.example.com -all",
                    ],
                );
                for i in 1..=4 {
                    let name = format!("p{i}.many.example.com");
                    spf(z, &name, &["v=spf1 a mx exists:%{d} ~all"]);
                    z.add_a(&name, "192.0.2.1".parse().unwrap());
                }
            },
            ours: &["error spf-lookup-limit"],
            ours_fields: &[
                ("/spf/status", r#""permerror""#),
                ("/spf/dns_lookups", "16"),
            ],
            peer: Peer {
                valid: false,
                error: Some("requires 13/10 maximum DNS lookups (RFC 7208 § 4.6.4)"),
                warnings: &[],
                fields: &[("/dns_lookups", "13")],
            },
            differs: None,
        },
        Case {
            domain: "void2.example.com",
            kind: Kind::Spf,
            what: "two void lookups",
            rfc: "allowed: the limit is two (RFC 7208 §4.6.4)",
            zone: |z| {
                spf(
                    z,
                    "void2.example.com",
                    &["v=spf1 a:gone1.void2.example.com a:gone2.void2.example.com -all"],
                )
            },
            ours: &["warning spf-void-lookup", "warning spf-void-lookup"],
            ours_fields: &[("/spf/status", r#""valid""#), ("/spf/void_lookups", "2")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &["gone1.void2.example.com", "gone2.void2.example.com"],
                fields: &[("/void_dns_lookups", "2")],
            },
            differs: None,
        },
        Case {
            domain: "void3.example.com",
            kind: Kind::Spf,
            what: "three void lookups (a:)",
            rfc: "permerror (RFC 7208 §4.6.4)",
            zone: |z| {
                spf(
                    z,
                    "void3.example.com",
                    &[
                        "v=spf1 a:gone1.void3.example.com a:gone2.void3.example.com a:gone3.void3.example.com -all",
                    ],
                )
            },
            ours: &[
                "error spf-void-lookup-limit",
                "warning spf-void-lookup",
                "warning spf-void-lookup",
                "warning spf-void-lookup",
            ],
            ours_fields: &[
                ("/spf/status", r#""permerror""#),
                ("/spf/void_lookups", "3"),
            ],
            peer: Peer {
                valid: false,
                error: Some("void DNS lookups"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "voidexists.example.com",
            kind: Kind::Spf,
            what: "three void lookups (a:, mx:, exists:)",
            rfc: "permerror: exists: is a DNS query like a: and mx: (RFC 7208 §4.6.4, §5.7)",
            zone: |z| {
                spf(
                    z,
                    "voidexists.example.com",
                    &[
                        "v=spf1 a:gone1.voidexists.example.com mx:gone2.voidexists.example.com exists:gone3.voidexists.example.com -all",
                    ],
                )
            },
            ours: &[
                "error spf-void-lookup-limit",
                "warning spf-void-lookup",
                "warning spf-void-lookup",
                "warning spf-void-lookup",
            ],
            ours_fields: &[
                ("/spf/status", r#""permerror""#),
                ("/spf/void_lookups", "3"),
            ],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[
                    "gone1.voidexists.example.com",
                    "gone2.voidexists.example.com",
                ],
                fields: &[("/void_dns_lookups", "2")],
            },
            differs: Some(
                "checkdmarc never resolves exists: targets, so it counts 2 void lookups and calls the record valid; receivers query the exists: name (RFC 7208 §5.7), its NXDOMAIN is the third void lookup, and that is a permerror (§4.6.4). mtasts is right.",
            ),
        },
        Case {
            domain: "loop.example.com",
            kind: Kind::Spf,
            what: "include loop",
            rfc: "never ends; the lookup limit makes it a permerror (RFC 7208 §4.6.4, §5.2)",
            zone: |z| {
                spf(
                    z,
                    "loop.example.com",
                    &["v=spf1 include:back.loop.example.com -all"],
                );
                z.add_txt(
                    "back.loop.example.com",
                    &["v=spf1 include:loop.example.com -all"],
                );
            },
            ours: &["error spf-loop"],
            ours_fields: &[("/spf/status", r#""permerror""#)],
            peer: Peer {
                valid: false,
                error: Some(
                    "Include loop: loop.example.com -> back.loop.example.com -> loop.example.com",
                ),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "rloop.example.com",
            kind: Kind::Spf,
            what: "redirect loop",
            rfc: "never ends; the lookup limit makes it a permerror (RFC 7208 §4.6.4, §6.1)",
            zone: |z| {
                spf(
                    z,
                    "rloop.example.com",
                    &["v=spf1 redirect=r.rloop.example.com"],
                );
                z.add_txt(
                    "r.rloop.example.com",
                    &["v=spf1 redirect=rloop.example.com"],
                );
            },
            ours: &["error spf-loop"],
            ours_fields: &[("/spf/status", r#""permerror""#)],
            peer: Peer {
                valid: false,
                error: Some("Redirect loop"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "hole.example.com",
            kind: Kind::Spf,
            what: "include of a name without an SPF record",
            rfc: "permerror (RFC 7208 §5.2: include of \"none\")",
            zone: |z| {
                spf(
                    z,
                    "hole.example.com",
                    &["v=spf1 include:nothing.hole.example.com -all"],
                )
            },
            ours: &["error spf-include-missing"],
            ours_fields: &[("/spf/status", r#""permerror""#)],
            peer: Peer {
                valid: false,
                error: Some(
                    "The include target nothing.hole.example.com has no SPF record, which RFC 7208 § 5.2 defines as a permanent error (permerror)",
                ),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "open.example.com",
            kind: Kind::Spf,
            what: "+all",
            rfc: "every host on the internet passes (RFC 7208 §5.1, §8.3)",
            zone: |z| spf(z, "open.example.com", &["v=spf1 +all"]),
            ours: &["error spf-all-pass"],
            ours_fields: &[],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[("/parsed/all", r#""pass""#)],
            },
            differs: Some(
                "checkdmarc says nothing about +all; it makes every host pass (RFC 7208 §5.1, §8.3), which protects nothing. mtasts is right.",
            ),
        },
        Case {
            domain: "neutral.example.com",
            kind: Kind::Spf,
            what: "?all",
            rfc: "unlisted hosts get neutral, which receivers treat like none (RFC 7208 §8.2)",
            zone: |z| spf(z, "neutral.example.com", &["v=spf1 ip4:192.0.2.1 ?all"]),
            ours: &["warning spf-all-neutral"],
            ours_fields: &[],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[("/parsed/all", r#""neutral""#)],
            },
            differs: Some(
                "checkdmarc says nothing about ?all; neutral MUST be treated like none (RFC 7208 §8.2), so unlisted hosts are not failed. mtasts is right.",
            ),
        },
        Case {
            domain: "ptr.example.com",
            kind: Kind::Spf,
            what: "ptr mechanism",
            rfc: "ptr SHOULD NOT be used (RFC 7208 §5.5)",
            zone: |z| {
                spf(z, "ptr.example.com", &["v=spf1 ptr -all"]);
                z.add_a("ptr.example.com", "192.0.2.1".parse().unwrap());
            },
            ours: &["warning spf-ptr"],
            ours_fields: &[],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &["The ptr mechanism should not be used (RFC 7208 § 5.5)"],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "ptr-noaddr.example.com",
            kind: Kind::Spf,
            what: "ptr mechanism, the domain has no A/AAAA records",
            rfc: "ptr SHOULD NOT be used (RFC 7208 §5.5); its lookups are of the client's address, so no void lookup can be counted without a message (§5.5, §4.6.4)",
            zone: |z| spf(z, "ptr-noaddr.example.com", &["v=spf1 ptr -all"]),
            ours: &["warning spf-ptr"],
            ours_fields: &[("/spf/void_lookups", "0")],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[
                    "A ptr mechanism points to ptr-noaddr.example.com, but that domain/subdomain does not have any A/AAAA records.",
                ],
                fields: &[("/void_dns_lookups", "1")],
            },
            differs: Some(
                "checkdmarc looks up the A records of the ptr target, counts a void lookup and drops its \"should not be used\" warning; ptr resolves the client's address (RFC 7208 §5.5), not the target's A records, and §5.5's SHOULD NOT applies either way. mtasts is right.",
            ),
        },
        Case {
            domain: "noall.example.com",
            kind: Kind::Spf,
            what: "no all and no redirect",
            rfc: "unlisted hosts get neutral (RFC 7208 §4.7)",
            zone: |z| spf(z, "noall.example.com", &["v=spf1 ip4:192.0.2.1"]),
            ours: &["warning spf-all-missing"],
            ours_fields: &[],
            peer: Peer {
                valid: true,
                error: None,
                warnings: &[],
                fields: &[],
            },
            differs: Some(
                "checkdmarc says nothing; without all or redirect the default result is neutral (RFC 7208 §4.7), so unlisted hosts are not failed. mtasts is right.",
            ),
        },
        Case {
            domain: "servfail.example.com",
            kind: Kind::Spf,
            what: "SERVFAIL on the domain's TXT",
            rfc: "temperror (RFC 7208 §4.4)",
            zone: |z| {
                spf(z, "servfail.example.com", &["v=spf1 -all"]);
                z.set_fault("servfail.example.com", Fault::ServFail);
            },
            ours: &["error spf-dns-error"],
            ours_fields: &[("/spf/status", r#""temperror""#)],
            peer: Peer {
                valid: false,
                error: Some("answered SERVFAIL"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
        Case {
            domain: "flakyinc.example.com",
            kind: Kind::Spf,
            what: "SERVFAIL on an include target's TXT",
            rfc: "temperror (RFC 7208 §5.2: include of temperror)",
            zone: |z| {
                spf(
                    z,
                    "flakyinc.example.com",
                    &["v=spf1 include:down.flakyinc.example.com -all"],
                );
                z.add_txt("down.flakyinc.example.com", &["v=spf1 -all"]);
                z.set_fault("down.flakyinc.example.com", Fault::ServFail);
            },
            ours: &["error spf-dns-error"],
            ours_fields: &[("/spf/status", r#""temperror""#)],
            peer: Peer {
                valid: false,
                error: Some("SERVFAIL"),
                warnings: &[],
                fields: &[],
            },
            differs: None,
        },
    ]
}

/// The checker as `mtasts check --only <stage>` builds it, against the testkit server.
fn checker(net: &TestNet, kind: Kind) -> Checker {
    mtasts_net::install_crypto_provider();
    let timeout = Duration::from_secs(2);
    let dns = Arc::new(
        HickoryDns::new(&DnsConfig {
            servers: Some(vec![net.dns_addr()]),
            timeout,
        })
        .expect("DNS client"),
    );
    let roots = net.root_store();
    let fetcher = PolicyFetcher::new(
        FetchConfig {
            timeout,
            roots: roots.clone(),
            port: net.https_port(),
            max_bytes: mtasts_proto::sts::POLICY_MAX_BYTES,
        },
        dns.clone(),
    );
    let prober = SmtpProber::new(ProbeConfig {
        timeout,
        roots,
        port: net.smtp_port(),
        helo_name: "checker.test".into(),
    });
    let options = CheckOptions {
        stages: kind.as_str().parse::<StageSet>().expect("stage"),
        ..CheckOptions::default()
    };
    Checker::new(dns, Arc::new(fetcher), Arc::new(prober), options)
}

/// The venv's Python, or `None` after skipping.
fn peer_python() -> Option<PathBuf> {
    let venv = PathBuf::from(
        std::env::var("MTASTS_CHECKDMARC_PEER").unwrap_or_else(|_| "/opt/mtasts-checkdmarc".into()),
    );
    let python = venv.join("bin/python3");
    let installed = venv
        .join("lib")
        .read_dir()
        .into_iter()
        .flatten()
        .flatten()
        .any(|dir| dir.path().join("site-packages/checkdmarc").is_dir());
    if !python.is_file() || !installed {
        services::skip(
            Service::Checkdmarc,
            &format_args!(
                "no checkdmarc in {venv} (python3 -m venv {venv} && {venv}/bin/pip install checkdmarc=={PEER_VERSION})",
                venv = venv.display()
            ),
        );
        return None;
    }
    Some(python)
}

/// Runs the driver on every case at once; returns its JSON output.
async fn run_peer(python: &Path, net: &TestNet, cases: &[Case]) -> Value {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/checkdmarc_driver.py");
    let dns = net.dns_addr();
    let mut command = tokio::process::Command::new(python);
    // -W ignore: dnspython's cryptography deprecation warnings are noise on stderr.
    command
        .args(["-W", "ignore"])
        .arg(&driver)
        .arg(dns.ip().to_string())
        .arg(dns.port().to_string())
        .arg("guard")
        .args(
            cases
                .iter()
                .map(|c| format!("{}:{}", c.kind.as_str(), c.domain)),
        )
        .stdin(Stdio::null())
        // The child dies with the future if the limit passes: only our own child.
        .kill_on_drop(true);
    let out = tokio::time::timeout(PEER_LIMIT, command.output())
        .await
        .unwrap_or_else(|_| panic!("checkdmarc did not finish within {PEER_LIMIT:?}"))
        .expect("run the checkdmarc driver");
    assert!(
        out.status.success(),
        "the checkdmarc driver failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the driver printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"))
}

/// Our findings of the case's stage, `"severity code"`.
fn our_findings(report: &Value, kind: Kind) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["stage"] == kind.as_str())
        .map(|f| {
            format!(
                "{} {}",
                f["severity"].as_str().unwrap(),
                f["code"].as_str().unwrap()
            )
        })
        .collect()
}

/// Every way `case` departs from what each side says, as readable lines.
fn mismatches(case: &Case, ours: &Value, peer: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let found = our_findings(ours, case.kind);
    if found != case.ours {
        out.push(format!(
            "mtasts findings: {found:?}, expected {:?}",
            case.ours
        ));
    }
    for (pointer, want) in case.ours_fields {
        let got = ours.pointer(pointer).cloned().unwrap_or(Value::Null);
        if got != json(want) {
            out.push(format!("mtasts {pointer}: {got}, expected {want}"));
        }
    }
    let p = &case.peer;
    if peer["valid"] != p.valid {
        out.push(format!(
            "checkdmarc valid: {}, expected {}",
            peer["valid"], p.valid
        ));
    }
    match (peer["error"].as_str(), p.error) {
        (None, None) => {}
        (Some(got), Some(want)) if got.contains(want) => {}
        (got, want) => out.push(format!(
            "checkdmarc error: {got:?}, expected one containing {want:?}"
        )),
    }
    let warnings: Vec<&str> = peer["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if warnings.len() != p.warnings.len()
        || warnings
            .iter()
            .zip(p.warnings)
            .any(|(got, want)| !got.contains(want))
    {
        out.push(format!(
            "checkdmarc warnings: {warnings:?}, expected ones containing {:?}",
            p.warnings
        ));
    }
    for (pointer, want) in p.fields {
        let got = peer.pointer(pointer).cloned().unwrap_or(Value::Null);
        if got != json(want) {
            out.push(format!("checkdmarc {pointer}: {got}, expected {want}"));
        }
    }
    out
}

#[tokio::test]
async fn mtasts_and_checkdmarc_on_the_rfc_corner_cases() {
    let Some(python) = peer_python() else {
        return;
    };
    let net = TestNet::start().await;
    let cases = cases();
    common(net.zone());
    for case in &cases {
        (case.zone)(net.zone());
    }
    let peer = run_peer(&python, &net, &cases).await;
    assert_eq!(
        peer["version"], PEER_VERSION,
        "the expectations are checkdmarc {PEER_VERSION}'s; install that release"
    );
    // The driver's guards work (its own two probes were refused) and checkdmarc tried
    // nothing else: every query went to the testkit server.
    for probe in ["sendto", "getaddrinfo"] {
        let got = peer["results"]["guard"][probe].as_str().unwrap_or_default();
        assert!(
            got.starts_with("refused"),
            "the driver's {probe} guard: {got}"
        );
    }
    assert_eq!(
        peer["blocked"],
        serde_json::json!(["sendto ('0.0.0.0', 9)", "getaddrinfo 'localhost'"]),
        "checkdmarc tried to reach something other than the testkit DNS server"
    );

    let dmarc = checker(&net, Kind::Dmarc);
    let spf = checker(&net, Kind::Spf);
    let mut failures = Vec::new();
    for case in &cases {
        let report = match case.kind {
            Kind::Dmarc => dmarc.check(case.domain).await,
            Kind::Spf => spf.check(case.domain).await,
        };
        let ours = serde_json::to_value(&report).unwrap();
        let theirs = &peer["results"][format!("{}:{}", case.kind.as_str(), case.domain)];
        let wrong = mismatches(case, &ours, theirs);
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({}):\n  {}\n  checkdmarc said: {theirs}",
                case.domain,
                case.what,
                wrong.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases changed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// docs/check-dmarc.md has a row for every case, naming the domain and each of our codes, and
/// marks the rows where the two differ.
#[test]
fn the_documented_table_lists_every_case() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/check-dmarc.md"),
    )
    .expect("docs/check-dmarc.md");
    for case in cases() {
        assert!(
            case.rfc.contains("RFC "),
            "{}: name the RFC section",
            case.domain
        );
        if let Some(why) = case.differs {
            assert!(
                why.contains("RFC "),
                "{}: name the RFC section",
                case.domain
            );
        }
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", case.domain)))
            .unwrap_or_else(|| panic!("no row for `{}` in docs/check-dmarc.md", case.domain));
        for finding in case.ours {
            let code = finding.split_once(' ').unwrap().1;
            assert!(
                row.contains(&format!("`{code}`")),
                "the row of {} lacks `{code}`",
                case.domain
            );
        }
        assert_eq!(
            row.contains("**differs**"),
            case.differs.is_some(),
            "the row of {} must say **differs** exactly when the case does",
            case.domain
        );
    }
}
