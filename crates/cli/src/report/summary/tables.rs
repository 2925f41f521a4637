//! The summary as tables for a terminal: per domain the verdict, the days, the failures
//! (TLS) or the sources (DMARC), then the unreadable inputs.

use super::*;

pub(super) fn level_cell(level: Level, paint: Paint) -> String {
    let code = match level {
        Level::Ready | Level::Enforced => "1;32",
        Level::Wait | Level::Review => "1;33",
        Level::Fix => "1;31",
        _ => "2",
    };
    paint.paint(code, &level.as_str().to_ascii_uppercase())
}

fn rate_cell(part: u64, whole: u64) -> Cell {
    let text = percent(part, whole).unwrap_or_else(|| "-".to_owned());
    let code = if whole == 0 {
        ""
    } else if part >= whole {
        GOOD
    } else if u128::from(part) * 100 >= u128::from(whole) * 95 {
        WARN
    } else {
        BAD
    };
    Cell::from(text).coloured(code)
}

fn count_cell(n: u64, bad: bool) -> Cell {
    let cell = Cell::from(thousands(n));
    if bad && n > 0 {
        cell.coloured(BAD)
    } else {
        cell
    }
}

impl Summary {
    pub(super) fn print(&self, out: &mut impl Write, paint: Paint) -> std::io::Result<()> {
        if self.tls.is_empty() && self.dmarc.is_empty() {
            writeln!(
                out,
                "No reports match{}. Store some with `mtasts report import FILE…`.",
                describe_filter(&self.filter)
            )?;
        }
        for d in &self.tls {
            self.print_tls(out, d, paint)?;
        }
        for d in &self.dmarc {
            self.print_dmarc(out, d, paint)?;
        }
        let shown: Vec<&ErrorRow> = self.errors.iter().take(SHOWN_ERRORS as usize).collect();
        if !shown.is_empty() {
            writeln!(out, "{}", paint.bold("Unreadable inputs (newest first)"))?;
            let mut t = Table::new(&[
                ("Received", Align::Left),
                ("Code", Align::Left),
                ("Source", Align::Left),
                ("Error", Align::Left),
            ]);
            for e in shown {
                t.row(vec![
                    rfc3339(e.received_at).into(),
                    Cell::from(e.code.as_str()).coloured(BAD),
                    e.source.as_str().into(),
                    e.message.as_str().into(),
                ]);
            }
            t.write(out, "  ", paint)?;
        }
        Ok(())
    }

    fn print_tls(&self, out: &mut impl Write, d: &TlsDomain, paint: Paint) -> std::io::Result<()> {
        let a = &d.assessment;
        let policy = d
            .policy
            .as_ref()
            .map(|p| format!(" (policy {})", p.policy))
            .unwrap_or_default();
        print_heading(out, &a.domain, "TLS", &policy, &a.verdict, paint)?;
        let days = per_day(&d.days);
        if !days.is_empty() {
            let mut t = Table::new(&[
                ("Day (UTC)", Align::Left),
                ("Reports", Align::Right),
                ("Organizations", Align::Right),
                ("Successful", Align::Right),
                ("Failed", Align::Right),
                ("Success rate", Align::Right),
            ]);
            let hidden = days.len().saturating_sub(SHOWN_DAYS);
            for (day, total) in days.iter().skip(hidden) {
                t.row(vec![
                    date::iso_day(*day).into(),
                    thousands(total.reports).into(),
                    thousands(total.organizations.len() as u64).into(),
                    thousands(total.success).into(),
                    count_cell(total.failure, true),
                    rate_cell(total.success, total.success.saturating_add(total.failure)),
                ]);
            }
            writeln!(out)?;
            t.write(out, "  ", paint)?;
            if hidden > 0 {
                writeln!(
                    out,
                    "  {}",
                    paint.dim(&format!(
                        "({hidden} earlier days not shown; --since or --json)"
                    ))
                )?;
            }
        }
        if !d.failures.is_empty() {
            let mut t = Table::new(&[
                ("Result", Align::Left),
                ("Receiving MX", Align::Left),
                ("Organization", Align::Left),
                ("Sessions", Align::Right),
                ("First", Align::Left),
                ("Last", Align::Left),
            ]);
            let mut failures: Vec<&FailureGroup> = d.failures.iter().collect();
            failures.sort_by(|x, y| {
                y.last_day
                    .cmp(&x.last_day)
                    .then(y.count.cmp(&x.count))
                    .then_with(|| x.result.cmp(&y.result))
            });
            for f in failures {
                t.row(vec![
                    Cell::from(f.result.as_str()).coloured(BAD),
                    f.receiving_mx.as_deref().unwrap_or("-").into(),
                    f.organization.as_str().into(),
                    thousands(f.count).into(),
                    date::iso_day(f.first_day).into(),
                    date::iso_day(f.last_day).into(),
                ]);
            }
            writeln!(out)?;
            t.write(out, "  ", paint)?;
        }
        writeln!(out)
    }

