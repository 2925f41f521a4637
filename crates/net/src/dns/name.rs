//! What the hickory lookups and the AD-bit client share: absolute query names and the
//! conventional names of response codes.

use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::Name;

use super::lookup::DnsError;

/// `name` as an absolute hickory name (a trailing dot added, so no search domain applies).
pub(super) fn absolute(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(DnsError::Other(format!("invalid DNS name {name:?}")));
    }
    Name::from_ascii(format!("{trimmed}."))
        .map_err(|e| DnsError::Other(format!("invalid DNS name {name:?}: {e}")))
}

/// The conventional upper-case name of a response code (`SERVFAIL`, `REFUSED`, …).
pub(super) fn code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        ResponseCode::FormErr => "FORMERR".to_string(),
        ResponseCode::NotImp => "NOTIMP".to_string(),
        ResponseCode::NXDomain => "NXDOMAIN".to_string(),
        ResponseCode::NotAuth => "NOTAUTH".to_string(),
        other => format!("rcode {}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_absolute() {
        assert_eq!(absolute("example.com").unwrap().to_ascii(), "example.com.");
        assert_eq!(
            absolute("_mta-sts.example.com.").unwrap().to_ascii(),
            "_mta-sts.example.com."
        );
        assert!(absolute("").is_err());
        assert!(absolute(".").is_err());
    }
}
