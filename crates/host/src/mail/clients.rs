//! The per-client connection cap of the SMTP intake: a client (IP address) over it is told
//! `421` at connect, so that a well-behaved MTA retries later rather than treating a silent
//! close as an error.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client.
#[derive(Clone, Debug)]
pub struct Clients {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Clients {
    /// At most `max` connections per client.
    pub fn new(max: usize) -> Clients {
        Clients {
            max,
            open: Arc::default(),
        }
    }

    /// A place for a connection of `ip`, or `None` when it holds `max` already.
    pub fn admit(&self, ip: IpAddr) -> Option<Admitted> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Admitted {
            ip,
            open: self.open.clone(),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_max_and_places_come_back() {
        let clients = Clients::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let a = clients.admit(ip).unwrap();
        let _b = clients.admit(mapped).unwrap();
        assert!(clients.admit(ip).is_none());
        assert!(clients.admit("192.0.2.2".parse().unwrap()).is_some());
        drop(a);
        assert!(clients.admit(ip).is_some());
    }
}
