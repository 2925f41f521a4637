//! Integration tests of the network edges against testkit's loopback servers (one test
//! binary; the modules live in `suite/`).

#[path = "suite/dane.rs"]
mod dane;
#[path = "suite/dns.rs"]
mod dns;
#[path = "suite/fetch.rs"]
mod fetch;
#[path = "suite/smtp.rs"]
mod smtp;
#[path = "suite/util.rs"]
mod util;
