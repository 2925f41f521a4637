//! Shared helpers.

use std::sync::Arc;
use std::time::Duration;

use mtasts_net::dns::{DnsConfig, HickoryDns};
use mtasts_testkit::TestNet;

/// DNS asking only the TestNet's DNS server.
pub(crate) fn dns_client(net: &TestNet, timeout: Duration) -> Arc<HickoryDns> {
    mtasts_net::install_crypto_provider();
    let config = DnsConfig {
        servers: Some(vec![net.dns_addr()]),
        timeout,
    };
    Arc::new(HickoryDns::new(&config).expect("DNS client for the test DNS server"))
}

/// A fetcher for the TestNet's policy hosts (its DNS, its CA, its HTTPS port).
pub(crate) fn fetcher(net: &TestNet, timeout: Duration) -> mtasts_net::fetch::PolicyFetcher {
    let mut config = mtasts_net::fetch::FetchConfig::new(net.root_store());
    config.port = net.https_port();
    config.timeout = timeout;
    mtasts_net::fetch::PolicyFetcher::new(config, dns_client(net, Duration::from_secs(5)))
}
