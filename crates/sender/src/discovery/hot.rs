//! The hot copy: cached policies parsed once and their Postfix answers rendered once, and
//! the in-memory memo of recent TXT checks that lets a cache hit skip the store and DNS.
//!
//! The memo only saves work: dropping it (or any entry) is always correct, so it is cleared
//! when full rather than evicted with care.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use mtasts_proto::postfix::AnswerStyle;
use mtasts_proto::sts::cache::CachedPolicy;

/// Recent TXT checks, in memory only.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    /// When DNS was asked.
    pub(crate) at: u64,
    /// The TXT lookup failed temporarily.
    pub(crate) temp_error: bool,
    /// The policy the store held when it was last read within this check's grace period,
    /// parsed, so cache hits skip the store read and the parse.
    pub(crate) hot: Option<Arc<HotPolicy>>,
    /// The store's negative entry, likewise: no policy until this time.
    pub(crate) negative_until: Option<u64>,
    /// `last_failure` of the entry behind `hot` / `negative_until`.
    pub(crate) last_failure: Option<u64>,
    /// `last_used` of the entry behind `hot`, for the touch interval.
    pub(crate) last_used: u64,
}

impl Checked {
    pub(crate) fn new(at: u64, temp_error: bool) -> Self {
        Checked {
            at,
            temp_error,
            hot: None,
            negative_until: None,
            last_failure: None,
            last_used: 0,
        }
    }
}

/// A cached policy, parsed once, with its Postfix answers rendered once per answer style and
/// shared with every reply that sends them (a cache hit copies no answer text).
///
/// Lookups share it through an `Arc`; it derefs to the [`CachedPolicy`].
#[derive(Debug)]
pub struct HotPolicy {
    cached: CachedPolicy,
    /// The answer in the first style asked for: read without a lock, since most daemons
    /// answer in one style.
    first: OnceLock<(AnswerStyle, Arc<str>)>,
    /// Answers in the other styles.
    others: Mutex<Vec<(AnswerStyle, Arc<str>)>>,
}

impl HotPolicy {
    /// Wraps a parsed cached policy.
    pub fn new(cached: CachedPolicy) -> Self {
        HotPolicy {
            cached,
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The answer for `style`, rendered by `render` the first time it is asked for.
    pub fn answer(&self, style: AnswerStyle, render: impl Fn() -> String) -> Arc<str> {
        let (first_style, first) = self.first.get_or_init(|| (style, render().into()));
        if *first_style == style {
            return first.clone();
        }
        let mut others = self.others.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, answer)) = others.iter().find(|(s, _)| *s == style) {
            return answer.clone();
        }
        let answer: Arc<str> = render().into();
        others.push((style, answer.clone()));
        answer
    }
}

impl std::ops::Deref for HotPolicy {
    type Target = CachedPolicy;

    fn deref(&self) -> &CachedPolicy {
        &self.cached
    }
}

/// Recent TXT checks by domain. Hashed with foldhash rather than SipHash: every cached
/// lookup hashes its domain here, and the map is cleared when full, so a flood of chosen
/// names cannot grow it.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    checks: Mutex<HashMap<String, Checked, foldhash::fast::RandomState>>,
}

impl Memo {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Checked, foldhash::fast::RandomState>> {
        // Plain values: a panic elsewhere cannot leave the map inconsistent.
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last check of `domain`.
    pub(crate) fn get(&self, domain: &str) -> Option<Checked> {
        self.lock().get(domain).cloned()
    }

    /// Records a check of `domain`, keeping at most `max` domains.
    pub(crate) fn put(&self, domain: &str, checked: Checked, max: usize) {
        let mut checks = self.lock();
        if checks.len() >= max.max(1) && !checks.contains_key(domain) {
            // A memo only saves DNS queries; starting over is always correct.
            checks.clear();
        }
        checks.insert(domain.to_string(), checked);
    }

    /// Forgets `domain`, or every domain.
    pub(crate) fn forget(&self, domain: Option<&str>) {
        let mut checks = self.lock();
        match domain {
            Some(domain) => {
                checks.remove(domain);
            }
            None => checks.clear(),
        }
    }
}
