//! An authoritative DNS server (hickory-server) on loopback with a mutable zone and faults.
