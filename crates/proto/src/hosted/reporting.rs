//! The service's own report addresses: where senders deliver the TLS-RPT (RFC 8460) and DMARC
//! aggregate (RFC 7489 §7) reports of every hosted domain, and the records that make those
//! addresses work.
//!
//! Everything lives under one name inside the service's zone, the **report host**
//! `reports.<zone>`:
//!
//! | what                                   | value                                            |
//! |----------------------------------------|--------------------------------------------------|
//! | HTTPS intake (RFC 8460 §5.3)           | `https://reports.<zone>/tlsrpt`                  |
//! | mail domain, its MX target             | `reports.<zone>` (`MX 10 reports.<zone>`)        |
//! | TLS-RPT mailbox                        | `tlsrpt@reports.<zone>`                          |
//! | DMARC mailbox                          | `dmarc@reports.<zone>`                           |
//! | DMARC authorization (RFC 7489 §7.1)    | `<domain>._report._dmarc.reports.<zone>` TXT `v=DMARC1` |
//! | its own MTA-STS policy host            | `mta-sts.reports.<zone>`                         |
//! | its own `_mta-sts` / `_smtp._tls`      | `_mta-sts.reports.<zone>`, `_smtp._tls.reports.<zone>` |
//!
//! The report host passes its own checks: it publishes an MTA-STS policy whose only `mx` is
//! itself, and a TLS-RPT record naming its own addresses.

use crate::hosted::delegation::Delegation;
use crate::sts::mx_pattern::MxPattern;
use crate::sts::policy::{MaxAge, Mode, Policy};

/// The label of the report host inside the zone.
pub const REPORT_HOST_LABEL: &str = "reports";
/// The local part of the TLS-RPT mailbox.
pub const TLSRPT_MAILBOX: &str = "tlsrpt";
/// The local part of the DMARC mailbox.
pub const DMARC_MAILBOX: &str = "dmarc";
/// The path of the HTTPS intake on the report host.
pub const TLSRPT_PATH: &str = "/tlsrpt";
/// The TXT value of a DMARC external-destination authorization (RFC 7489 §7.1).
pub const DMARC_AUTHORIZATION: &str = "v=DMARC1";
/// The `max_age` of the report host's own policy: one day, so that a mode change in the
/// configuration reaches senders quickly.
pub const OWN_POLICY_MAX_AGE: u32 = 86_400;

/// Which report mailbox an address names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mailbox {
    /// `tlsrpt@reports.<zone>`.
    TlsRpt,
    /// `dmarc@reports.<zone>`.
    Dmarc,
}

impl Mailbox {
    /// `tlsrpt` or `dmarc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mailbox::TlsRpt => TLSRPT_MAILBOX,
            Mailbox::Dmarc => DMARC_MAILBOX,
        }
    }
}

/// The report addresses of one service zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportAddresses {
    host: String,
}

impl ReportAddresses {
    /// The addresses under `reports.<zone>`.
    pub fn new(delegation: &Delegation) -> ReportAddresses {
        ReportAddresses {
            host: format!("{REPORT_HOST_LABEL}.{}", delegation.zone()),
        }
    }

    /// `reports.<zone>`: the HTTPS intake's host, the mail domain and its MX target.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `https://reports.<zone>/tlsrpt`.
    pub fn https_url(&self) -> String {
        format!("https://{}{TLSRPT_PATH}", self.host)
    }

    /// `tlsrpt@reports.<zone>` or `dmarc@reports.<zone>`.
    pub fn mailbox(&self, mailbox: Mailbox) -> String {
        format!("{}@{}", mailbox.as_str(), self.host)
    }

    /// Which report mailbox `address` (an SMTP `RCPT TO` path without the angle brackets)
    /// names: the local part compared case-insensitively (senders vary; these mailboxes are
    /// ours to define), the domain case-insensitively with one trailing dot allowed.
    pub fn mailbox_of(&self, address: &str) -> Option<Mailbox> {
        let (local, domain) = address.rsplit_once('@')?;
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if !domain.eq_ignore_ascii_case(&self.host) {
            return None;
        }
        [Mailbox::TlsRpt, Mailbox::Dmarc]
            .into_iter()
            .find(|m| local.eq_ignore_ascii_case(m.as_str()))
    }

    /// The service's own `rua` URIs: the mailbox (when mail intake runs) and the HTTPS URL,
    /// mail first (Microsoft sends only to the first `rua`, and reads mail more reliably).
    pub fn service_rua(&self, mail: bool) -> String {
        if mail {
            format!(
                "mailto:{},{}",
                self.mailbox(Mailbox::TlsRpt),
                self.https_url()
            )
        } else {
            self.https_url()
        }
    }

