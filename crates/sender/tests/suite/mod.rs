mod cache;
mod config;
mod dane;
mod service;
mod socketmap;
mod world;