    fn print_dmarc(
        &self,
        out: &mut impl Write,
        d: &DmarcDomain,
        paint: Paint,
    ) -> std::io::Result<()> {
        let a = &d.assessment;
        let policy = d
            .policy
            .as_ref()
            .map(|p| match p.pct {
                Some(pct) if pct != 100 => format!(" ({}, pct={pct})", p.policy),
                _ => format!(" ({})", p.policy),
            })
            .unwrap_or_default();
        print_heading(out, &a.domain, "DMARC", &policy, &a.verdict, paint)?;
        let days = per_day(&d.days);
        if !days.is_empty() {
            let mut t = Table::new(&[
                ("Day (UTC)", Align::Left),
                ("Reports", Align::Right),
                ("Organizations", Align::Right),
                ("Messages", Align::Right),
                ("DMARC pass", Align::Right),
                ("Pass rate", Align::Right),
            ]);
            let hidden = days.len().saturating_sub(SHOWN_DAYS);
            for (day, total) in days.iter().skip(hidden) {
                t.row(vec![
                    date::iso_day(*day).into(),
                    thousands(total.reports).into(),
                    thousands(total.organizations.len() as u64).into(),
                    thousands(total.messages).into(),
                    thousands(total.dmarc_pass).into(),
                    rate_cell(total.dmarc_pass, total.messages),
                ]);
            }
            writeln!(out)?;
            t.write(out, "  ", paint)?;
            if hidden > 0 {
                writeln!(
                    out,
                    "  {}",
                    paint.dim(&format!(
                        "({hidden} earlier days not shown; --since or --json)"
                    ))
                )?;
            }
        }
        if !d.sources.is_empty() {
            let mut t = Table::new(&[
                ("Source IP", Align::Left),
                ("Header from", Align::Left),
                ("Messages", Align::Right),
                ("DMARC pass", Align::Right),
                ("DKIM aligned", Align::Right),
                ("SPF aligned", Align::Right),
                ("Pass rate", Align::Right),
                ("Quarantined", Align::Right),
                ("Rejected", Align::Right),
            ]);
            for s in d.sources.iter().take(SHOWN_SOURCES) {
                t.row(vec![
                    s.source_ip.as_str().into(),
                    s.header_from.as_str().into(),
                    thousands(s.messages).into(),
                    thousands(s.dmarc_pass).into(),
                    thousands(s.dkim_pass).into(),
                    thousands(s.spf_pass).into(),
                    rate_cell(s.dmarc_pass, s.messages),
                    thousands(s.quarantine).into(),
                    thousands(s.reject).into(),
                ]);
            }
            writeln!(out)?;
            t.write(out, "  ", paint)?;
            if d.sources.len() > SHOWN_SOURCES {
                writeln!(
                    out,
                    "  {}",
                    paint.dim(&format!(
                        "({} more sources; --json lists them all)",
                        d.sources.len() - SHOWN_SOURCES
                    ))
                )?;
            }
        }
        if a.messages > 0 {
            let (q, r) = dispositions(&d.days);
            writeln!(out)?;
            writeln!(
                out,
                "  p=quarantine would have sent {} to spam and p=reject would have refused {}; receivers quarantined {} and rejected {}.",
                messages(a.would_quarantine),
                messages(a.would_reject),
                thousands(q),
                thousands(r)
            )?;
        }
        writeln!(out)
    }
}

/// A domain's heading: its name, the kind of reports and the policy they name, then the
/// verdict with its details.
fn print_heading(
    out: &mut impl Write,
    domain: &str,
    kind: &str,
    policy: &str,
    verdict: &Verdict,
    paint: Paint,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{} — {kind} reports{policy}",
        paint.bold(shown_domain(domain))
    )?;
    writeln!(
        out,
        "  {} {}",
        level_cell(verdict.level, paint),
        verdict.headline
    )?;
    for line in &verdict.details {
        writeln!(out, "    {}", paint.dim(&format!("· {line}")))?;
    }
    Ok(())
}

/// The stores keep `""` for a report that names no domain.
fn shown_domain(domain: &str) -> &str {
    if domain.is_empty() {
        "(no policy domain)"
    } else {
        domain
    }
}

fn dispositions(days: &[DailyRow]) -> (u64, u64) {
    (
        total(days.iter().map(|d| d.quarantine)),
        total(days.iter().map(|d| d.reject)),
    )
}

fn messages(n: u64) -> String {
    format!(
        "{} {}",
        thousands(n),
        if n == 1 { "message" } else { "messages" }
    )
}

pub(super) fn describe_filter(filter: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &filter.domain {
        parts.push(format!("domain {d}"));
    }
    if let Some(k) = filter.kind {
        parts.push(format!("kind {k}"));
    }
    if let Some(s) = filter.since {
        parts.push(format!("since {}", date::iso_day(s)));
    }
    if let Some(u) = filter.until {
        parts.push(format!("until {}", date::iso_day(u - date::DAY)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}
