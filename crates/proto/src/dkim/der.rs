//! The few DER structures a DKIM key holds: SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) and
//! RSAPublicKey (RFC 8017 Appendix A.1.1). Bounded: a length may not run past its input.

/// `rsaEncryption`, 1.2.840.113549.1.1.1.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-Ed25519`, 1.3.101.112.
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// What a DER public key turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// An RSA key of this many modulus bits; `spki` false for a bare RSAPublicKey.
    Rsa { bits: usize, spki: bool },
    /// An Ed25519 key wrapped in a SubjectPublicKeyInfo.
    Ed25519Spki,
    /// A SubjectPublicKeyInfo of another algorithm.
    Other,
}

/// Reads one TLV with the expected tag; returns its content and the rest.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The size in bits of a DER INTEGER's value (leading zero octets ignored).
fn integer_bits(content: &[u8]) -> usize {
    let trimmed: &[u8] = match content.iter().position(|b| *b != 0) {
        Some(i) => &content[i..],
        None => &[],
    };
    match trimmed.first() {
        Some(first) => (trimmed.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

fn rsa_public_key(der: &[u8]) -> Option<usize> {
    let (seq, rest) = tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (modulus, seq) = tlv(seq, 0x02)?;
    let (exponent, seq) = tlv(seq, 0x02)?;
    (seq.is_empty() && !exponent.is_empty()).then(|| integer_bits(modulus))
}

/// Parses a SubjectPublicKeyInfo, or failing that a bare RSAPublicKey.
pub(crate) fn public_key(der: &[u8]) -> Option<PublicKey> {
    if let Some(bits) = spki(der) {
        return Some(bits);
    }
    rsa_public_key(der).map(|bits| PublicKey::Rsa { bits, spki: false })
}

fn spki(der: &[u8]) -> Option<PublicKey> {
    let (seq, rest) = tlv(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (algorithm, seq) = tlv(seq, 0x30)?;
    let (oid, _params) = tlv(algorithm, 0x06)?;
    let (bits, seq) = tlv(seq, 0x03)?;
    if !seq.is_empty() {
        return None;
    }
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    if oid == OID_RSA {
        rsa_public_key(key).map(|bits| PublicKey::Rsa { bits, spki: true })
    } else if oid == OID_ED25519 {
        Some(PublicKey::Ed25519Spki)
    } else {
        Some(PublicKey::Other)
    }
}
