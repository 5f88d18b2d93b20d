//! The sending half of [`Membership`]: timers (beats, loss checks, exchanges, seed retries)
//! and the frames they produce.

use core::net::SocketAddr;

use super::*;

impl<const MEMBERS: usize, const ROUTES: usize> Membership<MEMBERS, ROUTES> {
    /// Input: time passed; runs whatever is due (beats, checks, exchanges, seed retries).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.leaving {
            return;
        }
        if now >= self.next_beat {
            self.beat_cursor = 0;
            self.sweep_pushes = core::mem::take(&mut self.exports_changed);
            self.next_beat = self
                .next_beat
                .saturating_add_millis(self.config.beat_interval);
            if self.next_beat <= now {
                self.next_beat = now.saturating_add_millis(self.config.beat_interval);
            }
        }
        if now >= self.next_check {
            self.check(now);
            self.next_check = now.saturating_add_millis(self.config.check_interval);
        }
        if now >= self.next_exchange {
            self.exchange();
            self.next_exchange = now.saturating_add_millis(self.exchange_delay());
        }
        let nobody_alive = !self.members.iter().any(|m| m.state == MemberState::Alive);
        for i in 0..self.seeds.len() {
            let Some(seed) = self.seeds.get_mut(i) else {
                break;
            };
            if (seed.answers < SEED_ANSWERS || nobody_alive) && seed.next_try <= now {
                seed.next_try = now.saturating_add_millis(self.config.seed_retry);
                let addr = seed.addr;
                if self.pushes.push_back(addr).is_err() {
                    self.stats.pending_dropped += 1;
                }
            }
        }
    }

    fn check(&mut self, now: Instant) {
        let lost_after = self.config.lost_after;
        let reprobe = self.config.reprobe_interval;
        for i in 0..self.members.len() {
            let Some(m) = self.members.get_mut(i) else {
                break;
            };
            if m.state == MemberState::Alive
                && now.as_millis().saturating_sub(m.last_heard.as_millis()) >= lost_after
            {
                m.state = MemberState::Lost;
                m.next_probe = now.saturating_add_millis(reprobe);
                let (sid, heard) = (m.entry.sid, m.heard);
                if heard {
                    self.emit(MemberEvent::Lost(sid));
                }
                self.drop_routes_of(&sid);
            }
        }
    }

    fn exchange(&mut self) {
        let alive = self
            .members
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .count();
        if alive == 0 {
            return;
        }
        let pick = self.rng.below(alive as u64) as usize;
        let target = self
            .members
            .iter()
            .filter(|m| m.state == MemberState::Alive)
            .nth(pick)
            .map(|m| m.entry.addr);
        if let Some(addr) = target
            && self.pushes.push_back(addr).is_err()
        {
            self.stats.pending_dropped += 1;
        }
    }

    /// Output: the next frame to send, written at the start of `buf`. Exchanges carry as many
    /// members as fit in half of `buf`.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Outgoing> {
        loop {
            let (to, verb) = self.next_send(now)?;
            match self.write(verb, buf) {
                Ok(len) => return Some(Outgoing { to, len, verb }),
                Err(_) => self.stats.encode_failed += 1,
            }
        }
    }

    fn next_send(&mut self, now: Instant) -> Option<(SocketAddr, Verb)> {
        if let Some(to) = self.replies.pop_front() {
            return Some((to, Verb::Pull));
        }
        if let Some(to) = self.pushes.pop_front() {
            return Some((to, Verb::Push));
        }
        let reprobe = self.config.reprobe_interval;
        while let Some(m) = self.members.get_mut(self.beat_cursor) {
            self.beat_cursor += 1;
            match m.state {
                MemberState::Alive if self.leaving => return Some((m.entry.addr, Verb::Bye)),
                MemberState::Lost if self.leaving => {}
                MemberState::Alive if self.sweep_pushes => return Some((m.entry.addr, Verb::Push)),
                MemberState::Alive => return Some((m.entry.addr, Verb::Beat)),
                MemberState::Lost if m.next_probe <= now => {
                    m.next_probe = now.saturating_add_millis(reprobe);
                    return Some((m.entry.addr, Verb::Push));
                }
                MemberState::Lost => {}
            }
        }
        // The sweep is over: members added until the next beat wait for it.
        self.beat_cursor = usize::MAX;
        None
    }

    fn write(&mut self, verb: Verb, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let word = MxWord {
            version: MX_VERSION,
            verb,
            incarnation: self.me.incarnation,
            port: self.me.addr.port(),
            exports: self.exports_generation,
            segment: self.segment,
        };
        let (sid, hid) = (self.me.sid, self.me.hid);
        let sender = Sender {
            sid: sid.as_str().unwrap_or_default(),
            hid: hid.as_str().unwrap_or_default(),
        };
        if matches!(verb, Verb::Beat | Verb::Bye) {
            return encode_frame(sender, &word, None, buf);
        }
        let half = buf.len() / 2;
        let (head, tail) = buf.split_at_mut(half);
        let room = tail.len().min(head.len().saturating_sub(FRAME_OVERHEAD));
        let mut limit = usize::MAX;
        // The exports come whole after the members: written into `head` (free until the
        // frame is encoded) to know how much room they leave.
        let exports_len = self.write_exports(head);
        let room = room.saturating_sub(exports_len);
        // A length that would start `C0 8D` is refused by the encoder: one entry fewer.
        for _ in 0..4 {
            let raw_len = self.write_entries(tail.get_mut(..room).unwrap_or_default(), limit);
            // Written again each time: a refused encoding overwrote `head`.
            self.write_exports(head);
            let end = raw_len.0 + exports_len;
            if let (Some(to), Some(from)) = (tail.get_mut(raw_len.0..end), head.get(..exports_len))
            {
                to.copy_from_slice(from);
            }
            let raw = tail.get(..end).unwrap_or_default();
            match encode_frame(sender, &word, Some(raw), head) {
                Err(EncodeError::ReservedVarintPrefix { .. }) if raw_len.1 > 0 => {
                    limit = raw_len.1 - 1;
                }
                other => return other,
            }
        }
        Err(EncodeError::TooLarge)
    }

    /// Writes this node's exports as an entry list into `out`; returns the bytes used (none
    /// when even an empty list does not fit).
    fn write_exports(&self, out: &mut [u8]) -> usize {
        let Some(mut writer) = EntryWriter::new(out) else {
            return 0;
        };
        for entry in &self.exports {
            if writer.push(entry).is_none() {
                break;
            }
        }
        writer.finish()
    }

    /// Writes this node's entry and then the heard, alive members from a random start, at
    /// most `limit` entries. Returns the bytes and the number of entries written.
    fn write_entries(&mut self, out: &mut [u8], limit: usize) -> (usize, usize) {
        let Some(mut writer) = EntryWriter::new(out) else {
            return (0, 0);
        };
        let mut count = 0;
        if writer.push(&self.me).is_some() {
            count += 1;
        }
        let n = self.members.len();
        let start = if n == 0 {
            0
        } else {
            self.rng.below(n as u64) as usize
        };
        for k in 0..n {
            if count >= limit {
                break;
            }
            let Some(m) = self.members.get((start + k) % n) else {
                continue;
            };
            if m.state != MemberState::Alive || !m.heard || m.placeholder {
                continue;
            }
            if writer.push(&m.entry).is_none() {
                break;
            }
            count += 1;
        }
        (writer.finish(), count)
    }

    /// Output: the next change of the member table.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    /// Output: when [`handle_timeout`](Self::handle_timeout) is next due (now, when frames
    /// are waiting to be polled).
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        let mut next = self.next_beat.min(self.next_check).min(self.next_exchange);
        // Answered seeds are retried (when nobody is alive) at the checks.
        for seed in self.seeds.iter().filter(|s| s.answers < SEED_ANSWERS) {
            next = next.min(seed.next_try);
        }
        next
    }
}
