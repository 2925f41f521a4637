//! Integration tests of the network edges against testkit's loopback servers.

mod dns;
mod fetch;
mod util;
