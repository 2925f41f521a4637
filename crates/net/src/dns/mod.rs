//! DNS for the checker, the `mtasts resolver` daemon and `mtasts serve`: one trait,
//! [`DnsLookup`], and its implementation [`HickoryDns`].
//!
//! NXDOMAIN and NODATA ("no such record") are kept apart from SERVFAIL, REFUSED and timeouts
//! ("could not find out"): the latter are temporary and never mean "no policy" (RFC 8461 C27).
//! CNAME chains are followed.
//!
//! - `lookup`: the trait, its answer and error types, and the configuration;
//! - `hickory`: [`HickoryDns`], the lookups through hickory-resolver;
//! - `ad_bit`: `AdBitClient`, the direct queries whose answers carry the AD bit, for DANE;
//! - `name`: the name and response-code helpers both share.
//!
//! "Resolver" names the `mtasts resolver` daemon elsewhere in the workspace; here DNS things
//! are called DNS.

mod ad_bit;
mod hickory;
mod lookup;
mod name;

pub use hickory::HickoryDns;
pub use lookup::{
    DnsConfig, DnsError, DnsLookup, DnsSetupError, InvalidDnsServer, MxRecord, Secured, TlsaRecord,
    parse_server,
};
