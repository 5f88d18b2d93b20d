//! Known services: the table of [`Service`] records, lookup by sid, expiry.

use core::net::IpAddr;

#[cfg(feature = "large-registry")]
use super::probation::{Candidates, Standing};
use super::slots::Slots;
use crate::identity::Sid;
use crate::service::{Seen, Service, UnixPath};
use crate::time::Instant;

/// The table of known services, at most `N`, in arrival order (iteration never depends on
/// hashing). On hosts, and with the feature `large-registry`, a second array keeps the
/// services' indices sorted by sid, each with the sid's first eight bytes (all of a sid this
/// project draws), so a frame's service is found by binary search over that compact array,
/// reading records only where those bytes are equal: O(log n) per frame whatever the size,
/// for 12 bytes per service beside the record itself. On a microcontroller
/// (`target_os = "none"`) without `large-registry` there is no index: a service is found by a
/// walk over the records (the same answers; for a firmware's few dozen services the index
/// cost more flash and RAM than the walk costs time).
/// Adding and removing a service shift the sorted index (O(n) entries of 12 bytes); removing
/// one also moves records ([`Slots`]: every later one, or with the feature `large-registry`
/// those on the shorter side), which happens only when services come and go. A full
/// registry picks the service to evict by a walk over the records, or with `large-registry`
/// over a compact copy of what eviction reads of each service (module `probation`).
///
/// Unix-socket paths are kept apart, in a table of [`UNIX_PATHS`] entries (none without the
/// feature `unix`): only services on
/// this host that run `u` have one, and keeping 104 bytes in every record would cost more than
/// the rest of it. When the table is full a path is not stored and `u` is not used for that
/// service (counted in `oversized`).
#[derive(Debug)]
pub(crate) struct Registry<const N: usize> {
    services: Slots<Service, N>,
    /// Indices into `services`, sorted by the [`SidKey`] of their sids.
    #[cfg(any(feature = "large-registry", not(target_os = "none")))]
    by_sid: heapless::Vec<SidEntry, N>,
    unix_paths: heapless::Vec<(Sid, UnixPath), UNIX_PATHS>,
    /// Beside each service, at the same index: its last periodic heartbeat that can be
    /// repeated ([`super::repeat`]).
    #[cfg(feature = "heartbeat-fast-path")]
    repeats: Slots<super::repeat::RepeatFrame, N>,
    /// Where a sid's repeatable heartbeat was last seen: registry index + 1 (0 for none) in
    /// one of the four entries of the bucket a hash of the sid picks (room for four times
    /// the capacity, so that few sids lose theirs to others). Only a guess, which may be
    /// stale after removals shift the records: the kept frame at that index, compared whole,
    /// decides.
    #[cfg(feature = "heartbeat-fast-path")]
    hints: [[u16; HINT_WAYS]; N],
    /// What eviction reads of each service, at the same index ([`super::probation`]).
    #[cfg(feature = "large-registry")]
    standings: super::probation::StandingIndex<N>,
    /// The index [`find`](Registry::find) found last, tried first at its next call.
    #[cfg(not(target_os = "none"))]
    last_found: u16,
}

/// What the node still needs of a service it removed from the registry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Removed {
    pub(crate) sid: Sid,
    /// Its `Discovered` event was delivered (so a `Lost` one is owed).
    pub(crate) announced: bool,
    /// When its `Discovered` event was due, if it was not delivered (kept for large
    /// registries, where a removal then spares the walk for the earliest due time).
    #[cfg(feature = "large-registry")]
    pub(crate) discover_at: Option<Instant>,
    /// The queries it was a target of, and those it answered (bits by query slot).
    pub(crate) query_targets: u8,
    pub(crate) query_answered: u8,
}

impl Removed {
    fn of(service: &Service) -> Self {
        Self {
            sid: service.sid,
            announced: service.discover_at().is_none(),
            #[cfg(feature = "large-registry")]
            discover_at: service.discover_at(),
            query_targets: service.query_targets,
            query_answered: service.query_answered,
        }
    }
}

/// Services whose unix-socket path is kept: none without the feature `unix` (a build with no
/// unix-socket transport never uses them; the firmware saves the table's 492 bytes).
pub(crate) const UNIX_PATHS: usize = if cfg!(feature = "unix") { 4 } else { 0 };

