//! What every dashboard handler is given: the application state and how the dashboard is
//! reached from browsers.

use std::sync::Arc;

use crate::state::AppState;

/// How the dashboard is reached from browsers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DashboardConfig {
    /// The configured public URL (`https://…` makes the cookies `Secure`); its origin is also
    /// accepted in `Origin` headers besides the request's own `Host`.
    pub public_url: Option<String>,
}

impl DashboardConfig {
    pub(super) fn secure(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        })
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
}
