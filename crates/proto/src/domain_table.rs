//! A table keyed the way Postfix tables key domains: `example.com` matches that domain only,
//! `.example.com` every subdomain of it (not the domain itself); an exact entry wins over a
//! `.parent` entry, and the closest `.parent` over farther ones.

use std::collections::HashMap;

use crate::domain::{DomainError, normalize_domain};

/// Entries by exact domain and by `.parent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainTable<T> {
    exact: HashMap<String, T>,
    /// Keyed by the parent domain without the leading dot.
    suffix: HashMap<String, T>,
}

impl<T> Default for DomainTable<T> {
    fn default() -> Self {
        DomainTable {
            exact: HashMap::new(),
            suffix: HashMap::new(),
        }
    }
}

/// Why a key was not added.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainKeyError {
    /// The key (without its leading dot) is not a domain name.
    #[error("{key:?} is not a domain or .domain: {source}")]
    NotDomain {
        /// The key as given.
        key: String,
        /// Why.
        source: DomainError,
    },
    /// The key is already in the table (keys are case-insensitive).
    #[error("{0:?} is given twice (keys are case-insensitive)")]
    Duplicate(String),
}

impl<T> DomainTable<T> {
    /// Adds `key` (`domain` or `.domain`, normalised like [`normalize_domain`]).
    pub fn insert(&mut self, key: &str, value: T) -> Result<(), DomainKeyError> {
        let (table, name) = match key.strip_prefix('.') {
            Some(parent) => (&mut self.suffix, parent),
            None => (&mut self.exact, key),
        };
        let domain = normalize_domain(name).map_err(|source| DomainKeyError::NotDomain {
            key: key.to_owned(),
            source,
        })?;
        if table.insert(domain, value).is_some() {
            return Err(DomainKeyError::Duplicate(key.to_owned()));
        }
        Ok(())
    }

    /// The entry for a normalised domain and its key as written in the table (`domain` or
    /// `.parent`): the exact entry, else the closest `.parent` entry.
    pub fn lookup(&self, domain: &str) -> Option<(String, &T)> {
        if self.is_empty() {
            return None;
        }
        if let Some(value) = self.exact.get(domain) {
            return Some((domain.to_owned(), value));
        }
        let mut rest = domain;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(value) = self.suffix.get(parent) {
                return Some((format!(".{parent}"), value));
            }
            rest = parent;
        }
        None
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.exact.len() + self.suffix.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_closest_parent() {
        let mut table = DomainTable::default();
        table.insert("Partner.Example", 1).unwrap();
        table.insert(".corp.example", 2).unwrap();
        table.insert(".eu.corp.example", 3).unwrap();
        table.insert("corp.example", 4).unwrap();
        assert_eq!(
            table.lookup("partner.example"),
            Some(("partner.example".into(), &1))
        );
        assert_eq!(table.lookup("x.partner.example"), None);
        assert_eq!(
            table.lookup("corp.example"),
            Some(("corp.example".into(), &4))
        );
        assert_eq!(
            table.lookup("a.b.corp.example"),
            Some((".corp.example".into(), &2))
        );
        assert_eq!(
            table.lookup("x.eu.corp.example"),
            Some((".eu.corp.example".into(), &3))
        );
        assert_eq!(table.lookup("example"), None);
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn bad_and_duplicate_keys() {
        let mut table = DomainTable::default();
        assert!(matches!(
            table.insert("not a domain", ()),
            Err(DomainKeyError::NotDomain { .. })
        ));
        assert!(matches!(
            table.insert("..x", ()),
            Err(DomainKeyError::NotDomain { .. })
        ));
        table.insert("a.example", ()).unwrap();
        assert_eq!(
            table.insert("A.example.", ()),
            Err(DomainKeyError::Duplicate("A.example.".into()))
        );
    }
}
