//! Inbound TLS requirements per partner: a Postfix SMTP access policy delegation server
//! (`check_policy_service inet:…` or `unix:…` in `smtpd_recipient_restrictions`) that
//! refuses plaintext or unverified sessions from the partners the `[inbound]` configuration
//! names, so one configuration describes a partner both ways (`[tls_levels]` for sending).
//!
//! * [`config`]: the `[inbound]` section and its checking into
//!   [`mtasts_proto::postfix::policy::InboundRules`] (part of the swappable settings, so
//!   SIGHUP reloads the rules).
//! * [`service`]: the server on the socketmap's connection machinery ([`crate::framed`]).
//! * [`query`]: what `mtasts query --inbound SENDER CLIENT` shows.
//!
//! The protocol, the rules and every decision live in
//! [`mtasts_proto::postfix::policy`].

pub mod config;
pub mod query;
pub mod service;

pub use config::{InboundConfig, InboundRuleConfig, InboundRuleTable, rules_from_config};
