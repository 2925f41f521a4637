//! The modules of the daemon's end-to-end suite; `tests/daemon.rs` says what each covers.

mod cache;
mod config;
mod dane;
mod outage;
mod service;
mod socketmap;
mod world;