/// Entries per bucket of the repeated heartbeats' hints.
#[cfg(feature = "heartbeat-fast-path")]
const HINT_WAYS: usize = 4;

/// The registry is full of established services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// Services on probation of one non-local address that a full registry keeps when a
/// newcomer from that address arrives: a sixteenth of the capacity, at least 2 (at most the
/// capacity).
pub(crate) const fn per_address_slots(capacity: usize) -> usize {
    let share = capacity / 16;
    let share = if share < 2 { 2 } else { share };
    if share > capacity { capacity } else { share }
}

impl<const N: usize> Registry<N> {
    pub(crate) const fn new() -> Self {
        const { assert!(N <= u16::MAX as usize, "at most 65,535 services") };
        Self {
            services: Slots::new(),
            #[cfg(any(feature = "large-registry", not(target_os = "none")))]
            by_sid: heapless::Vec::new(),
            unix_paths: heapless::Vec::new(),
            #[cfg(feature = "heartbeat-fast-path")]
            repeats: Slots::new(),
            #[cfg(feature = "heartbeat-fast-path")]
            hints: [[0; HINT_WAYS]; N],
            #[cfg(feature = "large-registry")]
            standings: super::probation::StandingIndex::new(),
            #[cfg(not(target_os = "none"))]
            last_found: 0,
        }
    }

    /// Position of `sid` in `by_sid`, or where it would go.
    ///
    /// The order is that of [`SidKey`], not lexicographic: any consistent total order serves
    /// a binary search, and this one compares integers instead of calling `memcmp`. The
    /// search runs over the prefixes alone (a branch-free binary search); only the entries
    /// with an equal prefix, normally none or the one sought, are compared in full.
    #[cfg(any(feature = "large-registry", not(target_os = "none")))]
    fn search(&self, sid: &[u8]) -> Result<usize, usize> {
        let key = SidKey::of(sid);
        let prefix = key.0;
        let mut at = self.by_sid.partition_point(|entry| entry.prefix() < prefix);
        while let Some(entry) = self.by_sid.get(at).filter(|e| e.prefix() == prefix) {
            let stored = self
                .services
                .get(usize::from(entry.index))
                .map(|s| SidKey::of_sid(&s.sid));
            match stored.map(|k| k.cmp(&key)) {
                Some(core::cmp::Ordering::Equal) => return Ok(at),
                Some(core::cmp::Ordering::Greater) => break,
                _ => at += 1,
            }
        }
        Err(at)
    }

    /// The unix-socket path `sid` advertised.
    pub(crate) fn unix_path(&self, sid: &[u8]) -> Option<&UnixPath> {
        if UNIX_PATHS == 0 {
            return None;
        }
        self.unix_paths
            .iter()
            .find(|(s, _)| s.as_bytes() == sid)
            .map(|(_, p)| p)
    }

