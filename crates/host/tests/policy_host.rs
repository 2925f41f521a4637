//! `mtasts_host::policy_host` over real TLS and HTTP on loopback: the strict policy fetcher,
//! curl, a rustls client that inspects certificates, and raw sockets for the limits.

#[path = "policy_host/acme.rs"]
mod acme;
#[path = "policy_host/app_listener.rs"]
mod app_listener;
#[path = "policy_host/common.rs"]
mod common;
#[path = "policy_host/curl.rs"]
mod curl;
#[path = "policy_host/http01.rs"]
mod http01;
#[path = "policy_host/https.rs"]
mod https;
#[path = "policy_host/limits.rs"]
mod limits;
