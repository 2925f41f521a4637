//! Where the optional services are, and what to do when they are not there.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// The local PostgreSQL test database (trust authentication).
pub(crate) const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The local Redis server.
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379";

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
