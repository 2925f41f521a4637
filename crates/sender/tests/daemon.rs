//! End-to-end tests of the resolver daemon against the loopback internet of `mtasts-testkit`:
//! real DNS and HTTPS servers, the daemon's real listeners, a small netstring client. Only
//! the DNS server, the trust roots, the HTTPS port and the clock (a manual one, for expiry and
//! backoff) differ from production.
//!
//! Modules: `world` (fixtures and the client), `socketmap` (answers and framing), `cache`
//! (RFC 8461 cache behaviour), `service` (HTTP, UNIX socket, reload, store fallback,
//! restart), `dane`, `config` (example files), `outage` (Redis and PostgreSQL going away
//! behind a proxy and coming back).

mod suite;