    /// Sets or clears `sid`'s unix-socket path; false when the table is full. Without the
    /// feature `unix` paths are not kept, by design, and that is not a failure.
    pub(crate) fn set_unix_path(&mut self, sid: &Sid, path: Option<UnixPath>) -> bool {
        if UNIX_PATHS == 0 {
            return true;
        }
        self.unix_paths.retain(|(s, _)| s != sid);
        match path {
            Some(path) => self.unix_paths.push((*sid, path)).is_ok(),
            None => true,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.services.len()
    }

    /// Forgets every service.
    pub(crate) fn clear(&mut self) {
        self.services.clear();
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        self.by_sid.clear();
        self.unix_paths.clear();
        #[cfg(feature = "large-registry")]
        self.standings.clear();
        #[cfg(feature = "heartbeat-fast-path")]
        {
            self.repeats.clear();
            self.hints = [[0; HINT_WAYS]; N];
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.services.is_full()
    }

    /// The index of `sid`'s service.
    pub(crate) fn index_of(&self, sid: &[u8]) -> Option<usize> {
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        {
            let found = self.search(sid).ok()?;
            self.by_sid.get(found).map(|entry| usize::from(entry.index))
        }
        #[cfg(not(any(feature = "large-registry", not(target_os = "none"))))]
        self.walk(sid)
    }

    /// The index of `sid`'s service by a walk over the records: [`index_of`](Self::index_of)
    /// where the registry keeps no sorted index (compiled for the tests too, which compare
    /// the two).
    #[cfg(any(test, not(any(feature = "large-registry", not(target_os = "none")))))]
    fn walk(&self, sid: &[u8]) -> Option<usize> {
        // The first byte (0 past a sid's end, as in its padded array) is compared first: a
        // record whose first byte differs is passed over without a call.
        let first = sid.first().copied().unwrap_or(0);
        self.services
            .iter()
            .position(|s| s.sid.padded()[0] == first && s.sid.as_bytes() == sid)
    }

    /// The index of `sid`'s service, as [`index_of`](Self::index_of), trying first the index
    /// it found last. A query round trip looks the same peer up six times (each frame
    /// received, each direct send and its outcome, at both nodes): a search costs about 150
    /// instructions on a host, the check about 25. The remembered index goes stale when a
    /// service is added or removed, which is harmless, as the sid is compared. Hosts only: on
    /// a microcontroller (`target_os = "none"`) the check would cost flash for little.
    pub(crate) fn find(&mut self, sid: &[u8]) -> Option<usize> {
        #[cfg(not(target_os = "none"))]
        {
            let last = usize::from(self.last_found);
            if self
                .services
                .get(last)
                .is_some_and(|s| s.sid.as_bytes() == sid)
            {
                return Some(last);
            }
            let found = self.index_of(sid)?;
            // Fits: `new` asserts `N <= u16::MAX`.
            self.last_found = u16::try_from(found).unwrap_or_default();
            Some(found)
        }
        #[cfg(target_os = "none")]
        self.index_of(sid)
    }

    pub(crate) fn get(&self, sid: &[u8]) -> Option<&Service> {
        self.services.get(self.index_of(sid)?)
    }

    pub(crate) fn get_mut(&mut self, sid: &[u8]) -> Option<&mut Service> {
        let index = self.find(sid)?;
        self.at_mut(index)
    }

    pub(crate) fn at(&self, index: usize) -> Option<&Service> {
        self.services.get(index)
    }

    pub(crate) fn at_mut(&mut self, index: usize) -> Option<&mut Service> {
        #[cfg(feature = "large-registry")]
        self.standings.changed(index);
        self.services.get_mut(index)
    }

    /// Adds a service (whose sid is not known yet) and returns its index; `None` when the
    /// table is full.
    pub(crate) fn insert(&mut self, service: Service) -> Option<usize> {
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        let at = self.search(service.sid.as_bytes()).err()?;
        #[cfg(not(any(feature = "large-registry", not(target_os = "none"))))]
        if self.walk(service.sid.as_bytes()).is_some() {
            return None;
        }
        let index = self.services.len();
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        let entry = SidEntry::new(SidKey::of_sid(&service.sid), u16::try_from(index).ok()?);
        #[cfg(feature = "large-registry")]
        let standing = Standing::of(&service);
        self.services.push(service).ok()?;
        #[cfg(feature = "large-registry")]
        self.standings.push(standing);
        // Cannot fail either: the same capacity and length as `services`.
        #[cfg(feature = "heartbeat-fast-path")]
        self.repeats.push(super::repeat::RepeatFrame::EMPTY).ok()?;
        // Cannot fail: both arrays have the same capacity and length.
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        self.by_sid.insert(at, entry).ok()?;
        Some(index)
    }

    /// Removes the service at `index`, keeping the order of the others.
    /// Removes the service at `index` and returns what the node still needs of it (not the
    /// record itself, which would pass through the stack: 328 bytes on a Cortex-M).
    pub(crate) fn remove_at(&mut self, index: usize) -> Option<Removed> {
        // Found while every index still points at its service.
        let removed = Removed::of(self.services.get(index)?);
        let sid = removed.sid;
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        if let Ok(at) = self.search(sid.as_bytes()) {
            self.by_sid.remove(at);
        }
        #[cfg(feature = "large-registry")]
        {
            self.standings.refresh(&self.services);
            self.standings.remove(index);
        }
        let _ = self.services.remove(index);
        #[cfg(feature = "heartbeat-fast-path")]
        let _ = self.repeats.remove(index);
        #[cfg(any(feature = "large-registry", not(target_os = "none")))]
        for entry in &mut self.by_sid {
            if usize::from(entry.index) > index {
                entry.index -= 1;
            }
        }
        // Without the feature `unix` the table has no room: no code for it.
        if UNIX_PATHS != 0 {
            self.unix_paths.retain(|(s, _)| *s != sid);
        }
        Some(removed)
    }

    /// The repeatable heartbeat kept for the service at `index`.
    #[cfg(feature = "heartbeat-fast-path")]
    pub(crate) fn repeat_at(&self, index: usize) -> Option<&super::repeat::RepeatFrame> {
        self.repeats.get(index)
    }

    /// The hint bucket of `sid`, and the entry it takes when the bucket is full.
    #[cfg(feature = "heartbeat-fast-path")]
    fn hint_bucket(sid: &[u8]) -> (usize, usize) {
        let key = SidKey::of(sid);
        let mixed =
            (key.0 ^ key.1.rotate_left(29) ^ u64::from(key.2)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let bucket = ((mixed >> 32) as usize) % N.max(1);
        (bucket, (mixed >> 8) as usize % HINT_WAYS)
    }

    /// The indices that may hold `sid`'s service, by the hints (unchecked guesses).
    #[cfg(feature = "heartbeat-fast-path")]
    pub(crate) fn hinted(&self, sid: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let (bucket, _) = Self::hint_bucket(sid);
        self.hints
            .get(bucket)
            .into_iter()
            .flatten()
            .filter_map(|hint| usize::from(*hint).checked_sub(1))
    }

    /// Notes that `sid`'s service is at `index`: in the first entry of its bucket that is
    /// free or already says so, else in the entry the sid's hash picks.
    #[cfg(feature = "heartbeat-fast-path")]
    pub(crate) fn set_hint(&mut self, sid: &[u8], index: usize) {
        let Ok(hint) = u16::try_from(index + 1) else {
            return;
        };
        let (bucket, fallback) = Self::hint_bucket(sid);
        let Some(entries) = self.hints.get_mut(bucket) else {
            return;
        };
        let way = entries
            .iter()
            .position(|h| *h == 0 || *h == hint)
            .unwrap_or(fallback);
        if let Some(entry) = entries.get_mut(way) {
            *entry = hint;
        }
    }

    /// The service at `index` and its repeatable heartbeat, to change.
    #[cfg(feature = "heartbeat-fast-path")]
    pub(crate) fn with_repeat_at_mut(
        &mut self,
        index: usize,
    ) -> Option<(&mut Service, &mut super::repeat::RepeatFrame)> {
        #[cfg(feature = "large-registry")]
        self.standings.changed(index);
        Some((self.services.get_mut(index)?, self.repeats.get_mut(index)?))
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Service> + ExactSizeIterator {
        self.services.iter()
    }

    /// Every service, in arrival order, as two runs (see [`Slots::as_slices`]).
    pub(crate) fn as_slices(&self) -> (&[Service], &[Service]) {
        self.services.as_slices()
    }

    /// Mutable access to every service; callers never change a sid.
    pub(crate) fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut Service> + ExactSizeIterator {
        #[cfg(feature = "large-registry")]
        self.standings.all_changed();
        self.services.iter_mut()
    }

    /// Whether a new service from `addr` (`None` for a local sender) finds room, and which
    /// service on probation it replaces (the policy is documented on [`Node`](crate::Node),
    /// "Capacity and floods"):
    ///
    /// * while the registry has room, every newcomer gets in;
    /// * when it is full, a newcomer from a non-local address that already has
    ///   [`per_address_slots`] services on probation replaces the weakest of them; any other
    ///   newcomer replaces the weakest service on probation: the one heard from least, the
    ///   earliest first among equals;
    /// * established services are never replaced: when they fill the registry the newcomer
    ///   is refused (`Err`).
    pub(crate) fn room_for(&mut self, addr: Option<IpAddr>) -> Result<Option<usize>, Full> {
        if !self.is_full() {
            return Ok(None);
        }
        #[cfg(feature = "large-registry")]
        let victim = {
            let candidates = self.candidates(addr);
            if addr.is_some() && candidates.from_addr >= per_address_slots(N) {
                candidates.weakest_from_addr
            } else {
                candidates.weakest
            }
        };
        // Two walks over the records: the smallest code, for the small registries of a
        // firmware.
        #[cfg(not(feature = "large-registry"))]
        let victim = {
            let from_addr = addr.map_or(0, |_| {
                self.services
                    .iter()
                    .filter(|s| !s.is_established() && s.ip == addr)
                    .count()
            });
            if addr.is_some() && from_addr >= per_address_slots(N) {
                self.weakest(&|s| s.ip == addr)
            } else {
                self.weakest(&|_| true)
            }
        };
        victim.map(Some).ok_or(Full)
    }

    /// The service on probation among `among` to evict first: the fewest frames, then the
    /// earliest first frame, then the first in arrival order (the rule of
    /// [`Candidates::walk`], over the records).
    #[cfg(not(feature = "large-registry"))]
    fn weakest(&self, among: &dyn Fn(&Service) -> bool) -> Option<usize> {
        self.services
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_established() && among(s))
            .min_by(|(_, a), (_, b)| {
                a.frames
                    .cmp(&b.frames)
                    .then(a.first_heard.cmp(&b.first_heard))
            })
            .map(|(index, _)| index)
    }

    /// The walk of [`Candidates`] over the services' standings: over the compact copies with
    /// `large-registry` (checked against the records in debug builds), else over the records.
    #[cfg(feature = "large-registry")]
    fn candidates(&mut self, addr: Option<IpAddr>) -> Candidates {
        self.standings.refresh(&self.services);
        let candidates = self.standings.candidates(addr);
        debug_assert_eq!(
            candidates,
            Candidates::walk(self.services.iter().map(Standing::of), addr)
        );
        candidates
    }

    /// Index of the first service whose age is over `ttl`, as the expiry check sees it.
    pub(crate) fn first_expired(&self, now: Instant, ttl: Ttl) -> Option<usize> {
        self.services
            .iter()
            .position(|s| ttl.is_expired(Seen::at(now), s.last_seen))
    }
}

/// A service in the sorted index: the first eight bytes of its sid's [`SidKey`] (as two
/// words, so that an entry is 12 bytes on 32-bit targets) and its index.
#[cfg(any(feature = "large-registry", not(target_os = "none")))]
#[derive(Debug, Clone, Copy)]
struct SidEntry {
    prefix_hi: u32,
    prefix_lo: u32,
    index: u16,
}

#[cfg(any(feature = "large-registry", not(target_os = "none")))]
impl SidEntry {
    fn new(key: SidKey, index: u16) -> Self {
        Self {
            prefix_hi: (key.0 >> 32) as u32,
            prefix_lo: key.0 as u32,
            index,
        }
    }

    /// The first eight bytes of the sid's key ([`SidKey`]'s first word).
    fn prefix(&self) -> u64 {
        (u64::from(self.prefix_hi) << 32) | u64::from(self.prefix_lo)
    }
}

/// A sid as integers: its zero-padded bytes, big-endian, and its length, so that comparing
/// two sids compares three integers. Equal keys mean equal sids (sids are at most 16 bytes).
#[cfg(any(
    feature = "large-registry",
    feature = "heartbeat-fast-path",
    not(target_os = "none")
))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SidKey(u64, u64, u8);

#[cfg(any(
    feature = "large-registry",
    feature = "heartbeat-fast-path",
    not(target_os = "none")
))]
impl SidKey {
    fn of(sid: &[u8]) -> Self {
        let mut bytes = [0u8; 16];
        let len = sid.len().min(16);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..len), sid.get(..len)) {
            dst.copy_from_slice(src);
        }
        let (hi, lo) = bytes.split_at(8);
        let word = |half: &[u8]| u64::from_be_bytes(half.try_into().unwrap_or_default());
        // A sid longer than 16 bytes is never stored; its key sorts after all others.
        let len = if sid.len() > 16 { u8::MAX } else { len as u8 };
        Self(word(hi), word(lo), len)
    }

    /// The key of a stored sid (the same as [`of`](Self::of) its bytes), from its
    /// zero-padded array without copying.
    fn of_sid(sid: &Sid) -> Self {
        let (hi, lo) = sid.padded().split_at(8);
        let word = |half: &[u8]| u64::from_be_bytes(half.try_into().unwrap_or_default());
        // At most 16 bytes: the length fits.
        Self(word(hi), word(lo), sid.len() as u8)
    }
}

