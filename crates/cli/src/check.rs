//! `mtasts check`: argument handling, bulk runs and output formats.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mtasts_check::{CheckOptions, Checker, DomainReport, StageSet, Verdict};
use mtasts_net::fetch::{FetchConfig, PolicyFetcher};
use mtasts_net::smtp::{ProbeConfig, SmtpProber};
use mtasts_proto::sts::POLICY_MAX_BYTES;

use crate::human;
use crate::netargs::NetArgs;

/// Arguments of `mtasts check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Domains to check.
    #[arg(value_name = "DOMAIN", required_unless_present = "file")]
    domains: Vec<String>,
    /// Read domains from this file, one per line (`-` for standard input; blank lines and
    /// `#` comments are skipped).
    #[arg(long, short = 'f', value_name = "PATH")]
    file: Option<PathBuf>,
    /// Print JSON: one object for one domain, an array for several.
    #[arg(long, conflicts_with_all = ["jsonl", "csv"])]
    json: bool,
    /// Print one JSON object per line, as each domain completes in input order (bulk runs).
    #[arg(long, conflicts_with = "csv")]
    jsonl: bool,
    /// Print CSV, one row per domain (bulk runs).
    #[arg(long)]
    csv: bool,
    /// Exit 1 on warnings too, not only on failures.
    #[arg(long)]
    strict: bool,
    /// How many domains to check at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// Colour: auto (when printing to a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
    /// The name to send in SMTP EHLO (default: this machine's host name).
    #[arg(long, value_name = "NAME")]
    helo: Option<String>,
    /// Run only these stages: a comma-separated list of mta-sts, tlsrpt, dmarc, spf, dkim.
    #[arg(
        long,
        value_name = "STAGES",
        default_value = "mta-sts,tlsrpt,dmarc,spf,dkim"
    )]
    only: StageSet,
    /// Check the DKIM key record of this selector (`<NAME>._domainkey.<domain>`); repeatable.
    #[arg(long = "dkim-selector", value_name = "NAME", value_parser = parse_selector)]
    dkim_selector: Vec<String>,
    #[command(flatten)]
    net: NetArgs,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Human,
    Json,
    Jsonl,
    Csv,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        domains,
        file,
        json,
        jsonl,
        csv,
        strict,
        concurrency,
        color,
        helo,
        only,
        dkim_selector,
        net,
    } = args;
    let mut domains = domains;
    if let Some(path) = &file {
        domains.extend(read_domains(path)?);
    }
    if domains.is_empty() {
        anyhow::bail!("no domains to check");
    }
    let format = match (json, jsonl, csv) {
        (true, _, _) => Format::Json,
        (_, true, _) => Format::Jsonl,
        (_, _, true) => Format::Csv,
        _ => Format::Human,
    };
    let colour = match color.as_str() {
        "always" => true,
        "never" => false,
        _ => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let checker = Arc::new(build_checker(&net, helo, (only, dkim_selector))?);
        run_checks(domains, format, colour, strict, concurrency.into(), checker).await
    })
}

async fn run_checks(
    domains: Vec<String>,
    format: Format,
    colour: bool,
    strict: bool,
    concurrency: usize,
    checker: Arc<Checker>,
) -> anyhow::Result<ExitCode> {
    let stages = checker.options().stages;
    let total = domains.len();
    // Only on a terminal: scripts and tests reading stderr get no control characters.
    let progress = if total > 1 && std::io::stderr().is_terminal() {
        progress_bar(total, ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut worst = Verdict::Pass;
    let mut json_items = Vec::new();
    if format == Format::Csv {
        writeln!(out, "{}", csv_header())?;
    }
    let mut reports = futures::stream::iter(domains)
        .map(|d| {
            let checker = checker.clone();
            async move { checker.check(&d).await }
        })
        .buffered(concurrency);
    while let Some(report) = reports.next().await {
        worst = worst.max(report.verdict);
        // The bar is taken off the screen while a report is written, so the two never mix.
        progress.suspend(|| -> anyhow::Result<()> {
            match format {
                Format::Human => human::print(&mut out, &report, colour, stages)?,
                Format::Jsonl => writeln!(out, "{}", serde_json::to_string(&report)?)?,
                Format::Csv => writeln!(out, "{}", csv_row(&report))?,
                Format::Json => {}
            }
            if format != Format::Json {
                out.flush()?;
            }
            Ok(())
        })?;
        if format == Format::Json {
            json_items.push(report);
        }
        progress.inc(1);
    }
    // Leaves the full bar on screen, as the last line of stderr.
    progress.abandon();
    if format == Format::Json {
        let text = if json_items.len() == 1 {
            serde_json::to_string_pretty(&json_items[0])?
        } else {
            serde_json::to_string_pretty(&json_items)?
        };
        writeln!(out, "{text}")?;
    }
    out.flush()?;
    Ok(match worst {
        Verdict::Fail => ExitCode::from(1),
        Verdict::Warn if strict => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn build_checker(
    net: &NetArgs,
    helo: Option<String>,
    (stages, dkim_selectors): (StageSet, Vec<String>),
) -> anyhow::Result<Checker> {
    let dns = net.dns()?;
    let roots = net.roots()?;
    let timeout = net.timeout();
    let fetcher = PolicyFetcher::new(
        FetchConfig {
            timeout,
            roots: roots.clone(),
            port: net.https_port,
            max_bytes: POLICY_MAX_BYTES,
        },
        dns.clone(),
    );
    let helo_name = helo.unwrap_or_else(default_helo);
    let prober = SmtpProber::new(ProbeConfig {
        timeout,
        roots,
        port: net.smtp_port,
        helo_name,
    });
    // DNS, the fetch and each probe are bounded by `timeout`; the probes of a domain run
    // concurrently, so a few multiples of it bound a whole domain.
    let options = CheckOptions {
        deadline: timeout * 6 + Duration::from_secs(5),
        stages,
        dkim_selectors,
        ..CheckOptions::default()
    };
    Ok(Checker::new(
        dns,
        Arc::new(fetcher),
        Arc::new(prober),
        options,
    ))
}

/// `--dkim-selector`: a DNS sub-domain (RFC 6376 §3.1), lowercased.
fn parse_selector(s: &str) -> Result<String, String> {
    if mtasts_proto::dkim::valid_selector(s) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{s:?} is not a DKIM selector: dot-separated labels of letters, digits, '-' and '_'"
        ))
    }
}

fn default_helo() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| h.contains('.') && h.len() < 254)
        .unwrap_or_else(|| "mtasts-check.localhost".to_owned())
}

