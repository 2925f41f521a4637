//! The open-files limit of a daemon: raise the soft limit to the hard one at start, and size
//! the connection caps below it.
//!
//! Every connection is a file descriptor. A daemon whose caps exceed its limit fails
//! `accept` with EMFILE while idle connections hold every descriptor, and the database,
//! outbound connections and certificate files fail with it. So the caps are derived from the
//! limit, leaving headroom for everything that is not a connection.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept out of the connection caps: the database pool, outbound DNS, HTTPS and
/// SMTP connections, files, the runtime's own. At least this many, or a quarter of the limit
/// when that is more.
pub const HEADROOM: u64 = 256;

/// The open-files limit in effect after [`OpenFiles::raise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit now in effect.
    pub limit: u64,
    /// The soft limit found at start.
    pub was: u64,
}

impl OpenFiles {
    /// Raises the soft RLIMIT_NOFILE to the hard limit (as far as the kernel allows) and
    /// returns what is in effect. Failing to raise it is not an error: the caps are then sized
    /// for the limit as it is.
    pub fn raise() -> OpenFiles {
        let current = getrlimit(Resource::Nofile);
        let was = current.current.unwrap_or(u64::MAX);
        // `None` is "unlimited"; the kernel refuses that for open files, so leave it alone.
        let Some(hard) = current.maximum else {
            return OpenFiles { limit: was, was };
        };
        if hard <= was {
            return OpenFiles { limit: was, was };
        }
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => OpenFiles { limit: hard, was },
            Err(e) => {
                tracing::warn!(error = %e, limit = was, "cannot raise the open-files limit");
                OpenFiles { limit: was, was }
            }
        }
    }

    /// Descriptors available to connections: the limit less [`HEADROOM`] (or a quarter of it,
    /// whichever is more), at least 1.
    pub fn for_connections(&self) -> usize {
        let reserve = HEADROOM.max(self.limit / 4);
        usize::try_from(self.limit.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX)
    }

    /// Splits [`for_connections`](Self::for_connections) among listeners: each wants the cap
    /// in `wanted` (same order), and gets at most that and at most an equal share.
    pub fn caps(&self, wanted: &[usize]) -> Vec<usize> {
        let share = (self.for_connections() / wanted.len().max(1)).max(1);
        wanted.iter().map(|w| (*w).min(share).max(1)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_headroom_and_share_the_rest() {
        let small = OpenFiles {
            limit: 1024,
            was: 1024,
        };
        assert_eq!(small.for_connections(), 768);
        assert_eq!(small.caps(&[512, 10_000]), vec![384, 384]);
        let large = OpenFiles {
            limit: 1 << 20,
            was: 1024,
        };
        assert_eq!(large.for_connections(), (1 << 20) - (1 << 18));
        assert_eq!(large.caps(&[512, 10_000]), vec![512, 10_000]);
        let tiny = OpenFiles {
            limit: 100,
            was: 100,
        };
        assert_eq!(tiny.caps(&[512]), vec![1]);
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let files = OpenFiles::raise();
        let now = getrlimit(Resource::Nofile);
        assert_eq!(now.current.unwrap_or(u64::MAX), files.limit);
        assert!(files.limit >= files.was);
        if let Some(hard) = now.maximum {
            assert_eq!(files.limit, hard);
        }
    }
}
