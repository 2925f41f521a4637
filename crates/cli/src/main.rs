//! `mtasts`: MTA-STS and TLS-RPT for domain owners and mail senders.
//!
//! This binary only parses arguments and configuration and wires the library crates together;
//! the work happens in the library crates (`mtasts-check`, `mtasts-sender`, `mtasts-host` and
//! the crates below them).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod generate;
mod generate_dmarc;
mod human;
mod netargs;
mod report;
mod resolver;
mod serve;
mod signals;
mod tlsrpt;

/// MTA-STS (RFC 8461) and SMTP TLS Reporting (RFC 8460) for domain owners and mail senders.
///
/// Exit codes: 0 success (check: pass or warn), 1 problems found (check: fail; with --strict
/// also warn; query: Postfix would defer the message, TEMP or PERM), 2 usage or runtime error.
#[derive(Debug, Parser)]
#[command(name = "mtasts", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Diagnose domains: MX, _mta-sts record, policy fetch and syntax, MX coverage, STARTTLS,
    /// TLS version and certificate of every MX address, TLS-RPT record, DANE presence.
    Check(check::Args),
    /// Print the DNS records, the policy file and hosting instructions for a domain
    /// (`generate dmarc DOMAIN`: the _dmarc record and the next step).
    Generate(generate::Args),
    /// Run the sender-side policy daemon: Postfix socketmap (smtp_tls_policy_maps) and HTTP
    /// lookups with per-domain TLS levels, DANE precedence and an RFC 8461 cache.
    Resolver(resolver::ResolverArgs),
    /// What a sender would do for a destination now, with the discovery details (exit 1 when
    /// Postfix would defer the message: TEMP or PERM).
    Query(resolver::QueryArgs),
    /// Inspect or purge the resolver's policy cache.
    Cache(resolver::CacheArgs),
    /// Host MTA-STS for many domains: HTTPS policy host with ACME certificates, a delegated
    /// DNS authority, an API and a dashboard.
    Serve(Box<serve::ServeArgs>),
    /// Administer the serve database: tenants and API tokens.
    Admin(serve::AdminArgs),
    /// Read, store and explain SMTP TLS reports (RFC 8460) and DMARC aggregate reports.
    Report(report::ReportArgs),
    /// TLS-RPT for senders: what the resolver collected today, its outbox; write or send the
    /// RFC 8460 reports of a day.
    Tlsrpt(tlsrpt::TlsrptArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MTASTS_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    mtasts_net::install_crypto_provider();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Resolver(args) => resolver::run_resolver(args),
        Command::Query(args) => resolver::run_query(args),
        Command::Cache(args) => resolver::run_cache(args),
        Command::Serve(args) => serve::run_serve(*args),
        Command::Admin(args) => serve::run_admin(args),
        Command::Report(args) => report::run(args),
        Command::Tlsrpt(args) => tlsrpt::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("mtasts: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
