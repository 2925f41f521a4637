//! The probe of issue 10 as a regression suite: a real `mtasts serve` process per test, on a
//! loopback address of its own (ACME off, SQLite in a temporary directory), attacked the way a
//! hostile tester attacked it — and every defect the probe found, by its original input.
//!
//! Bounded: every socket read has a timeout, every body a size cap, every server a deadline to
//! start and to stop; the whole suite takes well under a minute on two cores.
//!
//! Modules: `harness` (start, restart, kill the binary), `http` (a small HTTP/1.1 client and a
//! dashboard session), `wire` (DNS packets by hand), `h2` (raw HTTP/2 frames over TLS); then one
//! module per part of the issue: `held` (what held before and must keep holding), `secrets`,
//! `logins`, `tokens`, `pages`, `names`, `dns`.

mod probe {
    pub(crate) mod h2;
    pub(crate) mod harness;
    pub(crate) mod http;
    pub(crate) mod wire;

    mod dns;
    mod held;
    mod logins;
    mod names;
    mod pages;
    mod secrets;
    mod tokens;
}
