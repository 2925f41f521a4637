mod cache;
mod config;
mod dane;
mod outage;
mod service;
mod socketmap;
mod world;
