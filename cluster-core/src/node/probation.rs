//! For the feature `large-registry`: what eviction reads of each service ([`Standing`]), the
//! walk that picks the service to evict ([`Candidates`]), and a compact copy of every
//! service's standing beside the registry ([`StandingIndex`]), so that a full registry finds
//! its victim by reading a few bytes per service instead of a whole record.

use core::net::IpAddr;

use crate::service::Service;

/// A service's standing, as eviction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Standing {
    established: bool,
    frames: u8,
    first_heard: u32,
    ip: Option<IpAddr>,
}

impl Standing {
    pub(crate) fn of(service: &Service) -> Self {
        Self {
            established: service.is_established(),
            frames: service.frames,
            first_heard: service.first_heard,
            ip: service.ip,
        }
    }
}

/// What one walk over the services on probation learns for a newcomer from `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidates {
    /// Services on probation from the newcomer's address (0 for a local newcomer).
    pub(crate) from_addr: usize,
    /// The weakest of those.
    pub(crate) weakest_from_addr: Option<usize>,
    /// The weakest service on probation.
    pub(crate) weakest: Option<usize>,
}

impl Candidates {
    /// Walks the standings of every service, in registry order. The weakest is the one to
    /// evict first: the fewest frames, then the earliest first frame, then the first in
    /// registry order.
    pub(crate) fn walk(standings: impl Iterator<Item = Standing>, addr: Option<IpAddr>) -> Self {
        let mut candidates = Self {
            from_addr: 0,
            weakest_from_addr: None,
            weakest: None,
        };
        let mut weakest_key = (u8::MAX, u32::MAX);
        let mut weakest_from_addr_key = (u8::MAX, u32::MAX);
        for (index, standing) in standings.enumerate() {
            if standing.established {
                continue;
            }
            let key = (standing.frames, standing.first_heard);
            if candidates.weakest.is_none() || key < weakest_key {
                candidates.weakest = Some(index);
                weakest_key = key;
            }
            if addr.is_some() && standing.ip == addr {
                candidates.from_addr += 1;
                if candidates.weakest_from_addr.is_none() || key < weakest_from_addr_key {
                    candidates.weakest_from_addr = Some(index);
                    weakest_from_addr_key = key;
                }
            }
        }
        candidates
    }
}

/// Services whose record may have changed since their standing was copied, noted one by one
/// up to this many (beyond it, every standing is copied again).
const CHANGED: usize = 8;

/// The standing of every service, at the same positions as the registry's records. A record
/// handed out to change is noted as changed, and its standing is copied again before the
/// next walk or removal: the copies the walk reads are always those of the records.
#[derive(Debug)]
pub(crate) struct StandingIndex<const N: usize> {
    standings: super::slots::Slots<Standing, N>,
    changed: heapless::Vec<u16, CHANGED>,
    all_changed: bool,
}

impl<const N: usize> StandingIndex<N> {
    pub(crate) const fn new() -> Self {
        Self {
            standings: super::slots::Slots::new(),
            changed: heapless::Vec::new(),
            all_changed: false,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.standings.clear();
        self.changed.clear();
        self.all_changed = false;
    }

    /// A service was added at the end of the registry.
    pub(crate) fn push(&mut self, standing: Standing) {
        // Cannot fail: the same capacity as the registry, whose insert succeeded.
        let _ = self.standings.push(standing);
    }

    /// The record at `index` was handed out to change.
    pub(crate) fn changed(&mut self, index: usize) {
        let Ok(index) = u16::try_from(index) else {
            self.all_changed = true;
            return;
        };
        if !self.all_changed && !self.changed.contains(&index) && self.changed.push(index).is_err()
        {
            self.all_changed = true;
        }
    }

    /// Every record was handed out to change.
    pub(crate) fn all_changed(&mut self) {
        self.all_changed = true;
    }

    /// Copies the standing of every record noted as changed.
    pub(crate) fn refresh(&mut self, services: &super::slots::Slots<Service, N>) {
        if self.all_changed {
            for (standing, service) in self.standings.iter_mut().zip(services.iter()) {
                *standing = Standing::of(service);
            }
        } else {
            for index in &self.changed {
                let index = usize::from(*index);
                if let (Some(service), Some(standing)) =
                    (services.get(index), self.standings.get_mut(index))
                {
                    *standing = Standing::of(service);
                }
            }
        }
        self.changed.clear();
        self.all_changed = false;
    }

    /// Removes the standing at `index` (the registry removed its record; refreshed before).
    pub(crate) fn remove(&mut self, index: usize) {
        let _ = self.standings.remove(index);
    }

    /// The walk of [`Candidates`] over the copies (refreshed before).
    pub(crate) fn candidates(&self, addr: Option<IpAddr>) -> Candidates {
        Candidates::walk(self.standings.iter().copied(), addr)
    }
}
