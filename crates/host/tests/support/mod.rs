//! The harness every host test module shares: an HTTP/1.1 client for one request
//! ([`http`]), API calls and the administrator's first steps, a tenant and a token ([`api`]),
//! a router served on a `TestNet` address with an administrator token
//! ([`app`]), and a resolver asking the `TestNet`'s DNS ([`dns`]). Component-specific fixtures (API tenants with tokens, dashboard users and
//! sessions, serve nodes with Pebble) build on these in their own module's `harness`.

pub(crate) mod api;
pub(crate) mod app;
pub(crate) mod dns;
pub(crate) mod http;