    /// The `rua=` value of a hosted domain's `_smtp._tls` record: the service's own URIs when
    /// `to_service`, then the owner's (`owner`, already validated) without repeating any;
    /// `None` when neither applies (no record is published).
    pub fn tlsrpt_rua(&self, owner: Option<&str>, to_service: bool, mail: bool) -> Option<String> {
        let mut uris: Vec<String> = Vec::new();
        if to_service {
            uris.extend(self.service_rua(mail).split(',').map(str::to_owned));
        }
        for uri in owner.into_iter().flat_map(|o| o.split(',')) {
            let uri = uri.trim();
            if !uri.is_empty() && !uris.iter().any(|u| u.eq_ignore_ascii_case(uri)) {
                uris.push(uri.to_owned());
            }
        }
        (!uris.is_empty()).then(|| uris.join(","))
    }

    /// The `rua=` URI an owner adds to their `_dmarc` record: `mailto:dmarc@reports.<zone>`.
    pub fn dmarc_rua(&self) -> String {
        format!("mailto:{}", self.mailbox(Mailbox::Dmarc))
    }

    /// `<domain>._report._dmarc.reports.<zone>`: where the service authorizes itself to
    /// receive `domain`'s DMARC reports (RFC 7489 §7.1), `domain` normalised.
    pub fn dmarc_authorization_name(&self, domain: &str) -> String {
        format!("{domain}._report._dmarc.{}", self.host)
    }

