//! Integration tests of the dashboard: a real server over SQLite in a temporary directory,
//! reached over real HTTP (a plain hyper client) and by a real headless Chromium.

#[path = "dashboard/browser.rs"]
mod browser;
#[path = "dashboard/harness.rs"]
mod harness;
#[path = "dashboard/http.rs"]
mod http;
