//! Each client's share of the connections served: one address (an IPv6 client by its
//! /64, which one machine is given whole) holds at most so many at once, so that one
//! client opening connections and reading them slowly cannot take every slot from the
//! others. Beyond its share, a client is answered `503` as beyond the bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Who a connection is from, as its share is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    /// The first 64 bits of the address.
    V6(u64),
}

impl Client {
    fn of(address: IpAddr) -> Client {
        match address {
            IpAddr::V4(v4) => Client::V4(v4.to_bits()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.to_bits()),
                None => Client::V6((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// The connections each client holds, and the most it may.
pub(super) struct Clients {
    share: usize,
    held: Mutex<HashMap<Client, usize>>,
}

/// One connection counted in its client's share, until dropped.
pub(super) struct Held {
    clients: Arc<Clients>,
    client: Client,
}

impl Clients {
    /// Clients that may each hold `share` connections at once (at least one).
    pub(super) fn new(share: usize) -> Arc<Clients> {
        Arc::new(Clients {
            share: share.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `address` in its client's share; `None` when the client
    /// holds its whole share already.
    pub(super) fn take(self: &Arc<Self>, address: IpAddr) -> Option<Held> {
        let client = Client::of(address);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(client).or_insert(0);
        if *count >= self.share {
            return None;
        }
        *count += 1;
        Some(Held {
            clients: Arc::clone(self),
            client,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self
            .clients
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_its_share_and_no_more_and_gets_it_back() {
        let clients = Clients::new(2);
        let one: IpAddr = [192, 0, 2, 1].into();
        let first = clients.take(one);
        let second = clients.take(one);
        assert!(first.is_some() && second.is_some());
        assert!(clients.take(one).is_none(), "past its share");
        // Another client is not held back by the first.
        assert!(clients.take([192, 0, 2, 2].into()).is_some());
        // The same client over IPv4-mapped IPv6 is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap_or(one);
        assert!(clients.take(mapped).is_none());
        drop(first);
        assert!(
            clients.take(one).is_some(),
            "a connection ended gives its place back"
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_bit_prefix() {
        let clients = Clients::new(1);
        let parse = |text: &str| text.parse::<IpAddr>().ok();
        let held = parse("2001:db8:1:2::1").and_then(|a| clients.take(a));
        assert!(held.is_some());
        assert!(
            parse("2001:db8:1:2:ffff::9")
                .and_then(|a| clients.take(a))
                .is_none()
        );
        assert!(
            parse("2001:db8:1:3::1")
                .and_then(|a| clients.take(a))
                .is_some()
        );
    }
}
