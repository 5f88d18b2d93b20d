//! The receive pipeline (spec 5.6), in the reference's order, with this project's decisions.

use super::answered::{QueryKey, Recall};
use super::event_queue::Header;
use super::held::{Held, HeldStore, ResponseRoute};
use super::props::{self, ReceivedProps};
use super::{Core, Service, earliest};
use crate::error::DatagramError;
use crate::event::{Event, LostReason, Payload, Ruid};
use crate::identity::{Hid, Sid, Tag, TagList};
use crate::policy::{PayloadMut, Policy, Verdict};
use crate::protocol::{ConnSlot, Protocol, ProtocolList};
use crate::service::Seen;
use crate::stats::bump;
use crate::time::{Instant, millis_ceil};
use crate::transmit::Source;
use crate::wire::{List, Message, MessageKind, Str};

/// What a frame's `data` means for its kind, parsed before any state changes.
enum Parsed<'m> {
    None,
    Props(ReceivedProps),
    Ping(&'m str),
    Failed(ProtocolList),
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// One complete frame from `source`, as its fields (decoded once, as the frame was
    /// validated). `S` is the node's room for held queries: with none at all
    /// ([`NoHeld`](super::NoHeld)) the code that holds a query is not linked.
    pub(super) fn handle_frame<S: HeldStore>(
        &mut self,
        now: Instant,
        source: &Source,
        msg: &Message<'_>,
        held: &mut Option<Held<'_>>,
    ) -> Result<(), DatagramError> {
        // Step 2: the local-only rule.
        if !self.config.remote && !source.local {
            return Err(DatagramError::NonLocalSource);
        }
        // Step 3: own echoes and filter misses stop decoding early in the reference.
        if msg.sid.is_some_and(|s| s.as_bytes() == self.sid.as_bytes()) {
            bump(&mut self.stats.own_echoes);
            return Ok(());
        }
        if let Some(filter) = msg.filter
            && !self.filter_matches(filter)
        {
            bump(&mut self.stats.filtered_out);
            return Ok(());
        }
        // Step 4: the channel.
        let channel = msg.channel.ok_or(DatagramError::Invalid)?;
        if !self.subscribed(channel) {
            return Err(DatagramError::NotSubscribed(channel));
        }
        // Step 5: receive hooks, which may rewrite the payload. The hook reads it in the
        // frame; a write copies it into the payload pool's free slot (made first, for a
        // policy that sees frames, by giving up a kept answer when every slot is taken),
        // from which the rewritten payload is moved out before the frame is handled.
        let data = msg.data.map(|d| d.as_bytes());
        if !Payload::<DATA>::fits(data, msg.raw) {
            bump(&mut self.stats.oversized);
            return Err(DatagramError::Oversized);
        }
        if self.policy.sees_every_frame() {
            self.make_payload_room();
        }
        let mut vacant = self.payloads.vacant().map(|(_, payload)| payload);
        let (verdict, changed) = {
            let buf = vacant.as_deref_mut().map(|payload| {
                let (bytes, shape) = payload.parts_mut();
                (bytes.as_mut_view(), shape)
            });
            let mut payload = PayloadMut::received(buf, data, msg.raw);
            let verdict = self.policy.on_receive(msg, source, &mut payload);
            (verdict, payload.changed())
        };
        if verdict == Verdict::Reject {
            return Err(DatagramError::Rejected);
        }
        // A changed payload is in the free slot: moved out, the slot stays free.
        let Some(payload) = vacant.filter(|_| changed).map(core::mem::take) else {
            return self.accept::<S>(now, source, msg, channel, held);
        };
        let rewritten = Message {
            data: payload.data().map(Str::from_bytes),
            raw: payload.raw(),
            ..*msg
        };
        self.accept::<S>(now, source, &rewritten, channel, held)
    }

    /// True when `filter` names this node's sid, hid or one of its tags (spec 5.8).
    fn filter_matches(&self, filter: List<'_>) -> bool {
        filter.iter().any(|item| {
            item == self.sid.as_bytes()
                || item == self.hid.as_bytes()
                || self.config.tags.iter().any(|t| t.as_bytes() == item)
        })
    }

    /// Steps 6–8: validation, the service, and the per-type handling.
    fn accept<S: HeldStore>(
        &mut self,
        now: Instant,
        source: &Source,
        msg: &Message<'_>,
        channel: u64,
        held: &mut Option<Held<'_>>,
    ) -> Result<(), DatagramError> {
        let kind = match msg.kind {
            Some(MessageKind::Unknown(_)) | None => return Err(DatagramError::Invalid),
            Some(kind) => kind,
        };
        let (Some(sid), Some(hid), Some(letters)) = (msg.sid, msg.hid, msg.protocols) else {
            return Err(DatagramError::Invalid);
        };
        // Read once, for the check and for the service's record (a frame's list read twice,
        // as letters and then as protocols, cost ~150 instructions more on a host).
        let protocols = ProtocolList::from_letters(letters.iter());
        if !protocols.contains(Protocol::Multicast) {
            return Err(DatagramError::Invalid);
        }
        if !self.config.remote && hid.as_bytes() != self.hid.as_bytes() {
            return Err(DatagramError::ForeignHid);
        }
        if (channel == 1 || channel == 2) && !source.local {
            return Err(DatagramError::NotSubscribed(channel));
        }
        // A sid, hid or tags list too long to keep: one refusal for the three.
        let mut tags = None;
        let sid_hid = (Sid::new(sid.as_bytes()), Hid::new(hid.as_bytes()));
        let tags_fit = msg.tags.is_none_or(|list| {
            tags = read_tags(list);
            tags.is_some()
        });
        let ((Some(sid), Some(hid)), true) = (sid_hid, tags_fit) else {
            bump(&mut self.stats.oversized);
            return Err(DatagramError::Oversized);
        };
        let parsed = parse_data(kind, msg.data)?;
        let index = self.registry.find(sid.as_bytes());
        let known = index.and_then(|i| self.registry.at(i));
        if self.policy.on_service(known, msg) == Verdict::Reject {
            return Err(DatagramError::Rejected);
        }
        let tags_changed = match (known, &tags) {
            (Some(service), Some(tags)) => service.tags != *tags,
            _ => false,
        };
        if let Some(service) = known {
            if service.hid != hid {
                return Err(DatagramError::Invalid);
            }
            if tags_changed && self.policy.on_tags_changed(service, msg) == Verdict::Reject {
                return Err(DatagramError::Rejected);
            }
        }
        // Validation passed: from here on, state changes.
        let created = index.is_none();
        let index = match index {
            Some(index) => index,
            None => {
                let addr = source.ip().filter(|_| !source.local);
                match self.registry.room_for(addr) {
                    Ok(None) => {}
                    Ok(Some(victim)) => {
                        if let Some(evicted) = self.registry.remove_at(victim) {
                            bump(&mut self.stats.services_evicted);
                            self.service_removed(now, &evicted, LostReason::Evicted);
                        }
                    }
                    Err(_) => {
                        bump(&mut self.stats.services_rejected);
                        return Err(DatagramError::Full);
                    }
                }
                let mut service = Service::new(sid, hid, now);
                let delay = millis_ceil(self.config.discovered_delay);
                service.announce_at(now.saturating_add_millis(delay));
                let due = service.discover_at();
                self.discover_pending = self.discover_pending.saturating_add(1);
                let index = self.registry.insert(service).ok_or(DatagramError::Full)?;
                self.discover_next = earliest(self.discover_next, due);
                index
            }
        };
        let addressed_to_us = msg.filter.is_some_and(|f| f.contains(self.sid.as_bytes()));
        let was_expected = {
            let Some(service) = self.registry.at_mut(index) else {
                return Err(DatagramError::Full);
            };
            // A connection becomes the route to the service only for a frame addressed to
            // this node (every direct send names its target in `filter`, spec 3.4) from the
            // service's address (or both on this host): a multicast frame of the service
            // copied onto someone else's TCP connection must not take its traffic there.
            let from_its_address = match (service.ip, source.ip()) {
                (Some(known), Some(from)) => known == from || (service.is_local() && source.local),
                _ => true,
            };
            let route_ok = addressed_to_us && from_its_address;
            service.protocols = protocols;
            service.set_local(source.local);
            service.note_address(source.via, source.ip(), source.local);
            if let Some(tags) = tags {
                service.tags = tags;
                service.set_told();
            }
            // Q12: any accepted frame counts as seen.
            service.last_seen = Seen::at(now);
            service.heard = now;
            service.note_frame(now, millis_ceil(self.config.probation));
            match source.via {
                Protocol::Tcp if route_ok => {
                    service.tcp_conn = ConnSlot::new(source.conn.or(service.tcp_conn.get()));
                }
                Protocol::Tcp => bump(&mut self.stats.routes_refused),
                Protocol::Unix if addressed_to_us => {
                    // Without the feature `unix` the node never sends over `u`.
                    #[cfg(feature = "unix")]
                    {
                        service.unix_conn = ConnSlot::new(source.conn.or(service.unix_conn.get()));
                    }
                }
                Protocol::Unix => bump(&mut self.stats.routes_refused),
                Protocol::Multicast => {}
            }
            service.take_expected()
        };
        if was_expected {
            // Q13: recovery takes the sid out of the pending ping batch.
            self.ping.remove(sid.as_bytes());
        }
        if tags_changed {
            self.push_event(Event::TagsChanged { sid });
        }
        // A service first met through a frame without tags (a periodic heartbeat, an event, a
        // query, ...) has not told its props and tags, and may not for minutes: ask it with a
        // discovery filtered to it. Join heartbeats and discoveries carry both.
        if created && msg.tags.is_none() && kind != MessageKind::Disconnect {
            self.ask_for_props(&sid);
        }
        bump(&mut self.stats.frames_accepted);
        self.dispatch::<S>(now, source, index, sid, kind, channel, msg, parsed, held);
        Ok(())
    }

    /// Step 8: the per-type handling (spec 5.11).
    #[allow(clippy::too_many_arguments)]
    fn dispatch<S: HeldStore>(
        &mut self,
        now: Instant,
        source: &Source,
        index: usize,
        sid: Sid,
        kind: MessageKind,
        channel: u64,
        msg: &Message<'_>,
        parsed: Parsed<'_>,
        held: &mut Option<Held<'_>>,
    ) {
        match (kind, parsed) {
            (MessageKind::Disconnect, _) => {
                if let Some(service) = self.registry.remove_at(index) {
                    self.service_removed(now, &service, LostReason::Disconnected);
                }
            }
            (MessageKind::Heartbeat | MessageKind::Discovery | MessageKind::Flush, parsed) => {
                // A flush replaces the props; a discovery is answered, with props or without.
                if let Parsed::Props(props) = parsed {
                    self.apply_props(index, sid, props, kind == MessageKind::Flush, msg);
                }
                if kind == MessageKind::Discovery {
                    self.answer_discovery(sid, msg);
                }
            }
            (MessageKind::Ping, Parsed::Ping(data)) => self.handle_ping(now, data),
            (MessageKind::Query, _) => {
                let route = ResponseRoute::of(sid, channel, source, msg);
                // A copy of a query answered lately gets the same answer, without the policy
                // or the application ([`answered`](super::answered)).
                match self.recall_answer(now, sid.as_bytes(), channel, msg) {
                    Recall::New(query) => {
                        if !(S::HOLDS && self.hold_query(now, held, route, msg, query)) {
                            self.answer_query(now, index, route, msg, query);
                        }
                    }
                    Recall::Again(answer) => {
                        bump(&mut self.stats.answers_repeated);
                        self.queue_recalled(route, answer);
                    }
                    Recall::Forgotten => bump(&mut self.stats.copies_dropped),
                }
            }
            (MessageKind::Response, _) => self.handle_response(now, index, &sid, msg),
            (MessageKind::Event, _) => {
                let accepted = self
                    .registry
                    .at(index)
                    .is_some_and(|s| self.policy.on_event(s, msg) == Verdict::Accept);
                if accepted {
                    let event = Header::Message {
                        sid,
                        channel,
                        ruid: msg.ruid.and_then(|r| Ruid::new(r.as_bytes())),
                    };
                    // Too large for `DATA`: the message arrives with an empty payload.
                    self.push_event_filled(event, msg.data.map(|d| d.as_bytes()), msg.raw);
                }
            }
            (MessageKind::Failed, Parsed::Failed(protocols)) => {
                for protocol in protocols.iter() {
                    if protocol != Protocol::Multicast && self.protocols.contains(protocol) {
                        self.push_event(Event::RefreshProtocol { protocol });
                    }
                }
            }
            _ => {}
        }
    }

    #[cfg_attr(
        not(feature = "node-data"),
        expect(unused_variables, reason = "`sid` and `msg` carry the sender's data")
    )]
    fn apply_props(
        &mut self,
        index: usize,
        sid: Sid,
        props: ReceivedProps,
        replace: bool,
        msg: &Message<'_>,
    ) {
        if !props.apply(&mut self.registry, index, replace) {
            bump(&mut self.stats.oversized);
        }
        #[cfg(feature = "node-data")]
        if let Some(seen) = props.data {
            let text = msg.data.and_then(|d| d.to_str().ok()).unwrap_or_default();
            self.note_data(index, sid, seen, text);
        }
    }

    /// A query (type 4): the policy builds the answer, which goes back through the protocol
    /// (and connection) the query came in on, with `filter=[asker]` last; the answer is
    /// remembered for copies of the query ([`answered`](super::answered)) under `query`, its
    /// key from [`recall_answer`](Self::recall_answer).
    fn answer_query(
        &mut self,
        now: Instant,
        index: usize,
        route: ResponseRoute,
        msg: &Message<'_>,
        query: Option<QueryKey>,
    ) {
        if self.registry.at(index).is_none() {
            return;
        }
        // Built in the payload pool, where it is sent from.
        let stored = self.store_policy_answer(index, msg);
        let (data, raw) = (msg.data.map(|d| d.as_bytes()), msg.raw);
        if Payload::<DATA>::fits(data, raw) {
            let event = Header::QueryReceived {
                sid: route.asker,
                channel: route.channel,
                ruid: route.ruid,
            };
            self.push_event_filled(event, data, raw);
        }
        // Remembered before it is queued: the policy has answered, so a copy of the query
        // gets this answer even when the outbox has no room for it now.
        let Some(answer) = stored else {
            return;
        };
        self.remember_answer(now, route.asker.as_bytes(), query, answer);
        self.queue_recalled(route, answer);
    }
}

