//! The receiving half of [`Membership`]: `mx` frames read, members and routes merged,
//! `bye`, and what the node reports about departures.

use core::net::SocketAddr;

use super::*;

impl<const MEMBERS: usize, const ROUTES: usize> Membership<MEMBERS, ROUTES> {
    /// Input: one received frame, with the address it came from (only its IP is used).
    /// Returns `Ok(false)` when the frame is not an `mx` frame (the node handles it), and
    /// `Ok(true)` when it was membership traffic.
    ///
    /// # Errors
    ///
    /// A [`MembershipError`] when an `mx` frame is malformed; it is dropped.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: &Message<'_>,
    ) -> Result<bool, MembershipError> {
        let Some(word) = message.op.and_then(|op| MxWord::parse(op.as_bytes())) else {
            return Ok(false);
        };
        let outcome = self.handle_word(now, from, message, word);
        if outcome.is_err() {
            self.stats.bad_frames += 1;
        }
        outcome.map(|()| true)
    }

    fn handle_word(
        &mut self,
        now: Instant,
        from: SocketAddr,
        message: &Message<'_>,
        word: Result<MxWord, MxWordError>,
    ) -> Result<(), MembershipError> {
        let word = match word {
            Ok(word) => word,
            Err(MxWordError::UnknownVerb) => return Ok(()),
            Err(e) => return Err(MembershipError::Word(e)),
        };
        let sid = message
            .sid
            .and_then(|s| Sid::new(s.as_bytes()))
            .filter(|s| !s.is_empty())
            .ok_or(MembershipError::Sender)?;
        let hid = message
            .hid
            .and_then(|h| Hid::new(h.as_bytes()))
            .ok_or(MembershipError::Sender)?;
        if sid == self.me.sid {
            return Ok(());
        }
        let addr = SocketAddr::new(from.ip(), word.port);
        if word.verb == Verb::Bye {
            self.said_bye(now, &sid);
            return Ok(());
        }
        self.heard_from(now, sid, hid, addr, word.incarnation);
        if let Some(m) = self.find(&sid).ok().and_then(|i| self.members.get_mut(i)) {
            m.segment = word.segment;
        }
        if word.verb == Verb::Pull
            && let Some(seed) = self.seeds.iter_mut().find(|s| s.addr == addr)
        {
            seed.answers = seed.answers.saturating_add(1).min(SEED_ANSWERS);
        }
        if word.verb == Verb::Push && self.replies.push_back(addr).is_err() {
            self.stats.pending_dropped += 1;
        }
        if word.verb != Verb::Beat
            && let Some(raw) = message.raw
        {
            let trailer = self.merge(now, &sid, addr, raw)?;
            if word.version >= EXPORTS_VERSION {
                self.merge_routes(&sid, addr, trailer)?;
                if let Some(m) = self.find(&sid).ok().and_then(|i| self.members.get_mut(i)) {
                    m.exports_seen = word.exports;
                }
            }
        }
        if word.version >= EXPORTS_VERSION && word.verb == Verb::Beat {
            self.ask_exports(now, &sid, word.exports);
        }
        self.ask_unknown(now, &sid);
        Ok(())
    }

    /// A member heard from whose texts are still unknown gets a push (at most every
    /// `seed_retry`); its pull carries its own entry.
    fn ask_unknown(&mut self, now: Instant, sid: &Sid) {
        let retry = self.config.seed_retry;
        let Some(m) = self.find(sid).ok().and_then(|i| self.members.get_mut(i)) else {
            return;
        };
        if m.placeholder && m.state == MemberState::Alive && m.next_probe <= now {
            m.next_probe = now.saturating_add_millis(retry);
            if self.pushes.push_back(m.entry.addr).is_err() {
                self.stats.pending_dropped += 1;
            }
        }
    }

    /// A member whose beat announces other exports than its routes here come from gets a
    /// push (at most every `seed_retry`); its pull carries them.
    fn ask_exports(&mut self, now: Instant, sid: &Sid, generation: u32) {
        let retry = self.config.seed_retry;
        let Some(m) = self.find(sid).ok().and_then(|i| self.members.get_mut(i)) else {
            return;
        };
        if m.exports_seen != generation && !m.placeholder && m.next_probe <= now {
            m.next_probe = now.saturating_add_millis(retry);
            if self.pushes.push_back(m.entry.addr).is_err() {
                self.stats.pending_dropped += 1;
            }
        }
    }

    fn heard_from(&mut self, now: Instant, sid: Sid, hid: Hid, addr: SocketAddr, inc: u64) {
        match self.find(&sid) {
            Ok(i) => {
                let Some(m) = self.members.get_mut(i) else {
                    return;
                };
                m.last_heard = now;
                if inc >= m.entry.incarnation {
                    m.entry.addr = addr;
                    m.entry.hid = hid;
                }
                if inc > m.entry.incarnation {
                    m.entry.incarnation = inc;
                    m.placeholder = true;
                }
                let event = match (m.state, m.heard) {
                    (MemberState::Lost, true) => Some(MemberEvent::Back(sid)),
                    (_, false) => Some(MemberEvent::Joined(sid)),
                    (MemberState::Alive, true) => None,
                };
                m.state = MemberState::Alive;
                m.heard = true;
                if let Some(event) = event {
                    self.emit(event);
                }
            }
            Err(at) => {
                let entry = Entry {
                    sid,
                    hid,
                    addr,
                    incarnation: inc,
                    protocols: MemberText::EMPTY,
                    props: MemberText::EMPTY,
                    tags: MemberText::EMPTY,
                };
                if self.insert(now, at, entry, Learned::Direct, true) {
                    self.emit(MemberEvent::Joined(sid));
                }
            }
        }
    }

    /// Inserts at `at` (the sorted position); when full, replaces the member lost longest
    /// ago. Returns whether it was added.
    fn insert(
        &mut self,
        now: Instant,
        at: usize,
        entry: Entry,
        learned: Learned,
        heard: bool,
    ) -> bool {
        let member = Member {
            entry,
            state: MemberState::Alive,
            learned,
            heard,
            placeholder: heard && entry.protocols.is_empty(),
            segment: Segment::EMPTY,
            exports_seen: 0,
            last_heard: now,
            next_probe: now,
        };
        if self.members.is_full() {
            let oldest = self
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.state == MemberState::Lost)
                .min_by_key(|(_, m)| m.last_heard)
                .map(|(i, _)| i);
            let Some(victim) = oldest else {
                self.stats.table_full += 1;
                return false;
            };
            self.members.remove(victim);
            let at = match self.find(&entry.sid) {
                Ok(i) | Err(i) => i,
            };
            return self.members.insert(at, member).is_ok();
        }
        self.members.insert(at, member).is_ok()
    }

    /// The gateway `gateway`'s exports replace its routes. An unreadable list changes
    /// nothing.
    fn merge_routes(
        &mut self,
        gateway: &Sid,
        gateway_addr: SocketAddr,
        trailer: &[u8],
    ) -> Result<(), MembershipError> {
        let listed = Entries::new(trailer).map_err(MembershipError::Entries)?;
        for item in listed.clone() {
            item.map_err(MembershipError::Entries)?;
        }
        let events = &mut self.route_events;
        let stats = &mut self.stats;
        let dropped = self.routes.replace(
            gateway,
            gateway_addr,
            listed.filter_map(Result::ok),
            |event| {
                if events.push_back(event).is_err() {
                    stats.events_dropped += 1;
                }
            },
        );
        if dropped > 0 {
            self.stats.routes_full += 1;
        }
        Ok(())
    }

    /// Merges the entries of `raw`; returns the bytes after them (a later version's trailer).
    fn merge<'r>(
        &mut self,
        now: Instant,
        sender: &Sid,
        sender_addr: SocketAddr,
        raw: &'r [u8],
    ) -> Result<&'r [u8], MembershipError> {
        let mut entries = Entries::new(raw).map_err(MembershipError::Entries)?;
        for item in entries.by_ref() {
            let mut entry = item.map_err(MembershipError::Entries)?;
            if entry.sid == self.me.sid || entry.sid.is_empty() {
                continue;
            }
            if entry.sid == *sender {
                entry.addr = sender_addr;
            }
            match self.find(&entry.sid) {
                Ok(i) => {
                    let Some(m) = self.members.get_mut(i) else {
                        continue;
                    };
                    let newer = entry.incarnation > m.entry.incarnation;
                    if newer || (entry.incarnation == m.entry.incarnation && m.placeholder) {
                        let was_lost = m.state == MemberState::Lost;
                        m.entry = entry;
                        m.placeholder = false;
                        if newer && was_lost {
                            // Perhaps it moved: probe it at its new address soon.
                            m.next_probe = now;
                        }
                    }
                }
                Err(at) => {
                    self.insert(now, at, entry, Learned::Exchange, false);
                }
            }
        }
        Ok(entries.rest())
    }

    /// A member said bye: it is lost at once (with its event and its routes), and re-probed
    /// slowly like any lost member.
    fn said_bye(&mut self, now: Instant, sid: &Sid) {
        let reprobe = self.config.reprobe_interval;
        let Some(m) = self.find(sid).ok().and_then(|i| self.members.get_mut(i)) else {
            return;
        };
        if m.state == MemberState::Alive {
            m.state = MemberState::Lost;
            m.next_probe = now.saturating_add_millis(reprobe);
            if m.heard {
                self.emit(MemberEvent::Lost(*sid));
            }
        }
        self.drop_routes_of(sid);
    }

    /// Command: this node leaves. Each alive member gets a `bye` (polled as usual), then
    /// nothing more is sent.
    pub fn leave(&mut self) {
        self.leaving = true;
        self.replies.clear();
        self.pushes.clear();
        self.beat_cursor = 0;
    }

    /// Input: the node learned that `sid` left (its disconnect arrived on the LAN): it is
    /// marked lost at once, without an event, and re-probed slowly like any lost member.
    pub fn departed(&mut self, now: Instant, sid: &Sid) {
        let reprobe = self.config.reprobe_interval;
        if let Ok(i) = self.find(sid)
            && let Some(m) = self.members.get_mut(i)
            && m.state == MemberState::Alive
        {
            m.state = MemberState::Lost;
            m.next_probe = now.saturating_add_millis(reprobe);
        }
        self.drop_routes_of(sid);
    }
}
