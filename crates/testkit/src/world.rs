//! [`TestNet`]: the DNS server, CA, policy hosts and MX hosts together.

/// A loopback internet (see the crate docs).
pub struct TestNet {
    _private: (),
}
