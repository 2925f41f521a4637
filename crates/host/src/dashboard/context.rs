//! What every dashboard handler is given: the application state and how the dashboard is
//! reached from browsers.

use std::sync::Arc;

use super::login_csrf::LoginKey;
use crate::state::AppState;

/// How the dashboard is reached from browsers, and how long its sessions last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardConfig {
    /// The configured public URL (`https://…` makes the cookies `Secure`); its origin is also
    /// accepted in `Origin` headers besides the request's own `Host`.
    pub public_url: Option<String>,
    /// Seconds a session may go unused before it ends (`session_idle_timeout`).
    pub session_idle_timeout: u64,
    /// Seconds a session lasts at most, used or not (`session_lifetime`).
    pub session_lifetime: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            public_url: None,
            session_idle_timeout: super::session::IDLE_SECONDS,
            session_lifetime: super::session::LIFETIME_SECONDS,
        }
    }
}

impl DashboardConfig {
    pub(super) fn secure(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
    }

    /// The idle timeout and the lifetime of sessions, in seconds (at least 1 each).
    pub(super) fn sessions(&self) -> super::session::Lifetimes {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX).max(1);
        super::session::Lifetimes {
            idle: secs(self.session_idle_timeout),
            total: secs(self.session_lifetime),
        }
    }

    /// `scheme://host[:port]` of the public URL, lowercase.
    pub(super) fn origin(&self) -> Option<String> {
        let url = self.public_url.as_deref()?;
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        Some(format!("{scheme}://{authority}").to_ascii_lowercase())
    }
}

/// The state of the dashboard router.
#[derive(Clone)]
pub(super) struct Dash {
    pub(super) app: AppState,
    pub(super) config: Arc<DashboardConfig>,
    /// The login form's CSRF key, shared by every node through the database.
    pub(super) login_key: Arc<LoginKey>,
}
