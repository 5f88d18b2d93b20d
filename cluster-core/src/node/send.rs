//! The outbound side: route choice, protocol failover, type-8 reports, and serialisation
//! straight into the caller's buffer in `poll_transmit`. The queues it drains are
//! [`outbox`](super::outbox)'s.

use core::net::SocketAddr;

use super::outbox::{Broadcast, Channel, Direct, DirectBody, PING_MAX};
use super::props::PROPS_TEXT_LEN;
use super::{Core, Service};
use crate::error::SendError;
use crate::event::{Payload, Ruid};
use crate::identity::{Hid, MAX_TAGS, Sid, Tag, TagList};
use crate::policy::{Outgoing, Policy, Verdict};
use crate::protocol::{Protocol, ProtocolList};
use crate::stats::bump;
use crate::time::Instant;
use crate::transmit::{Destination, Endpoint, SendId, Transmit};
use crate::wire::{
    EncodeError, FOOTER, FieldId, FilterPlacement, HEADER, List, ListSource, MAX_DATAGRAM, Message,
    MessageKind, Str, VarintUse, varint_len,
};

/// The largest `data` text besides an application payload: the props (join heartbeats,
/// discovery answers), a ping's sid list, a failed report.
const CONTROL_TEXT_LEN: usize = {
    let ping = PING_MAX * 17;
    if ping > PROPS_TEXT_LEN {
        ping
    } else {
        PROPS_TEXT_LEN
    }
};

/// The buffer [`Node::TRANSMIT_BUF`](crate::Node::TRANSMIT_BUF) recommends: the largest frame
/// this node encodes, bounded by every field it may write, each at its largest at once. The
/// lists (tags, filter) are encoded in place from the node's tables, so the buffer holds the
/// frame only. `tests/transmit_buf.rs` fills a node to every limit and checks that each frame
/// fits.
pub(crate) const fn transmit_buf_len(services: usize, data: usize) -> usize {
    /// A string field of at most `len` bytes: the id, the length varint, the bytes.
    const fn string(len: usize) -> usize {
        1 + varint_len(len as u64) + len
    }
    /// A list field of at most `count` items of at most `len` bytes each.
    const fn list(count: usize, len: usize) -> usize {
        1 + varint_len(count as u64) + count * (varint_len(len as u64) + len)
    }
    /// A varint field (the id, then at most ten bytes).
    const VARINT: usize = 1 + 10;
    // `data` and `raw` share the payload (`data` + `raw` <= DATA); `error` replaces `data`.
    let text = if data > CONTROL_TEXT_LEN {
        data
    } else {
        CONTROL_TEXT_LEN
    };
    let body = list(if services > 1 { services } else { 1 }, Sid::MAX_LEN) // filter
        + string(Sid::MAX_LEN)
        + string(Hid::MAX_LEN)
        + VARINT // type
        + VARINT // channel
        + list(3, 1) // protocols
        + string(Ruid::MAX_LEN)
        + 2 // keepalive
        + 2 * (1 + varint_len(text as u64)) + text // data (or error) and raw
        + VARINT // known
        + list(MAX_TAGS, Tag::MAX_LEN);
    HEADER.len() + varint_len(body as u64) + body + FOOTER.len()
}

/// Which services a filter names.
#[derive(Debug, Clone, Copy)]
enum FilterOf<'s> {
    None,
    One(&'s Sid),
    Mark(u8),
    QueryTargets(u8),
}

/// What a queued direct send leads to (see `Core::transmit_direct`).
enum Next {
    /// A frame, encoded.
    Frame(Transmit),
    /// A frame to encode (asked without a buffer): the next `next_transmit` encodes it.
    Ready,
    /// No frame: what was settled led to none.
    Empty,
}

/// The fields a frame carries beyond the base ones, the tags and the filter (see
/// `Core::encode_frame`).
#[derive(Debug, Clone, Copy, Default)]
struct Extra<'a> {
    ruid: Option<Str<'a>>,
    keepalive: Option<bool>,
    data: Option<Str<'a>>,
    error: Option<Str<'a>>,
    raw: Option<&'a [u8]>,
    known: Option<u64>,
}

/// A filter's sids, read in place from the registry when the frame is encoded.
#[derive(Debug, Clone, Copy)]
struct Filter<'s> {
    of: FilterOf<'s>,
    /// The registry's services in arrival order, as two runs.
    services: (&'s [Service], &'s [Service]),
}

