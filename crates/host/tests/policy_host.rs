//! `mtasts_host::policy_host` over real TLS and HTTP on loopback: the strict policy fetcher,
//! curl, a rustls client that inspects certificates, and raw sockets for the limits.

mod acme;
mod app_listener;
mod common;
mod curl;
mod http01;
mod https;
mod intake;
mod limits;