    /// The policy domain of a `<domain>._report._dmarc.reports.<zone>` name (absolute,
    /// without the trailing dot, any case), lowercased; `None` for any other name.
    pub fn dmarc_authorized_domain(&self, name: &str) -> Option<String> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let suffix = format!("._report._dmarc.{}", self.host);
        let domain = name.strip_suffix(&suffix)?;
        (!domain.is_empty()).then(|| domain.to_owned())
    }

    /// `mta-sts.reports.<zone>`: the host of the report host's own policy.
    pub fn own_policy_host(&self) -> String {
        format!("mta-sts.{}", self.host)
    }

    /// The report host's own MTA-STS policy: `mode`, `mx: reports.<zone>`, one day.
    pub fn own_policy(&self, mode: Mode) -> Policy {
        let mx: MxPattern = self
            .host
            .parse()
            .expect("the report host is a normalised domain, a valid mx pattern");
        Policy {
            mode,
            max_age: MaxAge::new(OWN_POLICY_MAX_AGE).expect("one day is below the cap"),
            mx: vec![mx],
            extensions: Vec::new(),
        }
    }

    /// The `id` of the report host's `_mta-sts` record for `mode`: derived from the policy's
    /// text, so it changes exactly when the policy does (a stable FNV-1a hash, not Rust's
    /// hasher, which may change between releases).
    pub fn own_policy_id(&self, mode: Mode) -> String {
        let text = self.own_policy(mode).to_text("\r\n");
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{hash:016x}")
    }

    /// `_mta-sts.reports.<zone>`: where the report host's own `v=STSv1` record lives.
    pub fn own_sts_record_name(&self) -> String {
        format!("_mta-sts.{}", self.host)
    }

    /// `_smtp._tls.reports.<zone>`: where the report host's own `v=TLSRPTv1` record lives.
    pub fn own_tlsrpt_record_name(&self) -> String {
        format!("_smtp._tls.{}", self.host)
    }

    /// The report host's own `_smtp._tls` value: `v=TLSRPTv1; rua=` its own URIs.
    pub fn own_tlsrpt_record(&self, mail: bool) -> String {
        crate::tlsrpt::record::record_text(&self.service_rua(mail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sts::record::StsRecord;
    use crate::tlsrpt::record::TlsRptRecord;

    fn addresses() -> ReportAddresses {
        ReportAddresses::new(&Delegation::new("MTA-STS.Provider.Example.").unwrap())
    }

    #[test]
    fn names_live_under_the_report_host() {
        let a = addresses();
        assert_eq!(a.host(), "reports.mta-sts.provider.example");
        assert_eq!(
            a.https_url(),
            "https://reports.mta-sts.provider.example/tlsrpt"
        );
        assert_eq!(
            a.mailbox(Mailbox::TlsRpt),
            "tlsrpt@reports.mta-sts.provider.example"
        );
        assert_eq!(
            a.dmarc_rua(),
            "mailto:dmarc@reports.mta-sts.provider.example"
        );
        assert_eq!(
            a.dmarc_authorization_name("example.com"),
            "example.com._report._dmarc.reports.mta-sts.provider.example"
        );
        assert_eq!(
            a.own_policy_host(),
            "mta-sts.reports.mta-sts.provider.example"
        );
        assert_eq!(
            a.own_sts_record_name(),
            "_mta-sts.reports.mta-sts.provider.example"
        );
        assert_eq!(
            a.own_tlsrpt_record_name(),
            "_smtp._tls.reports.mta-sts.provider.example"
        );
    }

    #[test]
    fn mailboxes_are_recognised_whatever_the_case() {
        let a = addresses();
        assert_eq!(
            a.mailbox_of("TLSRPT@reports.mta-sts.provider.example"),
            Some(Mailbox::TlsRpt)
        );
        assert_eq!(
            a.mailbox_of("dmarc@REPORTS.mta-sts.provider.example."),
            Some(Mailbox::Dmarc)
        );
        for other in [
            "postmaster@reports.mta-sts.provider.example",
            "tlsrpt@mta-sts.provider.example",
            "tlsrpt@reports.mta-sts.provider.example.evil",
            "tlsrpt",
            "",
            "@reports.mta-sts.provider.example",
        ] {
            assert_eq!(a.mailbox_of(other), None, "{other}");
        }
    }

    #[test]
    fn tlsrpt_rua_combines_service_and_owner() {
        let a = addresses();
        let service = "mailto:tlsrpt@reports.mta-sts.provider.example,https://reports.mta-sts.provider.example/tlsrpt";
        assert_eq!(a.tlsrpt_rua(None, true, true).as_deref(), Some(service));
        assert_eq!(
            a.tlsrpt_rua(Some("mailto:me@example.com"), true, true)
                .as_deref(),
            Some(format!("{service},mailto:me@example.com").as_str())
        );
        assert_eq!(
            a.tlsrpt_rua(Some("mailto:me@example.com"), false, true)
                .as_deref(),
            Some("mailto:me@example.com")
        );
        assert_eq!(a.tlsrpt_rua(None, false, true), None);
        assert_eq!(
            a.tlsrpt_rua(None, true, false).as_deref(),
            Some("https://reports.mta-sts.provider.example/tlsrpt")
        );
        // The owner listing the service's own address does not repeat it.
        assert_eq!(
            a.tlsrpt_rua(
                Some("MAILTO:tlsrpt@reports.mta-sts.provider.example"),
                true,
                true
            )
            .as_deref(),
            Some(service)
        );
        // Every combination is a record the RFC 8460 parser accepts.
        for owner in [None, Some("mailto:me@example.com,https://r.example.com/x")] {
            for to_service in [true, false] {
                for mail in [true, false] {
                    if let Some(rua) = a.tlsrpt_rua(owner, to_service, mail) {
                        let text = crate::tlsrpt::record::record_text(&rua);
                        TlsRptRecord::parse(&text).unwrap();
                    }
                }
            }
        }
    }

    #[test]
    fn dmarc_authorized_domain_reads_back_the_name() {
        let a = addresses();
        let name = a.dmarc_authorization_name("example.com");
        assert_eq!(
            a.dmarc_authorized_domain(&name).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            a.dmarc_authorized_domain(&format!("{}.", name.to_uppercase()))
                .as_deref(),
            Some("example.com")
        );
        assert_eq!(
            a.dmarc_authorized_domain("_report._dmarc.reports.mta-sts.provider.example"),
            None
        );
        assert_eq!(
            a.dmarc_authorized_domain("example.com._report._dmarc.other.example"),
            None
        );
    }

    #[test]
    fn own_policy_covers_the_report_host_and_its_id_follows_the_mode() {
        let a = addresses();
        let policy = a.own_policy(Mode::Testing);
        let text = policy.to_text("\r\n");
        assert_eq!(Policy::parse(&text).unwrap(), policy);
        assert!(
            text.contains("mx: reports.mta-sts.provider.example\r\n"),
            "{text}"
        );
        assert!(text.contains("max_age: 86400"), "{text}");
        let testing = a.own_policy_id(Mode::Testing);
        let enforce = a.own_policy_id(Mode::Enforce);
        assert_ne!(testing, enforce);
        assert_eq!(testing, a.own_policy_id(Mode::Testing));
        let record = StsRecord::parse(&format!("v=STSv1; id={testing}")).unwrap();
        assert_eq!(record.id.as_str(), testing);
        TlsRptRecord::parse(&a.own_tlsrpt_record(true)).unwrap();
    }
}
