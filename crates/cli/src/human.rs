//! Human output of `mtasts check`: a summary, then findings grouped by stage, each with its
//! fix, rule and the result a sending server would log.

use std::io::Write;

use mtasts_check::report::{DomainReport, PolicyStatus, TlsRptStatus};
use mtasts_check::report_dmarc::{DmarcReport, DmarcStatus};
use mtasts_check::{Stage, StageSet, Verdict};
use mtasts_proto::Severity;

mod spf_dkim;

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    fn severity(&self, s: Severity) -> String {
        match s {
            Severity::Error => self.paint("1;31", "✗ error  "),
            Severity::Warning => self.paint("1;33", "! warning"),
            Severity::Info => self.paint("36", "i info   "),
        }
    }
    fn verdict(&self, v: Verdict) -> String {
        match v {
            Verdict::Pass => self.paint("1;32", "PASS"),
            Verdict::Warn => self.paint("1;33", "WARN"),
            Verdict::Fail => self.paint("1;31", "FAIL"),
        }
    }
    fn ok(&self, good: bool, text: &str) -> String {
        self.paint(if good { "32" } else { "31" }, text)
    }
}

/// Prints one report.
pub(crate) fn print(
    out: &mut impl Write,
    r: &DomainReport,
    colour: bool,
    stages: StageSet,
) -> std::io::Result<()> {
    let st = Style { on: colour };
    writeln!(out, "{} {}", st.bold(&r.domain), st.verdict(r.verdict))?;
    // The sections of stages left out by --only would read as "nothing found": not shown.
    if stages.mta_sts {
        summary(out, r, &st)?;
    }
    if stages.tlsrpt {
        tlsrpt_line(out, r, &st)?;
    }
    if let Some(dmarc) = &r.dmarc {
        dmarc_summary(out, dmarc, &st)?;
    }
    spf_dkim::summary(out, r, &st)?;
    let mut stages: Vec<Stage> = r.findings.iter().map(|f| f.stage).collect();
    stages.sort();
    stages.dedup();
    for stage in stages {
        writeln!(out, "  {}", st.bold(stage.title()))?;
        for f in r.findings.iter().filter(|f| f.stage == stage) {
            writeln!(
                out,
                "    {} {} {}",
                st.severity(f.severity),
                st.bold(&f.code),
                f.message
            )?;
            writeln!(out, "              fix: {}", f.fix)?;
            let mut tail = vec![f.rule.clone()];
            if let Some(rt) = &f.result_type {
                tail.push(format!("a sending server reports: {rt}"));
            }
            writeln!(out, "              {}", st.dim(&tail.join(" · ")))?;
        }
    }
    if r.findings.is_empty() {
        writeln!(out, "  {}", st.ok(true, "No problems found."))?;
    }
    writeln!(out)
}

fn summary(out: &mut impl Write, r: &DomainReport, st: &Style) -> std::io::Result<()> {
    let p = &r.policy;
    let mut line = format!(
        "policy {}",
        st.ok(p.status == PolicyStatus::Valid, p.status.as_str())
    );
    if let Some(mode) = &p.mode {
        line.push_str(&format!(", mode {mode}"));
    }
    if let Some(max_age) = p.max_age {
        line.push_str(&format!(", max_age {max_age}"));
    }
    if let Some(record) = &p.record {
        line.push_str(&format!(", id {}", record.id));
    }
    if !p.mx.is_empty() {
        line.push_str(&format!(", mx {}", p.mx.join(" ")));
    }
    let sender = match &p.result_type {
        Some(rt) => format!("{rt}; {}", p.sender_log),
        None => p.sender_log.clone(),
    };
    writeln!(out, "  {line}")?;
    writeln!(
        out,
        "  {}",
        st.dim(&format!("a sending server logs: {sender}"))
    )?;
    for mx in &r.mx_hosts {
        let covered = match mx.covered {
            Some(true) => st.ok(true, "covered"),
            Some(false) => st.ok(false, "NOT covered"),
            None => "no policy".to_owned(),
        };
        let pref = mx.preference.map(|p| format!(" ({p})")).unwrap_or_default();
        writeln!(out, "  MX {}{pref}: {covered}", mx.name)?;
        if mx.addresses.is_empty() {
            writeln!(out, "      {}", st.ok(false, "no addresses"))?;
        }
        for a in &mx.addresses {
            let mut parts = Vec::new();
            match a.starttls {
                Some(true) => parts.push(st.ok(true, "STARTTLS")),
                Some(false) => parts.push(st.ok(false, "no STARTTLS")),
                None => {}
            }
            if let Some(v) = &a.tls_version {
                let modern = v == "TLSv1.2" || v == "TLSv1.3";
                parts.push(st.ok(modern, v));
            }
            if let Some(c) = &a.certificate {
                let until = c
                    .not_after
                    .as_deref()
                    .map(|t| format!(" until {t}"))
                    .unwrap_or_default();
                parts.push(if c.valid {
                    st.ok(true, &format!("certificate valid{until}"))
                } else {
                    st.ok(
                        false,
                        &format!("certificate invalid: {}", c.error.as_deref().unwrap_or("?")),
                    )
                });
            }
            if let Some(e) = &a.error
                && a.tls_version.is_none()
            {
                parts.push(st.ok(false, e));
            }
            writeln!(out, "      {} {}", a.ip, parts.join(", "))?;
        }
    }
    Ok(())
}

fn tlsrpt_line(out: &mut impl Write, r: &DomainReport, st: &Style) -> std::io::Result<()> {
    let rpt = match r.tlsrpt.status {
        TlsRptStatus::Valid => st.ok(true, &format!("valid, rua {}", r.tlsrpt.rua.join(" "))),
        TlsRptStatus::None => st.ok(false, "none"),
        TlsRptStatus::Invalid => st.ok(false, "invalid"),
    };
    writeln!(out, "  TLS-RPT {rpt}")?;
    Ok(())
}

/// `DMARC valid, p=reject at _dmarc.example.com`, and the RFC 9989 reading when it differs.
fn dmarc_summary(out: &mut impl Write, d: &DmarcReport, st: &Style) -> std::io::Result<()> {
    let status = st.ok(d.status == DmarcStatus::Valid, d.status.as_str());
    let mut line = format!("DMARC {status}");
    if let (Some(policy), Some(at)) = (&d.policy, &d.rfc7489.record_domain) {
        line.push_str(&format!(", p={policy} at _dmarc.{at}"));
    }
    writeln!(out, "  {line}")?;
    if d.rfc9989.record_domain != d.rfc7489.record_domain || d.rfc9989.policy != d.policy {
        let bis = match (&d.rfc9989.policy, &d.rfc9989.record_domain) {
            (Some(p), Some(at)) => format!("p={p} at _dmarc.{at}"),
            _ => format!("no policy ({})", d.rfc9989.outcome),
        };
        writeln!(
            out,
            "  {}",
            st.dim(&format!("RFC 9989 receivers (DNS tree walk): {bis}"))
        )?;
    }
    Ok(())
}