/// The expiry rule: a service expires when its age is strictly greater than the ttl, in whole
/// seconds for the reference profile (spec 5.9) or in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ttl {
    pub(crate) ms: u64,
    pub(crate) whole_seconds: bool,
}

impl Ttl {
    pub(crate) fn is_expired(self, now: Seen, last_seen: Seen) -> bool {
        now.0 >= self.expires_at(last_seen).0
    }

    /// The first instant at which a service last seen at `last_seen` is expired.
    pub(crate) fn expires_at(self, last_seen: Seen) -> Seen {
        let after = if self.whole_seconds {
            // whole_secs(age) > ttl_secs  <=>  age >= (ttl_secs + 1) * 1000
            let secs = crate::time::whole_secs(self.ms);
            secs.saturating_add(1).saturating_mul(1000)
        } else {
            self.ms.saturating_add(1)
        };
        Seen(last_seen.0.saturating_add(after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Hid;
    use core::net::Ipv4Addr;

    #[test]
    fn service_expires_only_after_ttl_strictly_in_whole_seconds() {
        let ttl = Ttl {
            ms: 600_000,
            whole_seconds: true,
        };
        let seen = Seen::at(Instant::from_millis(1_000));
        assert!(!ttl.is_expired(Seen::at(Instant::from_millis(601_999)), seen));
        assert!(ttl.is_expired(Seen::at(Instant::from_millis(602_000)), seen));
    }

    fn sid(text: &str) -> Sid {
        Sid::new(text.as_bytes()).unwrap()
    }

    #[test]
    fn lookups_follow_inserts_and_removals_in_arrival_order() {
        let mut registry = Registry::<8>::new();
        let hid = Hid::new(b"02:fc:00:00:00:01").unwrap();
        for name in ["m", "c", "x", "a", "q"] {
            registry
                .insert(Service::new(sid(name), hid, Instant::ZERO))
                .unwrap();
        }
        assert!(
            registry
                .insert(Service::new(sid("c"), hid, Instant::ZERO))
                .is_none()
        );
        let order: std::vec::Vec<_> = registry.iter().map(|s| s.sid).collect();
        assert_eq!(order, ["m", "c", "x", "a", "q"].map(sid));
        registry.remove_at(1).unwrap();
        for name in ["m", "x", "a", "q"] {
            let found = registry.get(name.as_bytes()).unwrap();
            assert_eq!(found.sid, sid(name));
        }
        assert!(registry.get(b"c").is_none());
        while registry.remove_at(0).is_some() {}
        assert_eq!(registry.len(), 0);
        assert!(registry.get(b"q").is_none());
    }

    fn newcomer(registry: &mut Registry<16>, name: &str, ip: [u8; 4], at: u64, frames: u8) {
        let hid = Hid::new(b"02:fc:00:00:00:01").unwrap();
        let mut service = Service::new(sid(name), hid, Instant::from_millis(at));
        service.ip = Some(IpAddr::V4(Ipv4Addr::from(ip)));
        service.frames = frames;
        registry.insert(service).unwrap();
    }

    fn established(registry: &mut Registry<16>, name: &str) {
        registry
            .get_mut(name.as_bytes())
            .unwrap()
            .set_established(true);
    }

    #[test]
    fn address_shares_follow_the_capacity() {
        assert_eq!(per_address_slots(1), 1);
        assert_eq!(per_address_slots(16), 2);
        assert_eq!(per_address_slots(128), 8);
        assert_eq!(per_address_slots(1024), 64);
    }

    #[test]
    fn newcomers_replace_nobody_while_there_is_room() {
        let mut registry = Registry::<16>::new();
        for i in 0..15u8 {
            newcomer(
                &mut registry,
                &std::format!("s{i}"),
                [10, 0, 0, 66],
                u64::from(i),
                1,
            );
        }
        let flood = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)));
        assert_eq!(registry.room_for(flood), Ok(None));
    }

