//! Shared helpers.

use std::sync::Arc;
use std::time::Duration;

use mtasts_net::dns::{DnsConfig, Resolver};
use mtasts_testkit::TestNet;

/// A resolver asking only the TestNet's DNS server.
pub(crate) fn resolver(net: &TestNet, timeout: Duration) -> Arc<Resolver> {
    mtasts_net::install_crypto_provider();
    let config = DnsConfig {
        servers: Some(vec![net.dns_addr()]),
        timeout,
    };
    Arc::new(Resolver::new(&config).expect("resolver for the test DNS server"))
}