impl<'s> Filter<'s> {
    /// The services in arrival order (one run without `large-registry`).
    fn in_order(&self) -> impl Iterator<Item = &'s Service> + use<'s> {
        #[cfg(feature = "large-registry")]
        return self.services.0.iter().chain(self.services.1);
        #[cfg(not(feature = "large-registry"))]
        return self.services.0.iter();
    }

    /// Whether the filter names `service` (for the filters that name marked services).
    fn names(&self, service: &Service) -> bool {
        match self.of {
            FilterOf::Mark(bit) => service.broadcast_marks & (1 << bit) != 0,
            FilterOf::QueryTargets(bit) => service.query_targets & (1 << bit) != 0,
            FilterOf::None | FilterOf::One(_) => false,
        }
    }
}

impl ListSource for Filter<'_> {
    fn count(&self) -> usize {
        match self.of {
            FilterOf::None => 0,
            FilterOf::One(_) => 1,
            FilterOf::Mark(_) | FilterOf::QueryTargets(_) => {
                self.in_order().filter(|s| self.names(s)).count()
            }
        }
    }

    fn next_item(&self, at: &mut usize) -> Option<&[u8]> {
        if let FilterOf::One(sid) = self.of {
            let first = *at == 0;
            *at = 1;
            return first.then(|| sid.as_bytes());
        }
        let (found, service) = self
            .in_order()
            .enumerate()
            .skip(*at)
            .find(|(_, s)| self.names(s))?;
        *at = found.saturating_add(1);
        Some(service.sid.as_bytes())
    }
}

/// The node's protocols, as their letters, read in place when a frame is encoded.
impl ListSource for ProtocolList {
    fn count(&self) -> usize {
        self.len()
    }

    fn next_item(&self, at: &mut usize) -> Option<&[u8]> {
        let protocol = self.iter().nth(*at)?;
        *at = at.saturating_add(1);
        Some(protocol.letter().as_bytes())
    }
}

/// The node's tags, read in place when a frame carrying them is encoded.
impl ListSource for TagList {
    fn count(&self) -> usize {
        self.len()
    }

    fn next_item(&self, at: &mut usize) -> Option<&[u8]> {
        let tag = self.get(*at)?;
        *at = at.saturating_add(1);
        Some(tag.as_bytes())
    }
}