    #[test]
    fn a_newcomer_over_its_address_share_replaces_the_weakest_from_that_address() {
        let mut registry = Registry::<16>::new();
        let flood = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66)));
        newcomer(&mut registry, "a", [10, 0, 0, 66], 0, 3);
        newcomer(&mut registry, "b", [10, 0, 0, 66], 5, 2);
        for i in 0..14u8 {
            // Weaker than a and b, but from other addresses.
            newcomer(&mut registry, &std::format!("o{i}"), [10, 0, 1, i], 9, 1);
        }
        // Two from .66 already: the third replaces b (heard less than a).
        assert_eq!(registry.room_for(flood), Ok(registry.index_of(b"b")));
        // Another address replaces the weakest of all: the earliest one-frame service.
        let other = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 8)));
        assert_eq!(registry.room_for(other), Ok(registry.index_of(b"o0")));
    }

    #[test]
    fn a_full_registry_replaces_the_earliest_of_the_least_heard() {
        let mut registry = Registry::<16>::new();
        for i in 0..16u8 {
            let name = std::format!("s{i}");
            newcomer(&mut registry, &name, [10, 0, 0, i], u64::from(i), 1 + i % 2);
            if i < 8 {
                established(&mut registry, &name);
            }
        }
        // s8 is the earliest of those heard once and still on probation.
        assert_eq!(registry.room_for(None), Ok(registry.index_of(b"s8")));
    }

    #[test]
    fn established_services_are_never_replaced() {
        let mut registry = Registry::<16>::new();
        for i in 0..16u8 {
            let name = std::format!("s{i}");
            newcomer(&mut registry, &name, [10, 0, 0, i], u64::from(i), 1);
            established(&mut registry, &name);
        }
        assert_eq!(registry.room_for(None), Err(Full));
        let flood = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(registry.room_for(flood), Err(Full));
    }

    #[test]
    fn probation_ends_on_a_second_frame_after_the_probation_time() {
        let hid = Hid::new(b"02:fc:00:00:00:01").unwrap();
        let mut service = Service::new(sid("x"), hid, Instant::from_millis(1_000));
        service.note_frame(Instant::from_millis(1_000), 1_000);
        service.note_frame(Instant::from_millis(1_999), 1_000);
        assert!(!service.is_established());
        service.note_frame(Instant::from_millis(2_000), 1_000);
        assert!(service.is_established());
    }

    #[test]
    fn the_key_of_a_stored_sid_is_the_key_of_its_bytes() {
        for text in ["", "a", "AbCd1234", "0123456789abcdef", "\u{0}x"] {
            let stored = sid(text);
            assert_eq!(
                SidKey::of_sid(&stored),
                SidKey::of(text.as_bytes()),
                "{text:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn lookups_match_a_list_model_through_inserts_and_removals(
            ops in proptest::collection::vec(
                (proptest::bool::weighted(0.7), proptest::collection::vec(0u8..4, 1..=16)),
                0..200,
            )
        ) {
            let hid = Hid::new(b"02:fc:00:00:00:01").unwrap();
            let mut registry = Registry::<16>::new();
            let mut model: std::vec::Vec<Sid> = std::vec::Vec::new();
            for (insert, bytes) in ops {
                let sid = Sid::new(&bytes).unwrap();
                if insert {
                    let added = registry.insert(Service::new(sid, hid, Instant::ZERO));
                    if model.contains(&sid) || model.len() == 16 {
                        proptest::prop_assert!(added.is_none());
                    } else {
                        proptest::prop_assert_eq!(added, Some(model.len()));
                        model.push(sid);
                    }
                } else if let Some(at) = model.iter().position(|s| *s == sid) {
                    let removed = registry.remove_at(at).unwrap();
                    proptest::prop_assert_eq!(removed.sid, sid);
                    model.remove(at);
                }
                let order: std::vec::Vec<Sid> = registry.iter().map(|s| s.sid).collect();
                proptest::prop_assert_eq!(&order, &model);
                for (at, sid) in model.iter().enumerate() {
                    proptest::prop_assert_eq!(registry.index_of(sid.as_bytes()), Some(at));
                    // The walk a microcontroller's registry finds services with, without
                    // the sorted index.
                    proptest::prop_assert_eq!(registry.walk(sid.as_bytes()), Some(at));
                }
                proptest::prop_assert!(registry.walk(&bytes) == model.iter().position(|s| *s == sid));
                // `find` (its remembered index gone stale by the inserts and removals) finds
                // what `index_of` does, in the model's order and backwards.
                for (at, sid) in model.iter().enumerate().chain(model.iter().enumerate().rev()) {
                    proptest::prop_assert_eq!(registry.find(sid.as_bytes()), Some(at));
                }
                proptest::prop_assert!(registry.find(&bytes) == model.iter().position(|s| *s == sid));
                proptest::prop_assert!(registry.get(&bytes).map(|s| s.sid) == model.iter().copied().find(|s| *s == sid));
            }
        }
    }

    /// The eviction rule as first written: count the newcomer's address, then look for the
    /// weakest, each a walk over the records.
    fn victim_by_two_walks(
        registry: &Registry<16>,
        addr: Option<IpAddr>,
    ) -> Result<Option<usize>, Full> {
        if !registry.is_full() {
            return Ok(None);
        }
        let on_probation = || {
            registry
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.is_established())
        };
        let from_addr = addr.map_or(0, |_| on_probation().filter(|(_, s)| s.ip == addr).count());
        let own_share = addr.is_some() && from_addr >= per_address_slots(16);
        on_probation()
            .filter(|(_, s)| !own_share || s.ip == addr)
            .min_by(|(_, a), (_, b)| {
                a.frames
                    .cmp(&b.frames)
                    .then(a.first_heard.cmp(&b.first_heard))
            })
            .map(|(index, _)| Some(index))
            .ok_or(Full)
    }

    proptest::proptest! {
        /// Whatever changes the records through every way the registry hands them out, the
        /// service to evict is the one the rule as first written picks.
        #[test]
        fn eviction_follows_the_rule_through_changes_and_removals(
            ops in proptest::collection::vec((0u8..6, 0usize..20, 0u8..4, 0u8..3), 0..300)
        ) {
            let mut registry = Registry::<16>::new();
            let hid = Hid::new(b"02:fc:00:00:00:01").unwrap();
            let ip = |host: u8| Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, host)));
            for (step, (op, at, value, host)) in (0u32..).zip(ops) {
                match op {
                    0 | 1 => {
                        let mut service = Service::new(
                            Sid::new(&step.to_be_bytes()).unwrap(),
                            hid,
                            Instant::from_millis(u64::from(value) * 10),
                        );
                        service.ip = ip(host);
                        service.frames = value;
                        if let Ok(Some(victim)) = registry.room_for(ip(host)) {
                            registry.remove_at(victim);
                        }
                        let _ = registry.insert(service);
                    }
                    2 => {
                        if let Some(service) = registry.at_mut(at) {
                            service.frames = value;
                            service.set_established(value == 3);
                        }
                    }
                    3 => {
                        for service in registry.iter_mut().skip(at % 4) {
                            service.frames = service.frames.saturating_add(value);
                            service.ip = ip(host);
                        }
                    }
                    4 => {
                        let _ = registry.remove_at(at);
                    }
                    _ => {
                        let sid = registry.at(at).map(|s| s.sid);
                        if let Some(service) = sid.and_then(|sid| registry.get_mut(sid.as_bytes())) {
                            service.ip = ip(host);
                        }
                    }
                }
                for addr in [None, ip(0), ip(1), ip(2)] {
                    let expected = victim_by_two_walks(&registry, addr);
                    proptest::prop_assert_eq!(registry.room_for(addr), expected);
                }
            }
        }
    }

    #[test]
    fn service_expires_only_after_ttl_strictly_in_milliseconds() {
        let ttl = Ttl {
            ms: 2_000,
            whole_seconds: false,
        };
        let seen = Seen::at(Instant::from_millis(1_000));
        assert!(!ttl.is_expired(Seen::at(Instant::from_millis(3_000)), seen));
        assert!(ttl.is_expired(Seen::at(Instant::from_millis(3_001)), seen));
    }
}
