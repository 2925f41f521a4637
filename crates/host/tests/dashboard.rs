//! Integration tests of the dashboard: a real server over SQLite in a temporary directory,
//! reached over real HTTP (a plain hyper client) and by a real headless Chromium.

mod admin_mail;
mod browser;
pub(crate) mod harness;
mod http;
mod logins;
mod pages;
mod png;
mod reports;
mod reports_browser;
mod tokens;
