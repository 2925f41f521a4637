//! The optional services of the integration tests (PostgreSQL, Redis, Pebble, Chromium,
//! Postfix, Dovecot, `dig`, `curl`, the Python peers), and the one rule for a test that
//! cannot have one.
//!
//! The rule: a test whose service is missing calls [`skip`]. Under
//! `MTASTS_REQUIRE_SERVICES=1` (CI installs every service) that is a failure whose message
//! names the missing service; otherwise the test prints one `skipped:` line naming the service
//! and why, and returns (passes). Any other value of the variable, or none, means skip.
//!
//! Tests that share a server (one PostgreSQL database, one Redis) keep apart by [`unique`]
//! names: schemas, key prefixes, tenants, lock names.

use std::fmt;

/// The environment variable that turns a skip into a failure (CI sets it to `1`).
pub const REQUIRE_SERVICES_ENV: &str = "MTASTS_REQUIRE_SERVICES";

/// The environment variable naming the PostgreSQL test database.
pub const POSTGRES_URL_ENV: &str = "MTASTS_TEST_POSTGRES_URL";

/// The environment variable naming the Redis test server.
pub const REDIS_URL_ENV: &str = "MTASTS_TEST_REDIS_URL";

/// The local PostgreSQL test database (trust authentication), when [`POSTGRES_URL_ENV`] is
/// not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The local Redis server, when [`REDIS_URL_ENV`] is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A service some test needs and the machine may lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// A PostgreSQL server ([`postgres_url`]).
    Postgres,
    /// A Redis server ([`redis_url`]).
    Redis,
    /// Debian's `pebble`, the ACME test CA ([`crate::pebble`]).
    Pebble,
    /// A headless Chromium (the dashboard browser test).
    Chromium,
    /// A private Postfix: the `postfix` package, root, namespaces, ports 25 and 53
    /// ([`crate::postfix`]).
    Postfix,
    /// The `dig` command (Debian's `dnsutils`).
    Dig,
    /// The `curl` command.
    Curl,
    /// The real report samples, `shared/samples` beside the work tree ([`samples_dir`]).
    Samples,
    /// Debian's `dovecot-imapd`, a private IMAP server ([`crate::dovecot`]).
    Dovecot,
    /// The `swaks` SMTP client (an independent client of the SMTP intake).
    Swaks,
    /// sys4's tlsrpt-reporter 0.6.0 from PyPI in a virtual environment (the TLS-RPT
    /// generator the sending side is compared with; see `.ci/run`).
    TlsrptReporter,
    /// Debian's `python3-dkim` (dkimpy), an independent DKIM verifier.
    Dkimpy,
    /// checkdmarc 6.0.4 from PyPI in a virtual environment (the DMARC and SPF checker `mtasts
    /// check` is compared with; see `.ci/run`).
    Checkdmarc,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Postgres => "PostgreSQL",
            Service::Redis => "Redis",
            Service::Pebble => "Pebble",
            Service::Chromium => "Chromium",
            Service::Postfix => "Postfix",
            Service::Dig => "dig",
            Service::Curl => "curl",
            Service::Samples => "the report samples folder",
            Service::Dovecot => "Dovecot",
            Service::Swaks => "swaks",
            Service::TlsrptReporter => "tlsrpt-reporter (the PyPI package, in a venv)",
            Service::Dkimpy => "python3-dkim (dkimpy)",
            Service::Checkdmarc => "checkdmarc (the PyPI package, in a venv)",
        })
    }
}

/// Whether `MTASTS_REQUIRE_SERVICES=1` is set: tests that cannot run must fail, not skip.
pub fn required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).is_ok_and(|v| v == "1")
}

/// The rule for a test that cannot have `service` (see the module docs): panics naming the
/// service under `MTASTS_REQUIRE_SERVICES=1`, else prints why the test is skipped. The
/// caller returns afterwards.
///
/// # Panics
///
/// When [`required`].
#[track_caller]
pub fn skip(service: Service, why: &dyn fmt::Display) {
    if required() {
        panic!("{REQUIRE_SERVICES_ENV}=1, but {service} is missing or unusable: {why}");
    }
    eprintln!("skipped: {service} is missing or unusable: {why}");
}

/// `shared/samples` beside the work tree (CI lays a copy of `shared/` beside its clone), or
/// `None` after [`skip`]ping for [`Service::Samples`] when it is absent.
#[track_caller]
pub fn samples_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/samples"
    ));
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    skip(
        Service::Samples,
        &format_args!("{} is not a folder", dir.display()),
    );
    None
}

/// Whether the command `program` can be run (it answers `args`, e.g. `-v` or `--version`);
/// otherwise [`skip`]s for `service` and returns `false`.
#[track_caller]
pub fn command_or_skip(service: Service, program: &str, args: &[&str]) -> bool {
    match std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(_) => true,
        Err(e) => {
            skip(service, &format_args!("cannot run {program}: {e}"));
            false
        }
    }
}

/// The PostgreSQL test database: `MTASTS_TEST_POSTGRES_URL`, else [`DEFAULT_POSTGRES_URL`].
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// The Redis test server: `MTASTS_TEST_REDIS_URL`, else [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var(REDIS_URL_ENV).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_string())
}

/// `url` (a PostgreSQL URL) with `schema` as its search path: tables a test creates through
/// it live in that schema. `schema` should come from [`unique`].
pub fn postgres_url_in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options[search_path]={schema}")
}

/// A name unique to this test run and call: `prefix` followed by 12 lowercase hex digits (48
/// random bits, short enough for the longest names the API tests build), so
/// with a prefix of lowercase letters, digits and `_` it is a valid SQL identifier as is.
pub fn unique(prefix: &str) -> String {
    // `random_u64` hashes the time with a per-process random key: unique across processes
    // and calls.
    format!("{prefix}{:012x}", crate::random_u64() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_identifiers() {
        let (a, b) = (unique("t_"), unique("t_"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 2 + 12);
        assert!(
            a.bytes()
                .all(|c| c == b'_' || c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn schemas_join_the_query() {
        assert_eq!(
            postgres_url_in_schema("postgres://h/db", "s"),
            "postgres://h/db?options[search_path]=s"
        );
        assert_eq!(
            postgres_url_in_schema("postgres://h/db?sslmode=disable", "s"),
            "postgres://h/db?sslmode=disable&options[search_path]=s"
        );
    }

    #[test]
    fn services_are_named() {
        assert_eq!(Service::Postgres.to_string(), "PostgreSQL");
        assert_eq!(Service::Dig.to_string(), "dig");
    }
}
