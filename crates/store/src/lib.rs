//! Persistence for mtasts: the databases of its daemons, one cargo feature each, so that each
//! daemon compiles only the database it uses.
//!
//! | Feature        | Module / items | Database | Used by |
//! |----------------|----------------|----------|---------|
//! | `policy-cache` | `PolicyStore`, `open`, `memory`, `sqlite`, `postgres` | the resolver's MTA-STS policy cache (RFC 8461 §3.3) on memory, SQLite or PostgreSQL | `mtasts-sender` |
//! | `redis`        | `redis_store` (implies `policy-cache`) | the policy cache on Redis | `mtasts-sender` |
//! | `hosted`       | `host` | the database of `mtasts serve` (tenants, hosted domains, certificates, ACME) on SQLite or PostgreSQL | `mtasts-host` |
//! | `reports`      | `reports` | received TLS-RPT and DMARC reports (raw inputs, reports, rows, daily rollups) on SQLite or PostgreSQL, in the serve database | `mtasts-report`, `mtasts` |
//! | `tlsrpt`       | `tlsrpt` | the resolver's outgoing TLS reports (RFC 8460, sending side): collected results per day, built reports, the delivery outbox, on SQLite or PostgreSQL | `mtasts-sender` |
//! | `sql`          | (internal, implied by the others) | the SQL core: how SQLite is opened, sqlx | — |
//!
//! No feature is on by default: a crate names the databases it needs.
//!
//! # Why features of one crate, not one crate per database
//!
//! The databases share more than code: one SQLite file or PostgreSQL database may hold
//! several of them (each embeds its own migrations, recorded in its own table, and prefixes its
//! tables), and they share one way of opening SQLite, one rule for domain keys
//! ([`DomainKeyError`]), and the same time limits ([`CONNECT_TIMEOUT`], [`OP_TIMEOUT`]). A
//! feature per database gives each daemon's build only what it uses (the sender never
//! compiles the serve database, the serve node never compiles Redis) without a crate per
//! database and a core crate that every one of them would re-export. **Invariant:** a database
//! module depends only on the shared core (this file, `domain`, `sql`), never on another
//! database's module, so any feature builds alone (`cargo check -p mtasts-store
//! --no-default-features --features hosted`).
//!
//! Every public error enum is typed and `#[non_exhaustive]`: `StoreError` for the policy
//! cache, `host::HostDbError` for the serve database, `reports::ReportDbError` for the
//! received reports, `tlsrpt::TlsrptDbError` for the outgoing reports.
#![cfg_attr(
    feature = "policy-cache",
    doc = r#"
```
# tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
use mtasts_store::{Entry, EntryState};

let store = mtasts_store::open("memory").await?;
let entry = Entry {
    domain: "example.com".to_string(),
    state: EntryState::NoPolicy { until: 1_700_000_300 },
    last_failure: None,
    last_used: 1_700_000_000,
};
store.put(&entry).await?;
assert_eq!(store.get("example.com").await?, Some(entry));
# Ok::<(), mtasts_store::StoreError>(())
# }).unwrap();
```
"#
)]

use std::time::Duration;

#[cfg(feature = "policy-cache")]
mod cache;
mod domain;
#[cfg(feature = "hosted")]
pub mod host;
#[cfg(feature = "reports")]
pub mod reports;
#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "tlsrpt")]
pub mod tlsrpt;

#[cfg(feature = "redis")]
pub use cache::redis_store;
#[cfg(feature = "policy-cache")]
pub use cache::{
    Entry, EntryState, MAX_BODY_BYTES, MAX_ENTRY_JSON_BYTES, MAX_ID_BYTES, PolicyStore, StoreError,
    memory, normalize_domain, open, postgres, sqlite,
};
pub use domain::DomainKeyError;

/// Longest domain accepted as a key (RFC 1035 §2.3.4: 253 octets in text form).
pub const MAX_DOMAIN_BYTES: usize = 253;

/// Time limit for establishing a backend connection (and for taking one from a pool).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Time limit for one store operation, including waiting for a connection.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The URL without a password, for messages.
pub fn redacted(url: &str) -> String {
    // scheme://user:password@host… → scheme://user:***@host…
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("postgres://u:secret@host/db"),
            "postgres://u:***@host/db"
        );
        assert_eq!(redacted("redis://host:6379"), "redis://host:6379");
    }
}
