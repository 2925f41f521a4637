//! Which parts of a check run: the names `mtasts check --only` takes.

use std::fmt;
use std::str::FromStr;

/// The stage groups a check can run. All by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageSet {
    /// `mta-sts`: MX records, the `_mta-sts` record, the policy, MX TLS and DANE.
    pub mta_sts: bool,
    /// `tlsrpt`: the `_smtp._tls` record.
    pub tlsrpt: bool,
    /// `dmarc`: the `_dmarc` record.
    pub dmarc: bool,
    /// `spf`: the SPF record and its evaluation tree.
    pub spf: bool,
    /// `dkim`: the key records of the selectors given.
    pub dkim: bool,
}

/// The names, in the order they are documented.
pub const STAGE_NAMES: [&str; 5] = ["mta-sts", "tlsrpt", "dmarc", "spf", "dkim"];

impl Default for StageSet {
    fn default() -> Self {
        StageSet::all()
    }
}

impl StageSet {
    /// Every stage.
    pub fn all() -> Self {
        StageSet {
            mta_sts: true,
            tlsrpt: true,
            dmarc: true,
            spf: true,
            dkim: true,
        }
    }

    /// No stage (the start of an `--only` list).
    pub fn none() -> Self {
        StageSet {
            mta_sts: false,
            tlsrpt: false,
            dmarc: false,
            spf: false,
            dkim: false,
        }
    }

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        match name {
            "mta-sts" => Some(&mut self.mta_sts),
            "tlsrpt" => Some(&mut self.tlsrpt),
            "dmarc" => Some(&mut self.dmarc),
            "spf" => Some(&mut self.spf),
            "dkim" => Some(&mut self.dkim),
            _ => None,
        }
    }
}

/// A name in an `--only` list that is not a stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownStage(pub String);

impl fmt::Display for UnknownStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown stage {:?}: expected a comma-separated list of {}",
            self.0,
            STAGE_NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownStage {}

impl FromStr for StageSet {
    type Err = UnknownStage;

    /// `mta-sts,spf` → those two; names are case-insensitive, empty items are skipped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = StageSet::none();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let lower = name.to_ascii_lowercase();
            match set.flag(&lower) {
                Some(flag) => *flag = true,
                None => return Err(UnknownStage(name.to_owned())),
            }
        }
        if set == StageSet::none() {
            return Err(UnknownStage(s.to_owned()));
        }
        Ok(set)
    }
}

impl fmt::Display for StageSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut copy = *self;
        let names: Vec<&str> = STAGE_NAMES
            .into_iter()
            .filter(|n| copy.flag(n).is_some_and(|v| *v))
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let s: StageSet = "spf, DKIM".parse().unwrap();
        assert!(s.spf && s.dkim && !s.mta_sts && !s.tlsrpt && !s.dmarc);
        assert_eq!(s.to_string(), "spf,dkim");
        let all: StageSet = "mta-sts,tlsrpt,dmarc,spf,dkim".parse().unwrap();
        assert_eq!(all, StageSet::all());
        assert_eq!(
            "spf,dane".parse::<StageSet>(),
            Err(UnknownStage("dane".into()))
        );
        assert!("".parse::<StageSet>().is_err());
        assert!(",".parse::<StageSet>().is_err());
    }
}
