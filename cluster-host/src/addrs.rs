//! The host's addresses, for the local-only rule and the local flag (spec 5.2, 5.6).
//!
//! The reference re-reads them per frame on some hosts (Q14); here they are cached and read
//! again every `refresh` period, and on demand when a frame comes from an address not in the
//! list (at most once per second), so that an address added to the host is picked up
//! quickly without re-reading on every frame.

use std::net::IpAddr;
use std::time::Duration;

/// Least time between two on-demand reads.
const ON_DEMAND_MIN_MS: u64 = 1000;

/// The cached list of the host's addresses. Times are milliseconds on the adapter's clock.
#[derive(Debug, Clone)]
pub struct LocalAddrs {
    addrs: Vec<IpAddr>,
    read_at: u64,
    refresh_ms: u64,
}

impl LocalAddrs {
    /// Reads the host's addresses now.
    #[must_use]
    pub fn new(refresh: Duration, now_ms: u64) -> Self {
        let mut addrs = Self {
            addrs: Vec::new(),
            read_at: now_ms,
            refresh_ms: u64::try_from(refresh.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        };
        addrs.read(now_ms);
        addrs
    }

    /// A fixed list, never re-read: for tests.
    #[must_use]
    pub fn fixed(addrs: Vec<IpAddr>) -> Self {
        Self {
            addrs,
            read_at: 0,
            refresh_ms: u64::MAX,
        }
    }

    /// The addresses, loopback included.
    #[must_use]
    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The first non-loopback IPv4 address (the reference's "LAN IP").
    #[must_use]
    pub fn lan_ip(&self) -> Option<IpAddr> {
        self.addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv4() && !a.is_loopback())
    }

    /// When the periodic read is due.
    #[must_use]
    pub fn next_refresh(&self) -> u64 {
        self.read_at.saturating_add(self.refresh_ms)
    }

    /// Reads the addresses again when the period has passed.
    pub fn refresh_if_due(&mut self, now_ms: u64) {
        if now_ms >= self.next_refresh() {
            self.read(now_ms);
        }
    }

    /// Whether `ip` is one of this host's addresses: loopback always is, `0.0.0.0` never.
    /// An unknown address triggers a new read (at most once per second).
    pub fn is_local(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            return true;
        }
        if ip.is_unspecified() {
            return false;
        }
        if self.addrs.contains(&ip) {
            return true;
        }
        if self.refresh_ms != u64::MAX && now_ms.saturating_sub(self.read_at) >= ON_DEMAND_MIN_MS {
            self.read(now_ms);
            return self.addrs.contains(&ip);
        }
        false
    }

    fn read(&mut self, now_ms: u64) {
        self.read_at = now_ms;
        // On error keep the last list: a transient failure must not make peers non-local.
        if let Ok(interfaces) = if_addrs::get_if_addrs() {
            let mut addrs: Vec<IpAddr> = interfaces.iter().map(|i| i.ip().to_canonical()).collect();
            addrs.sort_unstable();
            addrs.dedup();
            self.addrs = addrs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn loopback_is_local_and_the_unspecified_address_is_not() {
        let mut addrs = LocalAddrs::fixed(vec![]);
        assert!(addrs.is_local(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        assert!(addrs.is_local(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 0));
        assert!(!addrs.is_local(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        assert!(!addrs.is_local(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 10_000));
    }

    #[test]
    fn the_host_addresses_are_read_and_mapped_addresses_compare_as_ipv4() {
        let mut addrs = LocalAddrs::new(Duration::from_secs(30), 0);
        let Some(lan) = addrs.lan_ip() else {
            return; // a loopback-only host: nothing more to check
        };
        assert!(addrs.is_local(lan, 0));
        if let IpAddr::V4(v4) = lan {
            assert!(addrs.is_local(IpAddr::V6(v4.to_ipv6_mapped()), 0));
        }
        assert_eq!(addrs.next_refresh(), 30_000);
        addrs.refresh_if_due(30_000);
        assert_eq!(addrs.next_refresh(), 60_000);
    }
}
