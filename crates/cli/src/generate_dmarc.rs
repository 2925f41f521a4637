//! `mtasts generate dmarc DOMAIN`: the `_dmarc` record for a policy step, the advice for the
//! next step, and the RFC 7489 §7.1 authorization records report addresses outside the
//! domain need.

use std::process::ExitCode;

use anyhow::{Context, bail};
use mtasts_proto::dmarc::discovery::organizational_domain;
use mtasts_proto::dmarc::record::{self, RequestedPolicy};
use mtasts_proto::domain::normalize_domain;
use mtasts_proto::hosted::reporting::DMARC_AUTHORIZATION;
use serde::Serialize;

use crate::generate::DnsRecord;
use crate::netargs::NetArgs;

/// Arguments of `mtasts generate dmarc`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The mail domain (the part after @ in From:).
    #[arg(value_name = "DOMAIN")]
    domain: String,
    /// The policy step: start with none, move to quarantine, then reject.
    #[arg(long, default_value = "none", value_parser = ["none", "quarantine", "reject"])]
    policy: String,
    /// An aggregate report address (repeatable), mailto:. Default: mailto:dmarc@DOMAIN.
    #[arg(long, value_name = "URI")]
    rua: Vec<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Accepted, so that every form of `generate` takes the same network flags; the DMARC
    /// record is generated without lookups.
    #[command(flatten)]
    _net: NetArgs,
}

#[derive(Serialize)]
struct Generated {
    domain: String,
    policy: String,
    records: Vec<DnsRecord>,
    /// Records the operators of report addresses outside the domain must publish.
    authorizations: Vec<DnsRecord>,
    next_step: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        domain,
        policy,
        rua,
        json,
        _net: _,
    } = args;
    let domain =
        normalize_domain(&domain).with_context(|| format!("{domain:?} is not a domain name"))?;
    let policy: RequestedPolicy = policy.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let rua = if rua.is_empty() {
        vec![format!("mailto:dmarc@{domain}")]
    } else {
        rua
    };
    let mut authorizations = Vec::new();
    for uri in &rua {
        let (parsed, _) =
            record::report_uri(uri).map_err(|reason| anyhow::anyhow!("--rua {uri:?}: {reason}"))?;
        let Some(destination) = parsed.destination else {
            bail!("--rua {uri:?}: receivers send DMARC reports by mail only; give a mailto: URI");
        };
        if organizational_domain(&destination) != organizational_domain(&domain) {
            authorizations.push(DnsRecord {
                name: record::authorization_name(&domain, &destination),
                r#type: "TXT",
                value: DMARC_AUTHORIZATION.to_owned(),
            });
        }
    }
    let text = record::record_text(policy, &rua);
    // Whatever we print must be what receivers read back as written.
    let parsed = record::parse(&text);
    if parsed.record.p != Some(policy)
        || parsed
            .diagnostics
            .iter()
            .any(|d| d.severity != mtasts_proto::Severity::Info)
    {
        bail!("generated record {text:?} does not parse cleanly");
    }
    let generated = Generated {
        domain: domain.clone(),
        policy: policy.to_string(),
        records: vec![DnsRecord {
            name: record::record_name(&domain),
            r#type: "TXT",
            value: text,
        }],
        authorizations,
        next_step: record::next_step_advice(policy, &domain),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&generated)?);
    } else {
        print_text(&generated);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(g: &Generated) {
    println!("# DMARC for {} (p={})", g.domain, g.policy);
    println!();
    for r in &g.records {
        println!("{}.\t3600\tIN\t{}\t\"{}\"", r.name, r.r#type, r.value);
    }
    if !g.authorizations.is_empty() {
        println!();
        println!(
            "# Report addresses outside {} receive reports only when their",
            g.domain
        );
        println!("# domain publishes (RFC 7489 §7.1):");
        for r in &g.authorizations {
            println!("{}.\t3600\tIN\t{}\t\"{}\"", r.name, r.r#type, r.value);
        }
    }
    println!();
    println!("# Next step: {}", g.next_step);
    println!("# Check the result with: mtasts check {}", g.domain);
}