/// A received tags list, when it fits.
fn read_tags(list: List<'_>) -> Option<TagList> {
    let mut tags = TagList::new();
    for item in list.iter() {
        tags.push(Tag::new(item)?).ok()?;
    }
    Some(tags)
}

/// Parses what `data` must hold for `kind` (spec 3.5); an invalid value drops the frame.
/// Unicode's `White_Space` property, as [`char::is_whitespace`] (so a ping whose `data` is
/// only white space names nobody, as with `str::trim`), without the 256-byte lookup table
/// `core` links for it: the 25 characters, listed.
fn is_white_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn parse_data<'m>(kind: MessageKind, data: Option<Str<'m>>) -> Result<Parsed<'m>, DatagramError> {
    let text = || {
        data.map(|d| d.to_str().map_err(|_| DatagramError::Invalid))
            .transpose()
    };
    Ok(match kind {
        MessageKind::Heartbeat | MessageKind::Discovery | MessageKind::Flush => match text()? {
            Some(t) => Parsed::Props(props::read_props(t).map_err(|_| DatagramError::Invalid)?),
            None => Parsed::None,
        },
        MessageKind::Ping => match text()? {
            Some(t) if !t.chars().all(is_white_space) => {
                crate::wire::tcl_list::validate_list(t).map_err(|_| DatagramError::Invalid)?;
                Parsed::Ping(t)
            }
            _ => Parsed::None,
        },
        MessageKind::Failed => match text()? {
            Some(t) => Parsed::Failed(props::read_failed(t).map_err(|_| DatagramError::Invalid)?),
            None => Parsed::None,
        },
        _ => Parsed::None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn white_space_is_exactly_what_char_is_whitespace_says() {
        for c in (0..=0x10_FFFF_u32).filter_map(char::from_u32) {
            assert_eq!(super::is_white_space(c), c.is_whitespace(), "{c:?}");
        }
    }
}
