//! Proving control of a domain another tenant hosts: the claim's TXT record, its name and
//! value, how long a claim lasts, and whether a TXT answer proves it.
//!
//! A domain is hosted by one tenant at a time, and a tenant must not learn whether another
//! tenant hosts a name (the API answers such a name as it answers any name the caller cannot
//! see). Someone who really controls the domain's DNS proves it the way ACME DNS-01 does: the
//! service issues a random token bound to the claiming tenant, the claimant publishes
//! `_mtasts-claim.<domain> TXT "mtasts-claim=<token>"`, and adding the domain then moves it
//! to the claimant. A claim is issued for any valid name, hosted or not, so issuing one says
//! nothing about the name.

use crate::txt::TxtRr;

/// The label under the domain where the claim's TXT record is published.
pub const CLAIM_LABEL: &str = "_mtasts-claim";

/// What the TXT record's text starts with; the token follows.
pub const CLAIM_VALUE_PREFIX: &str = "mtasts-claim=";

/// How long a claim may be proved after it was issued: seven days, time enough for a DNS
/// change to be made and reach every resolver, short enough that a forgotten token dies.
pub const CLAIM_LIFETIME_SECONDS: i64 = 7 * 86_400;

/// At most this many open (unexpired) claims per tenant; expired ones are purged first.
pub const MAX_OPEN_CLAIMS: usize = 100;

/// The random bytes of a claim token (128 bits: not guessable).
pub const CLAIM_TOKEN_BYTES: usize = 16;

/// The owner name of the claim's TXT record for `domain` (normalised, no trailing dot).
pub fn claim_txt_name(domain: &str) -> String {
    format!("{CLAIM_LABEL}.{domain}")
}

/// The claim token for `random` bytes: lowercase hex, [`CLAIM_TOKEN_BYTES`] × 2 characters.
pub fn claim_token(random: &[u8; CLAIM_TOKEN_BYTES]) -> String {
    crate::hex::encode(random)
}

/// The text of the claim's TXT record for `token`.
pub fn claim_txt_value(token: &str) -> String {
    format!("{CLAIM_VALUE_PREFIX}{token}")
}

/// Whether one of the TXT records answered at [`claim_txt_name`] is the claim for `token`:
/// a record whose character-strings, concatenated and stripped of surrounding whitespace,
/// are exactly [`claim_txt_value`] (the token compared in constant time). Other records at
/// the name (an older claim, someone else's) are ignored.
pub fn claim_proved(records: &[TxtRr], token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let expected = claim_txt_value(token);
    records.iter().any(|record| {
        let text = record.concat();
        let text = text.trim_ascii();
        text.len() == expected.len() && constant_time_eq(text, expected.as_bytes())
    })
}

/// When a claim issued at `now` expires.
pub fn claim_expiry(now: i64) -> i64 {
    now.saturating_add(CLAIM_LIFETIME_SECONDS)
}

/// Whether a claim that expires at `expires_at` may still be proved at `now`.
pub fn claim_open(expires_at: i64, now: i64) -> bool {
    now < expires_at
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_and_value() {
        assert_eq!(claim_txt_name("example.com"), "_mtasts-claim.example.com");
        let token = claim_token(&[0xab; CLAIM_TOKEN_BYTES]);
        assert_eq!(token, "ab".repeat(CLAIM_TOKEN_BYTES));
        assert_eq!(claim_txt_value(&token), format!("mtasts-claim={token}"));
    }

    #[test]
    fn only_the_exact_value_proves() {
        let token = claim_token(&[7; CLAIM_TOKEN_BYTES]);
        let value = claim_txt_value(&token);
        assert!(claim_proved(&[TxtRr::single(&value)], &token));
        // Split into character-strings, with surrounding spaces, among other records.
        let (a, b) = value.split_at(10);
        let split = TxtRr(vec![
            format!(" {a}").into_bytes(),
            format!("{b} ").into_bytes(),
        ]);
        assert!(claim_proved(&[TxtRr::single("v=spf1 -all"), split], &token));
        for wrong in [
            token.clone(),
            format!("{value}0"),
            value.to_uppercase(),
            claim_txt_value(&claim_token(&[8; CLAIM_TOKEN_BYTES])),
            String::new(),
        ] {
            assert!(!claim_proved(&[TxtRr::single(&wrong)], &token), "{wrong}");
        }
        assert!(!claim_proved(&[], &token));
        assert!(!claim_proved(&[TxtRr::single(CLAIM_VALUE_PREFIX)], ""));
    }

    #[test]
    fn a_claim_expires() {
        assert!(claim_open(
            claim_expiry(100),
            100 + CLAIM_LIFETIME_SECONDS - 1
        ));
        assert!(!claim_open(claim_expiry(100), 100 + CLAIM_LIFETIME_SECONDS));
        assert_eq!(claim_expiry(i64::MAX), i64::MAX);
        assert!(!claim_open(100, 100));
    }
}
