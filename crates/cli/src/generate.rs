//! `mtasts generate`: the records, the policy file and hosting instructions for a domain.

use std::process::ExitCode;

use anyhow::{Context, bail};
use mtasts_proto::domain::normalize_domain;
use mtasts_proto::sts::mx_pattern::MxPattern;
use mtasts_proto::sts::policy::{MaxAge, Mode, Policy};
use mtasts_proto::sts::record::{PolicyId, StsRecord};
use mtasts_proto::tlsrpt::record::TlsRptRecord;
use serde::Serialize;

use crate::netargs::NetArgs;

/// Arguments of `mtasts generate`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct Args {
    /// Other records than MTA-STS and TLS-RPT.
    #[command(subcommand)]
    other: Option<Other>,
    /// The mail domain (the part after @).
    #[arg(value_name = "DOMAIN", required = true)]
    domain: Option<String>,
    /// An mx pattern (repeatable): a host name or *.suffix. Default: the domain's MX hosts.
    #[arg(long = "mx", value_name = "PATTERN")]
    mx: Vec<String>,
    /// The policy mode. Start with testing, move to enforce once TLS reports are clean.
    #[arg(long, default_value = "testing", value_parser = ["testing", "enforce", "none"])]
    mode: String,
    /// max_age in seconds (at most 31557600). Default: one week.
    #[arg(long, value_name = "SECONDS", default_value = "604800")]
    max_age: String,
    /// A TLS-RPT reporting URI (repeatable), mailto: or https:. Default: mailto:tlsrpt@DOMAIN.
    #[arg(long, value_name = "URI")]
    rua: Vec<String>,
    /// The policy id (1-32 letters and digits). Default: the current UTC time, YYYYMMDDHHMMSS.
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// `mtasts generate <record> DOMAIN`.
#[derive(Debug, clap::Subcommand)]
enum Other {
    /// The _dmarc record for a policy step (none, quarantine, reject) and the advice for the
    /// next step.
    Dmarc(crate::generate_dmarc::Args),
}

#[derive(Serialize)]
struct Generated {
    domain: String,
    policy_url: String,
    policy: String,
    records: Vec<DnsRecord>,
}

#[derive(Serialize)]
pub(crate) struct DnsRecord {
    pub(crate) name: String,
    pub(crate) r#type: &'static str,
    pub(crate) value: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        other,
        domain,
        mx,
        mode,
        max_age,
        rua,
        id,
        json,
        net,
    } = args;
    if let Some(Other::Dmarc(args)) = other {
        return crate::generate_dmarc::run(args);
    }
    let domain = domain.context("a domain is required")?;
    let domain =
        normalize_domain(&domain).with_context(|| format!("{domain:?} is not a domain name"))?;
    let mode: Mode = mode.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let max_age: MaxAge = max_age
        .parse()
        .map_err(|e| anyhow::anyhow!("--max-age: {e}"))?;
    let mx_names = if mx.is_empty() && mode != Mode::None {
        lookup_mx(&domain, &net)?
    } else {
        mx
    };
    let mx = mx_names
        .iter()
        .map(|m| {
            m.parse::<MxPattern>()
                .map_err(|e| anyhow::anyhow!("--mx {m:?}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let policy = Policy {
        mode,
        max_age,
        mx,
        extensions: Vec::new(),
    };
    let text = policy.to_string();
    // Whatever we print must be what a strict sender accepts.
    let reparsed = Policy::parse(&text).context("generated policy does not parse")?;
    if reparsed != policy {
        bail!("generated policy does not round-trip");
    }
    let id = match id {
        Some(id) => id,
        None => time::OffsetDateTime::now_utc().format(time::macros::format_description!(
            "[year][month][day][hour][minute][second]"
        ))?,
    };
    let id: PolicyId = id.parse().map_err(|e| anyhow::anyhow!("--id: {e}"))?;
    let sts = StsRecord::new(id).to_string();
    StsRecord::parse(&sts).context("generated _mta-sts record does not parse")?;
    let rua = if rua.is_empty() {
        vec![format!("mailto:tlsrpt@{domain}")]
    } else {
        rua
    };
    let tlsrpt = mtasts_proto::tlsrpt::record::record_text(&rua.join(","));
    TlsRptRecord::parse(&tlsrpt).map_err(|e| anyhow::anyhow!("--rua: {e}"))?;

    let generated = Generated {
        domain: domain.clone(),
        policy_url: mtasts_proto::sts::policy_url(&domain),
        policy: text,
        records: vec![
            DnsRecord {
                name: mtasts_proto::sts::record_name(&domain),
                r#type: "TXT",
                value: sts,
            },
            DnsRecord {
                name: mtasts_proto::tlsrpt::record_name(&domain),
                r#type: "TXT",
                value: tlsrpt,
            },
        ],
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&generated)?);
    } else {
        print_text(&generated, mode);
    }
    Ok(ExitCode::SUCCESS)
}

fn lookup_mx(domain: &str, net: &NetArgs) -> anyhow::Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dns = net.dns()?;
    let records = runtime
        .block_on(dns.mx(domain))
        .with_context(|| format!("looking up the MX records of {domain} (give them with --mx)"))?;
    let names: Vec<String> = records
        .into_iter()
        .map(|r| r.exchange)
        .filter(|e| !e.is_empty())
        .collect();
    if names.is_empty() {
        bail!("{domain} has no usable MX records; give the MX hosts with --mx");
    }
    Ok(names)
}

fn print_text(g: &Generated, mode: Mode) {
    let host = mtasts_proto::sts::policy_host(&g.domain);
    println!("# MTA-STS for {} (mode {mode})", g.domain);
    println!();
    println!("## 1. The policy file");
    println!(
        "# Serve this at {} with status 200, Content-Type: text/plain,",
        g.policy_url
    );
    println!("# no redirects, over HTTPS with a certificate valid for {host}.");
    println!();
    print!("{}", g.policy.replace("\r\n", "\n"));
    println!();
    println!("## 2. DNS records (publish after the policy file is served)");
    println!();
    for r in &g.records {
        println!("{}.\t3600\tIN\t{}\t\"{}\"", r.name, r.r#type, r.value);
    }
    println!(
        "{host}.\t3600\tIN\tA\t<address of the web server> (or a CNAME to it; add AAAA for IPv6)"
    );
    println!();
    println!("## 3. Hosting");
    println!();
    println!("# Save the policy (with CRLF line endings, as printed by --json) as");
    println!("#   /var/www/mta-sts/.well-known/mta-sts.txt");
    println!(
        "# and get a certificate for {host} (for example: certbot certonly --webroot -w /var/www/mta-sts -d {host})."
    );
    println!("# nginx:");
    println!("server {{");
    println!("    listen 443 ssl;");
    println!("    listen [::]:443 ssl;");
    println!("    server_name {host};");
    println!("    ssl_certificate     /etc/letsencrypt/live/{host}/fullchain.pem;");
    println!("    ssl_certificate_key /etc/letsencrypt/live/{host}/privkey.pem;");
    println!("    location = /.well-known/mta-sts.txt {{");
    println!("        root /var/www/mta-sts;");
    println!("        default_type text/plain;");
    println!("        types {{ }}");
    println!("    }}");
    println!("    location / {{ return 404; }}");
    println!("}}");
    println!();
    println!("# When you change the policy: update the file first, then publish a new id");
    println!(
        "# (RFC 8461 §8.1). Check the result with: mtasts check {}",
        g.domain
    );
}
