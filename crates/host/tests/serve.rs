//! `mtasts serve` end to end, as a new user would run it: one process on a fresh database,
//! real DNS (the testkit's "internet" forwarding the service zone to the serve's own
//! authority), Pebble as the ACME CA validating real HTTP-01 challenges, the strict policy
//! fetcher as the sender. And scale-out: two serve processes on one PostgreSQL.

mod harness;
mod lifecycle;
mod report_intake;
mod scale_out;