/// Without `node-data` a node publishes nothing: frames carry the protocols' props alone
/// and periodic heartbeats no digest (with it, `data.rs` gives both).
#[cfg(not(feature = "node-data"))]
impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// The props text frames carry.
    fn props_data_text(&self) -> &str {
        &self.props_text
    }

    /// The digest a periodic heartbeat carries: none.
    fn data_digest(&self) -> Option<heapless::String<24>> {
        None
    }
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    // ----- commands -----

    /// Queues an event to the services `request` selects (spec 5.13).
    pub(super) fn send_event(
        &mut self,
        now: Instant,
        request: &super::SendRequest<'_>,
    ) -> Result<(), SendError> {
        let _ = now;
        if !self.joined() {
            return Err(self.not_joined());
        }
        let targets = self
            .registry
            .iter()
            .filter(|s| request.targets.selects(s))
            .count();
        let broadcast = match request.broadcast {
            Some(b) => b,
            None => targets > 3,
        };
        if targets == 0 && !broadcast {
            return Err(SendError::NoTargets);
        }
        let ruid = match request.ruid {
            Some(r) => Some(Ruid::new(r.as_bytes()).ok_or(SendError::PayloadTooLarge)?),
            None => None,
        };
        self.check_encodable(request.channel, request.data, request.raw)
            .map_err(SendError::Encode)?;
        if !Payload::<DATA>::fits(request.data, request.raw) {
            return Err(SendError::PayloadTooLarge);
        }
        // The payload is built in the pool's free slot, which stays free until it is taken
        // below: a full pool is reported before the hook is asked.
        self.make_payload_room();
        let Some((slot, payload)) = self.payloads.vacant() else {
            return self.rejected_send();
        };
        payload.refill(request.data, request.raw);
        let verdict = with_payload_mut(payload, |p| {
            self.policy.on_send(&mut Outgoing {
                kind: MessageKind::Event,
                channel: request.channel,
                broadcast,
                payload: p,
            })
        });
        if verdict == Verdict::Reject {
            return Err(SendError::Rejected);
        }
        if broadcast {
            let mark = if targets > 0 {
                Some(self.outbox.alloc_mark().ok_or(SendError::Full)?)
            } else {
                None
            };
            self.payloads.commit(slot, 1);
            if let Some(bit) = mark {
                for service in self.registry.iter_mut() {
                    if request.targets.selects(service) {
                        service.broadcast_marks |= 1 << bit;
                    }
                }
            }
            let queued = self.outbox.push_broadcast(Broadcast::Event {
                channel: request.channel,
                ruid,
                payload: slot,
                mark,
            });
            if !queued {
                self.payloads.release(slot);
                self.release_mark(mark);
                return self.rejected_send();
            }
            return Ok(());
        }
        if self.outbox.direct_room() < targets {
            return self.rejected_send();
        }
        self.payloads
            .commit(slot, u32::try_from(targets).unwrap_or(u32::MAX));
        let allow = self.config.multicast_fallback;
        for service in self.registry.iter() {
            if request.targets.selects(service) {
                let mut direct = Direct::new(service.sid, DirectBody::Event, allow);
                direct.channel = Channel(request.channel);
                direct.ruid = ruid;
                direct.payload = Some(slot);
                direct.order = request.protocols;
                let _ = self.outbox.push_direct(direct);
            }
        }
        Ok(())
    }

    /// Refuses at command time what the encoder would refuse later (spec 7.3): a channel or
    /// a payload length whose varint starts `C0 8D`. (A whole body of exactly such a length
    /// can only be seen when the frame is written; it is then counted in `encode_errors`.)
    pub(super) fn check_encodable(
        &self,
        channel: u64,
        data: Option<&[u8]>,
        raw: Option<&[u8]>,
    ) -> Result<(), EncodeError> {
        if self.config.compat != crate::wire::Compat::Reference {
            return Ok(());
        }
        let check = |what, value: u64| {
            if crate::wire::is_reserved_prefix(value) {
                Err(EncodeError::ReservedVarintPrefix { what, value })
            } else {
                Ok(())
            }
        };
        check(VarintUse::Value(FieldId::Channel), channel)?;
        if let Some(data) = data {
            check(VarintUse::Length(FieldId::Data), data.len() as u64)?;
        }
        if let Some(raw) = raw {
            check(VarintUse::Length(FieldId::Raw), raw.len() as u64)?;
        }
        Ok(())
    }

    fn rejected_send(&mut self) -> Result<(), SendError> {
        bump(&mut self.stats.sends_rejected);
        Err(SendError::Full)
    }

    fn release_mark(&mut self, mark: Option<u8>) {
        if let Some(bit) = mark {
            self.outbox.marks_in_use &= !(1 << bit);
            for service in self.registry.iter_mut() {
                service.broadcast_marks &= !(1 << bit);
            }
        }
    }

    /// Asks `sid` for its props and tags with a discovery filtered to it, batched with the
    /// other services asked before the next transmit. False when no mark is free (the service
    /// then learns them at its next full heartbeat).
    pub(super) fn ask_for_props(&mut self, sid: &Sid) -> bool {
        let queued = self.outbox.broadcasts.iter().find_map(|b| match b {
            Broadcast::Discovery { mark: Some(bit) } => Some(*bit),
            _ => None,
        });
        let bit = match queued {
            Some(bit) => bit,
            None => {
                let Some(bit) = self.outbox.alloc_mark() else {
                    return false;
                };
                if !self
                    .outbox
                    .push_broadcast(Broadcast::Discovery { mark: Some(bit) })
                {
                    self.release_mark(Some(bit));
                    return false;
                }
                bit
            }
        };
        if let Some(service) = self.registry.get_mut(sid.as_bytes()) {
            service.broadcast_marks |= 1 << bit;
        }
        true
    }

    pub(super) fn queue_disconnect(&mut self) {
        let known = self.registry.len() as u64;
        let _ = self.outbox.push_broadcast(Broadcast::Disconnect { known });
    }

    /// Queues `direct`, counting a refusal when the queue is full.
    ///
    /// A direct whose channel the encoder would refuse is refused here and counted in
    /// `encode_errors`. Commands check their channel at once ([`check_encodable`]); this
    /// catches a response, which goes on its query's channel: a peer that encodes unchecked
    /// may ask on a channel whose varint starts `C0 8D` (spec 7.3). Refused later, by the
    /// encoder, it would break `has_transmit`'s promise of a frame.
    ///
    /// [`check_encodable`]: Self::check_encodable
    pub(super) fn queue_direct(&mut self, direct: Direct) -> bool {
        if self.check_encodable(direct.channel.0, None, None).is_err() {
            bump(&mut self.stats.encode_errors);
        } else if self.outbox.push_direct(direct) {
            return true;
        } else {
            bump(&mut self.stats.sends_rejected);
        }
        if let Some(p) = direct.payload {
            self.payloads.release(p);
        }
        false
    }

    // ----- outcomes -----

    pub(super) fn send_succeeded(&mut self, now: Instant, id: SendId) {
        let _ = now;
        let Some(index) = self.in_flight_index(id) else {
            return;
        };
        let direct = self.outbox.directs.remove(index);
        if let Some(p) = direct.payload {
            self.payloads.release(p);
        }
        let Some((_, worked)) = direct.in_flight() else {
            return;
        };
        // A stream peer took the frame at the address and port it advertised: off probation.
        if worked != Protocol::Multicast
            && let Some(service) = self.registry.get_mut(direct.to.as_bytes())
        {
            service.set_established(true);
        }
        // Spec 5.13 step 7: report the protocols that failed, through the one that worked.
        if !direct.failed.is_empty() && !matches!(direct.body, DirectBody::Failed { .. }) {
            let mut report = Direct::new(
                direct.to,
                DirectBody::Failed {
                    protocols: direct.failed,
                },
                worked == Protocol::Multicast,
            );
            report.order = Some(ProtocolList::new(&[worked]));
            let _ = self.queue_direct(report);
        }
    }

    pub(super) fn send_failed(&mut self, now: Instant, id: SendId) {
        let _ = now;
        let Some(index) = self.in_flight_index(id) else {
            return;
        };
        if let Some(direct) = self.outbox.directs.get_mut(index)
            && let Some((_, protocol)) = direct.take_in_flight()
        {
            direct.failed.insert(protocol);
        }
    }

    fn in_flight_index(&self, id: SendId) -> Option<usize> {
        self.outbox
            .directs
            .iter()
            .position(|d| d.in_flight().is_some_and(|(i, _)| i == id))
    }

    // ----- poll_transmit -----

    /// The next frame to send, encoded into `buf`.
    pub(super) fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        loop {
            if let Some(broadcast) = self.outbox.broadcasts.pop_front() {
                if let Some(t) = self.transmit_broadcast(&broadcast, buf) {
                    return Some(t);
                }
                continue;
            }
            let index = self.next_unsent()?;
            if let Next::Frame(t) = self.transmit_direct(now, index, Some(buf)) {
                return Some(t);
            }
        }
    }

    /// Whether [`next_transmit`](Self::next_transmit) has a frame: settles first, as it
    /// would, the direct sends that lead to none (their service gone, no protocol left, a
    /// protocol with nothing to connect to), and changes nothing else.
    pub(super) fn has_transmit(&mut self, now: Instant) -> bool {
        loop {
            if !self.outbox.broadcasts.is_empty() {
                return true;
            }
            let Some(index) = self.next_unsent() else {
                return false;
            };
            if let Next::Ready = self.transmit_direct(now, index, None) {
                return true;
            }
        }
    }

    /// The first queued direct send with no frame in flight.
    fn next_unsent(&self) -> Option<usize> {
        self.outbox
            .directs
            .iter()
            .position(|d| d.in_flight().is_none())
    }

    fn transmit_broadcast(&mut self, broadcast: &Broadcast, buf: &mut [u8]) -> Option<Transmit> {
        let result = self.encode_broadcast(broadcast, buf);
        // The broadcast is done with, sent or not.
        match broadcast {
            Broadcast::Event { payload, mark, .. } => {
                self.payloads.release(*payload);
                self.release_mark(*mark);
            }
            Broadcast::Query { payload, .. } => self.payloads.release(*payload),
            Broadcast::Ping => self.outbox.ping_sids.clear(),
            Broadcast::Discovery { mark } => self.release_mark(*mark),
            Broadcast::Heartbeat { .. } | Broadcast::Disconnect { .. } => {}
        }
        let len = self.count_encode(result)?;
        Some(Transmit {
            dst: Destination::Group { send: None },
            len,
            segment_size: MAX_DATAGRAM,
        })
    }

    fn count_encode(&mut self, result: Result<usize, EncodeError>) -> Option<usize> {
        match result {
            Ok(len) => Some(len),
            Err(EncodeError::BufferTooSmall { .. }) => {
                bump(&mut self.stats.transmit_buffer_too_small);
                None
            }
            Err(_) => {
                bump(&mut self.stats.encode_errors);
                None
            }
        }
    }

    /// Picks the next protocol of direct send `index` and encodes it, or settles the send
    /// when no protocol is left (spec 5.13); without a buffer, stops before encoding
    /// ([`Next::Ready`]) and leaves the send as it was. [`Next::Empty`]: no frame came of it.
    fn transmit_direct(&mut self, now: Instant, index: usize, buf: Option<&mut [u8]>) -> Next {
        let Some(direct) = self.outbox.directs.get(index).copied() else {
            return Next::Empty;
        };
        let found = self.registry.find(direct.to.as_bytes());
        let Some(service) = found.and_then(|at| self.registry.at(at)) else {
            self.drop_direct(index);
            return Next::Empty;
        };
        let Some(protocol) = self.choose_protocol(&direct, service) else {
            self.drop_direct(index);
            if !direct.tried.is_empty() {
                bump(&mut self.stats.sends_failed);
                self.direct_send_exhausted(now, &direct.to);
            }
            return Next::Empty;
        };
        let conn = direct.conn.get().or_else(|| service.conn(protocol));
        let endpoint = match protocol {
            Protocol::Tcp => match (service.ip, service.tcp_port) {
                (Some(ip), Some(port)) => Endpoint::Tcp(SocketAddr::new(ip, port)),
                _ => Endpoint::None,
            },
            Protocol::Unix => self
                .registry
                .unix_path(direct.to.as_bytes())
                .map_or(Endpoint::None, |p| Endpoint::Unix(*p)),
            Protocol::Multicast => Endpoint::None,
        };
        if protocol != Protocol::Multicast && conn.is_none() && endpoint == Endpoint::None {
            // Nothing to connect to: this protocol fails without a transmit.
            if let Some(d) = self.outbox.directs.get_mut(index) {
                d.tried.insert(protocol);
                d.failed.insert(protocol);
            }
            return Next::Empty;
        }
        let Some(buf) = buf else {
            return Next::Ready;
        };
        let id = self.outbox.next_send_id();
        if let Some(d) = self.outbox.directs.get_mut(index) {
            d.tried.insert(protocol);
        }
        let result = self.encode_direct(&direct, protocol, buf);
        let Some(len) = self.count_encode(result) else {
            self.drop_direct(index);
            return Next::Empty;
        };
        if let Some(d) = self.outbox.directs.get_mut(index) {
            d.set_in_flight(id, protocol);
        }
        let dst = if protocol == Protocol::Multicast {
            Destination::Group { send: Some(id) }
        } else {
            Destination::Service {
                sid: direct.to,
                via: protocol,
                conn,
                endpoint,
                send: id,
            }
        };
        Next::Frame(Transmit {
            dst,
            len,
            segment_size: if protocol == Protocol::Multicast {
                MAX_DATAGRAM
            } else {
                len.max(1)
            },
        })
    }

    fn drop_direct(&mut self, index: usize) {
        if index < self.outbox.directs.len() {
            let direct = self.outbox.directs.remove(index);
            if let Some(p) = direct.payload {
                self.payloads.release(p);
            }
        }
    }

    /// Spec 5.13 steps 1–5: the next protocol in order that is not yet tried, that the
    /// target advertises, that this node runs, `c` only when fallback is allowed, and `u`
    /// only to local services.
    fn choose_protocol(&self, direct: &Direct, service: &Service) -> Option<Protocol> {
        let order = direct.order.unwrap_or(service.protocols);
        order.iter().find(|&p| {
            !direct.tried.contains(p)
                && service.protocols.contains(p)
                && (p != Protocol::Multicast || direct.allow_multicast)
                && self.protocols.contains(p)
                && (!p.is_local_only() || service.is_local())
        })
    }

    // ----- encoding -----

    /// Encodes one frame of `kind` into `buf`: the base fields (`sid hid type channel
    /// protocols`), the fields of `extra`, and the tags and filter lists, which are read in
    /// place from the node's tables. The reference's field order for the kind comes from
    /// [`Message::fields`].
    ///
    /// Not generic (the extra fields come as a value, not as a closure that edits the
    /// message): one copy of the message's assembly for every kind of frame.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn encode_frame<'a>(
        &'a self,
        buf: &mut [u8],
        kind: MessageKind,
        channel: u64,
        tags: bool,
        filter: FilterOf<'a>,
        placement: FilterPlacement,
        extra: Extra<'a>,
    ) -> Result<usize, EncodeError> {
        let filter = Filter {
            of: filter,
            services: self.registry.as_slices(),
        };
        let message = Message {
            sid: Some(Str::from_bytes(self.sid.as_bytes())),
            hid: Some(Str::from_bytes(self.hid.as_bytes())),
            kind: Some(kind),
            channel: Some(channel),
            protocols: Some(List::from_source(&self.protocols)),
            ruid: extra.ruid,
            keepalive: extra.keepalive,
            data: extra.data,
            error: extra.error,
            raw: extra.raw,
            known: extra.known,
            tags: tags.then(|| List::from_source(&self.config.tags)),
            filter: (!matches!(filter.of, FilterOf::None)).then(|| List::from_source(&filter)),
            ..Message::default()
        };
        // Not sized when `buf` is too small: the node counts such a frame, and needs no
        // length (`required` is not read).
        message
            .encode_unsized(placement, self.config.compat, buf)
            .map_err(|e| e.unwrap_or(EncodeError::BufferTooSmall { required: 0 }))
    }

    /// A broadcast's frame: each kind sets what differs from a plain frame (no filter, no
    /// channel, `known`), and one call encodes it.
    fn encode_broadcast(
        &self,
        broadcast: &Broadcast,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let digest = self.data_digest();
        let mut ping_text = heapless::String::<{ PING_MAX * 17 }>::new();
        let mut extra = Extra {
            known: Some(self.registry.len() as u64),
            ..Extra::default()
        };
        let mut channel = 0;
        let mut filter = FilterOf::None;
        let mut placement = FilterPlacement::Last;
        let props = Some(Str::from(self.props_data_text()));
        let (kind, tags) = match broadcast {
            Broadcast::Heartbeat { props: p, tags } => {
                // Spec 5.4: `data` only when props are queued, "" when only tags are; a node
                // publishing data carries its version there instead (see `data.rs`).
                extra.data = match (p, tags, &digest) {
                    (true, _, _) => props,
                    (false, _, Some(digest)) => Some(Str::from(digest.as_str())),
                    (false, true, None) => Some(Str::from("")),
                    (false, false, None) => None,
                };
                (MessageKind::Heartbeat, *tags)
            }
            Broadcast::Discovery { mark } => {
                if let Some(bit) = mark {
                    filter = FilterOf::Mark(*bit);
                    placement = FilterPlacement::First;
                }
                extra.data = props;
                (MessageKind::Discovery, true)
            }
            Broadcast::Disconnect { known } => {
                extra.known = Some(*known);
                (MessageKind::Disconnect, true)
            }
            Broadcast::Ping => {
                // One `ListWriter` instantiation for the crate's writers (`Sink`): less code.
                let mut view = crate::wire::tcl_list::Unsized(ping_text.as_mut_view());
                let mut list =
                    crate::wire::tcl_list::ListWriter::new(crate::wire::tcl_list::Sink(&mut view));
                for sid in &self.outbox.ping_sids {
                    if let Some(s) = sid.as_str() {
                        let _ = list.push(s);
                    }
                }
                extra.data = Some(Str::from(ping_text.as_str()));
                (MessageKind::Ping, false)
            }
            Broadcast::Event {
                channel: on,
                ruid,
                payload,
                mark,
            } => {
                let payload = self.payloads.get(*payload);
                filter = mark.map_or(FilterOf::None, FilterOf::Mark);
                placement = FilterPlacement::First;
                channel = *on;
                extra = Extra {
                    ruid: ruid.as_ref().map(|r| Str::from_bytes(r.as_bytes())),
                    data: payload.and_then(Payload::data).map(Str::from_bytes),
                    raw: payload.and_then(Payload::raw),
                    ..Extra::default()
                };
                (MessageKind::Event, false)
            }
            Broadcast::Query { slot, payload } => {
                return self.encode_query(buf, *slot, *payload, FilterOf::QueryTargets(*slot));
            }
        };
        self.encode_frame(buf, kind, channel, tags, filter, placement, extra)
    }

    /// A query frame: `filter sid hid type=4 channel protocols ruid data keepalive=1`.
    fn encode_query(
        &self,
        buf: &mut [u8],
        slot: u8,
        payload: u8,
        filter: FilterOf<'_>,
    ) -> Result<usize, EncodeError> {
        let payload = self.payloads.get(payload);
        let record = self.queries.get(slot).ok_or(EncodeError::TooLarge)?;
        let first = FilterPlacement::First;
        self.encode_frame(
            buf,
            MessageKind::Query,
            record.channel,
            false,
            filter,
            first,
            Extra {
                ruid: Some(Str::from_bytes(record.id.as_bytes())),
                data: Some(Str::from_bytes(
                    payload.and_then(Payload::data).unwrap_or_default(),
                )),
                raw: payload.and_then(Payload::raw),
                keepalive: Some(true),
                ..Extra::default()
            },
        )
    }

    /// A direct send's frame, filtered to its target: each kind sets what differs, and one
    /// call encodes it.
    fn encode_direct(
        &self,
        direct: &Direct,
        via: Protocol,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let payload = direct.payload.and_then(|p| self.payloads.get(p));
        let mut failed_text = heapless::String::<32>::new();
        let mut extra = Extra {
            ruid: direct.ruid.as_ref().map(|r| Str::from_bytes(r.as_bytes())),
            ..Extra::default()
        };
        let mut channel = direct.channel.0;
        let mut tags = false;
        let kind = match direct.body {
            DirectBody::DiscoveryAnswer => {
                extra.keepalive = direct.keepalive;
                extra.data = Some(Str::from(self.props_data_text()));
                extra.known = Some(self.registry.len() as u64);
                channel = 0;
                tags = true;
                MessageKind::Heartbeat
            }
            DirectBody::Response { error } => {
                let text = Str::from_bytes(payload.and_then(Payload::data).unwrap_or_default());
                extra.keepalive = direct.keepalive;
                if error {
                    extra.error = Some(text);
                } else {
                    extra.data = Some(text);
                    extra.raw = payload.and_then(Payload::raw);
                }
                MessageKind::Response
            }
            DirectBody::Event => {
                extra.data = payload.and_then(Payload::data).map(Str::from_bytes);
                extra.raw = payload.and_then(Payload::raw);
                MessageKind::Event
            }
            DirectBody::Query { slot } => {
                // Direct: the cluster-level payload names every target (spec 3.4); the
                // multicast fallback names only this one, so others do not answer twice.
                let filter = if via == Protocol::Multicast {
                    FilterOf::One(&direct.to)
                } else {
                    FilterOf::QueryTargets(slot)
                };
                let payload = direct.payload.ok_or(EncodeError::TooLarge)?;
                return self.encode_query(buf, slot, payload, filter);
            }
            DirectBody::Failed { protocols } => {
                if super::props::write_failed(protocols.iter(), &mut failed_text).is_err() {
                    return Err(EncodeError::TooLarge);
                }
                extra.ruid = None;
                extra.data = Some(Str::from(failed_text.as_str()));
                channel = 0;
                MessageKind::Failed
            }
        };
        let target = FilterOf::One(&direct.to);
        self.encode_frame(
            buf,
            kind,
            channel,
            tags,
            target,
            FilterPlacement::Last,
            extra,
        )
    }
}

/// Runs `f` on a mutable view of `payload`.
pub(crate) fn with_payload_mut<const DATA: usize, R>(
    payload: &mut Payload<DATA>,
    f: impl FnOnce(crate::policy::PayloadMut<'_>) -> R,
) -> R {
    let (bytes, shape) = payload.parts_mut();
    f(crate::policy::PayloadMut::new(bytes.as_mut_view(), shape))
}
