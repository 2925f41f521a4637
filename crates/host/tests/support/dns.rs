//! A resolver that asks a `TestNet`'s DNS server, as a sender's or the node's own would.

use std::time::Duration;

use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_testkit::TestNet;

/// The real resolver of `mtasts_net`, asking only `net`'s DNS server, each query bounded by
/// `timeout`.
pub(crate) fn resolver(net: &TestNet, timeout: Duration) -> HickoryDns {
    HickoryDns::new(&DnsConfig {
        servers: Some(vec![net.dns_addr()]),
        timeout,
    })
    .expect("a resolver for the TestNet DNS")
}
