//! Where the optional services are, and what to do when they are not there.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// The local PostgreSQL test database (trust authentication).
const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The local Redis server.
const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The PostgreSQL test database: `MTASTS_TEST_POSTGRES_URL`, else the local server.
pub(crate) fn postgres_url() -> String {
    std::env::var("MTASTS_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL.to_string())
}

/// The Redis test server: `MTASTS_TEST_REDIS_URL`, else the local server.
pub(crate) fn redis_url() -> String {
    std::env::var("MTASTS_TEST_REDIS_URL").unwrap_or_else(|_| REDIS_URL.to_string())
}

/// Whether unreachable services fail the tests (`MTASTS_REQUIRE_SERVICES=1`) instead of
/// skipping them.
pub(crate) fn services_required() -> bool {
    std::env::var("MTASTS_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Reports a missing service: a panic when services are required, else a "skipped" line.
pub(crate) fn skip(backend: &str, why: &dyn std::fmt::Display) {
    if services_required() {
        panic!("{backend} is required (MTASTS_REQUIRE_SERVICES=1) but unreachable: {why}");
    }
    eprintln!("skipped: {backend} conformance tests, server unreachable: {why}");
}

/// A name unique to this test run: lowercase letters and digits.
pub(crate) fn unique(prefix: &str) -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{prefix}{:016x}", hasher.finish())
}