/// Reads a domain list: one per line, `#` comments and blank lines skipped, the first
/// comma- or whitespace-separated field taken (so a CSV export works).
fn read_domains(path: &PathBuf) -> anyhow::Result<Vec<String>> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut domains = Vec::new();
    for line in reader.lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let line = line.split('#').next().unwrap_or("");
        if let Some(first) = line
            .split([',', ' ', '\t', ';'])
            .map(str::trim)
            .find(|s| !s.is_empty())
        {
            domains.push(first.to_owned());
        }
    }
    Ok(domains)
}

/// The bulk progress bar: `[###---] 3/10 domains`, 30 cells wide.
fn progress_bar(total: usize, target: ProgressDrawTarget) -> ProgressBar {
    let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} domains")
        .expect("the template is a constant and valid")
        .progress_chars("#-");
    ProgressBar::with_draw_target(Some(total as u64), target).with_style(style)
}

fn csv_header() -> &'static str {
    concat!(
        "domain,verdict,policy_status,mode,max_age,id,mx_hosts,tlsrpt_status,errors,warnings",
        // DMARC, SPF and DKIM columns, appended so the earlier columns keep their positions.
        ",dmarc_status,dmarc_policy",
        ",spf_status,spf_dns_lookups,spf_void_lookups,dkim_keys"
    )
}

fn csv_row(r: &DomainReport) -> String {
    let codes = |sev: mtasts_proto::Severity| {
        let mut codes: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.severity == sev)
            .map(|f| f.code.as_str())
            .collect();
        codes.dedup();
        codes.join(" ")
    };
    let status = r.policy.status.as_str().to_owned();
    let tlsrpt = r.tlsrpt.status.as_str().to_owned();
    let spf = r.spf.as_ref();
    let fields = [
        r.domain.clone(),
        r.verdict.as_str().to_owned(),
        status,
        r.policy.mode.clone().unwrap_or_default(),
        r.policy.max_age.map(|m| m.to_string()).unwrap_or_default(),
        r.policy
            .record
            .as_ref()
            .map(|rec| rec.id.clone())
            .unwrap_or_default(),
        r.mx_hosts
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        tlsrpt,
        codes(mtasts_proto::Severity::Error),
        codes(mtasts_proto::Severity::Warning),
        r.dmarc
            .as_ref()
            .map(|d| d.status.as_str().to_owned())
            .unwrap_or_default(),
        r.dmarc
            .as_ref()
            .and_then(|d| d.policy.clone())
            .unwrap_or_default(),
        spf.map(|s| s.status.as_str().to_owned())
            .unwrap_or_default(),
        spf.map(|s| s.dns_lookups.to_string()).unwrap_or_default(),
        spf.map(|s| s.void_lookups.to_string()).unwrap_or_default(),
        dkim_column(r),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// `selector:status` for every DKIM selector checked, space-separated.
fn dkim_column(r: &DomainReport) -> String {
    r.dkim
        .iter()
        .flat_map(|d| &d.selectors)
        .map(|k| {
            let status = serde_json::to_value(k.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{}:{status}", k.selector)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn progress_bar_fills_proportionally() {
        let render = |done: u64| {
            let term = indicatif::InMemoryTerm::new(1, 80);
            let bar = progress_bar(10, ProgressDrawTarget::term_like(Box::new(term.clone())));
            bar.set_position(done);
            bar.abandon();
            term.contents()
        };
        assert_eq!(render(0), format!("[{}] 0/10 domains", "-".repeat(30)));
        assert_eq!(render(10), format!("[{}] 10/10 domains", "#".repeat(30)));
    }

    #[test]
    fn domain_lists_skip_comments_and_take_the_first_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.txt");
        std::fs::write(
            &path,
            "# list\nexample.com\n\n  example.org , extra\nexample.net # note\n",
        )
        .unwrap();
        assert_eq!(
            read_domains(&path).unwrap(),
            ["example.com", "example.org", "example.net"]
        );
    }
}
